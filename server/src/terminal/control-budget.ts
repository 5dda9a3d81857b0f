/**
 * One socket's budget for control messages that cost the server a reply: a token bucket
 * (`rate` per second, `burst` deep) that may go into debt. A message beyond the budget is
 * ignored and still adds to the debt, so a client that keeps sending faster than `rate`
 * digs deeper until the debt passes `floodLimit`: then it is a flood, and the socket goes.
 * A short burst over the budget only costs that client some answers until the debt is paid.
 */
export type Verdict = 'ok' | 'ignore' | 'flood';

export class ControlBudget {
  readonly #rate: number;
  readonly #burst: number;
  readonly #floodLimit: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(opts: { rate: number; burst: number; floodLimit: number; now: () => number }) {
    this.#rate = opts.rate;
    this.#burst = opts.burst;
    this.#floodLimit = opts.floodLimit;
    this.#now = opts.now;
    this.#tokens = opts.burst;
    this.#at = opts.now();
  }

  take(): Verdict {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) * this.#rate) / 1000);
    this.#at = now;
    this.#tokens -= 1;
    if (this.#tokens >= 0) return 'ok';
    return this.#tokens < -this.#floodLimit ? 'flood' : 'ignore';
  }
}
