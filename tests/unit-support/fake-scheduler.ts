/** A scheduler for unit tests only: time moves when the test says so. */
import type { Scheduler } from '../../server/src/terminal/scheduler.ts';

export class FakeScheduler implements Scheduler {
  #now = 0;
  #seq = 0;
  #timers: { at: number; seq: number; fn: () => void }[] = [];

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /** Timers set and not yet run or cancelled. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due on the way, in order
   * (timers those set run too, if they fall due within `ms`).
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= end).sort((x, y) => x.at - y.at || x.seq - y.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = end;
  }
}
