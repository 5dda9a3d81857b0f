/**
 * The one way to run the real server (`node server/src/main.ts`) as a child process on a
 * free loopback port, for every test layer, the benchmark and scripts/record-labs.ts.
 *
 * It registers no test hooks (the benchmark and the scripts import it): a test file that
 * starts servers itself calls `stopServersAfterTests()` (tests/support/auto-stop.ts), and the
 * fixtures (tests/support/fixtures.ts) stop theirs in their own after().
 *
 * The lab API, the terminal client and the engine helpers are re-exported from here, so a
 * test imports what it needs to talk to the server from one place.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import getPort from 'get-port';
import { scaled } from './slowness.ts';

export * from './api.ts';
export * from './engine.ts';
export * from './terminal.ts';

export const ROOT = join(import.meta.dirname, '..', '..');

/** A free TCP port on 127.0.0.1 (get-port: it also keeps a port it gave out from being handed out again soon). */
export function freePort(): Promise<number> {
  return getPort({ host: '127.0.0.1' });
}

export interface StartOptions {
  /** Wait until /api/v1/health answers before resolving (default true). */
  waitForHealth?: boolean;
  /** How long start-up may take (default 30 s). */
  timeoutMs?: number;
  /** Also copy the server's output to this process's stderr (scripts; tests only keep it). */
  echo?: boolean;
}

export interface RunningServer {
  /** `http://127.0.0.1:<port>` */
  base: string;
  port: number;
  instance: string;
  /** Its data directory (CL_DATA_DIR: the session store). */
  dataDir: string;
  proc: ChildProcess;
  pid: number;
  /** Everything the server printed so far (its JSON log). */
  logs(): string;
  /** Signal it (SIGTERM: it removes its containers) and wait for its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The data directory a test server of `instance` gets by default (git-ignored test-results/). */
export function dataDirOf(instance: string): string {
  return join(ROOT, 'test-results', 'tmp', 'data', instance.replace(/[^A-Za-z0-9_.-]/g, '_'));
}

/** Servers started here that still run (stopServersAfterTests stops what a failed test left). */
const running = new Set<RunningServer>();

/** Stop every server started here that still runs; SIGKILL after 15 s. */
export async function stopStartedServers(): Promise<void> {
  await Promise.all(
    [...running].map(async (srv) => {
      const timer = setTimeout(() => srv.proc.kill('SIGKILL'), scaled(15_000));
      await srv.stop('SIGTERM');
      clearTimeout(timer);
    }),
  );
}

/**
 * Starts the server with `env` over this process's environment and the defaults below
 * (CL_INSTANCE: the label its containers carry, cleanup goes by it, default
 * `test-<pid>-<port>`; CL_DATA_DIR: its own session store, dataDirOf(instance); CL_SITE_DIR:
 * the built site to serve; LOG_LEVEL info; no drain grace; CL_ON_SIGTERM=end, so SIGTERM
 * removes what the server made; no warm pool). A PORT in `env` is used as given
 * (a restart on the port of the server it replaces), not retried elsewhere.
 */
export async function startServer(
  env: Record<string, string> = {},
  opts: StartOptions = {},
): Promise<RunningServer> {
  // WARNING: a free port can be taken by another process (other tests share this machine)
  // between the check and the server's listen: then try another one.
  // A restart test gives the port of the server it replaces: the page reconnects there.
  if (env.PORT) return startOnce(Number(env.PORT), env, opts);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(await freePort(), env, opts);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 3) throw err;
    }
  }
}

/** The server could not listen: its port was taken meanwhile. */
class PortTaken extends Error {}

async function startOnce(
  port: number,
  env: Record<string, string>,
  opts: StartOptions,
): Promise<RunningServer> {
  const instance = env.CL_INSTANCE ?? `test-${process.pid}-${port}`;
  // Each instance its own session store, so test servers never share one; a restart test
  // passes the same CL_INSTANCE (and so finds the same store).
  const dataDir = env.CL_DATA_DIR ?? dataDirOf(instance);
  let out = '';
  const proc = spawn(process.execPath, ['server/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      // No drain grace (CL_DRAIN_GRACE, issue 7) unless a caller asks for one.
      CL_DRAIN_GRACE: '0',
      // SIGTERM ends everything, so that stop() leaves nothing running; the restart tests
      // ask for CL_ON_SIGTERM=restart (issue 15).
      CL_ON_SIGTERM: 'end',
      // No warm pool unless a caller asks for one: a spare per lab (seven labs) for every
      // server a test starts is load the test does not look at.
      CL_POOL_SIZE: '0',
      ...env,
      CL_INSTANCE: instance,
      CL_DATA_DIR: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (d: Buffer) => {
    out += d;
    if (opts.echo) process.stderr.write(d);
  };
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const srv: RunningServer = {
    base: `http://127.0.0.1:${port}`,
    port,
    instance,
    dataDir,
    proc,
    pid: proc.pid ?? -1,
    logs: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
  running.add(srv);
  void exited.then(() => running.delete(srv));
  if (opts.waitForHealth === false) return srv;

  const timeoutMs = scaled(opts.timeoutMs ?? 30_000);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) {
      const message = `the server exited (${proc.exitCode}) while starting:\n${out}`;
      throw out.includes('EADDRINUSE') ? new PortTaken(message) : new Error(message);
    }
    try {
      // 503 is an answer too: a server that cannot serve labs still serves the site.
      const r = await fetch(`${srv.base}/api/v1/health`);
      if (r.status === 200 || r.status === 503) return srv;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await srv.stop('SIGKILL');
      throw new Error(`the server did not answer /api/v1/health within ${timeoutMs / 1000} s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
