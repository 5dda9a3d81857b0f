import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testLab } from '../../../../tests/unit-support/test-lab.ts';
import { checkExecCreate, checkLabHostCreate, ExecStartBody, parseLabUser } from './lab-host-policy.ts';
import { execSpec, type LabHostSpecInput, labHostSpec, SECCOMP_PROFILE_JSON } from './lab-host-spec.ts';

/** A uid as the allocator picks them (server/src/runtime/docker/uid-allocator.ts). */
const UID = 2_000_000_017;

function input(over: Partial<LabHostSpecInput> = {}): LabHostSpecInput {
  return {
    lab: testLab(),
    image: 'containerlabs/lab-processes:0123456789ab',
    sessionId: 's-1',
    expiresAt: new Date('2030-01-02T03:04:05.000Z'),
    instance: 'test',
    pooled: false,
    deadline: new Date('2030-01-02T04:04:05.000Z'),
    hardDeadlineSeconds: 3600,
    uid: UID,
    ...over,
  };
}

/** The real spec, as JSON would carry it (what the filter parses). */
function body(
  over: Partial<LabHostSpecInput> = {},
): Record<string, unknown> & { HostConfig: Record<string, unknown> } {
  return JSON.parse(JSON.stringify(labHostSpec(input(over))));
}

/** A copy of `b` with `path` (dot-separated, into HostConfig when it starts there) set to `value`;
 *  `undefined` deletes the field. */
function withField(path: string, value: unknown): unknown {
  const b = body();
  const keys = path.split('.');
  let o: Record<string, unknown> = b;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  const last = keys.at(-1)!;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return b;
}

describe('lab host create policy', () => {
  it('accepts the real labHostSpec() body, for every lab shape we make', () => {
    for (const b of [
      body(),
      body({ apparmorProfile: 'unconfined' }),
      body({ lab: testLab({ id: 'cgroups', limits: { memory: '256m', cpus: 1, pids: 200, tmp: '32m' } }) }),
    ]) {
      const r = checkLabHostCreate(b);
      assert.ok(r.ok, r.ok ? '' : r.reason);
    }
    const own = checkLabHostCreate(body({ apparmorProfile: 'containerlabs-nested' }), {
      apparmorProfiles: ['containerlabs-nested'],
    });
    assert.ok(own.ok, own.ok ? '' : own.reason);
  });

  it('accepts any lab uid of 1000 or more (a uid per sandbox), in User and tmpfs owners', () => {
    const b = body();
    b.User = '100345:100345';
    const tmpfs = b.HostConfig.Tmpfs as Record<string, string>;
    for (const k of Object.keys(tmpfs))
      tmpfs[k] = tmpfs[k]!.replace(/uid=1000/, 'uid=100345').replace(/gid=1000/, 'gid=100345');
    const r = checkLabHostCreate(b);
    assert.ok(r.ok, r.ok ? '' : r.reason);
  });

  it('forwards our own seccomp text, whatever the formatting of an equal profile', () => {
    const b = body();
    const opts = b.HostConfig.SecurityOpt as string[];
    const i = opts.findIndex((o) => o.startsWith('seccomp='));
    opts[i] = `seccomp=${JSON.stringify(JSON.parse(SECCOMP_PROFILE_JSON), null, 2)}`;
    const r = checkLabHostCreate(b);
    assert.ok(r.ok, r.ok ? '' : r.reason);
    const fwd = r.value as { HostConfig: { SecurityOpt: string[] } };
    assert.ok(fwd.HostConfig.SecurityOpt.includes(`seccomp=${SECCOMP_PROFILE_JSON}`));
  });

  // Each body differs from the real one in exactly one field.
  const dangerous: [string, string, unknown][] = [
    // Privileges
    ['privileged', 'HostConfig.Privileged', true],
    ['a capability added', 'HostConfig.CapAdd', ['SYS_ADMIN']],
    ['capabilities kept', 'HostConfig.CapDrop', []],
    ['CapDrop not ALL', 'HostConfig.CapDrop', ['NET_RAW']],
    // The network
    ['host network', 'HostConfig.NetworkMode', 'host'],
    ['bridge network', 'HostConfig.NetworkMode', 'bridge'],
    ['another container network', 'HostConfig.NetworkMode', 'container:abc'],
    // The machine's files and devices
    ['a bind mount of /', 'HostConfig.Binds', ['/:/host']],
    ['an empty Binds list', 'HostConfig.Binds', []],
    ['a mount', 'HostConfig.Mounts', [{ Type: 'bind', Source: '/', Target: '/host' }]],
    ['a device', 'HostConfig.Devices', [{ PathOnHost: '/dev/sda', PathInContainer: '/dev/sda' }]],
    ['volumes of another container', 'HostConfig.VolumesFrom', ['x']],
    ['a GPU', 'HostConfig.DeviceRequests', [{ Count: -1 }]],
    ['device cgroup rules', 'HostConfig.DeviceCgroupRules', ['a *:* rwm']],
    // The machine's namespaces and cgroups
    ...(['Pid', 'Ipc', 'UTS', 'Userns', 'Cgroupns'] as const).map((k): [string, string, unknown] => [
      `the host's ${k} namespace`,
      `HostConfig.${k}Mode`,
      'host',
    ]),
    ['no cgroup namespace setting', 'HostConfig.CgroupnsMode', undefined],
    ['a cgroup parent', 'HostConfig.CgroupParent', '/'],
    // The image's own root
    ['a writable root', 'HostConfig.ReadonlyRootfs', false],
    ['no read-only root', 'HostConfig.ReadonlyRootfs', undefined],
    // Seccomp, no-new-privileges, LSMs
    ['no security options', 'HostConfig.SecurityOpt', []],
    ['seccomp unconfined', 'HostConfig.SecurityOpt', ['no-new-privileges:true', 'seccomp=unconfined']],
    ['without no-new-privileges', 'HostConfig.SecurityOpt', [`seccomp=${SECCOMP_PROFILE_JSON}`]],
    [
      'another seccomp profile',
      'HostConfig.SecurityOpt',
      ['no-new-privileges:true', `seccomp=${JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW' })}`],
    ],
    [
      'an AppArmor profile of someone else',
      'HostConfig.SecurityOpt',
      ['no-new-privileges:true', `seccomp=${SECCOMP_PROFILE_JSON}`, 'apparmor=docker-privileged'],
    ],
    [
      'SELinux disabled',
      'HostConfig.SecurityOpt',
      ['no-new-privileges:true', `seccomp=${SECCOMP_PROFILE_JSON}`, 'label=disable'],
    ],
    // Limits
    ['no memory limit', 'HostConfig.Memory', 0],
    ['no memory limit (absent)', 'HostConfig.Memory', undefined],
    ['swap', 'HostConfig.MemorySwap', -1],
    ['no pids limit', 'HostConfig.PidsLimit', -1],
    ['no pids limit (absent)', 'HostConfig.PidsLimit', undefined],
    ['sysctls', 'HostConfig.Sysctls', { 'net.ipv4.ip_forward': '1' }],
    [
      'a tmpfs elsewhere',
      'HostConfig.Tmpfs',
      { '/tmp': 'rw,nosuid,nodev,size=1', '/etc': 'rw,nosuid,nodev,size=1' },
    ],
    // Writable mounts
    ['a suid tmpfs', 'HostConfig.Tmpfs', { '/tmp': 'rw,suid,nodev,size=1' }],
    ['a tmpfs without nosuid', 'HostConfig.Tmpfs', { '/tmp': 'rw,nodev,size=1' }],
    ['a root-owned tmpfs', 'HostConfig.Tmpfs', { '/tmp': 'rw,nosuid,nodev,size=1,uid=0' }],
    // Ports, logs, runtime, restarts
    ['published ports', 'HostConfig.PortBindings', { '22/tcp': [{ HostPort: '22' }] }],
    ['all ports published', 'HostConfig.PublishAllPorts', true],
    ['an OOM shield', 'HostConfig.OomScoreAdj', -1000],
    ['a syslog log driver', 'HostConfig.LogConfig', { Type: 'syslog', Config: {} }],
    ['another runtime', 'HostConfig.Runtime', 'runc-unsafe'],
    ['a lower-case key Go would read as Privileged', 'HostConfig.privileged', true],
    ['a restart policy', 'HostConfig.RestartPolicy', { Name: 'always' }],
    // The user
    ...(
      [
        ['root', '0:0'],
        ['root by name', 'root'],
        ['a uid without a gid (Docker would pick gid 0)', '1000'],
        ['a system uid', '999:999'],
        ['a gid of 0', '1000:0'],
        ['no user', undefined],
      ] as const
    ).map(([what, user]): [string, string, unknown] => [what, 'User', user]),
    // What runs, and how it is found
    ['another image', 'Image', 'debian:bookworm'],
    ['an image from another registry', 'Image', 'evil.example/containerlabs/lab-processes:0123456789ab'],
    ['another entrypoint', 'Entrypoint', ['/bin/sh']],
    ['not labelled managed', 'Labels', { 'containerlabs.session': 's-1' }],
    ['labelled managed=false', 'Labels', { 'containerlabs.managed': 'false' }],
    ['anonymous volumes', 'Volumes', { '/data': {} }],
    ['exposed ports', 'ExposedPorts', { '22/tcp': {} }],
    ['a network to join', 'NetworkingConfig', { EndpointsConfig: { bridge: {} } }],
    ['top-level HostConfig fields (old API spelling)', 'Binds', ['/:/host']],
    ['no HostConfig', 'HostConfig', undefined],
  ];
  for (const [what, path, value] of dangerous) {
    it(`refuses ${what} (${path})`, () => {
      const r = checkLabHostCreate(withField(path, value));
      assert.equal(r.ok, false, `${path} = ${JSON.stringify(value)} was accepted`);
    });
  }

  it('says which field is wrong', () => {
    const r = checkLabHostCreate(withField('HostConfig.Binds', ['/:/host']));
    assert.ok(!r.ok);
    assert.match(r.reason, /HostConfig/);
    assert.match(r.reason, /Binds/);
    const p = checkLabHostCreate(withField('HostConfig.Privileged', true));
    assert.ok(!p.ok);
    assert.match(p.reason, /HostConfig\.Privileged/);
  });

  it('refuses what is not an object', () => {
    for (const b of [null, 'x', 1, [], undefined]) assert.equal(checkLabHostCreate(b).ok, false);
  });
});

describe('exec policy', () => {
  const commands = [execSpec({ name: 'host', title: 't', target: 'host' }, UID).Cmd, ['sh', '-c', 'echo ok']];

  it('accepts the terminal exec (execSpec) and the adapter exec() shape', () => {
    const t = checkExecCreate(
      JSON.parse(JSON.stringify(execSpec({ name: 'host', title: 't', target: 'host' }, UID))),
      commands,
    );
    assert.ok(t.ok, t.ok ? '' : t.reason);
    const e = checkExecCreate(
      {
        Cmd: ['sh', '-c', 'echo ok'],
        AttachStdout: true,
        AttachStderr: true,
        User: '100345:100345',
        Tty: false,
      },
      commands,
    );
    assert.ok(e.ok, e.ok ? '' : e.reason);
  });

  const base = { Cmd: ['sh', '-c', 'echo ok'], User: '1000:1000', Tty: false };
  const refused: [string, unknown][] = [
    ['root', { ...base, User: '0:0' }],
    ['root by name', { ...base, User: 'root' }],
    ['no user (the container default)', { Cmd: base.Cmd, Tty: false }],
    ['privileged', { ...base, Privileged: true }],
    ['another command', { ...base, Cmd: ['sh', '-c', 'cat /etc/shadow'] }],
    ['a known command with one more argument', { ...base, Cmd: ['sh', '-c', 'echo ok', 'x'] }],
    ['an unknown field', { ...base, privileged: true }],
  ];
  for (const [what, b] of refused) {
    it(`refuses an exec with ${what}`, () => {
      assert.equal(checkExecCreate(b, commands).ok, false);
    });
  }

  it('exec start: attached only, no other fields', () => {
    assert.ok(ExecStartBody.safeParse({ hijack: true, stdin: true, Tty: true }).success);
    assert.ok(ExecStartBody.safeParse({ Detach: false, Tty: false }).success);
    assert.ok(!ExecStartBody.safeParse({ Detach: true }).success);
    assert.ok(!ExecStartBody.safeParse({ Tty: true, Privileged: true }).success);
  });
});

describe('parseLabUser', () => {
  it('takes uid:gid, both numeric and at least 1000', () => {
    assert.deepEqual(parseLabUser('1000:1000'), { uid: 1000, gid: 1000 });
    assert.deepEqual(parseLabUser('150000:150000'), { uid: 150000, gid: 150000 });
    for (const u of [
      '0:0',
      '999:1000',
      '1000:999',
      '1000',
      'reader',
      'reader:reader',
      ' 1000:1000',
      '1000:1000 ',
      '-1:-1',
      '4294967295:1000',
      '',
    ])
      assert.equal(parseLabUser(u), null, u);
  });
});
