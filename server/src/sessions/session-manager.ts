/**
 * The session manager: creates sessions (one lab host each), checks tokens, enforces
 * quotas, lifetimes and idle time, and removes everything it made. It knows the runtime
 * only through its interface and time only through the injected clock.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { LabDef, TerminalDef } from '../../../labs/schema.ts';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { LabHostSummary, Runtime, TerminalProcess } from '../runtime/runtime.ts';
import { MemorySessionStore, type SessionStore, type StoredSession } from '../store/session-store.ts';
import { CloseCode } from '../terminal/protocol.ts';
import { Terminal } from '../terminal/terminal.ts';
import { RateLimiter, Semaphore } from './limits.ts';
import { WarmPool } from './warm-pool.ts';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface SessionLimits {
  ttlMs: number;
  maxLifetimeMs: number;
  idleTimeoutMs: number;
  maxSessions: number;
  maxSessionsPerClient: number;
  createPerMinute: number;
  engineConcurrency: number;
  /** Ready lab hosts kept per lab (0: none). */
  poolSize?: number;
  /** A pooled host older than this is replaced rather than handed out. */
  poolMaxAgeMs?: number;
  /** Spares of all labs at most, hints included (warm-pool.ts). */
  poolMax?: number;
  /** How long a lesson page's hint counts. */
  poolHintTtlMs?: number;
  /** Spares made at once. */
  poolFillParallel?: number;
}

/** The limits a configuration sets (CL_SESSION_TTL, CL_MAX_SESSIONS, CL_POOL_SIZE, ...);
 *  `maxSessions` is what CL_MAX_SESSIONS=auto came to (autoMaxSessions). */
export function sessionLimits(c: Config, maxSessions: number): SessionLimits {
  return {
    ttlMs: c.sessionTtlMs,
    maxLifetimeMs: c.sessionMaxLifetimeMs,
    idleTimeoutMs: c.idleTimeoutMs,
    maxSessions,
    maxSessionsPerClient: c.maxSessionsPerClient,
    createPerMinute: c.createPerMinute,
    engineConcurrency: c.engineConcurrency,
    poolSize: c.poolSize,
    poolMaxAgeMs: c.poolMaxAgeMs,
    poolMax: c.poolMax,
    poolHintTtlMs: c.poolHintTtlMs,
    poolFillParallel: c.poolFillParallel,
  };
}

/** What the manager reports (structured log lines; never tokens or terminal contents). */
export interface SessionEvents {
  event(name: string, fields: Record<string, unknown>): void;
}

/** What a reader is told when the lab host under their session vanished. */
export const HOST_GONE_MESSAGE = 'The lab machine restarted: press Start for a fresh sandbox.';

/** How long a session ended by its host vanishing answers 410 with HOST_GONE_MESSAGE. */
const VANISHED_KEPT_MS = 10 * 60_000;

export type EndReason = 'stopped' | 'expired' | 'idle' | 'shutdown' | 'host_gone' | 'admin';

export class Session {
  readonly id: string;
  readonly lab: LabDef;
  readonly clientKey: string;
  readonly createdAt: number;
  readonly #tokenHash: Buffer;
  expiresAt: number;
  lastActivityAt: number;
  hostId: string | null = null;
  ended = false;
  /** The last CPU reading of the cgroup panel (to turn usage into a rate). */
  lastCpu: { at: number; usage: number } | null = null;
  readonly terminals = new Map<string, Terminal>();
  readonly opening = new Map<string, Promise<Terminal>>();
  /** Outstanding terminal tickets: digest → terminal and expiry (see SessionManager.ticket). */
  readonly #tickets = new Map<string, { terminal: string; expiresAt: number }>();

  /** Terminals whose shells were started (stored: they run on in the lab host). */
  readonly started = new Set<string>();

  constructor(
    init: {
      id: string;
      lab: LabDef;
      clientKey: string;
      now: number;
    } & ({ token: string; ttlMs: number } | { tokenSha256: string; createdAt: number; expiresAt: number }),
  ) {
    this.id = init.id;
    this.lab = init.lab;
    this.clientKey = init.clientKey;
    this.lastActivityAt = init.now;
    if ('token' in init) {
      this.createdAt = init.now;
      this.expiresAt = init.now + init.ttlMs;
      this.#tokenHash = hashToken(init.token);
    } else {
      // Taken back from the store after a restart: the token was never kept, its hash was.
      this.createdAt = init.createdAt;
      this.expiresAt = init.expiresAt;
      this.#tokenHash = Buffer.from(init.tokenSha256, 'hex');
    }
  }

  /** What the store keeps of the token: its SHA-256, hex. */
  get tokenSha256(): string {
    return this.#tokenHash.toString('hex');
  }

  /** Constant-time comparison (of fixed-length digests, so length leaks nothing). */
  tokenMatches(token: string): boolean {
    return timingSafeEqual(this.#tokenHash, hashToken(token));
  }

  /** A new single-use ticket for one terminal (at most MAX_TICKETS outstanding). */
  issueTicket(terminal: string, now: number): { ticket: string; expiresAt: number } {
    for (const [k, t] of this.#tickets) if (t.expiresAt <= now) this.#tickets.delete(k);
    while (this.#tickets.size >= MAX_TICKETS) this.#tickets.delete(this.#tickets.keys().next().value!);
    const ticket = randomToken();
    const expiresAt = now + TICKET_TTL_MS;
    this.#tickets.set(hashToken(ticket).toString('hex'), { terminal, expiresAt });
    return { ticket, expiresAt };
  }

  /** Uses up a ticket; true if it was issued for `terminal` and has not expired. */
  redeemTicket(ticket: string, terminal: string, now: number): boolean {
    const key = hashToken(ticket).toString('hex');
    const t = this.#tickets.get(key);
    if (!t) return false;
    this.#tickets.delete(key);
    return t.terminal === terminal && t.expiresAt > now;
  }

  get attachedCount(): number {
    let n = 0;
    for (const t of this.terminals.values()) if (t.attached) n++;
    return n;
  }
}

/**
 * Terminal sockets authenticate with a ticket, not the session token: a URL ends up in
 * logs, proxies and browser histories, so what it carries is good for one socket, for a
 * short while. A ticket is got with the token in a header (or comes with the session).
 */
export const TICKET_TTL_MS = 30_000;
const MAX_TICKETS = 16;

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** 128 bits of randomness, URL-safe. */
export function randomToken(): string {
  return randomBytes(16).toString('base64url');
}

export class SessionManager {
  readonly #runtime: Runtime;
  readonly #labs: ReadonlyMap<string, LabDef>;
  readonly #limits: SessionLimits;
  readonly #clock: Clock;
  readonly #events: SessionEvents;
  readonly #instance: string;
  readonly #sessions = new Map<string, Session>();
  readonly #rate: RateLimiter;
  readonly #engine: Semaphore;
  readonly #pool: WarmPool;
  readonly #store: SessionStore;
  /** Stored sessions not taken back yet (the engine was not reachable): answered 503, not 404. */
  readonly #pending = new Map<string, StoredSession>();
  #loaded = false;
  #restored = false;
  #draining = false;
  #unwatch: (() => void) | undefined;
  /** Sessions ended because their host vanished (id → when), so a reconnect hears why. */
  readonly #vanished = new Map<string, number>();
  /** Terminals opened in a spare before its reader came: the first attach sets their size. */
  readonly #unsized = new WeakSet<Terminal>();
  /** Starts the engine is still creating a host for (settled once it is kept or removed). */
  readonly #creating = new Set<Promise<unknown>>();

  constructor(deps: {
    runtime: Runtime;
    labs: readonly LabDef[];
    limits: SessionLimits;
    clock?: Clock;
    events?: SessionEvents;
    instance: string;
    /** Where sessions are kept across restarts (default: memory, i.e. not at all). */
    store?: SessionStore;
  }) {
    this.#runtime = deps.runtime;
    this.#labs = new Map(deps.labs.map((l) => [l.id, l]));
    this.#limits = deps.limits;
    this.#clock = deps.clock ?? systemClock;
    this.#events = deps.events ?? { event: () => {} };
    this.#instance = deps.instance;
    this.#store = deps.store ?? new MemorySessionStore();
    this.#rate = new RateLimiter(deps.limits.createPerMinute, () => this.#clock.now());
    this.#engine = new Semaphore(deps.limits.engineConcurrency);
    const poolMaxAgeMs = deps.limits.poolMaxAgeMs ?? 15 * 60_000;
    this.#pool = new WarmPool({
      runtime: this.#runtime,
      labs: deps.labs,
      size: deps.limits.poolSize ?? 0,
      maxSpares: deps.limits.poolMax,
      // Spares for hints never take a session's place under CL_MAX_SESSIONS.
      room: () => deps.limits.maxSessions - this.#sessions.size - this.#pool.spares,
      hintTtlMs: deps.limits.poolHintTtlMs,
      hintsPerClient: deps.limits.maxSessionsPerClient,
      fillParallel: deps.limits.poolFillParallel,
      maxAgeMs: poolMaxAgeMs,
      // A pooled host may wait up to its max age before its session starts.
      lifetimeMs: deps.limits.maxLifetimeMs + poolMaxAgeMs,
      now: () => this.#clock.now(),
      newId: randomToken,
      engine: this.#engine,
      instance: this.#instance,
      events: this.#events,
    });
  }

  /**
   * Follow the runtime's word on lab hosts that go: a session whose host vanished (the
   * engine restarted without live-restore, someone removed it) ends at once and its reader
   * is told to press Start, instead of terminals that reconnect to nothing until the
   * reaper's next pass; a vanished spare is made again.
   */
  watchHosts(): void {
    this.#unwatch?.();
    this.#unwatch = this.#runtime.watchLabHosts((e) => {
      if (e.type === 'gone') this.#hostGone(e.hostId);
      else void this.#resync();
    });
  }

  #hostGone(hostId: string): void {
    if (this.#pool.forget(hostId)) {
      // Without AutoRemove (an engine with live-restore) a stopped spare stays until removed.
      this.#runtime.removeLabHost(hostId).catch(() => {});
      return;
    }
    const s = this.list().find((x) => x.hostId === hostId);
    if (!s || s.ended) return; // ours: removed on purpose, or not a host of this server
    this.#events.event('session.host_gone', { session: s.id, lab: s.lab.id });
    const now = this.#clock.now();
    for (const [id, at] of this.#vanished) if (now - at > VANISHED_KEPT_MS) this.#vanished.delete(id);
    if (this.#vanished.size < 10_000) this.#vanished.set(s.id, now);
    for (const t of s.terminals.values())
      t.broadcast({ type: 'error', code: 'session_ended', message: HOST_GONE_MESSAGE });
    this.remove(s, 'host_gone').catch(() => {});
  }

  /** After a gap in the watch: whatever the listing does not show running is gone. */
  async #resync(): Promise<void> {
    let hosts: LabHostSummary[];
    try {
      hosts = await this.#runtime.listLabHosts();
    } catch {
      return; // the engine is still coming back: the reaper's pass looks again
    }
    this.#endVanished(hosts);
  }

  #endVanished(hosts: LabHostSummary[]): void {
    const running = new Set(hosts.filter((h) => h.running !== false).map((h) => h.id));
    this.#pool.prune(running);
    for (const s of this.list()) if (s.hostId && !running.has(s.hostId)) this.#hostGone(s.hostId);
  }

  /** Start filling the warm pool (after leftovers of an earlier run are gone). */
  startPool(): void {
    this.#pool.fill();
  }

  /** Ready hosts per lab in the warm pool, and what each lab aims at (base size + hints). */
  poolStats(): { size: number; ready: Record<string, number>; targets: Record<string, number> } {
    return { size: this.#pool.size, ready: this.#pool.stats(), targets: this.#pool.targets() };
  }

  /**
   * A lesson page shows lab `labId` to a reader of `clientKey`: a Start may follow, so the
   * pool makes a spare for it, within its budget. True if the hint counted (a client's
   * hints count up to its session quota). Unknown lab: AppError unknown_lab.
   */
  hint(labId: string, clientKey: string): boolean {
    if (!this.#labs.has(labId)) throw new AppError('unknown_lab', `There is no lab "${labId}".`);
    if (this.#draining) return false;
    return this.#pool.hint(labId, clientKey);
  }

  get labs(): ReadonlyMap<string, LabDef> {
    return this.#labs;
  }

  get count(): number {
    return this.#sessions.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  list(): Session[] {
    return [...this.#sessions.values()];
  }

  /** Sessions at once (CL_MAX_SESSIONS, or what `auto` came to). */
  get maxSessions(): number {
    return this.#limits.maxSessions;
  }

  async create(labId: string, clientKey: string): Promise<{ session: Session; token: string }> {
    if (this.#draining) {
      throw new AppError('out_of_capacity', 'The server is shutting down; try again in a minute.', {
        retryAfter: 60,
      });
    }
    const lab = this.#labs.get(labId);
    if (!lab) throw new AppError('unknown_lab', `There is no lab "${labId}".`);
    if (this.#sessions.size >= this.#limits.maxSessions) {
      this.#refuse('out_of_capacity', labId, clientKey);
      throw new AppError('out_of_capacity', 'All lab sandboxes are in use; try again in a minute.', {
        retryAfter: 30,
      });
    }
    let mine = 0;
    for (const s of this.#sessions.values()) if (s.clientKey === clientKey) mine++;
    if (mine >= this.#limits.maxSessionsPerClient) {
      this.#refuse('too_many_sessions', labId, clientKey);
      throw new AppError(
        'rate_limited',
        `You already have ${mine} live lab sessions; stop one (or close its tab) first.`,
        { retryAfter: 10 },
      );
    }
    const wait = this.#rate.take(clientKey);
    if (wait > 0) {
      this.#refuse('rate_limited', labId, clientKey);
      throw new AppError('rate_limited', `Too many labs started; try again in ${wait} s.`, {
        retryAfter: wait,
      });
    }

    const now = this.#clock.now();
    const token = randomToken();
    const started = performance.now();
    const pooled = this.#pool.take(labId, clientKey);
    if (pooled) {
      const session = new Session({
        id: pooled.sessionId,
        token,
        lab,
        clientKey,
        now,
        ttlMs: this.#limits.ttlMs,
      });
      session.hostId = pooled.hostId;
      this.#sessions.set(session.id, session);
      // The spare's shells are the session's terminals: the page's sockets attach to them.
      for (const [name, sh] of pooled.shells) {
        const def = lab.terminals.find((t) => t.name === name);
        if (def && !sh.ended) this.#unsized.add(this.#adoptTerminal(session, def, sh.proc, sh.size));
        else sh.proc.close();
      }
      this.#renewLease(session);
      await this.#persist(session);
      this.#started(session, true, started);
      return { session, token };
    }
    const session = new Session({ id: randomToken(), token, lab, clientKey, now, ttlMs: this.#limits.ttlMs });
    this.#sessions.set(session.id, session);
    const creating = this.#engine.run(() =>
      this.#runtime.createLabHost({
        lab,
        sessionId: session.id,
        instance: this.#instance,
        expiresAt: new Date(session.expiresAt),
        // The host's own deadline: it ends then by itself, and any reaper removes it after.
        deadline: new Date(now + this.#limits.maxLifetimeMs),
        pooled: false,
      }),
    );
    // shutdown() waits for it, so a host the engine finishes after SIGTERM is still removed.
    const settled = creating.then(
      (host) => (session.ended ? this.#runtime.removeLabHost(host.id).catch(() => {}) : undefined),
      () => {},
    );
    this.#creating.add(settled);
    void settled.finally(() => this.#creating.delete(settled));
    try {
      const host = await creating;
      session.hostId = host.id;
    } catch (err) {
      this.#sessions.delete(session.id);
      const code = err instanceof AppError ? err.code : 'internal';
      this.#events.event('session.refused', { lab: lab.id, reason: code, error: String(err) });
      throw err;
    }
    if (session.ended) {
      // Removed (shutdown) while the engine was creating it: `settled` removes the host.
      await settled;
      throw new AppError('out_of_capacity', 'The server is shutting down; try again in a minute.', {
        retryAfter: 60,
      });
    }
    await this.#persist(session);
    this.#started(session, false, started);
    return { session, token };
  }

  /**
   * A pool host's own lease is the pool's max age; the session it became lives longer. In
   * the background: the Start does not wait for an exec (until it lands, the host still has
   * at least a grace period: POOL_LEASE_GRACE_MS).
   */
  #renewLease(s: Session): void {
    const hostId = s.hostId;
    if (!hostId) return;
    const until = new Date(s.createdAt + this.#limits.maxLifetimeMs);
    this.#runtime.renewLease(hostId, until).catch((err: unknown) => {
      if (!s.ended) this.#events.event('session.lease_failed', { session: s.id, error: String(err) });
    });
  }

  /** The session if the token matches: 404 for an unknown id, 401 for a wrong token. */
  authorize(id: string, token: string | undefined): Session {
    this.#notPending(id);
    this.#notVanished(id);
    const s = this.#sessions.get(id);
    if (!s || s.ended) throw new AppError('not_found', 'No such session (it may have ended).');
    if (!token || !s.tokenMatches(token)) throw new AppError('bad_token', 'Missing or wrong session token.');
    return s;
  }

  /** A ticket for one terminal of the session (404 for a terminal the lab does not have). */
  ticket(s: Session, terminal: string): { ticket: string; expiresAt: number } {
    if (!s.lab.terminals.some((t) => t.name === terminal)) {
      throw new AppError('not_found', `Lab "${s.lab.id}" has no terminal "${terminal}".`);
    }
    return s.issueTicket(terminal, this.#clock.now());
  }

  /** The session a terminal ticket opens: 404 for an unknown session, 401 for a bad ticket. */
  redeem(id: string, terminal: string, ticket: string | undefined): Session {
    this.#notPending(id);
    this.#notVanished(id);
    const s = this.#sessions.get(id);
    if (!s || s.ended) throw new AppError('not_found', 'No such session (it may have ended).');
    if (!ticket || !s.redeemTicket(ticket, terminal, this.#clock.now())) {
      throw new AppError(
        'bad_token',
        'This terminal link is used or expired; the page gets a new one when it reconnects.',
      );
    }
    return s;
  }

  async extend(s: Session): Promise<void> {
    const now = this.#clock.now();
    const cap = s.createdAt + this.#limits.maxLifetimeMs;
    s.expiresAt = Math.min(cap, Math.max(s.expiresAt, now + this.#limits.ttlMs));
    s.lastActivityAt = now;
    await this.#persist(s);
    const expiresAt = new Date(s.expiresAt).toISOString();
    for (const t of s.terminals.values()) t.broadcast({ type: 'expiring', expiresAt });
  }

  /** The session's terminal `name`, started on first use, the same shell afterwards. */
  async terminal(s: Session, name: string, size: { cols: number; rows: number }): Promise<Terminal> {
    const def = s.lab.terminals.find((t) => t.name === name);
    if (!def) throw new AppError('not_found', `Lab "${s.lab.id}" has no terminal "${name}".`);
    const live = s.terminals.get(name);
    if (live && !live.exited) {
      // A spare's shell was opened at a stock size: the reader's first socket brings theirs.
      if (this.#unsized.delete(live)) live.resize(size.cols, size.rows);
      return live;
    }
    const pending = s.opening.get(name);
    if (pending) return pending;
    const p = this.#openTerminal(s, def, size).finally(() => s.opening.delete(name));
    s.opening.set(name, p);
    return p;
  }

  async #openTerminal(s: Session, def: TerminalDef, size: { cols: number; rows: number }): Promise<Terminal> {
    if (!s.hostId) throw new AppError('not_found', 'The session is not ready.');
    const proc = await this.#runtime.openTerminal(s.hostId, def, size);
    if (s.ended) {
      proc.close();
      throw new AppError('session_ended', 'The session has ended.');
    }
    const fresh = !s.started.has(def.name);
    const t = this.#adoptTerminal(s, def, proc, size);
    if (fresh) await this.#persist(s);
    return t;
  }

  /** `proc` becomes the session's terminal `def` (marked started; the caller persists). */
  #adoptTerminal(
    s: Session,
    def: TerminalDef,
    proc: TerminalProcess,
    size: { cols: number; rows: number },
  ): Terminal {
    const t = new Terminal(
      def,
      proc,
      {
        onExit: (term) => {
          if (s.terminals.get(def.name) === term) s.terminals.delete(def.name);
        },
        onActivity: () => {
          s.lastActivityAt = this.#clock.now();
        },
        expiresAt: () => new Date(s.expiresAt),
      },
      // The shell has this size already: the client's first resize to it costs no engine call.
      { size },
    );
    s.terminals.set(def.name, t);
    s.started.add(def.name);
    return t;
  }

  /** End a session: sockets are closed, then the lab host is removed. */
  async remove(s: Session, reason: EndReason): Promise<void> {
    if (s.ended) return;
    s.ended = true;
    this.#sessions.delete(s.id);
    this.#unstore(s.id);
    // A server that shuts down says so (the page tells the reader it is restarting); any
    // other end is the session's.
    const code = reason === 'shutdown' ? CloseCode.serverShutdown : CloseCode.sessionEnded;
    for (const t of s.terminals.values()) t.close(code, `session ${reason}`);
    s.terminals.clear();
    const hostId = s.hostId;
    this.#events.event('session.stopped', {
      session: s.id,
      lab: s.lab.id,
      reason,
      ageSeconds: Math.round((this.#clock.now() - s.createdAt) / 1000),
    });
    if (hostId) await this.#runtime.removeLabHost(hostId);
  }

  /**
   * One pass of the reaper: expired and idle sessions, and lab hosts nobody owns (this
   * instance's hosts without a session, and any host past its own deadline).
   */
  async reap(): Promise<{ expired: number; idle: number; leftovers: number }> {
    // Started without an engine: take back the stored sessions once it answers.
    if (!this.#restored && (await this.restore())) {
      this.watchHosts();
      this.startPool();
    }
    const now = this.#clock.now();
    let expired = 0;
    let idle = 0;
    const ends: Promise<void>[] = [];
    for (const s of this.list()) {
      if (!s.hostId) continue; // still starting
      if (s.expiresAt <= now) {
        expired++;
        ends.push(this.remove(s, 'expired'));
      } else if (s.attachedCount === 0 && now - s.lastActivityAt >= this.#limits.idleTimeoutMs) {
        idle++;
        ends.push(this.remove(s, 'idle'));
      }
    }
    await Promise.allSettled(ends);
    this.#rate.prune();
    const leftovers = await this.removeLeftovers({ all: false });
    return { expired, idle, leftovers };
  }

  /**
   * Remove lab hosts without a live session of ours. `all`: every host of this instance
   * (at start-up, when nothing is ours yet). Hosts of other instances are left alone
   * unless past their own deadline.
   */
  async removeLeftovers(opts: { all: boolean }): Promise<number> {
    let hosts: LabHostSummary[];
    try {
      hosts = await this.#runtime.listLabHosts();
    } catch {
      return 0; // engine down: nothing to reap now
    }
    const now = this.#clock.now();
    // Also what the watch may have missed (the engine filter refuses events).
    this.#endVanished(hosts);
    const owned = new Set<string>();
    for (const s of this.#sessions.values()) owned.add(s.id);
    const doomed = hosts.filter((h) => {
      if (h.deadline && h.deadline.getTime() <= now) return true;
      // Stopped for good, whoever made it (no AutoRemove on an engine with live-restore).
      if (h.exited) return true;
      if (h.instance !== this.#instance) return false;
      return opts.all || !(owned.has(h.sessionId) || this.#pool.owns(h.sessionId));
    });
    await Promise.allSettled(doomed.map((h) => this.#runtime.removeLabHost(h.id)));
    if (doomed.length > 0) this.#events.event('reaper.removed', { count: doomed.length });
    return doomed.length;
  }

  /**
   * For a restart (an upgrade): refuse new sessions, close every terminal socket with 4013
   * after a notice (the pages reconnect to the next server), and let go of the sessions
   * without ending them: their lab hosts run on and their rows stay stored. The warm pool
   * and Starts that have not answered yet are not any reader's: removed.
   */
  async detachAll(notice: string): Promise<number> {
    this.#draining = true;
    this.#unwatch?.();
    const live = this.list();
    for (const s of live) {
      for (const t of s.terminals.values()) {
        t.broadcast({ type: 'notice', message: notice });
        t.close(CloseCode.serverRestarting, 'server restarting');
      }
      s.terminals.clear();
    }
    // A Start still at the engine never answered its reader: nobody will come back for it.
    for (const s of live) if (!s.hostId) await this.remove(s, 'shutdown');
    await Promise.allSettled([this.#pool.drain(), ...this.#creating]);
    for (const s of this.list()) this.#sessions.delete(s.id);
    return live.length;
  }

  /** Refuse new sessions and end every live one (and the ones being made: their hosts too). */
  async shutdown(): Promise<void> {
    this.#draining = true;
    this.#unwatch?.();
    await Promise.allSettled([
      ...this.list().map((s) => this.remove(s, 'shutdown')),
      this.#pool.drain(),
      ...this.#creating,
    ]);
  }

  /**
   * Takes back what an earlier run of this instance left (at start, before listening, and
   * again by the reaper while the engine could not be reached): every stored session whose
   * lab host still runs is live again, with its token, expiry and shells; every host of
   * this instance that no stored session claims is removed, and so is every stored session
   * without its host (or past its expiry, or of a lab no longer offered). Any host past its
   * own deadline goes too, whoever made it. Throws nothing; the engine down leaves the
   * stored sessions pending (503) for the next try.
   */
  async restore(): Promise<{ adopted: number; removed: number; dropped: number } | null> {
    if (this.#restored) return { adopted: 0, removed: 0, dropped: 0 };
    if (!this.#loaded) {
      try {
        const { sessions, skipped } = await this.#store.load(this.#instance);
        // (Rows of sessions of this run are theirs already.)
        for (const r of sessions) if (!this.#sessions.has(r.id)) this.#pending.set(r.id, r);
        if (skipped > 0) this.#events.event('store.skipped', { rows: skipped });
        this.#loaded = true;
      } catch (err) {
        this.#events.event('store.failed', { operation: 'load', error: String(err) });
        this.#loaded = true; // a store that cannot be read has nothing to give back
      }
    }
    let hosts: LabHostSummary[];
    try {
      hosts = await this.#runtime.listLabHosts();
    } catch {
      return null; // engine down: the stored sessions wait
    }
    const now = this.#clock.now();
    const byId = new Map(hosts.filter((h) => h.instance === this.#instance).map((h) => [h.sessionId, h]));
    const adopted = new Set<string>();
    let dropped = 0;
    for (const r of this.#pending.values()) {
      const lab = this.#labs.get(r.lab);
      const host = byId.get(r.id);
      const alive = host && host.running !== false && (!host.deadline || host.deadline.getTime() > now);
      if (!lab || !host || !alive || r.expiresAt <= now) {
        dropped++;
        this.#unstore(r.id);
        continue;
      }
      const s = new Session({
        id: r.id,
        lab,
        clientKey: r.clientKey,
        now,
        tokenSha256: r.tokenSha256,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
      });
      s.hostId = host.id;
      for (const t of r.terminals) s.started.add(t);
      this.#sessions.set(s.id, s);
      adopted.add(host.id);
      // A pool host's lease may still be the pool's (a renewal lost to the crash): again.
      if (host.pooled) this.#renewLease(s);
      if (r.hostId !== host.id) void this.#persist(s);
    }
    this.#pending.clear();
    this.#restored = true;
    // Hosts of this run (sessions started since, the pool) are not leftovers.
    const live = new Set([...this.#sessions.keys()]);
    const doomed = hosts.filter(
      (h) =>
        !adopted.has(h.id) &&
        !live.has(h.sessionId) &&
        !this.#pool.owns(h.sessionId) &&
        (h.instance === this.#instance || (h.deadline !== undefined && h.deadline.getTime() <= now)),
    );
    await Promise.allSettled(doomed.map((h) => this.#runtime.removeLabHost(h.id)));
    this.#events.event('sessions.restored', { adopted: adopted.size, removed: doomed.length, dropped });
    return { adopted: adopted.size, removed: doomed.length, dropped };
  }

  /** A session whose lab host vanished: 410 and why (ids are unguessable; nothing leaks). */
  #notVanished(id: string): void {
    if (this.#vanished.has(id) && !this.#sessions.has(id))
      throw new AppError('session_ended', HOST_GONE_MESSAGE);
  }

  /** A stored session that is not taken back yet: try again soon (503), not "gone" (404). */
  #notPending(id: string): void {
    if (!this.#pending.has(id)) return;
    throw new AppError(
      'engine_unavailable',
      'The lab machine is not reachable right now; your sandbox is kept. Trying again…',
      { retryAfter: 5 },
    );
  }

  /** Keep the session for a restart. A failure is logged: the session still works now. */
  async #persist(s: Session): Promise<void> {
    if (s.ended) return;
    try {
      await this.#store.save({
        id: s.id,
        instance: this.#instance,
        tokenSha256: s.tokenSha256,
        lab: s.lab.id,
        clientKey: s.clientKey,
        createdAt: s.createdAt,
        expiresAt: s.expiresAt,
        hostId: s.hostId,
        terminals: [...s.started],
      });
    } catch (err) {
      this.#events.event('store.failed', { operation: 'save', session: s.id, error: String(err) });
    }
  }

  #unstore(id: string): void {
    this.#store.remove(id).catch((err: unknown) => {
      this.#events.event('store.failed', { operation: 'remove', session: id, error: String(err) });
    });
  }

  #started(s: Session, pooled: boolean, since: number): void {
    this.#events.event('session.started', {
      session: s.id,
      lab: s.lab.id,
      pooled,
      ms: Math.round(performance.now() - since),
      sessions: this.#sessions.size,
    });
  }

  #refuse(reason: string, lab: string, clientKey: string): void {
    this.#events.event('session.refused', { lab, reason, client: clientKey });
  }
}
