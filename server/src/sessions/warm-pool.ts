/**
 * A warm pool of ready lab hosts per lab, so a reader's Start skips the ~0.4 s the engine
 * takes to create and start a container. Refills run in the background (`fillParallel` at
 * a time), and only while no reader's Start is waiting for the engine. A member is handed
 * out at most once; it becomes the reader's session and is removed with it. Members carry
 * the same limits as sessions, and are recycled after `maxAgeMs`.
 *
 * The pool follows demand. Each lab keeps `size` spares; a hint (a lesson page with the lab
 * in view: POST /api/v1/labs/:id/hint) says a Start may come, and raises that lab's target
 * by one for `hintTtlMs`, until a Start of the same client uses it up. The budget: a client's
 * hints count up to its session quota (`hintsPerClient`), spares made for hints never take
 * the room of sessions (`room()`), and all spares together stay within `maxSpares`. Spares
 * above the target (their hints expired) go once they have been idle `shrinkIdleMs`.
 */
import type { LabDef } from '../../../labs/schema.ts';
import type { Runtime, TerminalProcess } from '../runtime/runtime.ts';
import type { Semaphore } from './limits.ts';

/** How long past its max age a spare's own lease runs (at most its max age again). */
export const POOL_LEASE_GRACE_MS = 30_000;

export interface PooledHost {
  hostId: string;
  /** Chosen when the host was made (the engine's record of it cannot change later); becomes the session id. */
  sessionId: string;
  createdAt: number;
  /** Its lab's shells, opened while it waited (by terminal name; a failed one is missing):
   *  the reader's Start then needs no engine call to reach a prompt. */
  shells: Map<string, PooledShell>;
}

export interface PooledShell {
  proc: TerminalProcess;
  /** The size it was opened with. */
  size: { cols: number; rows: number };
  /** Set once its stream ended (a shell that exited while waiting is not handed out). */
  ended: boolean;
}

/** The size spares' shells open with; the page's first resize sets the reader's. */
export const POOL_SHELL_SIZE = { cols: 80, rows: 24 } as const;

export interface WarmPoolDeps {
  runtime: Runtime;
  labs: readonly LabDef[];
  /** Ready hosts to keep per lab without any hint; with 0 and no hints, the pool is off. */
  size: number;
  /** Spares of all labs together, ready and being made, at most (hints cannot go past it). */
  maxSpares?: number;
  /** Hosts the server may still make beyond its sessions and spares (CL_MAX_SESSIONS minus
   *  both); a spare for a hint is made only while this is above 0. */
  room?: () => number;
  /** How long a hint counts (a reader reading the lesson before pressing Start). */
  hintTtlMs?: number;
  /** Hints one client has counted at once per lab (its session quota: it cannot start more). */
  hintsPerClient?: number;
  /** A spare above its lab's target is removed once it has waited this long. */
  shrinkIdleMs?: number;
  /** Refills at once (each one engine call; readers' Starts still go first). */
  fillParallel?: number;
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

/** Defaults of the demand settings (config.ts has the operator's). */
export const POOL_DEFAULTS = {
  maxSpares: 32,
  hintTtlMs: 10 * 60_000,
  hintsPerClient: 3,
  shrinkIdleMs: 60_000,
  fillParallel: 2,
} as const;

interface Hint {
  client: string;
  at: number;
}

export class WarmPool {
  readonly #d: WarmPoolDeps;
  readonly #maxSpares: number;
  readonly #hintTtlMs: number;
  readonly #hintsPerClient: number;
  readonly #shrinkIdleMs: number;
  readonly #fillParallel: number;
  readonly #ready = new Map<string, PooledHost[]>();
  /** Session ids of hosts being created right now (the reaper must not take them). */
  readonly #pending = new Set<string>();
  /** Hosts being created per lab. */
  readonly #pendingByLab = new Map<string, number>();
  /** Hints per lab, oldest first. */
  readonly #hints = new Map<string, Hint[]>();
  #filling = false;
  #loop: Promise<void> | null = null;
  #stopped = false;
  #failures = 0;
  #retryAt = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(deps: WarmPoolDeps) {
    this.#d = deps;
    this.#maxSpares = deps.maxSpares ?? POOL_DEFAULTS.maxSpares;
    this.#hintTtlMs = deps.hintTtlMs ?? POOL_DEFAULTS.hintTtlMs;
    this.#hintsPerClient = deps.hintsPerClient ?? POOL_DEFAULTS.hintsPerClient;
    this.#shrinkIdleMs = deps.shrinkIdleMs ?? POOL_DEFAULTS.shrinkIdleMs;
    this.#fillParallel = Math.max(1, deps.fillParallel ?? POOL_DEFAULTS.fillParallel);
    for (const lab of deps.labs) {
      this.#ready.set(lab.id, []);
      this.#hints.set(lab.id, []);
      this.#pendingByLab.set(lab.id, 0);
    }
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

  /** The spares each lab aims at now: its base size plus its live hints. */
  targets(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const lab of this.#d.labs) out[lab.id] = this.#target(lab.id);
    return out;
  }

  /**
   * A Start of `labId` may come from `client` soon (its lesson page shows the lab). Counted
   * (true) unless the client already has its quota of hints for this lab, or the lab has
   * as many hints as the pool may ever hold spares; a counted hint starts a refill.
   */
  hint(labId: string, client: string): boolean {
    const hints = this.#liveHints(labId);
    if (!hints || this.#stopped) return false;
    let mine = 0;
    for (const h of hints) if (h.client === client) mine++;
    if (mine >= this.#hintsPerClient || hints.length >= this.#maxSpares) return false;
    hints.push({ client, at: this.#d.now() });
    this.fill();
    return true;
  }

  #liveHints(labId: string): Hint[] | undefined {
    const hints = this.#hints.get(labId);
    if (!hints) return undefined;
    const oldest = this.#d.now() - this.#hintTtlMs;
    let expired = 0;
    while (expired < hints.length && hints[expired]!.at <= oldest) expired++;
    if (expired > 0) hints.splice(0, expired);
    return hints;
  }

  /** A Start of `client` uses up its oldest hint for the lab. */
  #useHint(labId: string, client: string): void {
    const hints = this.#liveHints(labId);
    const i = hints?.findIndex((h) => h.client === client) ?? -1;
    if (i >= 0) hints?.splice(i, 1);
  }

  #target(labId: string): number {
    return this.#d.size + (this.#liveHints(labId)?.length ?? 0);
  }

  /** Spares of all labs, ready and being made. */
  get spares(): number {
    let n = this.#pending.size;
    for (const hosts of this.#ready.values()) n += hosts.length;
    return n;
  }

  /** The lab a refill should make a host for now, if any. */
  #nextLab(): LabDef | undefined {
    let best: LabDef | undefined;
    let bestGap = 0;
    for (const lab of this.#d.labs) {
      const have = (this.#ready.get(lab.id)?.length ?? 0) + (this.#pendingByLab.get(lab.id) ?? 0);
      const gap = this.#target(lab.id) - have;
      if (gap <= 0) continue;
      // The base size is kept whatever the budget; spares for hints stay within it.
      const forHint = have >= this.#d.size;
      if (forHint && (this.spares >= this.#maxSpares || (this.#d.room?.() ?? 1) <= 0)) continue;
      if (gap > bestGap) {
        best = lab;
        bestGap = gap;
      }
    }
    return best;
  }

  /** Host ids and session ids the pool owns (so the reaper leaves them alone). */
  owns(sessionId: string): boolean {
    if (this.#pending.has(sessionId)) return true;
    for (const hosts of this.#ready.values()) if (hosts.some((h) => h.sessionId === sessionId)) return true;
    return false;
  }

  /** Hand out a ready host (never the same one twice), and start refilling. A Start of
   *  `client` uses up one of its hints for the lab, whether a spare was ready or not. */
  take(labId: string, client?: string): PooledHost | undefined {
    if (client !== undefined) this.#useHint(labId, client);
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
    if (this.#stopped || this.#filling || !this.#nextLab()) return;
    if (this.#d.now() < this.#retryAt) {
      this.#schedule(this.#retryAt - this.#d.now());
      return;
    }
    this.#filling = true;
    const workers = Array.from({ length: this.#fillParallel }, () => this.#fillLoop());
    this.#loop = Promise.all(workers)
      .then(() => undefined)
      .finally(() => {
        this.#filling = false;
        this.#loop = null;
        // Work that came while the last worker was finishing (fill() returns at once if none).
        if (!this.#stopped && this.#d.now() >= this.#retryAt) this.fill();
      });
  }

  /** A ready host the runtime says is gone: forgotten, and made again (true if it was one). */
  forget(hostId: string): boolean {
    for (const hosts of this.#ready.values()) {
      const i = hosts.findIndex((h) => h.hostId === hostId);
      if (i < 0) continue;
      closeShells(hosts.splice(i, 1)[0]!.shells);
      this.fill();
      return true;
    }
    return false;
  }

  /** Forget members whose container is gone; recycle old ones; let spares above their
   *  lab's target go once they have waited `shrinkIdleMs`. */
  prune(liveHostIds: ReadonlySet<string>): void {
    const now = this.#d.now();
    for (const [labId, hosts] of this.#ready) {
      for (let i = hosts.length - 1; i >= 0; i--) {
        const h = hosts[i]!;
        if (!liveHostIds.has(h.hostId)) {
          hosts.splice(i, 1);
          closeShells(h.shells);
        } else if (now - h.createdAt >= this.#d.maxAgeMs) {
          hosts.splice(i, 1);
          this.#discard(h);
        }
      }
      // Oldest first: they would be recycled soonest anyway.
      let excess = hosts.length - this.#target(labId);
      for (let i = 0; excess > 0 && i < hosts.length; ) {
        if (now - hosts[i]!.createdAt >= this.#shrinkIdleMs) {
          const [h] = hosts.splice(i, 1);
          this.#discard(h!);
          excess--;
          this.#d.events.event('pool.shrunk', { lab: labId });
        } else i++;
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
    for (const h of all) closeShells(h.shells);
    await Promise.allSettled([...all.map((h) => this.#d.runtime.removeLabHost(h.hostId)), this.#loop]);
  }

  async #fillLoop(): Promise<void> {
    for (;;) {
      if (this.#stopped) return;
      await this.#readersFirst();
      if (this.#stopped || this.#retryAt > this.#d.now()) return;
      const lab = this.#nextLab();
      if (!lab) return;
      const sessionId = this.#d.newId();
      this.#pending.add(sessionId);
      this.#pendingByLab.set(lab.id, (this.#pendingByLab.get(lab.id) ?? 0) + 1);
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
        const shells = await this.#openShells(host.id, lab);
        if (this.#stopped) {
          closeShells(shells);
          await this.#d.runtime.removeLabHost(host.id).catch(() => {});
          return;
        }
        this.#ready.get(lab.id)?.push({ hostId: host.id, sessionId, createdAt: now, shells });
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
        this.#pendingByLab.set(lab.id, (this.#pendingByLab.get(lab.id) ?? 1) - 1);
      }
    }
  }

  /** The lab's shells in a new spare; one that fails to open is left to the reader's attach. */
  async #openShells(hostId: string, lab: LabDef): Promise<Map<string, PooledShell>> {
    const shells = new Map<string, PooledShell>();
    await Promise.all(
      lab.terminals.map(async (def) => {
        await this.#readersFirst();
        try {
          const proc = await this.#d.runtime.openTerminal(hostId, def, POOL_SHELL_SIZE);
          const sh: PooledShell = { proc, size: { ...POOL_SHELL_SIZE }, ended: false };
          void proc.exited.then(() => {
            sh.ended = true;
          });
          shells.set(def.name, sh);
        } catch (err) {
          this.#d.events.event('pool.shell_failed', { lab: lab.id, terminal: def.name, error: String(err) });
        }
      }),
    );
    return shells;
  }

  /** Readers first: while a Start waits for the engine, the pool's engine work waits too. */
  async #readersFirst(): Promise<void> {
    while (this.#d.engine.waiting > 0 && !this.#stopped) await new Promise((r) => setTimeout(r, 50));
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
    closeShells(h.shells);
    this.#d.runtime.removeLabHost(h.hostId).catch(() => {});
  }
}

/** Ends a spare's shells (its host is going, or was never handed out). */
function closeShells(shells: ReadonlyMap<string, PooledShell>): void {
  for (const sh of shells.values()) sh.proc.close();
}
