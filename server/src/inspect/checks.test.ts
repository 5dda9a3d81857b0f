import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckDef } from '../../../labs/schema.ts';
import type { AppError } from '../errors.ts';
import { runCheck } from './checks.ts';
import { type CgroupSnapshot, parseCgroup, parseProcesses } from './snapshot.ts';
import { processScriptOutput } from './snapshot-fixture.ts';

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
const ctx = (c = cg()) => ({ processes: async () => procs, cgroup: async () => c });
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
  const tctx = { processes: async () => timeProcs, cgroup: async () => cg() };
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
