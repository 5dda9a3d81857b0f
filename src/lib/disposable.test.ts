/**
 * Unit tests of the ownership helpers: a store disposes what it owns (listeners, timers,
 * anything disposable) once, last added first, and what is added after its end at once.
 *   node --test src/lib/disposable.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DisposableStore, toDisposable } from './disposable.ts';

test('dispose() disposes everything once, last added first', () => {
  const order: string[] = [];
  const store = new DisposableStore();
  store.add(toDisposable(() => order.push('a')));
  store.add(toDisposable(() => order.push('b')));
  assert.equal(store.size, 2);
  store.dispose();
  store.dispose();
  assert.deepEqual(order, ['b', 'a']);
  assert.equal(store.size, 0);
  assert.equal(store.disposed, true);
});

test('what is added to a disposed store is disposed at once', () => {
  const store = new DisposableStore();
  store.dispose();
  let n = 0;
  store.add(toDisposable(() => n++));
  assert.equal(n, 1);
});

test('listen() removes its listener on dispose', () => {
  const target = new EventTarget();
  const store = new DisposableStore();
  let n = 0;
  store.listen(target, 'ping', () => n++);
  target.dispatchEvent(new Event('ping'));
  store.dispose();
  target.dispatchEvent(new Event('ping'));
  assert.equal(n, 1);
});

test('a timeout is forgotten once it fired, and never fires after dispose', async () => {
  const store = new DisposableStore();
  let fired = 0;
  store.timeout(() => fired++, 5);
  store.timeout(() => fired++, 30);
  assert.equal(store.size, 2);
  await new Promise((r) => setTimeout(r, 15));
  assert.equal(fired, 1);
  assert.equal(store.size, 1, 'the fired timeout left the store');
  store.dispose();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(fired, 1, 'the disposed timeout never fired');
});

test('an interval runs until disposed; drop() disposes one item early', async () => {
  const store = new DisposableStore();
  let ticks = 0;
  const iv = store.interval(() => ticks++, 5);
  let other = 0;
  store.add(toDisposable(() => other++));
  await new Promise((r) => setTimeout(r, 30));
  store.drop(iv);
  const seen = ticks;
  assert.ok(seen >= 2, `ticked ${seen} times`);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ticks, seen, 'no tick after drop');
  assert.equal(store.size, 1);
  assert.equal(other, 0, 'drop leaves the rest alone');
});
