/**
 * The default session store: one SQLite file in the data directory (CL_DATA_DIR), through
 * Node's own `node:sqlite`.
 *
 * Why node:sqlite and not a driver from npm (better-sqlite3): it ships with every Node the
 * server runs on (22.18 and later: no flag since 22.13; "release candidate" on 24), so
 * there is no native module to build (the server image is assembled without a network, and
 * npm here holds back install scripts) and nothing to keep in step with Node's ABI. Its
 * synchronous API is what a handful of small writes per session wants. On Node 22 it
 * prints one ExperimentalWarning at start; measured on this machine, a write (WAL,
 * synchronous=NORMAL) took 0.14 ms on Node 24 and 0.21 ms on Node 22.
 *
 * One server process per database (issue 15: a fleet needs a shared database, another
 * store behind the same interface); several instances may share a file, each reads its own
 * rows.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type SessionStore, type StoredSession, StoredSessionSchema } from './session-store.ts';

/** The schema version this code reads and writes (PRAGMA user_version). */
const SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE sessions (
  id           TEXT PRIMARY KEY,
  instance     TEXT NOT NULL,
  token_sha256 TEXT NOT NULL,
  lab          TEXT NOT NULL,
  client_key   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  host_id      TEXT,
  terminals    TEXT NOT NULL DEFAULT '[]'
) STRICT;
CREATE INDEX sessions_instance ON sessions (instance);
`;

export const DB_FILE = 'sessions.db';

interface Row {
  id: string;
  instance: string;
  token_sha256: string;
  lab: string;
  client_key: string;
  created_at: number;
  expires_at: number;
  host_id: string | null;
  terminals: string;
}

export class SqliteSessionStore implements SessionStore {
  readonly where: string;
  readonly #db: DatabaseSync;
  readonly #put: StatementSync;
  readonly #del: StatementSync;
  readonly #all: StatementSync;

  /** Opens (creating) `<dir>/sessions.db`; throws with the reason if it cannot. */
  constructor(dir: string) {
    // Token hashes and client addresses: the owner only.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.where = join(dir, DB_FILE);
    this.#db = new DatabaseSync(this.where);
    // Before the journal files exist: SQLite gives them the database file's mode.
    chmodSync(this.where, 0o600);
    this.#db.exec('PRAGMA busy_timeout = 5000');
    // WAL: a write is one append, and a crash (SIGKILL, power) never leaves half a row.
    this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec('PRAGMA synchronous = NORMAL');
    this.#migrate();
    this.#put = this.#db.prepare(
      `INSERT OR REPLACE INTO sessions
         (id, instance, token_sha256, lab, client_key, created_at, expires_at, host_id, terminals)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#del = this.#db.prepare('DELETE FROM sessions WHERE id = ?');
    this.#all = this.#db.prepare('SELECT * FROM sessions WHERE instance = ? ORDER BY created_at');
  }

  #migrate(): void {
    const { user_version: v } = this.#db.prepare('PRAGMA user_version').get() as { user_version: number };
    if (v === SCHEMA_VERSION) return;
    if (v > SCHEMA_VERSION) {
      throw new Error(
        `${this.where} was written by a newer server (schema ${v}, this one reads ${SCHEMA_VERSION}): ` +
          'upgrade this server, or point CL_DATA_DIR elsewhere',
      );
    }
    this.#db.exec(`BEGIN; ${SCHEMA_V1} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
  }

  async load(instance: string): Promise<{ sessions: StoredSession[]; skipped: number }> {
    const sessions: StoredSession[] = [];
    let skipped = 0;
    for (const row of this.#all.all(instance) as unknown as Row[]) {
      let terminals: unknown;
      try {
        terminals = JSON.parse(row.terminals);
      } catch {
        terminals = null;
      }
      const r = StoredSessionSchema.safeParse({
        id: row.id,
        instance: row.instance,
        tokenSha256: row.token_sha256,
        lab: row.lab,
        clientKey: row.client_key,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        hostId: row.host_id,
        terminals,
      });
      if (r.success) sessions.push(r.data);
      else skipped++;
    }
    return { sessions, skipped };
  }

  async save(s: StoredSession): Promise<void> {
    this.#put.run(
      s.id,
      s.instance,
      s.tokenSha256,
      s.lab,
      s.clientKey,
      s.createdAt,
      s.expiresAt,
      s.hostId,
      JSON.stringify(s.terminals),
    );
  }

  async remove(id: string): Promise<void> {
    this.#del.run(id);
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}
