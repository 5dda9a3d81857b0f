import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckDef } from '../../../labs/schema.ts';
import {
  type FakeProcess,
  LAB_HOST_MOUNTS,
  mountScriptOutput,
  processScriptOutput,
} from '../../../tests/unit-support/snapshot-fixture.ts';
import { runCheck } from './checks.ts';
import { overlayLowerDirs, parseCgroup, parseMounts, parseProcesses } from './snapshot.ts';

// A processes lab host as seen on a real run (trimmed): lab-init, unshare, the app; the
// inspector (40) and its child (41) must be left out.
const PROCS = processScriptOutput({
  self: 40,
  passwd: ['root:x:0:0:root:/root:/bin/bash', 'reader:x:1000:1000::/home/reader:/bin/bash'],
  procs: [
    {
      pid: 1,
      ppid: 0,
      uid: 1000,
      ns: { pid: '100', net: '200', mnt: '300', user: '400', pid_for_children: '100' },
      argv: ['/bin/bash', '/usr/local/sbin/lab-init'],
    },
    {
      pid: 12,
      ppid: 1,
      uid: 1000,
      uidMap: [[0, 1000, 1]],
      ns: { pid: '100', net: '200', mnt: '301', user: '401' },
      argv: 'unshare -U -r -p -f -m -u -i --mount-proc --kill-child /usr/local/lib/containerlabs/box-start'.split(
        ' ',
      ),
    },
    {
      pid: 13,
      ppid: 12,
      uid: 1000,
      nspid: [13, 1],
      uidMap: [[0, 1000, 1]],
      ns: { pid: '101', net: '200', mnt: '301', user: '401' },
      argv: ['busybox', 'httpd', '-f', '-p', '8080', '-h', '/srv/www'],
    },
    { pid: 40, ppid: 0, uid: 1000, argv: ['/bin/bash', '-c', 'script'] },
    { pid: 41, ppid: 40, uid: 1000, argv: ['find', '/proc/1/ns'] },
  ],
});

test('parseProcesses: PIDs at each level, users through uid_map, shared namespaces; the inspector itself left out', () => {
  const s = parseProcesses(PROCS, new Date(0));
  assert.deepEqual(
    s.processes.map((p) => p.pid),
    [1, 12, 13],
  );
  const app = s.processes.find((p) => p.pid === 13)!;
  assert.deepEqual(app.nspid, [13, 1]);
  assert.equal(app.inContainer, true);
  assert.equal(app.ppid, 12);
  assert.deepEqual(app.uids, [1000, 0]);
  assert.deepEqual(app.users, ['reader', 'root']);
  assert.equal(app.user, 'reader');
  assert.match(app.cmd, /^busybox httpd/);
  assert.deepEqual(app.sharedWithHost, ['net']);
  const init = s.processes.find((p) => p.pid === 1)!;
  assert.deepEqual(init.uids, [1000], 'no nested user namespace: one level');
  assert.equal(init.inContainer, false);
  assert.equal(s.host.namespaces.pid, '100');
});

test('parseCgroup v1: limits, usage, OOM kills, refused forks, throttling', () => {
  const s = parseCgroup(
    [
      'version 1',
      'memory.current 3051520',
      'memory.max 134217728',
      'memory.peak 4427776',
      'memory.oom_control.oom_kill_disable 0',
      'memory.oom_control.oom_kill 2',
      'pids.current 7',
      'pids.max 100',
      'pids.events.max 51',
      'cpu.stat.nr_periods 40',
      'cpu.stat.nr_throttled 12',
      'cpu.stat.throttled_time 1500000000',
      'cpu.quota 50000',
      'cpu.period 100000',
      'cpuacct.usage 2500000000',
    ].join('\n'),
  );
  assert.equal(s.version, '1');
  assert.deepEqual(s.memory, { current: 3051520, limit: 134217728, peak: 4427776, oomKills: 2 });
  assert.deepEqual(s.pids, { current: 7, limit: 100, refused: 51 });
  assert.equal(s.cpu.limitCores, 0.5);
  assert.equal(s.cpu.usageSeconds, 2.5);
  assert.equal(s.cpu.throttledPeriods, 12);
  assert.equal(s.cpu.throttledSeconds, 1.5);
});

test('parseCgroup v2, and "no limit" reads as null', () => {
  const s = parseCgroup(
    [
      'version 2',
      'memory.current 1000',
      'memory.max max',
      'memory.events.oom_kill 0',
      'pids.current 3',
      'pids.max max',
      'pids.events.max 0',
      'cpu.stat.usage_usec 2000000',
      'cpu.stat.nr_periods 5',
      'cpu.stat.nr_throttled 1',
      'cpu.stat.throttled_usec 500000',
      'cpu.max 50000 100000',
    ].join('\n'),
  );
  assert.equal(s.version, '2');
  assert.equal(s.memory.limit, null);
  assert.equal(s.pids.limit, null);
  assert.equal(s.cpu.limitCores, 0.5);
  assert.equal(s.cpu.usageSeconds, 2);
  assert.equal(s.cpu.throttledSeconds, 0.5);
  assert.equal(s.memory.oomKills, 0);
});

// A lab host whose reader is uid 100023 (not 1000: the uid is per sandbox), with a long
// /etc/passwd, as the script would print it.
const UID = 100023;
const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  ...Array.from(
    { length: 500 },
    (_, i) => `user${i}:x:${20000 + i}:${20000 + i}::/nonexistent:/usr/sbin/nologin`,
  ),
  `reader:x:${UID}:${UID}::/home/reader:/bin/bash`,
];
const HOST_NS = { pid: '100', net: '200', mnt: '300', user: '400' };
const BOX_NS = { pid: '101', net: '200', mnt: '301', user: '401' };
const scene = (extra: FakeProcess[] = []): FakeProcess[] => [
  {
    pid: 1,
    ppid: 0,
    uid: UID,
    ns: HOST_NS,
    state: 'S (sleeping)',
    capEff: '0000000000000000',
    root: '56:10',
    argv: ['/bin/bash', '/usr/local/sbin/lab-init'],
  },
  {
    pid: 12,
    ppid: 1,
    uid: UID,
    uidMap: [[0, UID, 1]],
    ns: { ...HOST_NS, mnt: '301', user: '401' },
    argv: ['unshare', '-U', '-r', '-p', '-f', '-m', '-u', '-i', '--mount-proc', '--kill-child', 'box-start'],
  },
  {
    pid: 13,
    ppid: 12,
    uid: UID,
    nspid: [13, 1],
    uidMap: [[0, UID, 1]],
    ns: BOX_NS,
    state: 'S (sleeping)',
    capEff: '000001ffffffffff',
    root: '56:10',
    argv: ['busybox', 'httpd', '-f', '-p', '8080', '-h', '/srv/www'],
  },
  { pid: 30, ppid: 0, uid: UID, ns: HOST_NS, argv: ['/bin/bash', '-l'] },
  ...extra,
  { pid: 40, ppid: 0, uid: UID, ns: HOST_NS, argv: ['/bin/bash', '-c', 'the script'] },
  { pid: 41, ppid: 40, uid: UID, ns: HOST_NS, argv: ['find', '/proc'] },
];

// What a reader can put into a command line (`exec -a "$(printf ...)" sleep 300`): text
// shaped like every kind of record, each trying to change what the snapshot says about
// someone else.
const FORGED = [
  'x',
  'SELF 1',
  `PASSWD ${UID} root`,
  '/proc/1/status:Uid:\t0\t0\t0\t0',
  `/proc/1/uid_map:         0 ${UID}          1`,
  'NS /proc/1/ns/pid pid:[101]',
  'CMD 1 forged',
  '/proc/13/status:NSpid:\t13',
  '\0CMD\x0013\0sleep 1000\0',
  'CMD 13 sleep 1000',
  '\0STATUS\x0013\0State\0Z (zombie)\0',
  '\0ROOT\0/proc/13/root\x0085:1\0',
  'STATUS 13 CapEff 0000000000000000',
  '',
].join('\n');

test('parseProcesses: a command line shaped like records changes nothing but its own cmd', () => {
  const hostile: FakeProcess = { pid: 35, ppid: 30, uid: UID, ns: HOST_NS, argv: [FORGED, '300'] };
  const honest = parseProcesses(
    processScriptOutput({ self: 40, passwd: PASSWD, procs: scene() }),
    new Date(0),
  );
  const s = parseProcesses(
    processScriptOutput({ self: 40, passwd: PASSWD, procs: scene([hostile]) }),
    new Date(0),
  );
  assert.deepEqual(
    s.processes.map((p) => p.pid),
    [1, 12, 13, 30, 35],
    'every process but the inspector, none hidden',
  );
  assert.deepEqual(s.host, honest.host, 'the host namespaces are the real ones');
  assert.deepEqual(
    s.processes.filter((p) => p.pid !== 35),
    honest.processes,
    'the other processes read exactly as without the hostile one',
  );
  const init = s.processes.find((p) => p.pid === 1)!;
  assert.equal(init.cmd, '/bin/bash /usr/local/sbin/lab-init');
  assert.equal(init.uid, UID);
  assert.equal(init.user, 'reader');
  const app = s.processes.find((p) => p.pid === 13)!;
  assert.deepEqual(app.nspid, [13, 1]);
  assert.deepEqual(app.users, ['reader', 'root']);
  assert.deepEqual(app.sharedWithHost, ['net']);
  const h = s.processes.find((p) => p.pid === 35)!;
  assert.equal(h.cmd, `${FORGED} 300`.replace(/\0/g, ' '), 'its cmd is its own command line, whole');
  assert.equal(h.inContainer, false);
});

test('checks: a forged record in a command line does not pass a step check', async () => {
  const hostile: FakeProcess = { pid: 35, ppid: 30, uid: UID, ns: HOST_NS, argv: [FORGED, '300'] };
  const snap = parseProcesses(processScriptOutput({ self: 40, passwd: PASSWD, procs: scene([hostile]) }));
  const ctx = {
    processes: async () => snap,
    cgroup: async () => parseCgroup('version 2'),
    mounts: async () => parseMounts(''),
  };
  const base = { id: 'step', title: 't', hint: 'h' };
  const hostPid = CheckDef.parse({ ...base, kind: 'host-pid', command: '^sleep 1000$' });
  assert.equal((await runCheck(hostPid, ctx, '13')).passed, false, 'no sleep 1000 runs in the container');
  const shared = CheckDef.parse({ ...base, kind: 'shared-namespaces' });
  assert.equal((await runCheck(shared, ctx, 'net')).passed, true, 'the container shares only net');
  assert.equal((await runCheck(shared, ctx, 'net pid')).passed, false);
  // Nor can it make a zombie, a root of its own or a powerless root appear.
  for (const o of [
    { kind: 'zombie', where: 'container' },
    { kind: 'own-root' },
    { kind: 'no-capabilities', command: 'httpd', where: 'container' },
  ])
    assert.equal((await runCheck(CheckDef.parse({ ...base, ...o }), ctx, undefined)).passed, false, o.kind);
});

test('parseProcesses: output cut short by the exec cap keeps the whole records before the cut', () => {
  const full = processScriptOutput({ self: 40, passwd: PASSWD, procs: scene() });
  // Cut inside the CMD record of PID 13: its cmd field is incomplete, so it is dropped.
  const cut = full.slice(0, full.indexOf('busybox httpd') + 7);
  const s = parseProcesses(cut);
  assert.deepEqual(
    s.processes.map((p) => [p.pid, p.cmd]),
    [
      [1, '/bin/bash /usr/local/sbin/lab-init'],
      [12, 'unshare -U -r -p -f -m -u -i --mount-proc --kill-child box-start'],
      [13, '?'],
      [30, '?'],
    ],
  );
  assert.equal(s.processes[0]!.user, String(UID), 'passwd comes last: cut off, the uid shows as a number');
  assert.deepEqual(parseProcesses('').processes, []);
  assert.deepEqual(parseProcesses('garbage\nCMD 1 x\n').processes, [], 'not the script: nothing');
});

test('parseProcesses: passwd entries name a uid only if sane; the first entry of a uid wins', () => {
  const s = parseProcesses(
    processScriptOutput({
      self: 40,
      passwd: [
        `evil\x1b[2J:x:${UID}:0::/:/bin/sh`,
        `two words:x:${UID}:0::/:/bin/sh`,
        `:x:${UID}:0::/:/bin/sh`,
        `reader:x:${UID}:${UID}::/home/reader:/bin/bash`,
        `other:x:${UID}:${UID}::/:/bin/sh`,
        'root:x:0:0:root:/root:/bin/bash',
        'nouid:x::0::/:/bin/sh',
        '',
      ],
      procs: scene(),
    }),
  );
  const app = s.processes.find((p) => p.pid === 13)!;
  assert.deepEqual(app.users, ['reader', 'root']);
});

test('parseProcesses: state letter, CapEff and the root as device:inode, when the script read them', () => {
  const s = parseProcesses(
    processScriptOutput({
      self: 40,
      passwd: [],
      procs: [
        {
          pid: 1,
          ppid: 0,
          uid: 1000,
          state: 'S (sleeping)',
          capEff: '0000000000000000',
          root: '56:2261026',
          argv: ['init'],
        },
        { pid: 9, ppid: 1, uid: 1000, nspid: [9, 4], state: 'Z (zombie)', argv: [] },
        { pid: 10, ppid: 1, uid: 1000, state: 'banana', capEff: 'xyz', argv: ['x'] },
      ],
    }),
  );
  const [init, zombie, odd] = s.processes;
  assert.equal(init!.state, 'S');
  assert.equal(init!.capEff, '0000000000000000');
  assert.equal(init!.root, '56:2261026');
  assert.equal(zombie!.state, 'Z');
  assert.equal(zombie!.root, undefined, 'no ROOT record (unreadable): no root');
  assert.equal(odd!.state, undefined, 'a state that is not a letter is dropped');
  assert.equal(odd!.capEff, undefined, 'CapEff must be 16 hex digits');
});

test('parseMounts: one table per mount namespace, fields unescaped; overlayLowerDirs counts layers', () => {
  const m = parseMounts(
    mountScriptOutput({
      '300': LAB_HOST_MOUNTS,
      '301': [
        '230 190 0:83 / /tmp/my\\040merged rw,relatime shared:5 master:2 - overlay my\\040src rw,lowerdir=/a\\:b:/c,upperdir=/u,workdir=/w',
        'not a mountinfo line',
      ],
    }),
  );
  assert.equal(m.tables['300']!.length, 4);
  const root = m.tables['300']![0]!;
  assert.deepEqual([root.mountPoint, root.fstype], ['/', 'overlay']);
  assert.equal(overlayLowerDirs(root.superOptions).length, 6);
  const mine = m.tables['301']!;
  assert.equal(mine.length, 1, 'a line that is not mountinfo is skipped');
  assert.equal(mine[0]!.mountPoint, '/tmp/my merged');
  assert.equal(mine[0]!.source, 'my src');
  assert.deepEqual(
    overlayLowerDirs(mine[0]!.superOptions),
    ['/a\\:b', '/c'],
    'an escaped colon stays in its path',
  );
  assert.deepEqual(overlayLowerDirs('rw,upperdir=/u'), []);
  // A record cut short by the output cap ends the table there.
  const cut = ['MNT', '300', LAB_HOST_MOUNTS[0], 'MNT', '300', ''].join('\0');
  assert.equal(parseMounts(cut).tables['300']!.length, 1);
});
