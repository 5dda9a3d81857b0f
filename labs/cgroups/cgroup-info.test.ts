// cgroup-info on fake cgroup v1 and v2 trees (this machine has only one of them).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';

const script = join(import.meta.dirname, 'image', 'usr', 'local', 'bin', 'cgroup-info');
const trees = JSON.parse(readFileSync(join(import.meta.dirname, 'cgroup-trees.json'), 'utf8')) as Record<
  'v1' | 'v2' | 'v2max',
  Record<string, string>
>;
const root = mkdtempSync(join(tmpdir(), 'cgroup-info-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** One of the fake trees of cgroup-trees.json, written out under a temp dir. */
function tree(name: 'v1' | 'v2' | 'v2max'): string {
  const dir = join(root, name);
  for (const [rel, text] of Object.entries(trees[name])) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

/** Its output; it must exit 0 and print nothing on stderr (a missing file reads "?"). */
function run(dir: string, ...args: string[]): string {
  const r = spawnSync('bash', [script, ...args], {
    env: { ...process.env, CGROUP_INFO_ROOT: dir },
    encoding: 'utf8',
  });
  assert.equal(r.stderr, '', 'cgroup-info wrote to stderr');
  assert.equal(r.status, 0);
  return r.stdout;
}

describe('cgroup-info', () => {
  it('reads cgroup v2', () => {
    const dir = tree('v2');
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
    const dir = tree('v1');
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
    const dir = tree('v2max');
    const out = run(dir);
    assert.match(out, /memory\n +limit +no limit/);
    assert.match(out, /cpu\n +limit +no limit/);
    // This tree has no cpu.stat: what it would say reads "?".
    assert.match(out, /used +\? ms/);
  });
});
