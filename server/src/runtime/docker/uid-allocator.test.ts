import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../errors.ts';
import { type ListedHost, UidAllocator, type UidRange } from './uid-allocator.ts';

/** An engine listing the test controls, and a count of how often it was asked. */
function fakeEngine(hosts: ListedHost[] = []) {
  const e = {
    hosts,
    lists: 0,
    list: async () => {
      e.lists++;
      return e.hosts.map((h) => ({ ...h }));
    },
  };
  return e;
}

/** Deterministic "random" numbers: the given ones in turn, then 0. */
function sequence(...values: number[]) {
  return (n: number) => {
    const v = values.shift() ?? 0;
    assert.ok(v >= 0 && v < n, `random value ${v} outside [0, ${n})`);
    return v;
  };
}

const range = (first: number, last: number) => async (): Promise<UidRange> => ({ first, last });

describe('UidAllocator', () => {
  it('picks inside the range, a different uid for every live host', async () => {
    const engine = fakeEngine();
    const a = new UidAllocator({ range: range(100_000, 100_009), list: engine.list });
    const got = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const uid = await a.reserve();
      assert.ok(uid >= 100_000 && uid <= 100_009, String(uid));
      a.bind(uid, `h${i}`);
      engine.hosts.push({ hostId: `h${i}`, uid });
      got.add(uid);
    }
    assert.equal(got.size, 10, 'the whole range, each uid once');
    assert.equal(engine.lists, 10, 'the engine is asked at every pick');
  });

  it('skips uids that hosts of other instances, leftovers and pool members carry', async () => {
    const engine = fakeEngine([
      { hostId: 'other-instance', uid: 5 },
      { hostId: 'leftover', uid: 6 },
      { hostId: 'no-label', uid: undefined },
    ]);
    // The random source proposes 5, then 6 (both taken), then 7.
    const a = new UidAllocator({ range: range(0, 9), list: engine.list, randomInt: sequence(5, 6, 7) });
    assert.equal(await a.reserve(), 7);
  });

  it('never hands out a uid reserved by a create still in flight (not yet listed)', async () => {
    const engine = fakeEngine();
    const a = new UidAllocator({ range: range(1, 2), list: engine.list, randomInt: sequence(0, 0, 0) });
    const [x, y] = await Promise.all([a.reserve(), a.reserve()]);
    assert.deepEqual([x, y].sort(), [1, 2]);
  });

  it('walks to the free uid when random tries keep hitting used ones', async () => {
    const engine = fakeEngine(
      Array.from({ length: 99 }, (_, i) => ({ hostId: `h${i}`, uid: 1000 + (i >= 42 ? i + 1 : i) })),
    );
    // Always proposes the first uid, which is taken: only uid 1042 is free.
    const a = new UidAllocator({ range: range(1000, 1099), list: engine.list, randomInt: () => 0 });
    assert.equal(await a.reserve(), 1042);
  });

  it('release and releaseHost free a uid for the next pick', async () => {
    const engine = fakeEngine();
    const a = new UidAllocator({ range: range(7, 7), list: engine.list });
    const uid = await a.reserve();
    assert.equal(uid, 7);
    await assert.rejects(a.reserve(), (e: unknown) => e instanceof AppError && e.code === 'out_of_capacity');
    a.release(uid); // creating the host failed
    assert.equal(await a.reserve(), 7);
    a.bind(7, 'host-1');
    engine.hosts.push({ hostId: 'host-1', uid: 7 });
    await assert.rejects(a.reserve(), /in use/);
    a.releaseHost('host-1');
    engine.hosts = [];
    assert.equal(await a.reserve(), 7);
    assert.equal(a.reserved, 1);
  });

  it('frees the uid of a host that vanished by itself (AutoRemove at its deadline)', async () => {
    const engine = fakeEngine();
    const a = new UidAllocator({ range: range(3, 3), list: engine.list });
    const uid = await a.reserve();
    a.bind(uid, 'gone-later');
    // The engine no longer lists it (it removed itself; removeLabHost was never called).
    assert.equal(await a.reserve(), 3);
  });

  it('keeps the uid of a host the engine does list, even without our release', async () => {
    const engine = fakeEngine();
    const a = new UidAllocator({ range: range(3, 4), list: engine.list, randomInt: () => 0 });
    const uid = await a.reserve();
    assert.equal(uid, 3);
    a.bind(uid, 'alive');
    engine.hosts.push({ hostId: 'alive', uid: undefined }); // listed, label lost: still ours
    assert.equal(await a.reserve(), 4);
  });

  it('exhaustion is out_of_capacity (HTTP 503) with a reader-safe message and the cause for the log', async () => {
    const engine = fakeEngine([
      { hostId: 'a', uid: 10 },
      { hostId: 'b', uid: 11 },
      { hostId: 'outside', uid: 99 },
    ]);
    const a = new UidAllocator({ range: range(10, 11), list: engine.list });
    const err = await a.reserve().then(
      () => assert.fail('reserved a uid from a full range'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'out_of_capacity');
    assert.equal(err.status, 503);
    assert.doesNotMatch(err.message, /uid|CL_LAB_UIDS/, 'no internals in what the reader sees');
    assert.match(String((err.cause as Error).message), /10-11 \(2\) is in use.*CL_LAB_UIDS/);
    assert.equal(a.reserved, 0, 'a refused pick reserves nothing');
  });

  it('asks for the range once, and again after it failed', async () => {
    let asked = 0;
    const a = new UidAllocator({
      range: async () => {
        asked++;
        if (asked === 1) throw new Error('engine unreachable');
        return { first: 50, last: 59 };
      },
      list: fakeEngine().list,
    });
    await assert.rejects(a.reserve(), /engine unreachable/);
    const u1 = await a.reserve();
    const u2 = await a.reserve();
    assert.ok(u1 >= 50 && u2 <= 59 && u1 !== u2);
    assert.equal(asked, 2);
  });

  it('a failing listing reserves nothing', async () => {
    const a = new UidAllocator({
      range: range(1, 1),
      list: async () => {
        throw new Error('engine down');
      },
    });
    await assert.rejects(a.reserve(), /engine down/);
    assert.equal(a.reserved, 0);
  });
});
