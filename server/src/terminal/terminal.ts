/**
 * A terminal of a session: one shell process (TerminalProcess from the runtime) that
 * outlives the sockets attached to it, so a reader whose connection drops finds the same
 * shell when the page reconnects. Recent output is kept to redraw the screen then.
 */
import type { TerminalDef } from '../../../labs/schema.ts';
import type { TerminalProcess } from '../runtime/runtime.ts';
import { CloseCode, RESIZE_INTERVAL_MS, type ServerMessage } from './protocol.ts';
import { ResizeCoalescer, type Size } from './resize-coalescer.ts';
import { RingBuffer } from './ring-buffer.ts';
import { type Scheduler, systemScheduler } from './scheduler.ts';

/** Where a terminal's output goes: one attached WebSocket (see ws-bridge.ts). */
export interface TerminalSink {
  output(chunk: Buffer): void;
  control(msg: ServerMessage): void;
  close(code: number, reason: string): void;
}

const REPLAY_BYTES = 64 * 1024;

export class Terminal {
  readonly def: TerminalDef;
  readonly #proc: TerminalProcess;
  readonly #replay = new RingBuffer(REPLAY_BYTES);
  readonly #resize: ResizeCoalescer;
  #sink: TerminalSink | null = null;
  #clientPaused = false;
  #sinkPaused = false;
  #exited = false;
  #onExit: (t: Terminal) => void;
  #onActivity: () => void;
  #expiresAt: () => Date;

  constructor(
    def: TerminalDef,
    proc: TerminalProcess,
    hooks: { onExit: (t: Terminal) => void; onActivity: () => void; expiresAt: () => Date },
    opts: { /** The size the shell was opened with. */ size?: Size; scheduler?: Scheduler } = {},
  ) {
    this.def = def;
    this.#proc = proc;
    this.#resize = new ResizeCoalescer((s) => proc.resize(s.cols, s.rows), {
      scheduler: opts.scheduler ?? systemScheduler,
      intervalMs: RESIZE_INTERVAL_MS,
      initial: opts.size,
    });
    this.#onExit = hooks.onExit;
    this.#onActivity = hooks.onActivity;
    this.#expiresAt = hooks.expiresAt;
    proc.stream.on('data', (chunk: Buffer) => {
      this.#replay.push(chunk);
      this.#sink?.output(chunk);
    });
    // A stream error means the shell is gone; `exited` settles as well.
    proc.stream.on('error', () => {});
    proc.exited.then(
      (code) => this.#finish(code),
      () => this.#finish(null),
    );
  }

  get attached(): boolean {
    return this.#sink !== null;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Attach a socket; a socket attached before is told it was replaced and closed. */
  attach(sink: TerminalSink): void {
    const previous = this.#sink;
    this.#sink = sink;
    this.#clientPaused = false;
    this.#sinkPaused = false;
    this.#updateFlow();
    if (previous) previous.close(CloseCode.replaced, 'terminal opened elsewhere');
    const replay = this.#replay.size > 0;
    sink.control({
      type: 'attached',
      terminal: this.def.name,
      replay,
      expiresAt: this.#expiresAt().toISOString(),
    });
    if (replay) {
      for (const chunk of this.#replay.chunks()) sink.output(chunk);
      sink.control({ type: 'replayed' });
    }
    this.#onActivity();
  }

  detach(sink: TerminalSink): void {
    if (this.#sink !== sink) return;
    this.#sink = null;
    this.#clientPaused = false;
    this.#sinkPaused = false;
    // Nobody is watching: keep reading so the shell never blocks; the ring keeps the tail.
    this.#updateFlow();
  }

  /** Keystrokes from the reader. Returns false when the shell's input is backed up. */
  input(data: Buffer): boolean {
    if (this.#exited) return true;
    this.#onActivity();
    return this.#proc.stream.write(data);
  }

  onInputDrain(cb: () => void): void {
    this.#proc.stream.once('drain', cb);
  }

  /** Every resize is an engine call: only the latest size goes out, about 10 per second at most. */
  resize(cols: number, rows: number): void {
    if (this.#exited) return;
    this.#resize.request({ cols, rows });
  }

  /** Client-side flow control (xterm.js is behind). */
  setClientPaused(paused: boolean): void {
    this.#clientPaused = paused;
    this.#updateFlow();
  }

  /** Socket-side flow control (the WebSocket's send buffer is full). */
  setSinkPaused(paused: boolean): void {
    this.#sinkPaused = paused;
    this.#updateFlow();
  }

  broadcast(msg: ServerMessage): void {
    this.#sink?.control(msg);
  }

  /** End the shell and close the attached socket. */
  close(code: number, reason: string): void {
    const sink = this.#sink;
    this.#sink = null;
    sink?.close(code, reason);
    this.#resize.dispose();
    this.#proc.close();
  }

  #updateFlow(): void {
    const stream = this.#proc.stream;
    if (this.#sink && (this.#clientPaused || this.#sinkPaused)) stream.pause();
    else stream.resume();
  }

  #finish(code: number | null): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#resize.dispose();
    const sink = this.#sink;
    this.#sink = null;
    if (sink && code === null) {
      // The way to the shell broke, not (known to be) the shell: the client reconnects,
      // and the next exec attaches to it if it is still there (lab-shell, dtach).
      sink.close(CloseCode.internal, 'lost the connection to the shell');
    } else if (sink) {
      sink.control({ type: 'exit', code });
      sink.close(CloseCode.shellExited, 'shell exited');
    }
    this.#onExit(this);
  }
}
