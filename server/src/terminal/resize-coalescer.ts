/**
 * Turns a stream of requested TTY sizes into few engine calls: each resize is an Engine
 * API request (exec resize), and a client may send thousands per second. Only the latest
 * size counts; a size the TTY already has is skipped; calls start at most once per
 * `intervalMs` and never overlap (the latest size waits for the one in flight to answer).
 */
import type { Scheduler } from './scheduler.ts';

export interface Size {
  cols: number;
  rows: number;
}

export class ResizeCoalescer {
  readonly #apply: (size: Size) => Promise<void>;
  readonly #clock: Scheduler;
  readonly #intervalMs: number;
  /** The size the TTY has (or is being given by the call in flight). */
  #current: Size | null;
  #wanted: Size | null = null;
  #inFlight = false;
  #lastStart = Number.NEGATIVE_INFINITY;
  #cancelTimer: (() => void) | null = null;
  #disposed = false;

  constructor(
    apply: (size: Size) => Promise<void>,
    opts: { scheduler: Scheduler; intervalMs: number; initial?: Size },
  ) {
    this.#apply = apply;
    this.#clock = opts.scheduler;
    this.#intervalMs = opts.intervalMs;
    this.#current = opts.initial ?? null;
  }

  request(size: Size): void {
    if (this.#disposed) return;
    this.#wanted = size;
    this.#pump();
  }

  /** No more calls, no timer left. */
  dispose(): void {
    this.#disposed = true;
    this.#cancelTimer?.();
    this.#cancelTimer = null;
  }

  #pump(): void {
    if (this.#disposed || this.#inFlight || this.#cancelTimer) return;
    const wanted = this.#wanted;
    if (!wanted || (this.#current && same(wanted, this.#current))) return;
    const wait = this.#lastStart + this.#intervalMs - this.#clock.now();
    if (wait > 0) {
      this.#cancelTimer = this.#clock.after(wait, () => {
        this.#cancelTimer = null;
        this.#pump();
      });
      return;
    }
    this.#inFlight = true;
    this.#lastStart = this.#clock.now();
    this.#current = wanted;
    const done = () => {
      this.#inFlight = false;
      this.#pump();
    };
    this.#apply(wanted).then(done, () => {
      // The shell just exited, or the engine hiccuped: the TTY's size is unknown now. Not
      // retried (that could loop); the next size the client sends goes out, even this one.
      if (this.#current === wanted) this.#current = null;
      if (this.#wanted === wanted) this.#wanted = null;
      done();
    });
  }
}

function same(a: Size, b: Size): boolean {
  return a.cols === b.cols && a.rows === b.rows;
}
