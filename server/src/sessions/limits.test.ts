import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testLab } from '../../../tests/unit-support/test-lab.ts';
import { autoMaxSessions, FALLBACK_MAX_SESSIONS, RateLimiter, Semaphore } from './limits.ts';

/** A promise and its resolve, to finish tasks in the order a test chooses. */
function gate(): { promise: Promise<void>; open(): void } {
  let open = () => {};
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

const ticks = async (n = 5) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

test('semaphore: at most `limit` tasks at once, the others wait in order and are counted', async () => {
  const sem = new Semaphore(2);
  const gates = [gate(), gate(), gate(), gate()];
  const started: number[] = [];
  let running = 0;
  let most = 0;
  const results = gates.map((g, i) =>
    sem.run(async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await g.promise;
      running--;
      return i * 10;
    }),
  );
  await ticks();
  assert.deepEqual(started, [0, 1]);
  assert.equal(sem.waiting, 2);
  gates[1]!.open();
  await ticks();
  assert.deepEqual(started, [0, 1, 2], 'the first waiting task takes the free slot');
  assert.equal(sem.waiting, 1);
  gates[0]!.open();
  gates[2]!.open();
  gates[3]!.open();
  assert.deepEqual(await Promise.all(results), [0, 10, 20, 30]);
  assert.equal(most, 2);
  assert.equal(sem.waiting, 0);
});

test('semaphore: a failing task passes its error on and frees its slot', async () => {
  const sem = new Semaphore(1);
  await assert.rejects(
    sem.run(async () => {
      throw new Error('engine said no');
    }),
    /engine said no/,
  );
  assert.equal(await sem.run(async () => 'next'), 'next');
});

test('rate limiter: a burst of perMinute, then one per 60/perMinute s; peek takes nothing', () => {
  let now = 0;
  const rl = new RateLimiter(6, () => now);
  assert.equal(rl.peek('a'), 0);
  for (let i = 0; i < 6; i++) assert.equal(rl.take('a'), 0);
  assert.equal(rl.take('a'), 10, 'the next token in 10 s');
  assert.equal(rl.peek('a'), 10);
  assert.equal(rl.take('b'), 0, 'keys are apart');
  now += 10_000;
  assert.equal(rl.peek('a'), 0);
  assert.equal(rl.take('a'), 0);
  now += 60_000;
  rl.prune();
  assert.equal(rl.peek('a'), 0);
});

test('CL_MAX_SESSIONS=auto: by memory and CPUs of the engine, the fallback when it says nothing', () => {
  const GiB = 1024 ** 3;
  const lab = testLab(); // 128 MiB
  const big = { ...lab, id: 'big', limits: { ...lab.limits, memory: '512m' } };
  const engine = { reachable: true, memoryBytes: 23 * GiB, cpus: 2 };
  // CI's kind: 23 GiB / 2 / 128 MiB = 92 by memory, 2 × 25 by CPU.
  assert.equal(autoMaxSessions(engine, [lab]), 50);
  // The largest lab's limit counts: 23 GiB / 2 / 512 MiB = 23.
  assert.equal(autoMaxSessions(engine, [lab, big]), 23);
  // A small machine still runs a few; a huge one is capped.
  assert.equal(autoMaxSessions({ reachable: true, memoryBytes: 1 * GiB, cpus: 1 }, [big]), 4);
  assert.equal(autoMaxSessions({ reachable: true, memoryBytes: 4096 * GiB, cpus: 256 }, [lab]), 1000);
  assert.equal(autoMaxSessions({ reachable: false }, [lab]), FALLBACK_MAX_SESSIONS);
  assert.equal(autoMaxSessions({ reachable: true, cpus: 2 }, [lab]), FALLBACK_MAX_SESSIONS);
  assert.equal(autoMaxSessions(engine, []), FALLBACK_MAX_SESSIONS);
});
