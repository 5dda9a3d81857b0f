import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckDef } from '../../../labs/schema.ts';
import {
  type FakeProcess,
  LAB_HOST_MOUNTS,
  mountScriptOutput,
  processScriptOutput,
} from '../../../tests/unit-support/snapshot-fixture.ts';
import type { AppError } from '../errors.ts';
import { needsAnswer, runCheck } from './checks.ts';
import {
  type CgroupSnapshot,
  type MountSnapshot,
  parseCgroup,
  parseMounts,
  parseProcesses,
} from './snapshot.ts';

const procs = parseProcesses(
  processScriptOutput({
    self: 99,
    passwd: ['reader:x:1000:1000::/home/reader:/bin/bash'],
    procs: [
      { pid: 1, ppid: 0, uid: 1000, ns: { net: '200', cgroup: '500', pid: '100' }, argv: ['lab-init'] },
      {
        pid: 13,
        ppid: 12,
        uid: 1000,
        nspid: [13, 1],
        ns: { net: '200', cgroup: '500', pid: '101' },
        argv: ['busybox', 'httpd', '-f'],
      },
      { pid: 34, ppid: 31, uid: 1000, nspid: [34, 10], argv: ['sleep', '1000'] },
    ],
  }),
);
const cg = (over: string[] = []): CgroupSnapshot =>
  parseCgroup(
    [
      'version 1',
      'memory.max 134217728',
      'memory.oom_control.oom_kill 0',
      'pids.max 100',
      'pids.events.max 0',
      ...over,
    ].join('\n'),
  );
const noMounts = parseMounts('');
const ctx = (c = cg()) => ({
  processes: async () => procs,
  cgroup: async () => c,
  mounts: async () => noMounts,
});
const def = (o: unknown) => CheckDef.parse(o);
const base = { id: 'step', title: 't', hint: 'look closer' };

test('host-pid: the host PID passes; the inside PID fails with an explanation and the hint', async () => {
  const c = def({ ...base, kind: 'host-pid', command: '^sleep 1000$' });
  assert.equal((await runCheck(c, ctx(), '34')).passed, true);
  const inside = await runCheck(c, ctx(), '10');
  assert.equal(inside.passed, false);
  assert.match(inside.message, /inside the container/);
  assert.equal(inside.hint, 'look closer');
  assert.equal((await runCheck(c, ctx(), 'rm -rf /')).passed, false);
  await assert.rejects(runCheck(c, ctx(), ''), (e: AppError) => e.code === 'bad_request');
});

test('shared-namespaces: exactly the shared kinds, in any order or spelling', async () => {
  const c = def({ ...base, kind: 'shared-namespaces' });
  assert.equal((await runCheck(c, ctx(), 'cgroup, network')).passed, true);
  assert.equal((await runCheck(c, ctx(), 'net')).passed, false);
  assert.equal((await runCheck(c, ctx(), 'net cgroup pid')).passed, false);
  assert.match((await runCheck(c, ctx(), 'net, banana')).message, /banana/);
});

// As on a kernel >= 5.6 with our seccomp profile (which refuses new time namespaces):
// `ls -l /proc/1/ns` on both sides shows the same cgroup, net, time and time_for_children.
const timeProcs = parseProcesses(
  processScriptOutput({
    self: 99,
    passwd: ['reader:x:1000:1000::/home/reader:/bin/bash'],
    procs: [
      {
        pid: 1,
        ppid: 0,
        uid: 1000,
        ns: { net: '200', cgroup: '500', pid: '100', time: '600', time_for_children: '600' },
        argv: ['lab-init'],
      },
      {
        pid: 13,
        ppid: 12,
        uid: 1000,
        nspid: [13, 1],
        ns: { net: '200', cgroup: '500', pid: '101', time: '600', time_for_children: '600' },
        argv: ['busybox', 'httpd', '-f'],
      },
    ],
  }),
);

test('shared-namespaces: time (and time_for_children) count as shared where the kernel has them', async () => {
  const c = def({ ...base, kind: 'shared-namespaces' });
  const tctx = { processes: async () => timeProcs, cgroup: async () => cg(), mounts: async () => noMounts };
  for (const right of [
    'cgroup, net, time, time_for_children',
    'net cgroup time',
    'time_for_children, network, cgroup',
  ]) {
    const r = await runCheck(c, tctx, right);
    assert.equal(r.passed, true, `${right}: ${r.message}`);
  }
  const missed = await runCheck(c, tctx, 'net, cgroup');
  assert.equal(missed.passed, false, 'time is shared too: leaving it out is not the whole answer');
  assert.equal((await runCheck(c, tctx, 'net, cgroup, time, pid')).passed, false);
});

test('oom-kill and pids-limit read the cgroup counters', async () => {
  const oom = def({ ...base, kind: 'oom-kill' });
  assert.equal((await runCheck(oom, ctx(), undefined)).passed, false);
  assert.equal((await runCheck(oom, ctx(cg(['memory.oom_control.oom_kill 1'])), undefined)).passed, true);
  const pids = def({ ...base, kind: 'pids-limit' });
  assert.equal((await runCheck(pids, ctx(), undefined)).passed, false);
  assert.equal((await runCheck(pids, ctx(cg(['pids.events.max 7'])), undefined)).passed, true);
});

test('cgroup-limit: memory in MiB', async () => {
  const c = def({ ...base, kind: 'cgroup-limit', resource: 'memory' });
  assert.equal((await runCheck(c, ctx(), '128')).passed, true);
  assert.equal((await runCheck(c, ctx(), '128 MiB')).passed, true);
  assert.equal((await runCheck(c, ctx(), '134217728')).passed, false);
});

test('process: matches where it runs', async () => {
  const inC = def({ ...base, kind: 'process', command: 'sleep', where: 'container' });
  const onH = def({ ...base, kind: 'process', command: 'sleep', where: 'host' });
  assert.equal((await runCheck(inC, ctx(), undefined)).passed, true);
  assert.equal((await runCheck(onH, ctx(), undefined)).passed, false);
});

// ---- a lab host as the new kinds see it ------------------------------------------------
// lab-init (1) → unshare (12) → the lab's container, PID 13 outside and 1 inside, root in
// a user namespace mapped to uid 1000; both with the lab host's root (56:10).
const HOST_NS = { pid: '100', mnt: '300', net: '200', user: '400', cgroup: '500' };
const BOX_NS = { pid: '101', mnt: '301', net: '200', user: '401', cgroup: '500' };
const BASE: FakeProcess[] = [
  { pid: 1, ppid: 0, uid: 1000, ns: HOST_NS, root: '56:10', state: 'S (sleeping)', argv: ['lab-init'] },
  {
    pid: 12,
    ppid: 1,
    uid: 1000,
    uidMap: [[0, 1000, 1]],
    ns: { ...BOX_NS, pid: '100' },
    root: '56:10',
    argv: ['unshare'],
  },
  {
    pid: 13,
    ppid: 12,
    uid: 1000,
    nspid: [13, 1],
    uidMap: [[0, 1000, 1]],
    ns: BOX_NS,
    root: '56:10',
    state: 'S (sleeping)',
    capEff: '000001ffffffffff',
    argv: ['sleep', 'infinity'],
  },
  // the reader's shells: one in the container (entered from outside, PPID 0), one on the host
  {
    pid: 20,
    ppid: 0,
    uid: 1000,
    nspid: [20, 7],
    uidMap: [[0, 1000, 1]],
    ns: BOX_NS,
    root: '56:10',
    argv: ['/bin/bash', '-l'],
  },
  { pid: 30, ppid: 0, uid: 1000, ns: HOST_NS, root: '56:10', argv: ['/bin/bash', '-l'] },
];
const world = (extra: FakeProcess[] = [], tables: Record<string, string[]> = {}) => {
  const snap = parseProcesses(
    processScriptOutput({
      self: 99,
      passwd: ['reader:x:1000:1000::/home/reader:/bin/bash'],
      procs: [...BASE, ...extra],
    }),
  );
  const mounts: MountSnapshot = parseMounts(
    mountScriptOutput({ '300': LAB_HOST_MOUNTS, '301': LAB_HOST_MOUNTS, ...tables }),
  );
  return { processes: async () => snap, cgroup: async () => cg(), mounts: async () => mounts };
};
const run = async (o: unknown, w: ReturnType<typeof world>, answer?: string) =>
  runCheck(def({ ...base, ...(o as object) }), w, answer);

test('needsAnswer: exactly the kinds that carry a prompt', () => {
  const answers = ['host-pid', 'shared-namespaces', 'cgroup-limit', 'root-layers', 'mapped-uid'];
  for (const kind of [
    'process',
    'host-pid',
    'shared-namespaces',
    'oom-kill',
    'pids-limit',
    'cgroup-limit',
    'mount',
    'root-layers',
    'zombie',
    'own-root',
    'no-capabilities',
    'mapped-uid',
  ]) {
    const extra = {
      process: { command: 'x', where: 'host' },
      'host-pid': { command: 'x' },
      'cgroup-limit': { resource: 'memory' },
      mount: { fstype: 'overlay', where: 'container' },
      zombie: { where: 'container' },
      'no-capabilities': { command: 'x', where: 'container' },
    } as Record<string, object>;
    const c = def({ ...base, kind, ...(extra[kind] ?? {}) });
    assert.equal(needsAnswer(c), answers.includes(kind), kind);
  }
});

test('process with init: only as PID 1 of its PID namespace', async () => {
  const c = { kind: 'process', command: '^sleep 2000$', where: 'container', init: true };
  assert.equal((await run(c, world())).passed, false);
  const notInit = await run(
    c,
    world([{ pid: 40, ppid: 20, uid: 1000, nspid: [40, 9], argv: ['sleep', '2000'] }]),
  );
  assert.equal(notInit.passed, false);
  assert.match(notInit.message, /not as PID 1/);
  // Made on the lab host with unshare (one level down) or inside the container (two): both are right.
  for (const nspid of [
    [50, 1],
    [50, 9, 1],
  ]) {
    const r = await run(c, world([{ pid: 50, ppid: 49, uid: 1000, nspid, argv: ['sleep', '2000'] }]));
    assert.equal(r.passed, true, `${nspid}: ${r.message}`);
  }
  // Without init, a plain match is enough (as before).
  const plain = await run(
    { ...c, init: false },
    world([{ pid: 40, ppid: 20, uid: 1000, nspid: [40, 9], argv: ['sleep', '2000'] }]),
  );
  assert.equal(plain.passed, true);
});

test('mount: an overlay in the container, not its root, nor one on the host only', async () => {
  const c = { kind: 'mount', fstype: 'overlay', where: 'container' };
  const before = await run(c, world());
  assert.equal(before.passed, false, 'the root overlay every container has does not count');
  const merged =
    '230 190 0:83 / /tmp/c/merged rw,relatime - overlay layers rw,lowerdir=/opt/image/layer2:/opt/image/layer1,upperdir=/tmp/c/upper,workdir=/tmp/c/work';
  const hostOnly = await run(c, world([], { '300': [...LAB_HOST_MOUNTS, merged] }));
  assert.equal(hostOnly.passed, false, 'mounted on the host, not in the container');
  const after = await run(c, world([], { '301': [...LAB_HOST_MOUNTS, merged] }));
  assert.equal(after.passed, true, after.message);
  assert.match(after.message, /\/tmp\/c\/merged/);
  // In a mount namespace of its own inside the container (a shell after unshare -m) counts too.
  const own = await run(
    c,
    world(
      [{ pid: 44, ppid: 20, uid: 1000, nspid: [44, 12], ns: { ...BOX_NS, mnt: '302' }, argv: ['bash'] }],
      { '302': [...LAB_HOST_MOUNTS, merged] },
    ),
  );
  assert.equal(own.passed, true, own.message);
  // A mount point with a blank, escaped by the kernel, and a target pattern.
  const spaced = '231 190 0:84 / /tmp/my\\040box rw - overlay o rw,lowerdir=/a:/b';
  const t = await run({ ...c, target: '^/tmp/my box$' }, world([], { '301': [...LAB_HOST_MOUNTS, spaced] }));
  assert.equal(t.passed, true, t.message);
  assert.equal((await run({ ...c, fstype: 'tmpfs', target: '^/media$' }, world())).passed, false);
});

test('root-layers: the lowerdir count of the lab host root; the image count gets its own nudge', async () => {
  const c = { kind: 'root-layers' };
  assert.equal((await run(c, world(), '6')).passed, true);
  for (const right of [' 6 ', '6 layers', '6 lower layers', '6 read-only layers'])
    assert.equal((await run(c, world(), right)).passed, true, right);
  const image = await run(c, world(), '5');
  assert.equal(image.passed, false);
  assert.match(image.message, /image/);
  assert.equal((await run(c, world(), 'six')).passed, false);
  const notOverlay = world([], { '300': ['173 145 0:56 / / rw - ext4 /dev/vda rw'] });
  assert.match((await run(c, notOverlay, '1')).message, /not an overlay/);
  await assert.rejects(run(c, world(), ''), (e: AppError) => e.code === 'bad_request');
});

test('zombie: one in the container passes; none, or one on the host only, does not', async () => {
  const c = { kind: 'zombie', where: 'container' };
  assert.equal((await run(c, world())).passed, false);
  const hostZombie = { pid: 31, ppid: 30, uid: 1000, state: 'Z (zombie)', ns: HOST_NS, argv: [] };
  assert.equal((await run(c, world([hostZombie]))).passed, false);
  const boxZombie = {
    pid: 41,
    ppid: 13,
    uid: 1000,
    nspid: [41, 5],
    state: 'Z (zombie)',
    ns: BOX_NS,
    argv: [],
  };
  const r = await run(c, world([boxZombie]));
  assert.equal(r.passed, true, r.message);
  assert.match(r.message, /PID 5 there/);
  assert.match(r.message, /sleep infinity/);
});

test('own-root: PID 1 of its own PID namespace, another root, its own mount table', async () => {
  const c = { kind: 'own-root' };
  const before = await run(c, world());
  assert.equal(before.passed, false, "the lab's own container shares the lab host's root");
  // unshare -m -p -f done, pivot_root not yet: same root.
  const unpivoted = {
    pid: 60,
    ppid: 59,
    uid: 1000,
    nspid: [60, 14, 1],
    ns: { ...BOX_NS, pid: '102', mnt: '303' },
    root: '56:10',
    argv: ['sh'],
  };
  const r1 = await run(c, world([unpivoted]));
  assert.equal(r1.passed, false);
  assert.match(r1.message, /no pivot_root yet/);
  // A root of its own, but not the first process of a PID namespace of its own.
  const noPidNs = {
    pid: 61,
    ppid: 20,
    uid: 1000,
    nspid: [61, 15],
    ns: { ...BOX_NS, mnt: '303' },
    root: '85:1',
    argv: ['sh'],
  };
  const r2 = await run(c, world([noPidNs]));
  assert.equal(r2.passed, false);
  assert.match(r2.message, /not PID 1/);
  // Built inside the container, or on the lab host: both are containers of one's own.
  for (const nspid of [
    [62, 16, 1],
    [62, 1],
  ]) {
    const made = {
      pid: 62,
      ppid: 58,
      uid: 1000,
      nspid,
      ns: { ...BOX_NS, pid: '103', mnt: '304' },
      root: '85:1',
      argv: ['busybox', 'httpd'],
    };
    const r = await run(c, world([made]));
    assert.equal(r.passed, true, `${nspid}: ${r.message}`);
  }
  // Its root unreadable: not counted as another root.
  const unknown = {
    pid: 63,
    ppid: 58,
    uid: 1000,
    nspid: [63, 1],
    ns: { ...BOX_NS, pid: '104', mnt: '305' },
    argv: ['x'],
  };
  assert.equal((await run(c, world([unknown]))).passed, false);
});

test('no-capabilities: root inside with CapEff 0; root with capabilities, or not root, fails', async () => {
  const c = { kind: 'no-capabilities', command: '^sleep 3000$', where: 'container' };
  assert.equal((await run(c, world())).passed, false);
  const p = {
    pid: 70,
    ppid: 20,
    uid: 1000,
    nspid: [70, 20],
    uidMap: [[0, 1000, 1]] as [number, number, number][],
    ns: BOX_NS,
    argv: ['sleep', '3000'],
  };
  const full = await run(c, world([{ ...p, capEff: '000001ffffffffff' }]));
  assert.equal(full.passed, false);
  assert.match(full.message, /still holds capabilities/);
  const none = await run(c, world([{ ...p, capEff: '0000000000000000' }]));
  assert.equal(none.passed, true, none.message);
  // uid 5 inside (setpriv --reuid 5): no capabilities, but no root either.
  const notRoot = await run(
    c,
    world([{ ...p, uid: 1005, uidMap: [[0, 1000, 10]], capEff: '0000000000000000' }]),
  );
  assert.equal(notRoot.passed, false);
  assert.match(notRoot.message, /not as root/);
});

test("mapped-uid: the lab host's uid of the container's root; 0 gets its own message", async () => {
  const c = { kind: 'mapped-uid' };
  for (const right of ['1000', 'uid 1000', 'uid=1000', 'UID: 1000'])
    assert.equal((await run(c, world(), right)).passed, true, right);
  const inside = await run(c, world(), '0');
  assert.equal(inside.passed, false);
  assert.match(inside.message, /inside the container/);
  assert.equal((await run(c, world(), '1001')).passed, false);
  assert.equal((await run(c, world(), 'reader')).passed, false);
});
