/** Small building blocks of the session manager's quotas. */
import pLimit, { type LimitFunction } from 'p-limit';
import { type LabDef, parseSize } from '../../../labs/schema.ts';
import type { EngineInfo } from '../runtime/runtime.ts';

/** CL_MAX_SESSIONS=auto when the engine does not say how big its machine is. */
export const FALLBACK_MAX_SESSIONS = 20;
/** Live sessions per engine CPU at most (readers mostly read: a lab host idles). */
export const SESSIONS_PER_CPU = 25;
/** Share of the engine's memory that lab hosts may take at their limits together. */
export const MEMORY_SHARE = 0.5;

/**
 * CL_MAX_SESSIONS=auto: as many sessions as the engine's machine holds with every lab host
 * at its memory limit in half its memory (the largest limit of the enabled labs), and no
 * more than SESSIONS_PER_CPU per CPU; at least 4, at most 1000. A 2-core machine with 23 GiB
 * (CI's kind) gets 50: a class of 30 and its spares. Unknown size: FALLBACK_MAX_SESSIONS.
 */
export function autoMaxSessions(engine: EngineInfo, labs: readonly LabDef[]): number {
  const memory = engine.memoryBytes;
  const cpus = engine.cpus;
  if (!engine.reachable || !memory || !cpus || labs.length === 0) return FALLBACK_MAX_SESSIONS;
  const perHost = Math.max(...labs.map((l) => parseSize(l.limits.memory)));
  const byMemory = Math.floor((memory * MEMORY_SHARE) / perHost);
  return Math.min(1000, Math.max(4, Math.min(byMemory, cpus * SESSIONS_PER_CPU)));
}

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
