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
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLabs } from '../labs/load.ts';
import {
  createSession,
  deleteSession,
  type SessionInfo,
  startServer,
  TermClient,
} from '../tests/support/server.ts';

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

/** One terminal of the session (the tests' terminal client), every output chunk kept with its time. */
class RecordedTerminal {
  readonly name: string;
  readonly events: [number, 'o', string][] = [];
  readonly #term: TermClient;
  /** Output since the last command was sent (prompt detection). */
  #recent = '';

  private constructor(name: string, term: TermClient, t0: number) {
    this.name = name;
    this.#term = term;
    term.onData((_bytes, text) => {
      if (!text) return;
      this.#recent += text;
      this.events.push([Number(((performance.now() - t0) / 1000).toFixed(6)), 'o', text]);
    });
  }

  /** Opens the terminal with the ticket that came with the session; resolves once attached. */
  static async open(server: string, s: SessionInfo, name: string, t0: number): Promise<RecordedTerminal> {
    // Nothing is kept twice: the events are the record.
    const term = await TermClient.open(server, s, name, {
      sessionTicket: true,
      collect: false,
      cols: COLS,
      rows: ROWS,
    });
    return new RecordedTerminal(name, term, t0);
  }

  /** Waits for a prompt at the end of the output, then for the output to settle. */
  async waitForPrompt(timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (PROMPT.test(this.#recent) && performance.now() - this.#term.lastOutputAt > 400) return;
      await sleep(50);
    }
    throw new Error(
      `${this.name}: no prompt after ${timeoutMs} ms; output so far:\n${this.#recent.slice(-400)}`,
    );
  }

  /** Types like a person (one key at a time), then Enter. */
  async type(command: string): Promise<void> {
    this.#recent = '';
    for (const ch of command) {
      this.#term.send(ch);
      await sleep(35 + Math.random() * 45);
    }
    await sleep(250);
    this.#term.send('\r');
  }

  close(): Promise<void> {
    return this.#term.close();
  }
}

async function recordLab(
  server: string,
  labId: string,
  titles: Map<string, string>,
  steps: Step[],
): Promise<void> {
  const session = await createSession(server, labId);
  const t0 = performance.now();
  const timestamp = Math.floor(Date.now() / 1000);
  const terms = new Map<string, RecordedTerminal>();
  try {
    for (const t of await Promise.all(
      session.terminals.map((t) => RecordedTerminal.open(server, session, t.name, t0)),
    ))
      terms.set(t.name, t);
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
    await Promise.all([...terms.values()].map((t) => t.close()));
    await deleteSession(server, session).catch(() => {});
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

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { server: { type: 'string' } },
    allowPositionals: true,
  });
  const labs = await loadLabs(join(process.cwd(), 'labs'));
  const wanted = positionals.length > 0 ? positionals : labs.map((l) => l.id);
  // Without --server, one of our own: its warnings and errors go to our stderr; it stops (and
  // removes its lab hosts) at the end.
  const own = values.server
    ? undefined
    : await startServer({ LOG_LEVEL: 'warn', CL_INSTANCE: `recorder-${process.pid}` }, { echo: true });
  const server = own?.base ?? values.server!.replace(/\/$/, '');
  if (own) console.log(`started a server at ${server}`);
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
    await own?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
