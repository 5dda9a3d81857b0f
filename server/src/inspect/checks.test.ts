import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckDef } from '../../../labs/schema.ts';
import type { AppError } from '../errors.ts';
import { runCheck } from './checks.ts';
import { type CgroupSnapshot, parseCgroup, parseProcesses } from './snapshot.ts';

const procs = parseProcesses(`SELF 99
PASSWD 1000 reader
/proc/1/status:PPid:\t0
/proc/1/status:Uid:\t1000
/proc/1/status:NSpid:\t1
/proc/13/status:PPid:\t12
/proc/13/status:Uid:\t1000
/proc/13/status:NSpid:\t13\t1
/proc/34/status:PPid:\t31
/proc/34/status:Uid:\t1000
/proc/34/status:NSpid:\t34\t10
NS /proc/1/ns/net net:[200]
NS /proc/1/ns/cgroup cgroup:[500]
NS /proc/1/ns/pid pid:[100]
NS /proc/13/ns/net net:[200]
NS /proc/13/ns/cgroup cgroup:[500]
NS /proc/13/ns/pid pid:[101]
CMD 1 lab-init
CMD 13 busybox httpd -f
CMD 34 sleep 1000
`);
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
