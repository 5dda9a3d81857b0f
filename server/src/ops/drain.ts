/**
 * Graceful drain (SIGTERM): refuse new sessions at once (503 + Retry-After), tell every
 * open terminal how long its lab has left, wait the grace period (CL_DRAIN_GRACE), then
 * let main.ts end the sessions and exit. With no terminal open there is nobody to warn and
 * nothing to wait for.
 */
import type { ServerMessage } from '../terminal/protocol.ts';

/** What the drain needs from the session manager. */
export interface DrainTarget {
  list(): {
    attachedCount: number;
    terminals: ReadonlyMap<string, { broadcast(msg: ServerMessage): void }>;
  }[];
}

export function drainNotice(graceMs: number): string {
  const s = Math.max(0, Math.round(graceMs / 1000));
  return (
    `This lab server is shutting down${s > 0 ? `: your lab ends in ${s} s` : ' now'}, and what you ` +
    'did in it will be lost. Start the lab again in a minute.'
  );
}

/** What a restart (CL_ON_SIGTERM=restart) tells live terminals before their sockets close. */
export const RESTART_NOTICE =
  'The lab server is restarting: your terminals reconnect in a moment, to the same shells.';

export class Drain {
  #startedAt: number | undefined;
  #graceMs = 0;
  #hurry: (() => void) | undefined;
  readonly #now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  get active(): boolean {
    return this.#startedAt !== undefined;
  }

  /** Seconds a refused client should wait before trying again. */
  retryAfterSeconds(): number {
    if (this.#startedAt === undefined) return 0;
    const left = this.#startedAt + this.#graceMs - this.#now();
    return Math.max(5, Math.ceil(left / 1000) + 30);
  }

  /**
   * Start draining: notify every open terminal, then resolve after `graceMs` (at once when
   * no terminal is open, or when `hurry()` is called). Idempotent: a second call
   * returns the same wait.
   */
  start(target: DrainTarget, graceMs: number): Promise<void> {
    if (this.#startedAt !== undefined) return Promise.resolve();
    this.#startedAt = this.#now();
    this.#graceMs = graceMs;
    const live = target.list();
    const watched = live.reduce((n, s) => n + s.attachedCount, 0);
    if (watched === 0 || graceMs <= 0) return Promise.resolve();
    const msg: ServerMessage = { type: 'notice', message: drainNotice(graceMs) };
    for (const s of live) for (const t of s.terminals.values()) t.broadcast(msg);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.#hurry = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** End the wait now (e.g. a second signal). */
  hurry(): void {
    this.#hurry?.();
  }
}
