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
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

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
const results: { name: string; ok: boolean; seconds: number }[] = [];
for (const step of chosen) {
  console.log(`\n=== ${step.name}: ${step.cmd.slice(step.cmd[0] === process.execPath ? 1 : 0).join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync(step.cmd[0]!, step.cmd.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  results.push({ name: step.name, ok: r.status === 0, seconds: (performance.now() - t0) / 1000 });
}

console.log('\n=== summary');
for (const r of results)
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(12)} ${r.seconds.toFixed(1)} s`);
const failed = results.filter((r) => !r.ok).length;
console.log(`steps: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
