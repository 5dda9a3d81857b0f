/**
 * The one terminal client of the tests, the benchmark and the scripts: the browser's own
 * TerminalClient (src/lib/terminal-client.ts: the protocol, a ticket per (re)connect, the
 * input queue, flow control, what each close code means) on the `ws` package instead of
 * the browser's WebSocket, with what they need on top of it:
 * - the output as text (`output`, `text`), `waitFor` a pattern, `run` a command and `exec`
 *   one with an end marker only the shell can print;
 * - every control message seen (`controls`, pongs and `replayed` included), the close code,
 *   an HTTP refusal of the upgrade, and when each step of the socket happened (`times`);
 * - `onData` for callers that count bytes themselves (with `collect: false` nothing is kept);
 * - `pauseReading()`: stop reading the TCP socket, as a client that hangs does (the floods);
 * - `raw`: the `ws` socket itself, only for abuse tests that send malformed frames on purpose.
 */
import { WebSocket } from 'ws';
import { type EndReason, TerminalClient, TerminalUrlRefused } from '../../src/lib/terminal-client.ts';
import { type SessionInfo, type SocketUrlOptions, TicketRefused, terminalSocketUrl } from './api.ts';
import { scaled } from './slowness.ts';

// CSI, OSC (ended by BEL or ST), charset and keypad-mode sequences.
// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are control characters
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;

/** Strip ANSI escape sequences and carriage returns from terminal output. */
export function plain(text: string): string {
  return text.replace(ANSI, '').replace(/\r/g, '');
}

export interface TermOptions extends SocketUrlOptions {
  /** Names the terminal in error messages (default: the terminal's name, or `socket`). */
  label?: string;
  /** Keep the output as text in `output` (default true); off for floods counted with onData. */
  collect?: boolean;
  /** Reconnect after a drop, as a page does (default false: a test wants to see the close). */
  reconnect?: boolean;
  /** How long opening may take, up to `attached` (default 20 s). */
  timeoutMs?: number;
}

/** When each step of the first socket happened (performance.now(); 0: not yet). */
export interface SocketTimes {
  open: number;
  firstControl: number;
  attached: number;
  firstByte: number;
}

type Control = Record<string, unknown>;

/** The `ws` WebSocket in the browser shape TerminalClient uses; `watch` sees each socket made. */
function socketClass(
  headers: Record<string, string> | undefined,
  watch: (ws: WebSocket) => void,
): typeof globalThis.WebSocket {
  class Socket extends WebSocket {
    constructor(url: string) {
      // One message per task, as a browser dispatches them: code that resumes after one
      // message (open() after `attached`, then onData) cannot miss the next one, even when
      // both came in one TCP segment.
      super(url, { headers, perMessageDeflate: false, allowSynchronousEvents: false });
      watch(this);
    }
  }
  return Socket as unknown as typeof globalThis.WebSocket;
}

export class TermClient {
  readonly label: string;
  /** The browser's client underneath (status, and everything the page would call). */
  readonly client: TerminalClient;
  /** All output so far, decoded (UTF-8); empty with `collect: false`. */
  output = '';
  /** Output bytes received so far. */
  bytes = 0;
  /** performance.now() of the last output. */
  lastOutputAt = 0;
  /** Every control message the server sent, parsed, in order. */
  controls: Control[] = [];
  /** Close code of the last socket; null while one is open (or none was ever opened). */
  closeCode: number | null = null;
  /** Set when the server refused the upgrade with an HTTP status instead. */
  httpStatus: number | null = null;
  /** Why the client stopped for good (null while it runs). */
  endReason: EndReason | null = null;
  readonly times: SocketTimes = { open: 0, firstControl: 0, attached: 0, firstByte: 0 };
  #raw: WebSocket | null = null;
  #size: { cols: number; rows: number };
  readonly #collect: boolean;
  readonly #decoder = new TextDecoder();
  readonly #subs = new Set<(bytes: number, text: string) => void>();
  #waiters: (() => void)[] = [];
  #urlError: Error | null = null;

  private constructor(url: string | (() => Promise<string>), opts: TermOptions) {
    this.label = opts.label ?? 'socket';
    this.#collect = opts.collect ?? true;
    this.#size = { cols: opts.cols ?? 160, rows: opts.rows ?? 50 };
    this.client = new TerminalClient({
      url: typeof url === 'string' ? url : () => this.#nextUrl(url),
      WebSocket: socketClass(opts.headers, (ws) => this.#watch(ws)),
      size: () => this.#size,
      sink: {
        write: (data, done) => {
          this.#output(data);
          done();
        },
        // The replay is appended to what came before: tests read from offsets.
        reset: () => {},
      },
      onStatus: () => this.#wake(),
      onEnd: (reason) => {
        this.endReason = reason;
        this.#wake();
      },
      // No keep-alive pings: a test's socket carries only what the test sends.
      pingMs: 0,
      ...(opts.reconnect ? {} : { backoff: { initialMs: 0, maxMs: 0, maxAttempts: 0 } }),
    });
  }

  /** Opens a terminal of a session with a ticket; resolves once attached, rejects if refused. */
  static async open(base: string, s: SessionInfo, name: string, opts: TermOptions = {}): Promise<TermClient> {
    if (!s.terminals.some((t) => t.name === name)) throw new Error(`no terminal ${name}`);
    const c = new TermClient(() => terminalSocketUrl(base, s, name, opts), { label: name, ...opts });
    await c.#start(opts.timeoutMs);
    return c;
  }

  /** Opens a socket at a fixed URL (the benchmark's floor, hand-made refusals); resolves once attached. */
  static async connect(url: string, opts: TermOptions = {}): Promise<TermClient> {
    const c = new TermClient(url, opts);
    await c.#start(opts.timeoutMs);
    return c;
  }

  /**
   * How a socket at `url` went, as a short string for assertions: `http <status>` (refused
   * before the upgrade), `close <code> <error code>` (refused after it, with the `error`
   * message the server sent first), or `attached`.
   */
  static async outcome(url: string, headers: Record<string, string> = {}): Promise<string> {
    const c = new TermClient(url, { headers });
    try {
      await c.#start();
      return 'attached';
    } catch {
      if (c.httpStatus !== null) return `http ${c.httpStatus}`;
      const error = c.controls.findLast((m) => m.type === 'error')?.code;
      return `close ${c.closeCode}${error ? ` ${error}` : ''}`;
    } finally {
      await c.close();
    }
  }

  /** The `ws` socket (escape hatch: malformed frames, bufferedAmount). */
  get raw(): WebSocket {
    if (!this.#raw) throw new Error(`${this.label}: no socket`);
    return this.#raw;
  }

  get text(): string {
    return plain(this.output);
  }

  /** Keystrokes or text, as binary frames (queued while not attached, like the page's). */
  send(input: string | Uint8Array): void {
    this.client.send(input);
  }

  resize(cols: number, rows: number): void {
    this.#size = { cols, rows };
    this.client.resize(cols, rows);
  }

  /** Calls `cb` with each output chunk (its byte length and its text); returns the unsubscribe. */
  onData(cb: (bytes: number, text: string) => void): () => void {
    this.#subs.add(cb);
    return () => this.#subs.delete(cb);
  }

  /** Stop reading the socket (the kernel's buffers fill, then the server's), until resumed. */
  pauseReading(): void {
    this.#raw?.pause();
  }

  resumeReading(): void {
    this.#raw?.resume();
  }

  /** Wait for the `attached` message (and the replay after it, if any). */
  async ready(timeoutMs = 10_000): Promise<Control> {
    let attached: Control | undefined;
    await this.#until(
      () => {
        attached = this.controls.find((c) => c.type === 'attached');
        return !!attached && (!attached.replay || this.controls.some((c) => c.type === 'replayed'));
      },
      timeoutMs,
      'attached',
    );
    return attached!;
  }

  /** Type a command and wait until `until` matches the output that follows it. */
  async run(cmd: string, until: RegExp, timeoutMs = 10_000): Promise<string> {
    const start = this.output.length;
    this.send(`${cmd}\r`);
    return this.waitFor(until, timeoutMs, start);
  }

  /**
   * Run a shell command and return what it printed (without the echoed command line and
   * the prompt). The end is marked by arithmetic the shell has to do, so the typed text
   * itself can never match the marker.
   */
  async exec(cmd: string, timeoutMs = 10_000): Promise<string> {
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

  /** Wait for a control message at index `from` or later that `match` accepts; that message. */
  async control(match: (msg: Control) => boolean, timeoutMs = 10_000, from = 0): Promise<Control> {
    let found: Control | undefined;
    await this.#until(
      () => {
        found = this.controls.slice(from).find(match);
        return found !== undefined;
      },
      timeoutMs,
      'a control message',
      () => `; got: ${JSON.stringify(this.controls.slice(from))}`,
      true,
    );
    return found!;
  }

  /** Wait until `re` matches the output from offset `from` on (ANSI stripped); that text. */
  async waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    let text = '';
    await this.#until(
      () => {
        text = plain(this.output.slice(from));
        return re.test(text);
      },
      timeoutMs,
      `${re}`,
      () => `; got:\n${text}`,
    );
    return text;
  }

  /** Wait until the server has closed the socket; its close code. */
  async closed(timeoutMs = 10_000): Promise<number> {
    await this.#until(() => this.closeCode !== null, timeoutMs, 'the close', undefined, true);
    return this.closeCode!;
  }

  /** Close for good; resolves once the socket is closed. */
  async close(): Promise<void> {
    const ws = this.#raw;
    this.client.close();
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      // A socket that is not read (pauseReading) never sees the server's close frame.
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 3000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async #start(timeoutMs = 20_000): Promise<void> {
    this.client.connect();
    try {
      await this.#until(() => this.client.status === 'attached', timeoutMs, 'attached');
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async #nextUrl(provider: () => Promise<string>): Promise<string> {
    try {
      return await provider();
    } catch (err) {
      this.#urlError = err as Error;
      // No ticket means no socket: end, as the page does when its session is gone.
      if (err instanceof TicketRefused)
        throw new TerminalUrlRefused(err.status === 401 ? 'bad-token' : 'session-ended', err.message);
      throw err;
    }
  }

  #watch(ws: WebSocket): void {
    this.#raw = ws;
    this.closeCode = null;
    // Every failure also ends in a close event, which is what counts.
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      this.httpStatus = res.statusCode ?? 0;
      ws.terminate();
    });
    ws.on('open', () => {
      this.times.open ||= performance.now();
    });
    // Added before TerminalClient's own handlers, so a message is recorded before it acts on it.
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return; // output comes through the sink
      const now = performance.now();
      this.times.firstControl ||= now;
      let msg: Control;
      try {
        msg = JSON.parse(data.toString()) as Control;
      } catch {
        return;
      }
      if (msg.type === 'attached') this.times.attached ||= now;
      this.controls.push(msg);
      this.#wake();
    });
    ws.on('close', (code: number) => {
      if (this.#raw === ws) this.closeCode = code;
      this.#wake();
    });
  }

  #output(data: Uint8Array): void {
    const now = performance.now();
    this.times.firstByte ||= now;
    this.lastOutputAt = now;
    this.bytes += data.byteLength;
    if (this.#collect || this.#subs.size > 0) {
      const text = this.#decoder.decode(data, { stream: true });
      for (const s of this.#subs) s(data.byteLength, text);
      if (this.#collect) this.output += text;
    }
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves once `cond()` holds; throws on timeout, or when the socket ends first (unless `orEnd`). */
  async #until(
    cond: () => boolean,
    timeoutMs: number,
    what: string,
    detail: () => string = () => '',
    orEnd = false,
  ): Promise<void> {
    // Every wait stretches with the engine under test (CL_TEST_SLOWNESS, tests/support/slowness.ts).
    const deadline = Date.now() + scaled(timeoutMs);
    for (;;) {
      const t0 = performance.now();
      if (cond()) return;
      // WARNING: a check may scan all the output so far (waitFor); checking again on every
      // message of a flood would cost O(n²) and starve the reading. Wait at least as long
      // as this check took before the next one.
      const cost = performance.now() - t0;
      if (!orEnd && this.endReason !== null)
        throw new Error(`${this.label}: ${this.#why()} before ${what}${detail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: timed out waiting for ${what}${detail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          if (cost < 1) resolve();
          else setTimeout(resolve, Math.min(cost, left));
        });
      });
    }
  }

  /** Why the client ended, in words (for failure messages). */
  #why(): string {
    if (this.httpStatus !== null) return `refused with HTTP ${this.httpStatus}`;
    if (this.#urlError) return this.#urlError.message;
    const error = this.controls.findLast((m) => m.type === 'error');
    return `socket closed (${this.closeCode}${error ? ` ${error.code}: ${error.message}` : ''}, ${this.endReason})`;
  }
}

/** TermClient.outcome: how a socket at `url` went (`attached`, `close <code> <error>`, `http <status>`). */
export function socketOutcome(url: string, headers: Record<string, string> = {}): Promise<string> {
  return TermClient.outcome(url, headers);
}
