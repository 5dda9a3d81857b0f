/** Small building blocks of the session manager's quotas. */
import pLimit, { type LimitFunction } from 'p-limit';

/** Token bucket per key: `perMinute` takes per minute, bursts up to `perMinute`. */
export class RateLimiter {
  readonly #perMinute: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMinute: number, now: () => number) {
    this.#perMinute = perMinute;
    this.#now = now;
  }

  /** Take one token; returns 0 if allowed, else the seconds until one is available. */
  take(key: string): number {
    const b = this.#refill(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return this.#waitFor(b);
  }

  /** Like take(), without taking: 0 if a token is there, else the seconds until one is. */
  peek(key: string): number {
    if (!this.#buckets.has(key)) return 0;
    const b = this.#refill(key);
    return b.tokens >= 1 ? 0 : this.#waitFor(b);
  }

  #refill(key: string): { tokens: number; at: number } {
    const now = this.#now();
    const b = this.#buckets.get(key) ?? { tokens: this.#perMinute, at: now };
    b.tokens = Math.min(this.#perMinute, b.tokens + (now - b.at) * (this.#perMinute / 60_000));
    b.at = now;
    this.#buckets.set(key, b);
    return b;
  }

  #waitFor(b: { tokens: number }): number {
    return Math.max(1, Math.ceil((1 - b.tokens) / (this.#perMinute / 60_000) / 1000));
  }

  /** Forget buckets that are full again. */
  prune(): void {
    const now = this.#now();
    for (const [k, b] of this.#buckets) {
      if (b.tokens + (now - b.at) * (this.#perMinute / 60_000) >= this.#perMinute) this.#buckets.delete(k);
    }
  }
}

/**
 * Runs at most `limit` tasks at once; the rest wait in order (p-limit). The session
 * manager's engine calls go through one, and the warm pool's refills yield to readers
 * while `waiting` is above 0.
 */
export class Semaphore {
  readonly #limit: LimitFunction;

  constructor(limit: number) {
    this.#limit = pLimit(limit);
  }

  /** Tasks queued for a slot, not yet started. */
  get waiting(): number {
    return this.#limit.pendingCount;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    return this.#limit(task);
  }
}
