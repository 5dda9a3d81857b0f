/**
 * Time and timers for the terminal layer, injected so that tests of its rate limits,
 * budgets and heartbeat are exact (tests/unit-support/fake-scheduler.ts) instead of sleeping.
 */
export interface Scheduler {
  /** Milliseconds on a clock that never goes backwards. */
  now(): number;
  /** Calls `fn` once after `ms`; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

/** Real time. Timers are unref'd: none of them should keep the process alive. */
export const systemScheduler: Scheduler = {
  now: () => performance.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
