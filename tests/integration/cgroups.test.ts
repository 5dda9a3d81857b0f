/**
 * The `cgroups` lab against a real engine: the limits are visible, a memory hog is
 * OOM-killed and a fork bomb hits the pids limit, and the session survives both.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useLab } from '../support/fixtures.ts';

describe('cgroups lab (real engine)', () => {
  const lab = useLab('it-cgroups', 'cgroups', { terminals: ['host'] });

  test('the limits of the lab definition are visible in /sys/fs/cgroup', async () => {
    const host = lab.term('host');
    const v2 = (await host.exec('test -f /sys/fs/cgroup/memory.max && echo v2 || echo v1')).trim() === 'v2';
    const mem = v2 ? '/sys/fs/cgroup/memory.max' : '/sys/fs/cgroup/memory/memory.limit_in_bytes';
    const pids = v2 ? '/sys/fs/cgroup/pids.max' : '/sys/fs/cgroup/pids/pids.max';
    assert.equal((await host.exec(`cat ${mem}`)).trim(), String(128 * 1024 * 1024));
    assert.equal((await host.exec(`cat ${pids}`)).trim(), '100');
    assert.match(await host.exec('cgroup-info', 15_000), /128/);
  });

  test('a memory hog is OOM-killed and the shell lives on', async () => {
    const host = lab.term('host');
    assert.match(await host.exec('mem-hog 300', 60_000), /killed by SIGKILL/);
    assert.equal((await host.exec('echo alive-$((6*7))')).trim(), 'alive-42');
  });

  test('a fork bomb hits the pids limit and the shell lives on', async () => {
    const host = lab.term('host');
    const out = await host.exec('fork-bomb 3', 60_000);
    assert.match(out, /pids limit: 100/);
    assert.equal((await host.exec('echo alive-$((6*7))', 20_000)).trim(), 'alive-42');
  });
});
