/**
 * A tiny asciicast v2 player (https://docs.asciinema.org/manual/asciicast/v2/): a JSON
 * header line, then one `[time, "o", data]` event per line. Several casts recorded in the
 * same run (one per terminal, same `timestamp`) play on one shared clock, so the
 * terminals take turns exactly as they did when recorded.
 */

export interface CastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp?: number;
  idle_time_limit?: number;
  title?: string;
}

export interface Cast {
  header: CastHeader;
  /** Output events, seconds since the start of the recording. */
  events: { t: number; data: string }[];
}

export class CastFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CastFormatError';
  }
}

/** Parse an asciicast v2 file; input (`"i"`) and marker events are skipped. */
export function parseCast(text: string): Cast {
  const [first, ...rest] = text.split('\n').filter((l) => l.trim() !== '');
  if (first === undefined) throw new CastFormatError('empty recording');
  let header: CastHeader;
  try {
    header = JSON.parse(first) as CastHeader;
  } catch {
    throw new CastFormatError('the first line is not a JSON header');
  }
  if (header.version !== 2 || !Number.isInteger(header.width) || !Number.isInteger(header.height)) {
    throw new CastFormatError('not an asciicast v2 header');
  }
  const events: Cast['events'] = [];
  for (const [i, line] of rest.entries()) {
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      throw new CastFormatError(`line ${i + 2} is not JSON`);
    }
    if (
      !Array.isArray(ev) ||
      typeof ev[0] !== 'number' ||
      typeof ev[1] !== 'string' ||
      typeof ev[2] !== 'string'
    ) {
      throw new CastFormatError(`line ${i + 2} is not an event [time, code, data]`);
    }
    if (ev[1] === 'o') events.push({ t: ev[0], data: ev[2] });
  }
  return { header, events };
}

export interface CastTrack {
  cast: Cast;
  write(data: string): void;
  reset(): void;
}

export type PlayerState = 'ready' | 'playing' | 'paused' | 'ended';

export interface CastPlayerOptions {
  /** Longest pause kept between two events, in seconds. Default: the header's, else 1.5. */
  idleTimeLimit?: number;
  speed?: number;
  onState?(state: PlayerState): void;
  /** Time and timers (default: the page's); tests pass a clock they move by hand. */
  clock?: PlayerClock;
}

/** What the player needs of time: milliseconds, and one timer at a time. */
export interface PlayerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const pageClock: PlayerClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Plays tracks on one clock; owns its timer (dispose() stops it). */
export class CastPlayer {
  readonly #timeline: { t: number; track: number; data: string }[];
  readonly #tracks: CastTrack[];
  readonly #speed: number;
  readonly #onState: ((s: PlayerState) => void) | undefined;
  #next = 0;
  /** Position in timeline seconds when the clock last (re)started. */
  #offset = 0;
  #startedAt = 0;
  #timer: unknown;
  #state: PlayerState = 'ready';
  readonly #clock: PlayerClock;

  constructor(tracks: CastTrack[], opts: CastPlayerOptions = {}) {
    this.#tracks = tracks;
    this.#speed = opts.speed ?? 1;
    this.#onState = opts.onState;
    this.#clock = opts.clock ?? pageClock;
    const limit = opts.idleTimeLimit ?? tracks[0]?.cast.header.idle_time_limit ?? 1.5;
    const merged = tracks.flatMap((tr, track) =>
      tr.cast.events.map((e) => ({ t: e.t, track, data: e.data })),
    );
    merged.sort((a, b) => a.t - b.t);
    // Compress long pauses on the merged timeline so the tracks stay in step.
    let prev = 0;
    let shift = 0;
    for (const e of merged) {
      const gap = e.t - prev;
      prev = e.t;
      if (gap > limit) shift += gap - limit;
      e.t -= shift;
    }
    this.#timeline = merged;
  }

  get state(): PlayerState {
    return this.#state;
  }

  /** Length in seconds (after idle compression). */
  get duration(): number {
    return this.#timeline.at(-1)?.t ?? 0;
  }

  play(): void {
    if (this.#state === 'playing') return;
    if (this.#state === 'ended' || this.#state === 'ready') this.#rewind();
    this.#startedAt = this.#clock.now();
    this.#setState('playing');
    this.#tick();
  }

  pause(): void {
    if (this.#state !== 'playing') return;
    this.#clock.clearTimeout(this.#timer);
    this.#offset = this.#now();
    this.#setState('paused');
  }

  toggle(): void {
    if (this.#state === 'playing') this.pause();
    else this.play();
  }

  dispose(): void {
    this.#clock.clearTimeout(this.#timer);
  }

  #rewind(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#next = 0;
    this.#offset = 0;
    for (const tr of this.#tracks) tr.reset();
  }

  #now(): number {
    return this.#offset + ((this.#clock.now() - this.#startedAt) / 1000) * this.#speed;
  }

  #tick = (): void => {
    const now = this.#now();
    let upcoming = this.#timeline[this.#next];
    while (upcoming && upcoming.t <= now) {
      this.#tracks[upcoming.track]?.write(upcoming.data);
      upcoming = this.#timeline[++this.#next];
    }
    if (!upcoming) {
      this.#setState('ended');
      return;
    }
    this.#timer = this.#clock.setTimeout(this.#tick, Math.max(0, ((upcoming.t - now) * 1000) / this.#speed));
  };

  #setState(s: PlayerState): void {
    this.#state = s;
    this.#onState?.(s);
  }
}
