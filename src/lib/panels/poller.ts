/**
 * Polls one endpoint about once a second while it is *active* (its panel is open, on
 * the page's visible tab) and not at all otherwise. One request at a time: the next
 * starts an interval after the previous one started, or right after it ended if it took
 * longer. Deactivating clears the timer and aborts a request in flight. Failures back
 * off (2, 4, 8, at most 10 s) until the owner says stop.
 */

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
};

export interface PollerOptions<T> {
  /** Time between requests (a function: asked before each wait); default 1000 ms. */
  intervalMs?: number | (() => number);
  load(signal: AbortSignal): Promise<T>;
  onData(value: T): void;
  /** 'stop' ends polling until the next setActive(true); 'retry' backs off. */
  onError(err: unknown): 'retry' | 'stop';
  timers?: Timers;
}

export class Poller<T> {
  readonly #opts: PollerOptions<T>;
  readonly #timers: Timers;
  readonly #interval: () => number;
  #active = false;
  #stopped = false;
  #timer: unknown;
  #inFlight: AbortController | undefined;
  #failures = 0;

  constructor(opts: PollerOptions<T>) {
    this.#opts = opts;
    this.#timers = opts.timers ?? realTimers;
    const every = opts.intervalMs ?? 1000;
    this.#interval = typeof every === 'function' ? every : () => every;
  }

  get active(): boolean {
    return this.#active && !this.#stopped;
  }

  /** Start (a first request at once) or stop polling. Idempotent. */
  setActive(on: boolean): void {
    if (on === this.#active && !(on && this.#stopped)) return;
    this.#active = on;
    this.#stopped = false;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (on) {
      this.#failures = 0;
      if (!this.#inFlight) void this.#tick();
    } else {
      this.#inFlight?.abort();
      this.#inFlight = undefined;
    }
  }

  dispose(): void {
    this.setActive(false);
  }

  async #tick(): Promise<void> {
    this.#timer = undefined;
    if (!this.active) return;
    const ctl = new AbortController();
    this.#inFlight = ctl;
    const started = this.#timers.now();
    let delay = this.#interval();
    try {
      const value = await this.#opts.load(ctl.signal);
      if (ctl.signal.aborted) return;
      this.#failures = 0;
      this.#opts.onData(value);
      delay = Math.max(0, this.#interval() - (this.#timers.now() - started));
    } catch (err) {
      if (ctl.signal.aborted) return;
      if (this.#opts.onError(err) === 'stop') {
        this.#stopped = true;
        return;
      }
      this.#failures++;
      delay = Math.min(10_000, 1000 * 2 ** this.#failures);
    } finally {
      if (this.#inFlight === ctl) this.#inFlight = undefined;
    }
    // Deactivated (or stopped) while loading: no next round.
    if (this.active && this.#timer === undefined) {
      this.#timer = this.#timers.setTimeout(() => void this.#tick(), delay);
    }
  }
}
