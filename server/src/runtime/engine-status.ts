/**
 * The engine's state as the server last saw it. `/api/v1/health` is public and polled by
 * every lesson page: asking the engine on each request would let anyone turn page loads into
 * engine calls. So one probe runs at a time, and its answer is reused for `ttlMs`.
 */
import type { EngineInfo, Runtime } from './runtime.ts';

export interface EngineState extends EngineInfo {
  /** When this answer was obtained (ms since the epoch, the injected clock). */
  checkedAt: number;
}

export class EngineStatus {
  readonly #runtime: Pick<Runtime, 'info'>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #last: EngineState | undefined;
  #probe: Promise<EngineState> | undefined;

  constructor(runtime: Pick<Runtime, 'info'>, opts: { ttlMs?: number; now?: () => number } = {}) {
    this.#runtime = runtime;
    this.#ttlMs = opts.ttlMs ?? 5000;
    this.#now = opts.now ?? Date.now;
  }

  /** The cached state, or a fresh one when it is older than the TTL (one probe at a time). */
  current(): Promise<EngineState> {
    const last = this.#last;
    if (last && this.#now() - last.checkedAt < this.#ttlMs) return Promise.resolve(last);
    return this.refresh();
  }

  /** Ask the engine now (joins a probe already under way). */
  refresh(): Promise<EngineState> {
    this.#probe ??= this.#runtime
      .info()
      .then((info) => {
        this.#last = { ...info, checkedAt: this.#now() };
        return this.#last;
      })
      .finally(() => {
        this.#probe = undefined;
      });
    return this.#probe;
  }
}
