/**
 * Helpers of the self-hosting tests: Prometheus scrapes, the admin CLI, docker-compose.
 * The server itself is started with tests/support/server.ts (the real main.ts).
 */
import { spawnSync } from 'node:child_process';
import { after } from 'node:test';
import parsePrometheus, { type ParsedFamily } from 'parse-prometheus-text-format';
import { runScript, type ScriptResult } from '../support/run-script.ts';
import { ROOT } from '../support/server.ts';

export { ROOT };

/** GET /metrics, parsed; throws with the body on a non-200. */
export async function scrape(base: string, headers: Record<string, string> = {}): Promise<ParsedFamily[]> {
  const r = await fetch(`${base}/metrics`, { headers });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`/metrics: ${r.status} ${text}`);
  if (!(r.headers.get('content-type') ?? '').startsWith('text/plain')) {
    throw new Error(`/metrics content-type ${r.headers.get('content-type')}`);
  }
  return parsePrometheus(text);
}

/** Value of one sample whose labels include `labels` (0 when the series is absent). */
export function sample(families: ParsedFamily[], name: string, labels: Record<string, string> = {}): number {
  const fam = families.find((f) => f.name === name);
  if (!fam) throw new Error(`no metric ${name} in the scrape`);
  const s = fam.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s?.value === undefined ? 0 : Number(s.value);
}

/** Observations in an unlabelled histogram (its +Inf bucket). */
export function histogramCount(families: ParsedFamily[], name: string): number {
  const fam = families.find((f) => f.name === name);
  if (!fam) throw new Error(`no metric ${name} in the scrape`);
  if (fam.type !== 'HISTOGRAM') throw new Error(`${name} is a ${fam.type}`);
  return Number(fam.metrics[0]?.buckets?.['+Inf'] ?? 0);
}

/** Run `node scripts/admin.ts …` against a server (no admin token unless `env` has one). */
export function admin(args: string[], env: Record<string, string> = {}): Promise<ScriptResult> {
  return runScript('scripts/admin.ts', args, { CL_ADMIN_TOKEN: '', ...env });
}

/** docker-compose (v1, from apt) or `docker compose` (v2), whichever is installed. */
export function composeCommand(): string[] {
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0)
    return ['docker', 'compose'];
  throw new Error(
    'neither docker-compose nor the docker compose plugin is installed: run ./run.sh setup (installs docker-compose on Debian) or install Docker Compose',
  );
}

export function run(
  cmd: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): { code: number | null; out: string } {
  const r = spawnSync(cmd[0]!, cmd.slice(1), {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
  });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` until it holds (or fail after `timeoutMs` with `what`). */
export async function until(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** One compose project of a test file, under its own name and environment. */
export interface ComposeProject {
  readonly name: string;
  /** docker-compose or docker compose (set by the test: its absence fails the test, not the file). */
  compose: string[];
  /** The environment compose.yaml reads (CL_IMAGE, CL_PUBLISH, …). */
  env: Record<string, string>;
  /** Up (and so to be taken down after the tests). */
  up: boolean;
  /** `compose -p <name> …args` with the project's environment. */
  run(args: string[], opts?: { timeoutMs?: number }): { code: number | null; out: string };
}

/** A compose project for one describe block: whatever happened, it is taken down after its tests. */
export function useComposeProject(name: string, downFlags: string[] = []): ComposeProject {
  const p: ComposeProject = {
    name,
    compose: [],
    env: {},
    up: false,
    run: (args, opts) => run([...p.compose, '-p', name, ...args], { env: p.env, ...opts }),
  };
  after(() => {
    if (p.up) p.run(['down', ...downFlags, '-t', '30']);
  });
  return p;
}

/** `compose up -d --no-build`, then wait until Docker calls the server healthy; its container id. */
export async function composeUpHealthy(p: ComposeProject): Promise<string> {
  p.up = true;
  const started = p.run(['up', '-d', '--no-build']);
  if (started.code !== 0) throw new Error(`compose up failed:\n${started.out}`);
  const server = p.run(['ps', '-q', 'server']).out.trim();
  if (!/^[0-9a-f]{12,64}$/.test(server)) throw new Error(`no server container: ${server}`);
  await until(
    'the server container to be healthy',
    () => {
      const health = run(['docker', 'inspect', '-f', '{{.State.Health.Status}}', server]).out.trim();
      if (health === 'unhealthy') throw new Error(`unhealthy:\n${run(['docker', 'logs', server]).out}`);
      return health === 'healthy';
    },
    90_000,
  );
  return server;
}

/**
 * A /28 for a test's compose network, with the matching CL_TRUST_PROXY (its first
 * address, the gateway), so stacks of tests run at the same time do not claim the same
 * addresses (compose.yaml's default network has a fixed subnet).
 */
export function testNetwork(): { CL_SUBNET: string; CL_TRUST_PROXY: string } {
  const a = 160 + Math.floor(Math.random() * 80);
  const b = 16 * Math.floor(Math.random() * 16);
  return { CL_SUBNET: `172.31.${a}.${b}/28`, CL_TRUST_PROXY: `172.31.${a}.${b + 1}` };
}
