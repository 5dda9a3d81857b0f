/**
 * `npm test`: every check and test, in order, each step's output streamed. Needs what
 * `./run.sh test` sets up: a Docker engine with the lab images built, and Chromium
 * (CHROMIUM_PATH or /usr/bin/chromium). Nothing is skipped: a missing part fails its step.
 * One exception, reported as skipped with its reason, never as passed: without root the
 * engine-restart test (it starts a dockerd of its own) cannot run; CI runs as root.
 *
 *   npm test                 everything
 *   npm test -- unit site    only the named steps
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { failureDigest } from './failure-digest.ts';

interface Step {
  name: string;
  cmd: string[];
}

const nodeTest = (globs: string[], concurrency?: number) => [
  process.execPath,
  '--test',
  '--test-reporter=spec',
  ...(concurrency ? [`--test-concurrency=${concurrency}`] : []),
  ...globs,
];

const steps: Step[] = [
  { name: 'lint', cmd: ['npx', 'biome', 'check', '.'] },
  { name: 'typecheck', cmd: ['npx', 'astro', 'check', '--minimumSeverity', 'warning'] },
  { name: 'build', cmd: ['npm', 'run', 'build', '--silent'] },
  {
    name: 'unit',
    cmd: nodeTest([
      'server/src/**/*.test.ts',
      'labs/**/*.test.ts',
      'scripts/**/*.test.ts',
      'src/**/*.test.ts',
    ]),
  },
  { name: 'site', cmd: nodeTest(['tests/site/**/*.test.ts'], 1) },
  { name: 'integration', cmd: nodeTest(['tests/integration/**/*.test.ts'], 1) },
  // Self-hosting (issue 7): image + compose stack, access modes, metrics, drain, admin.
  { name: 'deploy', cmd: nodeTest(['tests/deploy/**/*.test.ts'], 1) },
  { name: 'browser', cmd: nodeTest(['tests/browser/**/*.test.ts'], 1) },
  { name: 'abuse', cmd: nodeTest(['tests/abuse/**/*.test.ts'], 1) },
];

const names = steps.map((s) => s.name);
let only: string[];
try {
  only = parseArgs({ allowPositionals: true }).positionals;
} catch (err) {
  console.error(`test-all: ${(err as Error).message}`);
  process.exit(2);
}
const unknown = only.filter((n) => !names.includes(n));
if (unknown.length) {
  // A typo would otherwise run nothing and report success.
  console.error(`test-all: no step ${unknown.join(', ')} (steps: ${names.join(', ')})`);
  process.exit(2);
}
const chosen = only.length ? steps.filter((s) => only.includes(s.name)) : steps;
const results: { name: string; ok: boolean; seconds: number; output: string }[] = [];
for (const step of chosen) {
  console.log(`\n=== ${step.name}: ${step.cmd.slice(step.cmd[0] === process.execPath ? 1 : 0).join(' ')}`);
  const t0 = performance.now();
  const { status, output } = await run(step.cmd);
  results.push({ name: step.name, ok: status === 0, seconds: (performance.now() - t0) / 1000, output });
}

console.log('\n=== summary');
for (const r of results)
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(12)} ${r.seconds.toFixed(1)} s`);
const failed = results.filter((r) => !r.ok).length;
console.log(`steps: ${results.length - failed} passed, ${failed} failed`);
// What failed and why, last: a log cut to its last lines still says it.
const digest = results.filter((r) => !r.ok).map((r) => failureDigest(r.name, r.output));
if (digest.length) console.log(`\n=== why\n${digest.join('\n')}`);
process.exit(failed ? 1 : 0);

/** Runs a step, its output streamed through and kept (the last 4 MB) for the digest. */
function run(cmd: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd[0]!, cmd.slice(1), {
      stdio: ['inherit', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let kept = '';
    const keep = (chunk: Buffer, to: NodeJS.WriteStream) => {
      to.write(chunk);
      kept += chunk.toString('utf8');
      if (kept.length > 8 << 20) kept = kept.slice(-(4 << 20));
    };
    child.stdout.on('data', (c: Buffer) => keep(c, process.stdout));
    child.stderr.on('data', (c: Buffer) => keep(c, process.stderr));
    child.on('error', (err) => {
      kept += `\n${err.message}\n`;
    });
    child.on('close', (status) => resolve({ status, output: kept }));
  });
}
