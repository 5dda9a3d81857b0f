/**
 * Browser side of the terminal protocol (`server/src/terminal/protocol.ts`): one
 * TerminalClient owns one WebSocket to one terminal of a session, and reopens it after a
 * network blip. It knows nothing about xterm.js: output goes to a {@link TerminalSink},
 * so the flow control and reconnect logic can be tested with a fake socket.
 */
import {
  type ClientMessage,
  CloseCode,
  HIGH_WATER,
  LOW_WATER,
  MAX_FRAME_BYTES,
  type ServerMessage,
} from '../../server/src/terminal/protocol.ts';

/** Where the output goes (an xterm.js Terminal in the browser). */
export interface TerminalSink {
  /** Write output; call `done` once it is consumed (xterm's write callback). */
  write(data: Uint8Array, done: () => void): void;
  /** Clear screen and scrollback: the server is about to replay recent output. */
  reset(): void;
}

export type TerminalStatus = 'connecting' | 'attached' | 'reconnecting' | 'ended';

/** Why a terminal stopped for good (the client will not reconnect by itself). */
export type EndReason =
  | 'closed' // we closed it (Stop, Reset, page leave)
  | 'session-ended' // 4000: stopped, expired or reaped
  | 'bad-token' // 4001
  | 'not-found' // 4004
  | 'forbidden-origin' // 4003
  | 'shell-exited' // 4010: connect() again for a new shell
  | 'replaced' // 4011: the terminal was opened in another tab
  | 'server-shutdown' // 4012
  | 'policy' // 1008: too many malformed or control messages (reconnecting would repeat it)
  | 'gave-up'; // too many failed reconnects

/**
 * Thrown by a URL provider when the terminal cannot be opened again (the session is gone,
 * the token no longer works): the client ends with `reason` instead of retrying.
 */
export class TerminalUrlRefused extends Error {
  readonly reason: EndReason;
  constructor(reason: EndReason, message: string) {
    super(message);
    this.name = 'TerminalUrlRefused';
    this.reason = reason;
  }
}

export interface TerminalClientOptions {
  /**
   * The WebSocket URL, asked before every (re)connect: the server's terminal tickets are
   * good for one socket, so a provider fetches a fresh one each time. A provider that
   * fails with TerminalUrlRefused ends the client; any other failure is retried.
   */
  url: string | (() => Promise<string>);
  sink: TerminalSink;
  /** Current size, sent on every (re)open. */
  size(): { cols: number; rows: number };
  /** `restarting`: the server said it is restarting (4013); the reconnects wait for it. */
  onStatus?(status: TerminalStatus, attempt: number, info: { restarting: boolean }): void;
  /** Control messages other than attached/replayed/pong (exit, expiring, notice, error). */
  onMessage?(msg: ServerMessage): void;
  /**
   * Called once per end; the client stays usable: connect() opens a fresh socket.
   * `message`: the server's own words, when it gave any (its last `error` message on the
   * socket, or the refusal of a ticket).
   */
  onEnd?(reason: EndReason, code: number, message?: string): void;
  /** Injectable for tests. */
  WebSocket?: typeof WebSocket;
  /** Reconnect backoff; defaults: 300 ms doubling to 8 s, 12 attempts (about a minute). */
  backoff?: { initialMs: number; maxMs: number; maxAttempts: number };
  /** Keep-alive ping interval (ms); 0 disables. Default 25 s. */
  pingMs?: number;
  /**
   * After the server said it is restarting (4013), reconnects go on (with the backoff) for
   * this long, however many attempts that takes: an upgrade may take a while. Default 10 min.
   */
  restartBudgetMs?: number;
}

/**
 * What a terminal pane talks to: the lab server's WebSocket (TerminalClient, below) or a
 * serial port of the in-browser VM (vm/vm-terminal.ts). The pane never knows which.
 */
export interface TerminalConnection {
  /** Open (again); safe after an end. */
  connect(): void;
  send(input: string | Uint8Array): void;
  resize(cols: number, rows: number): void;
  /** Close for good (Stop, Reset, page leave). */
  close(): void;
  /** Skip a reconnect's wait. */
  retryNow(): void;
  /** Test hook: lose the connection as a network failure would. */
  drop(): void;
}

/** What a pane gives any connection: where output goes, its size, what to tell it. */
export type ConnectionOptions = Pick<
  TerminalClientOptions,
  'sink' | 'size' | 'onStatus' | 'onMessage' | 'onEnd'
>;

/** Makes the connection of one terminal (the session decides which kind). */
export type TerminalConnector = (opts: ConnectionOptions) => TerminalConnection;

/** Close codes after which reconnecting cannot help. */
const FINAL: Record<number, EndReason> = {
  [CloseCode.sessionEnded]: 'session-ended',
  [CloseCode.badToken]: 'bad-token',
  [CloseCode.notFound]: 'not-found',
  [CloseCode.forbiddenOrigin]: 'forbidden-origin',
  [CloseCode.shellExited]: 'shell-exited',
  [CloseCode.replaced]: 'replaced',
  [CloseCode.serverShutdown]: 'server-shutdown',
  [CloseCode.policy]: 'policy',
};

/** Code we close with when a test simulates a network blip (not one of the server's). */
export const TEST_DROP_CODE = 3000;

/** Keystrokes typed while the socket is down are kept up to this many bytes. */
const MAX_QUEUED_INPUT = 16 * 1024;

export class TerminalClient implements TerminalConnection {
  readonly #opts: TerminalClientOptions;
  readonly #WS: typeof WebSocket;
  readonly #encoder = new TextEncoder();
  #ws: WebSocket | null = null;
  #status: TerminalStatus = 'ended';
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  /** True between `attached` and close: input may flow. */
  #attached = false;
  /** Counts opens, so a URL that arrives after a newer open (or an end) is dropped. */
  #opens = 0;
  /** Date.now() of the server's 4013 until the next attach: reconnects then wait for it. */
  #restartingSince: number | undefined;
  /** The server's last `error` message on the current socket (said on a final close). */
  #lastError: string | undefined;
  #queued: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Output bytes handed to the sink whose `done` has not fired yet. */
  #pending = 0;
  #paused = false;

  constructor(opts: TerminalClientOptions) {
    this.#opts = opts;
    this.#WS = opts.WebSocket ?? WebSocket;
  }

  get status(): TerminalStatus {
    return this.#status;
  }

  /** Bytes written to the sink and not yet consumed (for tests and diagnostics). */
  get pendingBytes(): number {
    return this.#pending;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Open the socket (again). Safe to call after an end. */
  connect(): void {
    this.#clearTimers();
    const old = this.#ws;
    this.#ws = null;
    if (old && old.readyState <= this.#WS.OPEN) old.close(CloseCode.normal);
    this.#attempt = 0;
    this.#open('connecting');
  }

  /** Skip the backoff wait (e.g. the browser came back online). */
  retryNow(): void {
    if (this.#status !== 'reconnecting' || this.#ws || this.#retryTimer === undefined) return;
    clearTimeout(this.#retryTimer);
    this.#open('reconnecting');
  }

  /** Send keystrokes or pasted text. Queued (bounded) while the socket is down. */
  send(input: string | Uint8Array): void {
    const bytes = typeof input === 'string' ? this.#encoder.encode(input) : input;
    for (let off = 0; off < bytes.byteLength; off += MAX_FRAME_BYTES) {
      const chunk = bytes.subarray(off, Math.min(off + MAX_FRAME_BYTES, bytes.byteLength));
      if (this.#attached && this.#ws?.readyState === this.#WS.OPEN) {
        this.#ws.send(chunk);
      } else if (this.#status !== 'ended' && this.#queuedBytes + chunk.byteLength <= MAX_QUEUED_INPUT) {
        this.#queued.push(chunk.slice());
        this.#queuedBytes += chunk.byteLength;
      }
    }
  }

  resize(cols: number, rows: number): void {
    this.#control({ type: 'resize', cols, rows });
  }

  /** Close for good (Stop, Reset, page leave). */
  close(): void {
    this.#end('closed', CloseCode.normal);
  }

  /** Test hook: drop the socket as a network failure would; the client reconnects. */
  drop(): void {
    this.#ws?.close(TEST_DROP_CODE, 'test drop');
  }

  #open(status: 'connecting' | 'reconnecting'): void {
    this.#retryTimer = undefined;
    this.#setStatus(status);
    const open = ++this.#opens;
    const url = this.#opts.url;
    if (typeof url === 'string') {
      this.#openSocket(url);
      return;
    }
    url().then(
      (u) => {
        if (open === this.#opens && this.#status !== 'ended') this.#openSocket(u);
      },
      (err: unknown) => {
        if (open !== this.#opens || this.#status === 'ended') return;
        if (err instanceof TerminalUrlRefused) this.#end(err.reason, 0, err.message);
        else this.#scheduleReconnect();
      },
    );
  }

  #openSocket(url: string): void {
    let ws: WebSocket;
    try {
      ws = new this.#WS(url);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    this.#attached = false;
    this.#lastError = undefined;
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      // A fresh socket starts unpaused on the server; pause again if xterm is still busy.
      this.#paused = false;
      const { cols, rows } = this.#opts.size();
      this.resize(cols, rows);
      if (this.#pending > HIGH_WATER) this.#setPaused(true);
      const pingMs = this.#opts.pingMs ?? 25_000;
      if (pingMs > 0)
        this.#pingTimer = setInterval(() => this.#control({ type: 'ping', t: Date.now() }), pingMs);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (ws !== this.#ws) return;
      if (typeof ev.data === 'string') this.#onControl(ev.data);
      else this.#onOutput(new Uint8Array(ev.data as ArrayBuffer));
    };
    ws.onclose = (ev: CloseEvent) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.#attached = false;
      clearInterval(this.#pingTimer);
      // A refused ticket (4001) is final only for a fixed URL: a provider fetches a new one,
      // and if the session itself is gone that fetch says so (TerminalUrlRefused).
      const final =
        ev.code === CloseCode.badToken && typeof this.#opts.url === 'function' ? undefined : FINAL[ev.code];
      // An upgrade: the next server has the same session and shells; wait for it.
      if (ev.code === CloseCode.serverRestarting) this.#restartingSince ??= Date.now();
      if (final) this.#end(final, ev.code, this.#lastError);
      else this.#scheduleReconnect();
    };
    // onerror is always followed by onclose; nothing to do here.
    ws.onerror = () => {};
  }

  #onControl(text: string): void {
    let msg: ServerMessage;
    try {
      msg = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    switch (msg.type) {
      case 'attached':
        // WARNING: reset before the replayed frames arrive, or the redraw lands on top of
        // the old screen and the prompt appears twice.
        if (msg.replay) this.#opts.sink.reset();
        this.#attached = true;
        this.#attempt = 0;
        this.#restartingSince = undefined;
        this.#setStatus('attached');
        this.#flushQueue();
        this.#opts.onMessage?.(msg);
        break;
      case 'replayed':
      case 'pong':
        break;
      case 'error':
        this.#lastError = msg.message;
        this.#opts.onMessage?.(msg);
        break;
      default:
        this.#opts.onMessage?.(msg);
    }
  }

  #onOutput(data: Uint8Array): void {
    const n = data.byteLength;
    this.#pending += n;
    this.#opts.sink.write(data, () => {
      this.#pending -= n;
      if (this.#paused && this.#pending < LOW_WATER) this.#setPaused(false);
    });
    if (!this.#paused && this.#pending > HIGH_WATER) this.#setPaused(true);
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    this.#control({ type: paused ? 'pause' : 'resume' });
  }

  #flushQueue(): void {
    const queued = this.#queued;
    this.#queued = [];
    this.#queuedBytes = 0;
    for (const chunk of queued) this.#ws?.send(chunk);
  }

  #control(msg: ClientMessage): void {
    if (this.#ws?.readyState === this.#WS.OPEN) this.#ws.send(JSON.stringify(msg));
  }

  #scheduleReconnect(): void {
    const { initialMs, maxMs, maxAttempts } = this.#opts.backoff ?? {
      initialMs: 300,
      maxMs: 8000,
      maxAttempts: 12,
    };
    const restarting =
      this.#restartingSince !== undefined &&
      Date.now() - this.#restartingSince < (this.#opts.restartBudgetMs ?? 10 * 60_000);
    if (this.#attempt >= maxAttempts && !restarting) {
      this.#end('gave-up', 1006);
      return;
    }
    const base = Math.min(maxMs, initialMs * 2 ** this.#attempt);
    const delay = base / 2 + (Math.random() * base) / 2; // jitter: many tabs must not retry in step
    this.#attempt++;
    this.#setStatus('reconnecting');
    this.#retryTimer = setTimeout(() => this.#open('reconnecting'), delay);
  }

  #end(reason: EndReason, code: number, message?: string): void {
    this.#clearTimers();
    this.#opens++;
    this.#restartingSince = undefined;
    const ws = this.#ws;
    this.#ws = null;
    this.#attached = false;
    this.#queued = [];
    this.#queuedBytes = 0;
    if (ws && ws.readyState <= this.#WS.OPEN) ws.close(CloseCode.normal);
    const wasEnded = this.#status === 'ended';
    this.#setStatus('ended');
    if (!wasEnded || reason !== 'closed') this.#opts.onEnd?.(reason, code, message);
  }

  #clearTimers(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    clearInterval(this.#pingTimer);
  }

  #setStatus(status: TerminalStatus): void {
    if (status === this.#status && status !== 'reconnecting') return;
    this.#status = status;
    this.#opts.onStatus?.(status, this.#attempt, { restarting: this.#restartingSince !== undefined });
  }
}
