/**
 * Unit tests of scripts/failure-digest.ts, on what node's own spec reporter prints for a
 * small file of failing tests (run here for real, so a change of its format shows).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { failureDigest } from './failure-digest.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'failure-digest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function specOutput(source: string): string {
  const file = path.join(dir, `t${Math.random().toString(36).slice(2)}.test.mjs`);
  writeFileSync(file, source);
  // Not as a subtest of this run: a fresh runner, as `npm test` starts one.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', file], {
    encoding: 'utf8',
    env: { ...env, FORCE_COLOR: '0' },
  });
  assert.equal(r.status, 1, 'the fixture fails');
  return r.stdout;
}

test('names each failing test with where it is and the first lines of its error', () => {
  const out = specOutput(`
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
describe('the suite', () => {
  test('passes', () => {});
  test('the ping', () => { assert.match('3 packets transmitted, 2 received', /3 received/, 'ping said: 2 received'); });
  test('the terminal', () => {
    throw new Error('terminal lab/host never matched /x/; its text:\\n' + Array.from({ length: 30 }, (_, i) => 'line ' + i).join('\\n'));
  });
});
`);
  const d = failureDigest('browser', out);
  const lines = d.split('\n');
  assert.equal(lines[0], 'browser:');
  assert.match(
    d,
    /✖ the ping \(.*\.test\.mjs:6:\d+\)\n {4}AssertionError \[ERR_ASSERTION\]: ping said: 2 received\n/,
  );
  // A long message: its first lines and where it ended.
  assert.match(
    d,
    /✖ the terminal .*\n {4}Error: terminal lab\/host never matched \/x\/; its text:\n {4}line 0\n {4}…\n {4}line 27\n {4}line 28\n {4}line 29/,
  );
  assert.doesNotMatch(d, /passes|subtest failed|at TestContext|generatedMessage/);
  assert.ok(lines.length <= 24);
});

test('a step with no test report: its last lines', () => {
  const out = `${Array.from({ length: 20 }, (_, i) => `noise ${i}`).join('\n')}\nsrc/x.ts:3:1 lint/style: bad\n\n`;
  const d = failureDigest('lint', out);
  assert.deepEqual(d.split('\n').slice(-2), ['    noise 19', '    src/x.ts:3:1 lint/style: bad']);
  assert.equal(d.split('\n').length, 9);
});

test('many failures are cut to the line budget, saying how many lines were left', () => {
  const tests = Array.from(
    { length: 20 },
    (_, i) => `test('t${i}', () => { throw new Error('boom ${i}'); });`,
  );
  const d = failureDigest('unit', specOutput(`import { test } from 'node:test';\n${tests.join('\n')}`), 10);
  const lines = d.split('\n');
  assert.equal(lines.length, 11);
  assert.match(lines.at(-1)!, /… \(\d+ lines more\)/);
  assert.match(d, /✖ t0 .*\n {4}Error: boom 0/);
});
