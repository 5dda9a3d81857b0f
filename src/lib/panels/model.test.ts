/**
 * Unit tests of what the kernel-view panels compute, on snapshots shaped like real
 * answers of the inspection API (taken from a processes lab with `sleep 1000 &` running
 * in the container terminal).
 *   node --test src/lib/panels/model.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CgroupReading, ProcessInfo, ProcessSnapshot } from '../lab-api.ts';
import {
  cgroupEvents,
  clock,
  containerInit,
  cores,
  cpuGauge,
  eventText,
  insidePids,
  memoryGauge,
  mib,
  namespaceDiff,
  pidsGauge,
  processTree,
  sharedText,
  throttleText,
  usersText,
} from './model.ts';

const HOST_NS = {
  pid: '4026532181',
  mnt: '4026532178',
  uts: '4026532179',
  ipc: '4026532180',
  user: '4026531837',
  net: '4026532182',
  cgroup: '4026532251',
  time: '4026531834',
};
const BOX_NS = {
  pid: '4026532256',
  mnt: '4026532253',
  uts: '4026532254',
  ipc: '4026532255',
  user: '4026532252',
  net: '4026532182',
  cgroup: '4026532251',
  time: '4026531834',
};

function proc(pid: number, ppid: number, cmd: string, inside?: number, ns = HOST_NS): ProcessInfo {
  const nested = inside !== undefined;
  const namespaces = nested ? BOX_NS : ns;
  return {
    pid,
    ppid,
    nspid: nested ? [pid, inside] : [pid],
    uid: 1000,
    user: 'reader',
    uids: nested ? [1000, 0] : [1000],
    users: nested ? ['reader', 'root'] : ['reader'],
    cmd,
    namespaces,
    sharedWithHost: (Object.keys(HOST_NS) as (keyof typeof HOST_NS)[]).filter(
      (k) => namespaces[k] === HOST_NS[k],
    ),
    inContainer: nested,
  };
}

const snap: ProcessSnapshot = {
  takenAt: '2026-11-29T04:31:58.799Z',
  host: { namespaces: HOST_NS },
  processes: [
    proc(1, 0, '/bin/bash /usr/local/sbin/lab-init'),
    proc(
      12,
      1,
      'unshare -U -r -p -f -m -u -i --mount-proc --kill-child /usr/local/lib/containerlabs/box-start',
      undefined,
      {
        ...BOX_NS,
        pid: HOST_NS.pid,
      },
    ),
    proc(13, 12, 'busybox httpd -f -p 8080 -h /srv/www', 1),
    proc(19, 0, '/usr/bin/nsenter -t 13 -U -p -m -u -i --preserve-credentials /bin/bash -l'),
    proc(30, 19, '/bin/bash -l', 7),
    proc(36, 0, '/bin/bash -l'),
    proc(41, 30, 'sleep 1000', 9),
  ],
};

test('the process tree follows ppid, depth first, children by PID', () => {
  const rows = processTree(snap);
  assert.deepEqual(
    rows.map((r) => [r.proc.pid, r.depth]),
    [
      [1, 0],
      [12, 1],
      [13, 2],
      [19, 0],
      [30, 1],
      [41, 2],
      [36, 0],
    ],
  );
  assert.deepEqual(
    rows.filter((r) => r.containerInit).map((r) => r.proc.pid),
    [13],
    'only the app is the container’s PID 1',
  );
  assert.deepEqual(
    rows.filter((r) => r.parentOutside).map((r) => r.proc.pid),
    [1, 19, 36],
  );
});

test('a process whose parent is missing or in a loop is still listed', () => {
  const rows = processTree({
    ...snap,
    processes: [proc(5, 6, 'a'), proc(6, 5, 'b'), proc(7, 99, 'orphan')],
  });
  assert.deepEqual(rows.map((r) => r.proc.pid).sort(), [5, 6, 7]);
});

test('the container’s PID 1 is the outermost nested PID 1, not a PID 1 the reader made deeper', () => {
  const deeper: ProcessInfo = { ...proc(50, 30, 'unshare -p -f sh', 12), nspid: [50, 12, 1] };
  assert.equal(containerInit({ ...snap, processes: [deeper, ...snap.processes] })?.pid, 13);
  assert.equal(containerInit({ ...snap, processes: snap.processes.filter((p) => p.pid !== 13) }), undefined);
  assert.equal(insidePids(deeper), '12 → 1');
});

test('PIDs, users and shared namespaces in words', () => {
  const sleep = snap.processes.find((p) => p.pid === 41)!;
  assert.equal(insidePids(sleep), '9');
  assert.equal(insidePids(snap.processes[0]!), '');
  assert.equal(usersText(sleep), 'reader → root');
  assert.equal(sharedText(sleep), 'net, cgroup, time');
  assert.equal(sharedText(snap.processes[0]!), 'all');
  assert.equal(sharedText(snap.processes[1]!), 'pid, net, cgroup, time');
});

test('the namespace diff: net and cgroup shared, the rest separate', () => {
  const rows = namespaceDiff(snap)!;
  assert.deepEqual(
    rows.map((r) => `${r.kind}:${r.shared ? 'shared' : 'separate'}`),
    [
      'pid:separate',
      'mnt:separate',
      'uts:separate',
      'ipc:separate',
      'user:separate',
      'net:shared',
      'cgroup:shared',
      'time:shared',
    ],
  );
  assert.equal(rows[0]!.host, HOST_NS.pid);
  assert.equal(rows[0]!.container, BOX_NS.pid);
  assert.ok(rows.every((r) => r.isolates.length > 10));
  assert.equal(namespaceDiff({ ...snap, processes: [] }), undefined, 'no container, no diff');
  // A kernel before 5.6 has no time namespaces: no row for them rather than "separate".
  const noTime = (p: ProcessInfo): ProcessInfo => ({ ...p, namespaces: { ...p.namespaces, time: '' } });
  const old = namespaceDiff({
    ...snap,
    host: { namespaces: { ...HOST_NS, time: '' } },
    processes: snap.processes.map(noTime),
  })!;
  assert.deepEqual(
    old.map((r) => r.kind),
    ['pid', 'mnt', 'uts', 'ipc', 'user', 'net', 'cgroup'],
  );
});

function reading(
  at: Date,
  over: Partial<{ oom: number | null; refused: number | null }> = {},
): CgroupReading {
  return {
    takenAt: at.toISOString(),
    version: '1',
    memory: {
      current: 64 * 1024 * 1024,
      limit: 128 * 1024 * 1024,
      peak: 100 * 1024 * 1024,
      oomKills: over.oom ?? 0,
    },
    pids: { current: 7, limit: 100, refused: over.refused === undefined ? 0 : over.refused },
    cpu: {
      usageSeconds: 1,
      limitCores: 0.5,
      periods: 100,
      throttledPeriods: 10,
      throttledSeconds: 0.2,
      percent: 25,
    },
  };
}

test('OOM kills and refused forks become events between readings', () => {
  const t0 = new Date(2026, 10, 29, 12, 3, 40);
  const t1 = new Date(2026, 10, 29, 12, 3, 41);
  const first = reading(t0);
  assert.deepEqual(cgroupEvents(undefined, first), [], 'nothing before');
  const oom = cgroupEvents(first, reading(t1, { oom: 1 }));
  assert.deepEqual(oom, [{ kind: 'oom', count: 1, at: t1, seen: 'live' }]);
  assert.equal(eventText(oom[0]!), 'OOM kill at 12:03:41');

  const forks = cgroupEvents(first, reading(t1, { refused: 37 }));
  assert.equal(eventText(forks[0]!), '37 forks refused at the pids limit at 12:03:41');

  const later = new Date(2026, 10, 29, 12, 10, 0);
  const late = cgroupEvents(first, reading(later, { oom: 2 }));
  assert.equal(late[0]!.seen, 'late');
  assert.match(eventText(late[0]!), /^2 OOM kills, seen at 12:10:00 \(while this panel was closed\)$/);

  const before = cgroupEvents(undefined, reading(t1, { oom: 3 }));
  assert.equal(before[0]!.seen, 'before');
  assert.match(eventText(before[0]!), /before this panel was opened/);

  assert.deepEqual(
    cgroupEvents(first, reading(t1, { oom: null, refused: null })),
    [],
    'not reported: no event',
  );
});

test('meters: memory, pids and CPU against their limits, as text', () => {
  const r = reading(new Date());
  assert.deepEqual(memoryGauge(r), {
    value: 64 * 1024 * 1024,
    max: 128 * 1024 * 1024,
    text: '64 MiB of 128 MiB (50%)',
    fraction: 0.5,
  });
  assert.equal(pidsGauge(r)?.text, '7 of 100 tasks (7%)');
  assert.equal(cpuGauge(r)?.text, '0.25 cores of 0.5 cores (50% of the limit)');
  assert.equal(cpuGauge({ ...r, cpu: { ...r.cpu, percent: null } }), null, 'first reading: no CPU figure');
  assert.equal(memoryGauge({ ...r, memory: { ...r.memory, limit: null } })?.text, '64 MiB (no limit)');
  assert.equal(throttleText(undefined, r), 'Throttled in 10 of 100 periods since the start (10%).');
  const prev = { ...r, cpu: { ...r.cpu, periods: 90, throttledPeriods: 2 } };
  assert.equal(
    throttleText(prev, r),
    'Throttled in 8 of the last 10 periods; 10 of 100 periods since the start (10%).',
  );
});

test('formatting', () => {
  assert.equal(mib(134217728), '128 MiB');
  assert.equal(mib(2142208), '2.0 MiB');
  assert.equal(mib(12.34 * 1024 * 1024), '12.3 MiB');
  assert.equal(mib(512 * 1024), '512 KiB');
  assert.equal(cores(1), '1 core');
  assert.equal(cores(0.0097), '0.01 cores');
  assert.equal(clock(new Date(2026, 0, 1, 9, 5, 7)), '09:05:07');
});
