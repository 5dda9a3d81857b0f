/**
 * The two references our terminal path is compared with, each its own process:
 *   - the floor (bench/floor-server.ts): ws + node-pty, nothing else;
 *   - the peer: wetty 3.x from npm, installed on demand into bench/.peer/ (never a project
 *     dependency) and run with a local shell instead of its default login/ssh.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../tests/support/server.ts';
import { sleep } from './util.ts';

export const BENCH_DIR = join(import.meta.dirname, '..');
export const PEER_DIR = join(BENCH_DIR, '.peer');
const WETTY_MAIN = join(PEER_DIR, 'node_modules', 'wetty', 'build', 'main.js');

export interface Child {
  proc: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

function childHandle(proc: ChildProcess): Child {
  return {
    proc,
    pid: proc.pid ?? -1,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await once(proc, 'exit');
      clearTimeout(timer);
    },
  };
}

export async function startFloor(): Promise<Child & { url: string }> {
  const proc = spawn(process.execPath, [join(BENCH_DIR, 'floor-server.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (!proc.stdout) throw new Error('floor server: no stdout');
  const rl = createInterface({ input: proc.stdout });
  const line = await Promise.race([
    once(rl, 'line').then(([l]) => l as string),
    once(proc, 'exit').then(() => {
      throw new Error('floor server exited before listening');
    }),
  ]);
  const { port } = JSON.parse(line) as { port: number };
  return { ...childHandle(proc), url: `ws://127.0.0.1:${port}/` };
}

/** Install wetty@3 into bench/.peer the first time; a reason string when that fails. */
export async function ensureWetty(
  log: (s: string) => void,
): Promise<{ ok: true; version: string } | { ok: false; reason: string }> {
  if (!existsSync(WETTY_MAIN)) {
    log('installing the peer: npm install --prefix bench/.peer wetty@3 (first run only)');
    const npm = join(process.execPath, '..', process.platform === 'win32' ? 'npm.cmd' : 'npm');
    const proc = spawn(
      existsSync(npm) ? npm : 'npm',
      ['install', '--prefix', PEER_DIR, 'wetty@3', '--no-audit', '--no-fund'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        // node-pty (wetty's) builds against the running Node's headers when they ship with it.
        env: {
          ...process.env,
          ...(existsSync(join(process.execPath, '..', '..', 'include', 'node'))
            ? { npm_config_nodedir: join(process.execPath, '..', '..') }
            : {}),
        },
      },
    );
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
    });
    proc.stderr?.on('data', (d) => {
      out += d;
    });
    const [code] = (await once(proc, 'exit')) as [number | null];
    if (code !== 0 || !existsSync(WETTY_MAIN)) {
      return {
        ok: false,
        reason: `npm install wetty@3 failed (exit ${code}): ${out.trim().split('\n').slice(-3).join(' / ')}`,
      };
    }
  }
  try {
    const pty = join(PEER_DIR, 'node_modules', 'node-pty');
    const { createRequire } = await import('node:module');
    createRequire(join(PEER_DIR, 'package.json'))(pty);
  } catch (err) {
    return {
      ok: false,
      reason: `wetty's node-pty does not load (its native build was skipped?): ${(err as Error).message}`,
    };
  }
  if (process.getuid?.() !== 0) {
    return {
      ok: false,
      reason: 'wetty starts a local command only when it runs as root (otherwise it ssh-es to localhost)',
    };
  }
  const version = JSON.parse(readFileSync(join(PEER_DIR, 'node_modules', 'wetty', 'package.json'), 'utf8'))
    .version as string;
  return { ok: true, version };
}

/** wetty on 127.0.0.1, base /wetty, its command a plain interactive bash like the floor's. */
export async function startWetty(): Promise<Child & { origin: string; base: string }> {
  const port = await freePort();
  const base = '/wetty';
  const proc = spawn(
    process.execPath,
    [
      WETTY_MAIN,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--base',
      base,
      '--command',
      'bash --noprofile --norc -i',
      '--allow-iframe',
      '--log-level',
      'warn',
    ],
    {
      cwd: PEER_DIR,
      stdio: ['ignore', 'ignore', 'pipe'],
      // wetty's pty inherits its environment: the same clean one the floor's bash gets.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: PEER_DIR,
        TERM: 'xterm-256color',
        LANG: 'C.UTF-8',
        PS1: 'bench$ ',
        NODE_ENV: 'production',
      },
    },
  );
  let err = '';
  proc.stderr?.on('data', (d) => {
    err += d;
  });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`wetty exited (${proc.exitCode}): ${err.slice(-500)}`);
    try {
      const r = await fetch(`${origin}${base}`);
      if (r.status < 500) break;
    } catch {}
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`wetty did not answer within 20 s: ${err.slice(-500)}`);
    }
    await sleep(100);
  }
  return { ...childHandle(proc), origin, base };
}
