// cgroup-info on fake cgroup v1 and v2 trees (this machine has only one of them).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';

const script = join(import.meta.dirname, 'image', 'usr', 'local', 'bin', 'cgroup-info');
const root = mkdtempSync(join(tmpdir(), 'cgroup-info-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

const run = (dir: string, ...args: string[]) =>
  execFileSync('bash', [script, ...args], {
    env: { ...process.env, CGROUP_INFO_ROOT: dir },
    encoding: 'utf8',
  });

describe('cgroup-info', () => {
  it('reads cgroup v2', () => {
    const dir = tree('v2', {
      'cgroup.controllers': 'cpu memory pids\n',
      'memory.max': `${128 * 1024 * 1024}\n`,
      'memory.current': `${3 * 1024 * 1024}\n`,
      'memory.peak': `${128 * 1024 * 1024}\n`,
      'memory.swap.max': '0\n',
      'memory.events': 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n',
      'cpu.max': '50000 100000\n',
      'cpu.stat':
        'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 50\nnr_throttled 40\nthrottled_usec 4700000\n',
      'pids.max': '100\n',
      'pids.current': '7\n',
      'pids.events': 'max 51\n',
    });
    const out = run(dir, '--files');
    assert.match(out, /cgroup v2/);
    assert.match(out, /limit +128\.0 MiB/);
    assert.match(out, /in use +3\.0 MiB/);
    assert.match(out, /OOM kills +1/);
    assert.match(out, /50000us of CPU time every 100000us = 50% of one CPU/);
    assert.match(out, /used +2500 ms/);
    assert.match(out, /throttled +40 times, 4700 ms/);
    assert.match(out, /limit +100\n/);
    assert.match(out, /refused +51 forks/);
    assert.match(out, /<- .*memory\.max/);
  });

  it('reads cgroup v1', () => {
    const dir = tree('v1', {
      'memory/memory.limit_in_bytes': `${128 * 1024 * 1024}\n`,
      'memory/memory.usage_in_bytes': `${5 * 1024 * 1024}\n`,
      'memory/memory.max_usage_in_bytes': `${6 * 1024 * 1024}\n`,
      'memory/memory.memsw.limit_in_bytes': `${128 * 1024 * 1024}\n`,
      'memory/memory.failcnt': '0\n',
      'memory/memory.memsw.failcnt': '9\n',
      'memory/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
      'cpu,cpuacct/cpu.cfs_quota_us': '25000\n',
      'cpu,cpuacct/cpu.cfs_period_us': '100000\n',
      'cpu,cpuacct/cpu.stat': 'nr_periods 3\nnr_throttled 2\nthrottled_time 83000000\n',
      'cpu,cpuacct/cpuacct.usage': '75000000\n',
      'pids/pids.max': '100\n',
      'pids/pids.current': '6\n',
      'pids/pids.events': 'max 3\n',
    });
    const out = run(dir);
    assert.match(out, /cgroup v1/);
    assert.match(out, /limit +128\.0 MiB/);
    assert.match(out, /mem\+swap +128\.0 MiB/);
    assert.match(out, /OOM kills +2/);
    assert.match(out, /= 25% of one CPU/);
    assert.match(out, /used +75 ms/);
    assert.match(out, /throttled +2 times, 83 ms/);
    assert.match(out, /in use +6\n/);
    assert.match(out, /refused +3 forks/);
  });

  it('says "no limit" for unlimited values', () => {
    const dir = tree('v2max', {
      'cgroup.controllers': '',
      'memory.max': 'max\n',
      'cpu.max': 'max 100000\n',
      'pids.max': 'max\n',
    });
    const out = run(dir);
    assert.match(out, /memory\n +limit +no limit/);
    assert.match(out, /cpu\n +limit +no limit/);
  });
});
