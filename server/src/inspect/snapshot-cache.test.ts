/**
 * Unit tests of the snapshot cache: a fake runtime counting its execs, a fake clock.
 *   node --test server/src/inspect/snapshot-cache.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeRuntime } from '../../../tests/unit-support/fake-runtime.ts';
import { AppError } from '../errors.ts';
import { readCgroup, readProcesses } from './snapshot.ts';
import { SNAPSHOT_MAX_AGE_MS, SnapshotCache } from './snapshot-cache.ts';

/** A runtime whose execs are counted and answer only when the test releases them. */
function setup() {
  const runtime = new FakeRuntime();
  const waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const calls: string[] = [];
  Object.assign(runtime, {
    exec: async (hostId: string) => {
      calls.push(hostId);
      await new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }));
      return { code: 0, stdout: 'SELF 40\nPASSWD 1000 reader\nversion 2\npids.max 100\n', stderr: '' };
    },
  });
  let now = 0;
  const cache = new SnapshotCache({ now: () => now });
  const tick = () => new Promise<void>((r) => setImmediate(r));
  return {
    runtime,
    cache,
    calls,
    wait: (ms: number) => {
      now += ms;
    },
    /** Lets every exec started so far answer (or fail). */
    async release(err?: Error) {
      await tick();
      for (const w of waiting.splice(0)) err ? w.reject(err) : w.resolve();
      await tick();
    },
  };
}

test('parallel requests share one read; everyone gets the same snapshot', async () => {
  const { runtime, cache, calls, release } = setup();
  const session = {};
  const all = Array.from({ length: 50 }, () =>
    cache.get(session, 'processes', () => readProcesses(runtime, 'h1')),
  );
  await release();
  const snaps = await Promise.all(all);
  assert.equal(calls.length, 1);
  for (const s of snaps) assert.equal(s, snaps[0]);
});

test('reused until maxAge after the read started, then read again', async () => {
  const { runtime, cache, calls, release, wait } = setup();
  const session = {};
  const read = () => cache.get(session, 'processes', () => readProcesses(runtime, 'h1'));
  const first = read();
  wait(400); // the exec takes 400 ms
  await release();
  await first;
  wait(SNAPSHOT_MAX_AGE_MS - 401);
  assert.equal(await read(), await first, 'still fresh enough');
  assert.equal(calls.length, 1);
  wait(1);
  const second = read();
  await release();
  assert.notEqual(await second, await first);
  assert.equal(calls.length, 2);
});

test('a slow read is joined, never doubled, however long it takes', async () => {
  const { runtime, cache, calls, release, wait } = setup();
  const session = {};
  const reads = [];
  for (let i = 0; i < 10; i++) {
    reads.push(cache.get(session, 'processes', () => readProcesses(runtime, 'h1')));
    wait(1000);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(calls.length, 1);
  await release();
  await Promise.all(reads);
  // Its figures are 10 s old by now: the next request reads again.
  const next = cache.get(session, 'processes', () => readProcesses(runtime, 'h1'));
  await release();
  await next;
  assert.equal(calls.length, 2);
});

test('a failed read fails everyone waiting, is remembered for maxAge, then retried', async () => {
  const { runtime, cache, calls, release, wait } = setup();
  const session = {};
  const read = () => cache.get(session, 'cgroup', () => readCgroup(runtime, 'h1'));
  const waiting = [read(), read()];
  await release(new AppError('engine_unavailable', 'down'));
  for (const w of waiting) await assert.rejects(w, { code: 'engine_unavailable' });
  await assert.rejects(read(), { code: 'engine_unavailable' });
  assert.equal(calls.length, 1, 'not asked again at the request rate');
  wait(SNAPSHOT_MAX_AGE_MS);
  const again = read();
  await release();
  assert.equal((await again).pids.limit, 100);
  assert.equal(calls.length, 2);
});

test('kinds and sessions are separate', async () => {
  const { runtime, cache, calls, release } = setup();
  const [a, b] = [{}, {}];
  const all = [
    cache.get(a, 'processes', () => readProcesses(runtime, 'a')),
    cache.get(a, 'cgroup', () => readCgroup(runtime, 'a')),
    cache.get(b, 'processes', () => readProcesses(runtime, 'b')),
    cache.get(a, 'processes', () => readProcesses(runtime, 'a')),
  ];
  await release();
  await Promise.all(all);
  assert.deepEqual(calls.sort(), ['a', 'a', 'b']);
});

test('a read that throws at once is a failed read, not a crash', async () => {
  const { cache } = setup();
  const boom = () => {
    throw new Error('no host');
  };
  await assert.rejects(cache.get({}, 'processes', boom), /no host/);
});
