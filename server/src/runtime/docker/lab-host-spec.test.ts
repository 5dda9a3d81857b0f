import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TerminalDef } from '../../../../labs/schema.ts';
import { testLab } from '../../../../tests/unit-support/test-lab.ts';
import {
  execSpec,
  type LabHostSpecInput,
  labHostSpec,
  labUser,
  SECCOMP_PROFILE_JSON,
} from './lab-host-spec.ts';
import { fromLabels, LABELS } from './labels.ts';

const lab = testLab();

function input(over: Partial<LabHostSpecInput> = {}): LabHostSpecInput {
  return {
    lab,
    image: 'containerlabs/lab-processes:0123456789ab',
    sessionId: 's-1',
    uid: 2_000_012_345,
    instance: 'test',
    pooled: false,
    expiresAt: new Date('2030-01-02T03:04:05.000Z'),
    deadline: new Date('2030-01-02T04:04:05.000Z'),
    hardDeadlineSeconds: 3600,
    ...over,
  };
}

type HostConfig = Record<string, unknown> & {
  Tmpfs: Record<string, string>;
  SecurityOpt: string[];
  MaskedPaths: string[];
  Ulimits: { Name: string; Soft: number; Hard: number }[];
};

describe('labHostSpec', () => {
  const spec = labHostSpec(input());
  const hc = spec.HostConfig as HostConfig;

  it('runs the image as the uid it was given, with hostname labhost and lab-init as PID 1', () => {
    assert.equal(spec.Image, 'containerlabs/lab-processes:0123456789ab');
    assert.equal(spec.User, '2000012345:2000012345');
    assert.equal(labHostSpec(input({ uid: 10_001 })).User, '10001:10001');
    assert.equal(spec.Hostname, 'labhost');
    assert.deepEqual(spec.Entrypoint, ['/usr/local/sbin/lab-init']);
    assert.equal(hc.Init, false);
    assert.equal(spec.Tty, false);
    assert.equal(spec.OpenStdin, false);
  });

  it('passes the app, its hostname and the hard deadline to lab-init', () => {
    assert.ok(spec.Env.includes('LAB_APP_CMD=exec busybox httpd -f -p 8080 -h /srv/www'));
    assert.ok(spec.Env.includes('LAB_APP_HOSTNAME=box'));
    assert.ok(spec.Env.includes('LAB_DEADLINE_SECONDS=3600'));
    assert.ok(spec.Env.includes('LAB_LEASE_SECONDS=3600'), 'without a lease of its own: the deadline');
    assert.ok(spec.Env.includes('LAB_ID=processes'));
    // Docker cannot read the image's passwd (it points into a tmpfs): HOME comes from us.
    assert.ok(spec.Env.includes('HOME=/home/reader'));
  });

  it('labels the container; our labels win over passed ones', () => {
    const s = labHostSpec(
      input({ labels: { extra: 'x', [LABELS.managed]: 'false', [LABELS.session]: 'evil' } }),
    );
    assert.deepEqual(s.Labels, {
      extra: 'x',
      'containerlabs.managed': 'true',
      'containerlabs.session': 's-1',
      'containerlabs.lab': 'processes',
      'containerlabs.instance': 'test',
      'containerlabs.expires-at': '2030-01-02T03:04:05.000Z',
      'containerlabs.deadline': '2030-01-02T04:04:05.000Z',
      'containerlabs.uid': '2000012345',
    });
    const forged = labHostSpec(input({ labels: { [LABELS.uid]: '1000', [LABELS.instance]: 'other' } }));
    assert.equal(forged.Labels[LABELS.uid], '2000012345', 'the uid label tells the truth');
    assert.equal(forged.Labels[LABELS.instance], 'test');
    assert.equal(labHostSpec(input({ pooled: true })).Labels[LABELS.pool], 'true', 'a pool member says so');
  });

  it('reads its own labels back in the same terms (labels.ts is the only translation)', () => {
    const pooled = labHostSpec(input({ pooled: true }));
    assert.deepEqual(fromLabels(pooled.Labels), {
      sessionId: 's-1',
      lab: 'processes',
      instance: 'test',
      pooled: true,
      deadline: new Date('2030-01-02T04:04:05.000Z'),
      uid: 2_000_012_345,
    });
    // What a stranger's labels do not say stays unsaid.
    assert.deepEqual(fromLabels({ [LABELS.deadline]: 'soon', [LABELS.uid]: '-1' }), {
      sessionId: '',
      lab: '',
      instance: '',
      pooled: false,
    });
    assert.deepEqual(fromLabels(undefined), { sessionId: '', lab: '', instance: '', pooled: false });
  });

  it('drops every privilege and never disables seccomp', () => {
    assert.deepEqual(hc.CapDrop, ['ALL']);
    assert.deepEqual(hc.CapAdd, []);
    assert.equal(hc.Privileged, false);
    assert.ok(hc.SecurityOpt.includes('no-new-privileges:true'));
    const seccomp = hc.SecurityOpt.filter((o) => o.startsWith('seccomp='));
    assert.equal(seccomp.length, 1);
    assert.doesNotMatch(seccomp[0]!, /unconfined/);
    const profile = JSON.parse(seccomp[0]!.slice('seccomp='.length));
    assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(seccomp[0], `seccomp=${SECCOMP_PROFILE_JSON}`);
    assert.ok(!hc.SecurityOpt.some((o) => /apparmor=unconfined|label=disable/.test(o)));
  });

  it('leaves /proc unmasked (needed for --mount-proc in a user namespace) but keeps sysfs masks', () => {
    assert.deepEqual(hc.ReadonlyPaths, []);
    assert.ok(Array.isArray(hc.MaskedPaths));
    assert.ok(
      hc.MaskedPaths.every((p) => !p.startsWith('/proc')),
      'no mount may cover part of /proc',
    );
    assert.ok(hc.MaskedPaths.includes('/sys/firmware'));
  });

  it('isolates: no network but loopback, no ports, no devices, private IPC and cgroup namespaces', () => {
    assert.equal(hc.NetworkMode, 'none');
    assert.deepEqual(hc.PortBindings, {});
    assert.equal(hc.PublishAllPorts, false);
    assert.deepEqual(hc.Devices, []);
    assert.equal(hc.IpcMode, 'private');
    assert.equal(hc.CgroupnsMode, 'private');
    assert.equal((spec as unknown as Record<string, unknown>).ExposedPorts, undefined);
  });

  it('has a read-only root and sized tmpfs mounts', () => {
    assert.equal(hc.ReadonlyRootfs, true);
    assert.match(hc.Tmpfs['/tmp']!, /(^|,)size=16777216(,|$)/);
    assert.match(hc.Tmpfs['/tmp']!, /(^|,)mode=1777(,|$)/);
    assert.match(hc.Tmpfs['/tmp']!, /(^|,)nosuid(,|$)/);
    assert.match(hc.Tmpfs['/home/reader']!, /(^|,)uid=2000012345,gid=2000012345(,|$)/);
    assert.match(hc.Tmpfs['/run/lab']!, /(^|,)uid=2000012345,gid=2000012345(,|$)/);
    const small = labHostSpec(input({ lab: { ...lab, limits: { ...lab.limits, tmp: '4m' } } }));
    assert.match((small.HostConfig as HostConfig).Tmpfs['/tmp']!, /size=4194304/);
  });

  it('limits memory (no swap), CPU, PIDs and open files', () => {
    assert.equal(hc.Memory, 128 * 1024 * 1024);
    assert.equal(hc.MemorySwap, hc.Memory);
    assert.equal(hc.NanoCpus, 500_000_000);
    assert.equal(hc.PidsLimit, 100);
    assert.deepEqual(
      hc.Ulimits.find((u) => u.Name === 'nofile'),
      { Name: 'nofile', Soft: 1024, Hard: 1024 },
    );
    assert.deepEqual(
      hc.Ulimits.find((u) => u.Name === 'core'),
      { Name: 'core', Soft: 0, Hard: 0 },
    );
    // No nproc: it would act before the pids cgroup and hide it (see the spec's comment).
    assert.equal(
      hc.Ulimits.find((u) => u.Name === 'nproc'),
      undefined,
    );
    const big = labHostSpec(
      input({ lab: { ...lab, limits: { memory: '1g', cpus: 1.25, pids: 200, tmp: '16m' } } }),
    );
    const bhc = big.HostConfig as HostConfig;
    assert.equal(bhc.Memory, 1024 ** 3);
    assert.equal(bhc.MemorySwap, 1024 ** 3);
    assert.equal(bhc.NanoCpus, 1_250_000_000);
    assert.equal(bhc.PidsLimit, 200);
  });

  it('removes itself when it stops', () => {
    assert.equal(hc.AutoRemove, true);
    assert.deepEqual(hc.RestartPolicy, { Name: 'no' });
  });

  it('is plain JSON (survives a round trip unchanged)', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
  });

  it('refuses bad input', () => {
    assert.throws(() => labHostSpec(input({ hardDeadlineSeconds: 0 })), /hardDeadlineSeconds/);
    assert.throws(() => labHostSpec(input({ hardDeadlineSeconds: 1.5 })), /hardDeadlineSeconds/);
    assert.throws(() => labHostSpec(input({ leaseSeconds: 0 })), /leaseSeconds/);
    assert.throws(() => labHostSpec(input({ sessionId: 'a b' })), /session id/);
    assert.throws(() => labHostSpec(input({ sessionId: '' })), /session id/);
    assert.doesNotThrow(() => labHostSpec(input({ sessionId: '_-base64url_ID-9' })));
    assert.throws(() => labHostSpec(input({ image: '' })), /image/);
    assert.throws(() => labHostSpec(input({ expiresAt: new Date('nope') })), /expiresAt/);
    for (const uid of [0, -1, 1.5, Number.NaN, 4_294_967_295, 2 ** 32]) {
      assert.throws(() => labHostSpec(input({ uid })), /uid must be an integer from 1/, String(uid));
    }
  });
});

describe('labUser', () => {
  it('is uid:gid with gid = uid, never root', () => {
    assert.equal(labUser(1), '1:1');
    assert.equal(labUser(4_294_967_294), '4294967294:4294967294');
    assert.throws(() => labUser(0), /uid/);
  });
});

describe('execSpec', () => {
  const t = (target: TerminalDef['target']): TerminalDef => ({ name: target, title: target, target });

  it('opens a TTY login shell on the lab host as the reader', () => {
    const e = execSpec(t('host'), 2_000_012_345);
    assert.deepEqual(e.Cmd, ['/usr/local/bin/lab-shell', 'host']);
    assert.equal(e.User, '2000012345:2000012345');
    assert.ok(e.Env.includes('HOME=/home/reader'));
    assert.equal(e.Tty, true);
    assert.equal(e.AttachStdin && e.AttachStdout && e.AttachStderr, true);
    assert.ok(e.Env.includes('TERM=xterm-256color'));
  });

  it('enters the nested container for target container', () => {
    const e = execSpec(t('container'), 10_042);
    assert.deepEqual(e.Cmd, ['/usr/local/bin/lab-shell', 'container']);
    assert.equal(e.User, '10042:10042');
    assert.equal(e.Tty, true);
  });

  it('refuses a uid that is no lab host uid', () => {
    assert.throws(() => execSpec(t('host'), 0), /uid/);
  });

  it('moves the detach keys off ctrl-p', () => {
    assert.doesNotMatch(execSpec(t('host'), 10_042).DetachKeys, /^$|ctrl-p/);
  });
});
