/**
 * One uid per lab host. Without userns-remap every lab host's uid is a uid of the machine,
 * and the kernel keeps some counts per uid whatever the container: user, mount, PID, ...
 * namespaces (`/proc/sys/user/*`), inotify instances and watches, pipe buffers, queued
 * signals, RLIMIT_NPROC. Sandboxes sharing a uid share those allowances, so one reader
 * holding every user namespace of the uid would stop everyone else's nested container from
 * starting (`unshare -U`: ENOSPC). A uid of its own bounds each sandbox by itself.
 *
 * The uid is picked at random among those no live lab host uses. Which ones are used is
 * read from the engine at every pick (the `containerlabs.uid` label of every lab host,
 * whichever server instance made it, pooled or leftover), plus the picks of this process
 * whose hosts the engine may not list yet.
 *
 * WARNING: two server instances on one engine can pick the same uid in the same few
 * milliseconds (pick, then create): with 100 000 uids and a few hundred hosts the chance
 * is tiny, and the cost is two sandboxes sharing those counts again, not a privilege.
 */
import { randomInt } from 'node:crypto';
import { AppError } from '../../errors.ts';

export interface UidRange {
  readonly first: number;
  readonly last: number;
}

/** A live lab host as the engine lists it; `uid` from its label, if it has one. */
export interface ListedHost {
  hostId: string;
  uid: number | undefined;
}

export interface UidAllocatorDeps {
  /** The uids to pick from (may depend on the engine, so asked once, lazily). */
  range: () => Promise<UidRange>;
  /** Every live lab host on the engine, of every server instance. */
  list: () => Promise<ListedHost[]>;
  /** Uniform integer in [0, n); crypto's by default. */
  randomInt?: (n: number) => number;
}

interface Reservation {
  hostId: string | undefined;
  /** `#seq` when the host id became known; a listing that began later must show it. */
  boundAt: number;
}

/** Random tries before scanning: with the range mostly free, the first try nearly always wins. */
const RANDOM_TRIES = 32;

export class UidAllocator {
  readonly #d: UidAllocatorDeps;
  readonly #random: (n: number) => number;
  #range: Promise<UidRange> | null = null;
  /** uid → this process's pick, until its host is removed or seen gone. */
  readonly #mine = new Map<number, Reservation>();
  #seq = 0;

  constructor(deps: UidAllocatorDeps) {
    this.#d = deps;
    this.#random = deps.randomInt ?? randomInt;
  }

  #rangeOnce(): Promise<UidRange> {
    if (!this.#range) {
      this.#range = this.#d.range();
      this.#range.catch(() => {
        this.#range = null;
      });
    }
    return this.#range;
  }

  /**
   * Picks a free uid and reserves it; call `bind` with the host id once the host exists,
   * or `release` if it was never made. Throws AppError('out_of_capacity') when every uid
   * of the range is in use.
   */
  async reserve(): Promise<number> {
    const range = await this.#rangeOnce();
    const listingStarted = ++this.#seq;
    const listed = await this.#d.list();
    const live = new Set(listed.map((h) => h.hostId));
    // A host of ours that a listing begun after its creation does not show is gone
    // (AutoRemove at its deadline, another instance's reaper): its uid is free again.
    for (const [uid, r] of this.#mine) {
      if (r.hostId !== undefined && r.boundAt < listingStarted && !live.has(r.hostId)) this.#mine.delete(uid);
    }
    const used = new Set<number>(this.#mine.keys());
    for (const h of listed) if (h.uid !== undefined) used.add(h.uid);
    const uid = this.#pick(range, used);
    this.#mine.set(uid, { hostId: undefined, boundAt: Number.POSITIVE_INFINITY });
    return uid;
  }

  #pick(range: UidRange, used: ReadonlySet<number>): number {
    const size = range.last - range.first + 1;
    let inRange = 0;
    for (const u of used) if (u >= range.first && u <= range.last) inRange++;
    if (inRange >= size) {
      throw new AppError('out_of_capacity', 'All lab sandboxes are in use; try again in a minute.', {
        retryAfter: 30,
        cause: new Error(
          `every uid of ${range.first}-${range.last} (${size}) is in use by a lab host: widen CL_LAB_UIDS`,
        ),
      });
    }
    for (let i = 0; i < RANDOM_TRIES; i++) {
      const uid = range.first + this.#random(size);
      if (!used.has(uid)) return uid;
    }
    // Crowded range: walk from a random start to the next free uid (one exists).
    const start = this.#random(size);
    for (let i = 0; i < size; i++) {
      const uid = range.first + ((start + i) % size);
      if (!used.has(uid)) return uid;
    }
    throw new Error('unreachable: a free uid was counted but not found');
  }

  /** The reserved uid now belongs to this host. */
  bind(uid: number, hostId: string): void {
    const r = this.#mine.get(uid);
    if (r) {
      r.hostId = hostId;
      r.boundAt = ++this.#seq;
    }
  }

  /** The host was never made: its uid is free again. */
  release(uid: number): void {
    this.#mine.delete(uid);
  }

  /** The host is removed: its uid is free again. */
  releaseHost(hostId: string): void {
    for (const [uid, r] of this.#mine) if (r.hostId === hostId) this.#mine.delete(uid);
  }

  /** uids this process holds right now (for tests and metrics). */
  get reserved(): number {
    return this.#mine.size;
  }
}
