/**
 * Test support: start the real server (node server/src/main.ts) as a child process on a
 * free loopback port, and talk to it over HTTP and WebSocket like a browser would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import { WebSocket } from 'ws';
import { scaled } from './slowness.ts';

export const ROOT = join(import.meta.dirname, '..', '..');

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  srv.close();
  await once(srv, 'close');
  return port;
}

export interface RunningServer {
  base: string;
  port: number;
  proc: ChildProcess;
  logs: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const started = new Set<ChildProcess>();
// Safety net: a test that failed before stopping its server must not keep the test file's
// process alive (the child's pipes would, forever) or leave the server running. A root-level
// hook runs after every test of the file; SIGTERM lets the server remove its containers.
after(async () => {
  await Promise.all(
    [...started].map(async (p) => {
      if (p.exitCode !== null) return;
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), scaled(15_000));
      await once(p, 'exit');
      clearTimeout(timer);
    }),
  );
});

export async function startServer(env: Record<string, string> = {}): Promise<RunningServer> {
  const port = await freePort();
  let out = '';
  const proc = spawn(process.execPath, ['server/src/main.ts'], {
    cwd: ROOT,
    // No drain grace in tests (CL_DRAIN_GRACE, issue 7) unless a test asks for one.
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      CL_DRAIN_GRACE: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + scaled(20_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited early:\n${out}`);
    try {
      const r = await fetch(`${base}/api/v1/health`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not answer within ${scaled(20_000) / 1000} s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    port,
    proc,
    logs: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      const [code] = (await once(proc, 'exit')) as [number | null];
      return code;
    },
  };
}

export interface SessionInfo {
  id: string;
  token: string;
  lab: string;
  expiresAt: string;
  /** `ticket`: a first single-use ticket per terminal, in the answer to POST /sessions only. */
  terminals: { name: string; title: string; url: string; ticket?: string }[];
}

/** A fresh single-use ticket for one terminal's socket (POST …/terminals/:name/tickets). */
export async function terminalTicket(
  base: string,
  s: SessionInfo,
  name: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const r = await fetch(`${base}/api/v1/sessions/${s.id}/terminals/${name}/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.token}`, ...headers },
  });
  const body = (await r.json()) as { ticket?: string };
  if (r.status !== 201 || !body.ticket)
    throw new Error(`ticket for ${name}: ${r.status} ${JSON.stringify(body)}`);
  return body.ticket;
}

/** The WebSocket URL of a terminal with a fresh ticket (and a size). */
export async function terminalSocketUrl(
  base: string,
  s: SessionInfo,
  name: string,
  opts: { cols?: number; rows?: number; headers?: Record<string, string> } = {},
): Promise<string> {
  const t = s.terminals.find((x) => x.name === name);
  if (!t) throw new Error(`no terminal ${name}`);
  const ticket = await terminalTicket(base, s, name, opts.headers);
  return `${base.replace(/^http/, 'ws')}${t.url}?ticket=${ticket}&cols=${opts.cols ?? 160}&rows=${opts.rows ?? 50}`;
}

export async function createSession(
  base: string,
  lab: string,
  headers: Record<string, string> = {},
): Promise<SessionInfo> {
  const r = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ lab }),
  });
  const body = await r.json();
  if (r.status !== 201) throw new Error(`create ${lab}: ${r.status} ${JSON.stringify(body)}`);
  return body as SessionInfo;
}

export async function deleteSession(base: string, s: SessionInfo): Promise<number> {
  const r = await fetch(`${base}/api/v1/sessions/${s.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${s.token}` },
  });
  return r.status;
}

// CSI, OSC (ended by BEL or ST), charset and keypad-mode sequences.
// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are control characters
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;

/** Strip ANSI escape sequences and carriage returns from terminal output. */
export function plain(text: string): string {
  return text.replace(ANSI, '').replace(/\r/g, '');
}

/** A terminal WebSocket that collects output and can wait for text to appear. */
export class TermClient {
  readonly ws: WebSocket;
  output = '';
  controls: Record<string, unknown>[] = [];
  closeCode: number | null = null;
  #waiters: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) this.output += data.toString('utf8');
      else this.controls.push(JSON.parse(data.toString()));
      for (const w of this.#waiters.splice(0)) w();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Opens a terminal's socket with a fresh ticket; rejects if the server refuses it. */
  static async open(
    base: string,
    s: SessionInfo,
    name: string,
    opts: { cols?: number; rows?: number; headers?: Record<string, string> } = {},
  ): Promise<TermClient> {
    const url = await terminalSocketUrl(base, s, name, opts);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: opts.headers });
      const c = new TermClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Wait for the `attached` message (and the replay after it, if any). */
  async ready(timeoutMs = scaled(10_000)): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const attached = this.controls.find((c) => c.type === 'attached');
      if (attached && (!attached.replay || this.controls.some((c) => c.type === 'replayed'))) return attached;
      if (this.closeCode !== null) throw new Error(`socket closed (${this.closeCode}) before attached`);
      if (Date.now() > deadline) throw new Error('no attached message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  get text(): string {
    return plain(this.output);
  }

  send(text: string): void {
    this.ws.send(Buffer.from(text), { binary: true });
  }

  /** Type a command and wait until `until` matches the output that follows it. */
  async run(cmd: string, until: RegExp, timeoutMs = scaled(10_000)): Promise<string> {
    const start = this.output.length;
    this.send(`${cmd}\r`);
    return this.waitFor(until, timeoutMs, start);
  }

  /**
   * Run a shell command and return what it printed (without the echoed command line and
   * the prompt). The end is marked by arithmetic the shell has to do, so the typed text
   * itself can never match the marker.
   */
  async exec(cmd: string, timeoutMs = scaled(10_000)): Promise<string> {
    const n = Math.floor(Math.random() * 1e6);
    const start = this.output.length;
    this.send(`${cmd}; echo "@@$((${n}+1))@@"\r`);
    const text = await this.waitFor(new RegExp(`@@${n + 1}@@`), timeoutMs, start);
    const lines = text.split('\n');
    const end = lines.findIndex((l) => l.includes(`@@${n + 1}@@`));
    // The command is echoed once, or twice when typed before the prompt was drawn (the
    // tty echoes it, then readline redraws it): output starts after the last echo.
    const echoEnd = lines.slice(0, end).findLastIndex((l) => l.includes(`@@$((${n}+1))@@`));
    return lines.slice(echoEnd + 1, end).join('\n');
  }

  async waitFor(re: RegExp, timeoutMs = scaled(10_000), from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = plain(this.output.slice(from));
      if (re.test(text)) return text;
      if (this.closeCode !== null)
        throw new Error(`socket closed (${this.closeCode}) before ${re}; got:\n${text}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got:\n${text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    if (this.closeCode !== null) return Promise.resolve();
    const p = once(this.ws, 'close').then(() => {});
    this.ws.close();
    return p;
  }
}

/** Containers of the engine with our label for this server instance (via the Engine API). */
export async function labContainers(
  instance?: string,
): Promise<{ Id: string; Labels: Record<string, string> }[]> {
  const { default: Docker } = await import('dockerode');
  const docker = new Docker();
  const filters = {
    label: ['containerlabs.managed=true', ...(instance ? [`containerlabs.instance=${instance}`] : [])],
  };
  return (await docker.listContainers({ all: true, filters })) as {
    Id: string;
    Labels: Record<string, string>;
  }[];
}

/** Containers of one session (via the Engine API). */
export async function sessionContainers(
  sessionId: string,
): Promise<{ Id: string; Labels: Record<string, string> }[]> {
  const { default: Docker } = await import('dockerode');
  const filters = { label: ['containerlabs.managed=true', `containerlabs.session=${sessionId}`] };
  return (await new Docker().listContainers({ all: true, filters })) as {
    Id: string;
    Labels: Record<string, string>;
  }[];
}

/**
 * How a terminal socket went, as a short string for assertions: `http <status>` (refused
 * before the upgrade: the access check), `close <code> <error code>` (refused after it, with
 * the `error` message the server sent first), or `attached`.
 */
export function socketOutcome(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    let error = '';
    ws.once('unexpected-response', (_req, res) => {
      resolve(`http ${res.statusCode}`);
      ws.terminate();
    });
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) return;
      const msg = JSON.parse(data.toString()) as { type: string; code?: string };
      if (msg.type === 'attached') {
        resolve('attached');
        ws.close();
      } else if (msg.type === 'error') error = msg.code ?? '';
    });
    ws.once('close', (code) => resolve(`close ${code}${error ? ` ${error}` : ''}`));
    ws.once('error', (err) => {
      if (!String(err).includes('Unexpected server response')) reject(err);
    });
  });
}
