/**
 * Unit tests of the control budget (fake clock): burst, sustained rate, debt, flood.
 *   node --test server/src/terminal/control-budget.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ControlBudget, type Verdict } from './control-budget.ts';

function budget() {
  let now = 0;
  const b = new ControlBudget({ rate: 10, burst: 5, floodLimit: 20, now: () => now });
  const take = (n: number): Verdict[] => Array.from({ length: n }, () => b.take());
  return { take, wait: (ms: number) => (now += ms) };
}

test('a full bucket allows a burst, then ignores', () => {
  const { take } = budget();
  assert.deepEqual(take(6), ['ok', 'ok', 'ok', 'ok', 'ok', 'ignore']);
});

test('at the rate, every message is allowed, however long', () => {
  const { take, wait } = budget();
  for (let i = 0; i < 10_000; i++) {
    assert.equal(take(1)[0], 'ok', `message ${i}`);
    wait(100);
  }
});

test('ignored messages are debt: answered again only once it is paid', () => {
  const { take, wait } = budget();
  take(5);
  assert.deepEqual(new Set(take(10)), new Set(['ignore']));
  wait(1000); // 10 tokens back: the debt (10) is paid, nothing to spend yet
  assert.equal(take(1)[0], 'ignore');
  wait(200);
  assert.equal(take(1)[0], 'ok');
  // Idle time refills only up to the burst.
  wait(60_000);
  assert.deepEqual(take(6), ['ok', 'ok', 'ok', 'ok', 'ok', 'ignore']);
});

test('a debt beyond the flood limit is a flood', () => {
  const { take } = budget();
  const verdicts = take(5 + 20 + 1);
  assert.equal(verdicts.at(-2), 'ignore');
  assert.equal(verdicts.at(-1), 'flood');
});
