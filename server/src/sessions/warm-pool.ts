/**
 * A warm pool of ready lab hosts per lab, so a reader's Start skips the ~0.4 s the engine
 * takes to create and start a container. Refills run in the background, one at a time,
 * and only while no reader's Start is waiting for the engine. A member is handed out at
 * most once; it becomes the reader's session and is removed with it. Members carry the
 * same limits as sessions, and are recycled after `maxAgeMs`.
 */
import type { LabDef } from '../../../labs/schema.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { Semaphore } from './limits.ts';

/** How long past its max age a spare's own lease runs (at most its max age again). */
export const POOL_LEASE_GRACE_MS = 30_000;

export interface PooledHost {
  hostId: string;
  /** Chosen when the host was made (the engine's record of it cannot change later); becomes the session id. */
  sessionId: string;
  createdAt: number;
}

export interface WarmPoolDeps {
  runtime: Runtime;
  labs: readonly LabDef[];
  /** Ready hosts to keep per lab; 0 turns the pool off. */
  size: number;
  maxAgeMs: number;
  /** How long a pooled host lives at most, counted from its start (its hard deadline). */
  lifetimeMs: number;
  now: () => number;
  newId: () => string;
  /** The engine semaphore shared with readers' Starts: refills yield to them. */
  engine: Semaphore;
  /** The server instance (CL_INSTANCE) its hosts belong to. */
  instance: string;
  events: { event(name: string, fields: Record<string, unknown>): void };
}

export class WarmPool {
  readonly #d: WarmPoolDeps;
  readonly #ready = new Map<string, PooledHost[]>();
  /** Session ids of hosts being created right now (the reaper must not take them). */
  readonly #pending = new Set<string>();
  #filling = false;
  #loop: Promise<void> | null = null;
  #stopped = false;
  #failures = 0;
  #retryAt = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(deps: WarmPoolDeps) {
    this.#d = deps;
    for (const lab of deps.labs) this.#ready.set(lab.id, []);
  }

  get size(): number {
    return this.#d.size;
  }

  /** Ready hosts per lab. */
  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [lab, hosts] of this.#ready) out[lab] = hosts.length;
    return out;
  }

  /** Host ids and session ids the pool owns (so the reaper leaves them alone). */
  owns(sessionId: string): boolean {
    if (this.#pending.has(sessionId)) return true;
    for (const hosts of this.#ready.values()) if (hosts.some((h) => h.sessionId === sessionId)) return true;
    return false;
  }

  /** Hand out a ready host (never the same one twice), and start refilling. */
  take(labId: string): PooledHost | undefined {
    const hosts = this.#ready.get(labId);
    const now = this.#d.now();
    let h: PooledHost | undefined;
    while (hosts && hosts.length > 0) {
      h = hosts.shift();
      if (h && now - h.createdAt < this.#d.maxAgeMs) break;
      if (h) this.#discard(h);
      h = undefined;
    }
    this.fill();
    return h;
  }

  /** Start a background refill pass if one is not running. */
  fill(): void {
    if (this.#stopped || this.#filling || this.#d.size === 0) return;
    if (this.#d.now() < this.#retryAt) {
      this.#schedule(this.#retryAt - this.#d.now());
      return;
    }
    this.#filling = true;
    this.#loop = this.#fillLoop().finally(() => {
      this.#filling = false;
      this.#loop = null;
    });
  }

  /** A ready host the runtime says is gone: forgotten, and made again (true if it was one). */
  forget(hostId: string): boolean {
    for (const hosts of this.#ready.values()) {
      const i = hosts.findIndex((h) => h.hostId === hostId);
      if (i < 0) continue;
      hosts.splice(i, 1);
      this.fill();
      return true;
    }
    return false;
  }

  /** Forget members whose container is gone; recycle old ones. */
  prune(liveHostIds: ReadonlySet<string>): void {
    const now = this.#d.now();
    for (const hosts of this.#ready.values()) {
      for (let i = hosts.length - 1; i >= 0; i--) {
        const h = hosts[i]!;
        if (!liveHostIds.has(h.hostId)) hosts.splice(i, 1);
        else if (now - h.createdAt >= this.#d.maxAgeMs) {
          hosts.splice(i, 1);
          this.#discard(h);
        }
      }
    }
    this.fill();
  }

  /** Stop refilling and remove every ready host, waiting for a refill the engine is still
   *  creating (it removes its own host once created), so none outlives the server. */
  async drain(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const all = [...this.#ready.values()].flatMap((hosts) => hosts.splice(0));
    await Promise.allSettled([...all.map((h) => this.#d.runtime.removeLabHost(h.hostId)), this.#loop]);
  }

  async #fillLoop(): Promise<void> {
    for (;;) {
      if (this.#stopped) return;
      const lab = this.#d.labs.find((l) => (this.#ready.get(l.id)?.length ?? 0) < this.#d.size);
      if (!lab) return;
      // Readers first: while a Start waits for the engine, the refill waits too.
      while (this.#d.engine.waiting > 0 && !this.#stopped) await new Promise((r) => setTimeout(r, 50));
      const sessionId = this.#d.newId();
      this.#pending.add(sessionId);
      try {
        const now = this.#d.now();
        // Its own lease: a little past the max age (the server recycles it at the max age), so
        // a spare of a server killed for good ends soon, not at its hard deadline. A Start
        // renews it to the session's (SessionManager.create).
        const lease = new Date(now + this.#d.maxAgeMs + Math.min(POOL_LEASE_GRACE_MS, this.#d.maxAgeMs));
        const host = await this.#d.engine.run(async () =>
          // Stopped while waiting for the engine: make nothing.
          this.#stopped
            ? null
            : this.#d.runtime.createLabHost({
                lab,
                sessionId,
                instance: this.#d.instance,
                expiresAt: new Date(now + this.#d.maxAgeMs),
                deadline: new Date(now + this.#d.lifetimeMs),
                lease,
                pooled: true,
              }),
        );
        if (!host) return;
        if (this.#stopped) {
          await this.#d.runtime.removeLabHost(host.id).catch(() => {});
          return;
        }
        this.#ready.get(lab.id)?.push({ hostId: host.id, sessionId, createdAt: now });
        this.#failures = 0;
      } catch (err) {
        // Engine down or image missing: back off (up to a minute) instead of spinning.
        this.#failures++;
        const wait = Math.min(60_000, 1000 * 2 ** this.#failures);
        this.#retryAt = this.#d.now() + wait;
        this.#d.events.event('pool.refill_failed', { lab: lab.id, error: String(err), retryInMs: wait });
        this.#schedule(wait);
        return;
      } finally {
        this.#pending.delete(sessionId);
      }
    }
  }

  #schedule(ms: number): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.fill();
    }, ms);
    this.#timer.unref();
  }

  #discard(h: PooledHost): void {
    this.#d.runtime.removeLabHost(h.hostId).catch(() => {});
  }
}
