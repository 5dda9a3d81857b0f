/**
 * Ownership for everything a lab creates in the page, in the manner of xterm.js's
 * IDisposable: each listener, timer, socket client, terminal and player is added to the
 * store of whoever created it, and that owner's `dispose()` removes it. A torn-down lab or
 * session then leaves nothing running (tests/browser/teardown.test.ts counts).
 */

export interface Disposable {
  dispose(): void;
}

export function toDisposable(fn: () => void): Disposable {
  let done = false;
  return {
    dispose() {
      if (done) return;
      done = true;
      fn();
    },
  };
}

/** A set of disposables disposed together, last added first. */
export class DisposableStore implements Disposable {
  readonly #items = new Set<Disposable>();
  #disposed = false;

  get disposed(): boolean {
    return this.#disposed;
  }

  /** How many things it owns right now (for tests). */
  get size(): number {
    return this.#items.size;
  }

  /** Takes ownership of `d`; a store already disposed disposes it at once. */
  add<T extends Disposable>(d: T): T {
    if (this.#disposed) d.dispose();
    else this.#items.add(d);
    return d;
  }

  /** Disposes one item now and forgets it. */
  drop(d: Disposable | undefined): void {
    if (!d) return;
    this.#items.delete(d);
    d.dispose();
  }

  /** `target.addEventListener`, removed on dispose (explicitly: counters see it go). */
  listen<K extends string>(
    target: EventTarget,
    type: K,
    fn: (ev: Event) => void,
    opts?: AddEventListenerOptions,
  ): Disposable {
    target.addEventListener(type, fn, opts);
    return this.add(toDisposable(() => target.removeEventListener(type, fn, opts)));
  }

  /** A timeout that is forgotten once it fired, cleared if disposed before. */
  timeout(fn: () => void, ms: number): Disposable {
    let d: Disposable | undefined;
    const id = setTimeout(() => {
      if (d) this.#items.delete(d);
      fn();
    }, ms);
    d = this.add(toDisposable(() => clearTimeout(id)));
    return d;
  }

  interval(fn: () => void, ms: number): Disposable {
    const id = setInterval(fn, ms);
    return this.add(toDisposable(() => clearInterval(id)));
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const items = [...this.#items].reverse();
    this.#items.clear();
    for (const d of items) d.dispose();
  }
}
