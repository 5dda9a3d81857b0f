import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EngineStatus } from './engine-status.ts';
import type { EngineInfo } from './runtime.ts';

/** A runtime whose info() calls are counted and answered when the test says so. */
function countingInfo() {
  const pending: ((i: EngineInfo) => void)[] = [];
  const rt = {
    calls: 0,
    info(): Promise<EngineInfo> {
      rt.calls++;
      return new Promise((resolve) => pending.push(resolve));
    },
    answer(i: EngineInfo) {
      for (const r of pending.splice(0)) r(i);
    },
  };
  return rt;
}

describe('engine status cache', () => {
  test('many callers at once share one probe; the answer is reused for the TTL', async () => {
    let now = 1_000;
    const rt = countingInfo();
    const st = new EngineStatus(rt, { ttlMs: 5000, now: () => now });
    const waiting = Array.from({ length: 100 }, () => st.current());
    assert.equal(rt.calls, 1, 'one probe for 100 concurrent callers');
    rt.answer({ reachable: true, version: 'v' });
    const all = await Promise.all(waiting);
    assert.ok(all.every((s) => s.reachable && s.checkedAt === 1_000));
    now += 4_999;
    assert.equal((await st.current()).checkedAt, 1_000);
    assert.equal(rt.calls, 1, 'still cached just before the TTL');
    now += 1;
    const next = st.current();
    assert.equal(rt.calls, 2, 'a new probe once the TTL has passed');
    rt.answer({ reachable: false, error: 'down' });
    assert.equal((await next).reachable, false);
  });

  test('refresh() asks now and joins a probe under way', async () => {
    const rt = countingInfo();
    const st = new EngineStatus(rt, { ttlMs: 60_000 });
    const a = st.refresh();
    const b = st.current();
    assert.equal(rt.calls, 1);
    rt.answer({ reachable: true });
    assert.deepEqual((await a).reachable, (await b).reachable);
    const c = st.refresh();
    assert.equal(rt.calls, 2, 'refresh() ignores the cache');
    rt.answer({ reachable: true });
    await c;
  });
});
