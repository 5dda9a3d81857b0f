/**
 * One snapshot at a time per session and kind, reused for about a second. Every snapshot
 * is a `docker exec` in the lab host; the panels poll, checks read the same figures, and a
 * client may send requests in parallel: without this, each request would be one more
 * exec, at whatever rate the client likes.
 *
 * - Single flight: a request while a read is under way waits for that read.
 * - A read is reused until `maxAgeMs` after it *started* (so no one gets figures older than
 *   that, however slow the exec), failures included (a failing engine is not asked again
 *   at the request rate).
 * - Entries hang off the owner object (the Session) in a WeakMap: a session that ends takes
 *   its snapshots with it.
 */

/** How long a snapshot is served again: the panels poll about once a second. */
export const SNAPSHOT_MAX_AGE_MS = 1000;

interface Entry {
  startedAt: number;
  pending: boolean;
  value: Promise<unknown>;
}

export class SnapshotCache {
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #entries = new WeakMap<object, Map<string, Entry>>();

  constructor(opts: { maxAgeMs?: number; now?: () => number } = {}) {
    this.#maxAgeMs = opts.maxAgeMs ?? SNAPSHOT_MAX_AGE_MS;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** The `kind` snapshot of `owner`: the one being read, a recent one, or a new read. */
  get<T>(owner: object, kind: string, read: () => Promise<T>): Promise<T> {
    let kinds = this.#entries.get(owner);
    if (!kinds) {
      kinds = new Map();
      this.#entries.set(owner, kinds);
    }
    const now = this.#now();
    const known = kinds.get(kind);
    if (known && (known.pending || now - known.startedAt < this.#maxAgeMs)) return known.value as Promise<T>;
    const entry: Entry = { startedAt: now, pending: true, value: Promise.resolve().then(read) };
    const settle = () => {
      entry.pending = false;
    };
    // Also keeps a failed read from counting as an unhandled rejection.
    entry.value.then(settle, settle);
    kinds.set(kind, entry);
    return entry.value as Promise<T>;
  }
}
