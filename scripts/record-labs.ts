/**
 * Records real lab sessions for the static site: `public/recordings/<lab>-<terminal>.cast`
 * (asciicast v2), played by `<Lab>` when there is no server or no container engine.
 *
 * It drives the real server the way a browser does: POST /api/v1/sessions, one WebSocket
 * per terminal, types a scripted set of commands (below) key by key, records every output
 * frame with its time, then DELETEs the session. All terminals of a lab share one clock
 * (same `timestamp` in every header), so the player can replay them in step.
 *
 *   node scripts/record-labs.ts                      # starts its own server on a free port
 *   node scripts/record-labs.ts --server http://127.0.0.1:4321 processes
 *
 * Needs a Docker engine and the lab images (`npm run images`). Never hand-edit a cast:
 * recordings must come from real runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLabs } from '../labs/load.ts';
import type { ServerMessage } from '../server/src/terminal/protocol.ts';

/** One command typed into one terminal. */
interface Step {
  terminal: string;
  command: string;
}

/** What each lab's recording shows; keep it close to what the lessons ask the reader to run. */
const SCRIPTS: Record<string, Step[]> = {
  processes: [
    { terminal: 'container', command: 'hostname' },
    { terminal: 'host', command: 'hostname' },
    { terminal: 'container', command: 'ps -ef' },
    { terminal: 'host', command: 'ps -ef' },
    { terminal: 'host', command: "grep NSpid /proc/$(pgrep -f '^busybox httpd')/status" },
    { terminal: 'container', command: 'grep NSpid /proc/1/status' },
  ],
  namespaces: [
    { terminal: 'container', command: 'hostname; id' },
    { terminal: 'host', command: 'hostname; id' },
    { terminal: 'container', command: 'ls -l /proc/$$/ns' },
    { terminal: 'host', command: 'ls -l /proc/$$/ns' },
    { terminal: 'container', command: 'cat /proc/self/uid_map' },
    { terminal: 'container', command: 'ls /mnt/inside; ipcs -m' },
    { terminal: 'host', command: 'ls /mnt/inside; ipcs -m' },
  ],
  cgroups: [
    { terminal: 'host', command: 'cgroup-info' },
    { terminal: 'host', command: 'cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null' },
    { terminal: 'container', command: 'cgroup-info' },
  ],
};

const COLS = 80;
const ROWS = 24;
const PROMPT = /[$#] $/;
const OUT_DIR = join(process.cwd(), 'public', 'recordings');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class RecordedTerminal {
  readonly name: string;
  readonly events: [number, 'o', string][] = [];
  #ws: WebSocket;
  #decoder = new TextDecoder();
  #t0: number;
  /** Text since the last command was sent (prompt detection). */
  #recent = '';
  #lastOutput = 0;

  constructor(name: string, url: string, t0: number) {
    this.name = name;
    this.#t0 = t0;
    this.#ws = new WebSocket(url);
    this.#ws.binaryType = 'arraybuffer';
  }

  /** Resolves on the server's `attached`; sends our size first. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "attached" within 20 s`)), 20_000);
      this.#ws.onopen = () => this.#ws.send(JSON.stringify({ type: 'resize', cols: COLS, rows: ROWS }));
      this.#ws.onerror = () => reject(new Error(`${this.name}: WebSocket error`));
      this.#ws.onclose = (ev) => reject(new Error(`${this.name}: closed ${ev.code} ${ev.reason}`));
      this.#ws.onmessage = (ev) => {
        if (typeof ev.data === 'string') {
          const msg = JSON.parse(ev.data) as ServerMessage;
          if (msg.type === 'attached') {
            clearTimeout(timer);
            resolve();
          }
          return;
        }
        const text = this.#decoder.decode(new Uint8Array(ev.data as ArrayBuffer), { stream: true });
        if (!text) return;
        this.#lastOutput = performance.now();
        this.#recent += text;
        this.events.push([Number(((performance.now() - this.#t0) / 1000).toFixed(6)), 'o', text]);
      };
    });
  }

  /** Waits for a prompt at the end of the output, then for the output to settle. */
  async waitForPrompt(timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (PROMPT.test(this.#recent) && performance.now() - this.#lastOutput > 400) return;
      await sleep(50);
    }
    throw new Error(
      `${this.name}: no prompt after ${timeoutMs} ms; output so far:\n${this.#recent.slice(-400)}`,
    );
  }

  /** Types like a person (one key at a time), then Enter. */
  async type(command: string): Promise<void> {
    this.#recent = '';
    const enc = new TextEncoder();
    for (const ch of command) {
      this.#ws.send(enc.encode(ch));
      await sleep(35 + Math.random() * 45);
    }
    await sleep(250);
    this.#ws.send(enc.encode('\r'));
  }

  close(): void {
    this.#ws.onclose = null;
    this.#ws.close(1000);
  }
}

async function recordLab(
  server: string,
  labId: string,
  titles: Map<string, string>,
  steps: Step[],
): Promise<void> {
  const res = await fetch(`${server}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ lab: labId }),
  });
  if (res.status !== 201)
    throw new Error(`${labId}: POST /api/v1/sessions answered ${res.status}: ${await res.text()}`);
  const session = (await res.json()) as {
    id: string;
    token: string;
    terminals: { name: string; url: string; ticket: string }[];
  };
  const wsBase = server.replace(/^http/, 'ws');
  const t0 = performance.now();
  const timestamp = Math.floor(Date.now() / 1000);
  const terms = new Map<string, RecordedTerminal>();
  try {
    for (const t of session.terminals) {
      terms.set(
        t.name,
        // The ticket that came with the session opens each terminal once.
        new RecordedTerminal(t.name, `${wsBase}${t.url}?ticket=${encodeURIComponent(t.ticket)}`, t0),
      );
    }
    await Promise.all([...terms.values()].map((t) => t.open()));
    await Promise.all([...terms.values()].map((t) => t.waitForPrompt()));
    for (const step of steps) {
      const term = terms.get(step.terminal);
      if (!term)
        throw new Error(
          `${labId}: the script uses terminal "${step.terminal}", the lab has ${[...terms.keys()].join(', ')}`,
        );
      await sleep(600);
      await term.type(step.command);
      await term.waitForPrompt();
      console.log(`  ${labId}/${step.terminal}$ ${step.command}`);
    }
    await sleep(800);
  } finally {
    for (const t of terms.values()) t.close();
    await fetch(`${server}/api/v1/sessions/${encodeURIComponent(session.id)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${session.token}` },
    }).catch(() => {});
  }
  await mkdir(OUT_DIR, { recursive: true });
  for (const t of terms.values()) {
    const header = {
      version: 2,
      width: COLS,
      height: ROWS,
      timestamp,
      idle_time_limit: 1.5,
      title: `${labId}: ${titles.get(t.name) ?? t.name}`,
      env: { TERM: 'xterm-256color', SHELL: '/bin/bash' },
    };
    const lines = [JSON.stringify(header), ...t.events.map((e) => JSON.stringify(e))];
    const file = join(OUT_DIR, `${labId}-${t.name}.cast`);
    await writeFile(file, `${lines.join('\n')}\n`);
    console.log(`  wrote ${file} (${t.events.length} events)`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['server/src/main.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      CL_INSTANCE: `recorder-${port}`,
      CL_DRAIN_GRACE: '0',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`${url}/api/v1/health`);
      if (res.ok) return { url, child };
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    await sleep(200);
  }
  child.kill('SIGTERM');
  throw new Error('the server did not answer /api/v1/health within 20 s');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { server: { type: 'string' } },
    allowPositionals: true,
  });
  const labs = await loadLabs(join(process.cwd(), 'labs'));
  const wanted = positionals.length > 0 ? positionals : labs.map((l) => l.id);
  let server = values.server?.replace(/\/$/, '');
  let child: ChildProcess | undefined;
  if (!server) {
    ({ url: server, child } = await startServer());
    console.log(`started a server at ${server}`);
  }
  try {
    const health = (await (await fetch(`${server}/api/v1/health`)).json()) as {
      labs?: { available?: boolean };
    };
    if (!health.labs?.available)
      throw new Error('the server cannot reach a container engine; recordings need live labs');
    for (const id of wanted) {
      const lab = labs.find((l) => l.id === id);
      const steps = SCRIPTS[id];
      if (!lab) throw new Error(`no lab "${id}" (known: ${labs.map((l) => l.id).join(', ')})`);
      if (!steps) {
        console.warn(`${id}: no script in scripts/record-labs.ts, skipped`);
        continue;
      }
      console.log(`recording ${id}`);
      await recordLab(server, id, new Map(lab.terminals.map((t) => [t.name, t.title])), steps);
    }
  } finally {
    if (child) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
