import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCgroup, parseProcesses } from './snapshot.ts';

// Output of the process script in a processes lab host (trimmed), as read on a real run.
const PROCS = `SELF 40
PASSWD 0 root
PASSWD 1000 reader
/proc/1/status:PPid:\t0
/proc/1/status:Uid:\t1000\t1000\t1000\t1000
/proc/1/status:NSpid:\t1
/proc/12/status:PPid:\t1
/proc/12/status:Uid:\t1000\t1000\t1000\t1000
/proc/12/status:NSpid:\t12
/proc/13/status:PPid:\t12
/proc/13/status:Uid:\t1000\t1000\t1000\t1000
/proc/13/status:NSpid:\t13\t1
/proc/40/status:PPid:\t0
/proc/40/status:Uid:\t1000\t1000\t1000\t1000
/proc/40/status:NSpid:\t40
/proc/41/status:PPid:\t40
/proc/41/status:Uid:\t1000\t1000\t1000\t1000
/proc/41/status:NSpid:\t41
/proc/1/uid_map:         0          0 4294967295
/proc/12/uid_map:         0       1000          1
/proc/13/uid_map:         0       1000          1
NS /proc/1/ns/pid pid:[100]
NS /proc/1/ns/net net:[200]
NS /proc/1/ns/mnt mnt:[300]
NS /proc/1/ns/user user:[400]
NS /proc/1/ns/pid_for_children pid:[100]
NS /proc/12/ns/pid pid:[100]
NS /proc/12/ns/net net:[200]
NS /proc/12/ns/mnt mnt:[301]
NS /proc/12/ns/user user:[401]
NS /proc/13/ns/pid pid:[101]
NS /proc/13/ns/net net:[200]
NS /proc/13/ns/mnt mnt:[301]
NS /proc/13/ns/user user:[401]
CMD 1 /bin/bash /usr/local/sbin/lab-init
CMD 12 unshare -U -r -p -f -m -u -i --mount-proc --kill-child /usr/local/lib/containerlabs/box-start
CMD 13 busybox httpd -f -p 8080 -h /srv/www
CMD 40 /bin/bash -c script
CMD 41 grep -H . /proc/1/uid_map
`;

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
