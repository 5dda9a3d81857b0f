/**
 * One terminal of an in-browser lab: a serial port of the VM, behind the same seam as the
 * lab server's WebSocket client (TerminalConnection, terminal-client.ts), so a pane does not
 * care where its bytes come from. The port is always there, so "connecting" is immediate;
 * output is handed to the sink in batches (v86 reports a byte at a time); keystrokes go in
 * as bytes; a resize goes to the guest's control channel (`stty`, so the shell gets SIGWINCH).
 */
import type { ConnectionOptions, TerminalConnection } from '../terminal-client.ts';

export interface VmTerminalOptions extends ConnectionOptions {
  port: number;
  send(bytes: Uint8Array): void;
  /** Subscribes to the port's output; returns the unsubscribe. */
  listen(fn: (byte: number) => void): () => void;
  resize(cols: number, rows: number): void;
}

/** Redraw the prompt once attached: readline's clear-screen (Ctrl-L) on an empty line. */
const REDRAW = new Uint8Array([0x0c]);

export class VmTerminal implements TerminalConnection {
  readonly #o: VmTerminalOptions;
  readonly #enc = new TextEncoder();
  #unlisten: (() => void) | undefined;
  #pending: number[] = [];
  #flushing = false;
  #attached = false;
  #lastSize = '';
  #resizeTimer: ReturnType<typeof setTimeout> | undefined;
  /** While the screen is empty after attach, redraw again (input right after a restore can be lost). */
  #redrawTimer: ReturnType<typeof setTimeout> | undefined;
  #sawOutput = false;

  constructor(o: VmTerminalOptions) {
    this.#o = o;
  }

  connect(): void {
    this.close(false);
    this.#o.onStatus?.('connecting', 0, { restarting: false });
    this.#unlisten = this.#o.listen((b) => this.#byte(b));
    this.#attached = true;
    this.#o.onStatus?.('attached', 0, { restarting: false });
    const { cols, rows } = this.#o.size();
    this.resize(cols, rows);
    this.#sawOutput = false;
    const redraw = (n: number) => {
      if (!this.#attached || this.#sawOutput || n > 10) return;
      this.#o.send(REDRAW);
      this.#redrawTimer = setTimeout(() => redraw(n + 1), 700);
    };
    // After the resize has had its turn on the control channel.
    this.#redrawTimer = setTimeout(() => redraw(0), 150);
  }

  send(input: string | Uint8Array): void {
    if (!this.#attached) return;
    this.#o.send(typeof input === 'string' ? this.#enc.encode(input) : input);
  }

  resize(cols: number, rows: number): void {
    const key = `${cols}x${rows}`;
    if (!this.#attached || key === this.#lastSize || cols < 2 || rows < 1) return;
    this.#lastSize = key;
    clearTimeout(this.#resizeTimer);
    // A drag of the window sends many sizes: only the last one goes to the guest.
    this.#resizeTimer = setTimeout(() => this.#o.resize(cols, rows), 60);
  }

  retryNow(): void {}

  /** Nothing to drop: the port is inside the page. */
  drop(): void {}

  close(report = true): void {
    const was = this.#attached;
    this.#attached = false;
    this.#unlisten?.();
    this.#unlisten = undefined;
    clearTimeout(this.#resizeTimer);
    clearTimeout(this.#redrawTimer);
    this.#pending = [];
    this.#lastSize = '';
    if (was && report) {
      this.#o.onStatus?.('ended', 0, { restarting: false });
      this.#o.onEnd?.('closed', 1000);
    }
  }

  #byte(b: number): void {
    this.#sawOutput = true;
    this.#pending.push(b);
    if (this.#flushing) return;
    this.#flushing = true;
    queueMicrotask(() => {
      this.#flushing = false;
      const chunk = Uint8Array.from(this.#pending);
      this.#pending = [];
      if (this.#attached && chunk.byteLength) this.#o.sink.write(chunk, () => {});
    });
  }
}
