/**
 * Unit tests of the panels' poller on a fake clock: no request while inactive, one at a
 * time about once a second while active, none after deactivation (the one in flight is
 * aborted), backoff on errors, and stop.
 *   node --test src/lib/panels/poller.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Poller, type Timers } from './poller.ts';

class FakeTimers implements Timers {
  t = 0;
  #next = 1;
  #queue = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#queue.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#queue.delete(h as number);
  }
  now(): number {
    return this.t;
  }
  get pending(): number {
    return this.#queue.size;
  }
  /** Moves the clock, running due timers in order (and letting promises settle). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = [...this.#queue].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#queue.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
    await flush();
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));

interface Call {
  signal: AbortSignal;
  resolve(v: number): void;
  reject(e: unknown): void;
}

function setup(onError: (e: unknown) => 'retry' | 'stop' = () => 'retry') {
  const timers = new FakeTimers();
  const calls: Call[] = [];
  const data: number[] = [];
  const errors: unknown[] = [];
  const poller = new Poller<number>({
    intervalMs: 1000,
    timers,
    load: (signal) =>
      new Promise<number>((resolve, reject) => {
        calls.push({ signal, resolve, reject });
      }),
    onData: (v) => data.push(v),
    onError: (e) => {
      errors.push(e);
      return onError(e);
    },
  });
  return { timers, calls, data, errors, poller };
}

test('no request until active; then one at once and one about every second', async () => {
  const { timers, calls, data, poller } = setup();
  await timers.advance(5000);
  assert.equal(calls.length, 0, 'inactive: nothing');
  poller.setActive(true);
  assert.equal(calls.length, 1, 'the first request starts at once');
  await timers.advance(200);
  calls[0]!.resolve(1);
  await timers.advance(0);
  assert.deepEqual(data, [1]);
  await timers.advance(799);
  assert.equal(calls.length, 1, 'the next one starts a second after the previous started');
  await timers.advance(1);
  assert.equal(calls.length, 2);
  calls[1]!.resolve(2);
  await timers.advance(1000);
  assert.equal(calls.length, 3);
  assert.deepEqual(data, [1, 2]);
});

test('one request at a time, even when one takes longer than the interval', async () => {
  const { timers, calls, poller } = setup();
  poller.setActive(true);
  await timers.advance(5000);
  assert.equal(calls.length, 1, 'a slow answer is waited for');
  calls[0]!.resolve(1);
  await timers.advance(0);
  assert.equal(calls.length, 2, 'and the next starts right after it');
});

test('deactivating aborts the request in flight and stops polling; setActive is idempotent', async () => {
  const { timers, calls, data, poller } = setup();
  poller.setActive(true);
  poller.setActive(true);
  assert.equal(calls.length, 1);
  poller.setActive(false);
  assert.equal(calls[0]!.signal.aborted, true);
  calls[0]!.resolve(1);
  await timers.advance(10_000);
  assert.deepEqual(data, [], 'an aborted answer is dropped');
  assert.equal(calls.length, 1, 'no more requests while inactive');
  assert.equal(timers.pending, 0, 'and no timer left');
  poller.setActive(true);
  assert.equal(calls.length, 2, 'reactivated: at once again');
  poller.dispose();
  assert.equal(poller.active, false);
});

test('errors back off; "stop" ends polling until the next activation', async () => {
  const { timers, calls, errors, poller } = setup();
  poller.setActive(true);
  calls[0]!.reject(new Error('boom'));
  await timers.advance(0);
  assert.equal(errors.length, 1);
  await timers.advance(1999);
  assert.equal(calls.length, 1, 'backs off 2 s after the first failure');
  await timers.advance(1);
  assert.equal(calls.length, 2);
  calls[1]!.reject(new Error('boom'));
  await timers.advance(3999);
  assert.equal(calls.length, 2, '4 s after the second');
  await timers.advance(1);
  assert.equal(calls.length, 3);

  const s = setup(() => 'stop');
  s.poller.setActive(true);
  s.calls[0]!.reject(new Error('gone'));
  await s.timers.advance(30_000);
  assert.equal(s.calls.length, 1, 'stopped');
  assert.equal(s.poller.active, false);
  s.poller.setActive(true);
  assert.equal(s.calls.length, 2, 'a new activation starts again');
});
