/**
 * Where sessions are kept so that a restarted server finds them again (issue 15): a small
 * interface, so that the embedded SQLite store (sqlite-store.ts, the default) can be joined
 * by one on a shared database (PostgreSQL) for a fleet of servers later. Only what a
 * restarted server needs to take a session back is kept: never a token (its SHA-256 only),
 * never a ticket (they live 30 s), never terminal contents.
 */
import { z } from 'zod';

/** One session as stored. */
export interface StoredSession {
  id: string;
  /** The server instance (CL_INSTANCE) it belongs to: a server loads only its own. */
  instance: string;
  /** SHA-256 of the session token, hex (the token itself is never stored). */
  tokenSha256: string;
  lab: string;
  /** The key per-client limits count it under (an address, or its /64). */
  clientKey: string;
  /** ms since the epoch. */
  createdAt: number;
  expiresAt: number;
  /** The runtime's id of its lab host (null while it is being made). */
  hostId: string | null;
  /** Terminals whose shells were started (they run on in the lab host, under dtach). */
  terminals: string[];
}

/** What a stored row must look like; the database is a boundary like any input. */
export const StoredSessionSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  instance: z.string().min(1).max(200),
  tokenSha256: z.string().regex(/^[0-9a-f]{64}$/),
  lab: z.string().min(1).max(64),
  clientKey: z.string().max(200),
  createdAt: z.number().int().nonnegative(),
  expiresAt: z.number().int().nonnegative(),
  hostId: z.string().min(1).max(128).nullable(),
  terminals: z.array(z.string().regex(/^[a-z][a-z0-9-]{0,30}$/)).max(8),
});

export interface SessionStore {
  /** Every stored session of `instance` (rows that fail the schema are skipped and reported). */
  load(instance: string): Promise<{ sessions: StoredSession[]; skipped: number }>;
  /** Insert or replace. */
  save(s: StoredSession): Promise<void>;
  remove(id: string): Promise<void>;
  close(): Promise<void>;
  /** Where it keeps them, for the start-up log (a path, or `memory`). */
  readonly where: string;
}

/**
 * Keeps sessions for as long as the process lives: for unit tests and for an app built
 * without a data directory. A restart finds nothing.
 */
export class MemorySessionStore implements SessionStore {
  readonly where = 'memory';
  readonly #rows = new Map<string, StoredSession>();

  async load(instance: string): Promise<{ sessions: StoredSession[]; skipped: number }> {
    const sessions = [...this.#rows.values()].filter((s) => s.instance === instance).map(copy);
    return { sessions, skipped: 0 };
  }

  async save(s: StoredSession): Promise<void> {
    this.#rows.set(s.id, copy(s));
  }

  async remove(id: string): Promise<void> {
    this.#rows.delete(id);
  }

  async close(): Promise<void> {}
}

function copy(s: StoredSession): StoredSession {
  return { ...s, terminals: [...s.terminals] };
}
