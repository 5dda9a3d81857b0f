/**
 * What the server does with what it made, on the test host's engine: the warm pool (one
 * ready lab host per lab, handed to a Start, refilled, removed at SIGTERM), and after a
 * SIGKILL a restart that takes the stored sessions back and removes the hosts nobody stored
 * before it serves anyone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadLabs } from '../../labs/load.ts';
import { SqliteSessionStore } from '../../server/src/store/sqlite-store.ts';
import {
  createSession,
  labContainers,
  type SessionInfo,
  startServer,
  TermClient,
} from '../support/server.ts';
import { scaled } from '../support/slowness.ts';
import { hostKind } from './support.ts';

const kind = hostKind();
const labCount = (await loadLabs()).length;

async function until(what: string, cond: () => Promise<boolean>, ms = scaled(20_000)): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe(`server lifecycle on the ${kind} host`, () => {
  test('the warm pool: one ready lab host per lab, taken by a Start, refilled, removed at SIGTERM', async () => {
    const instance = `hosts-pool-${process.pid}`;
    const srv = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '1' });
    try {
      const ready = async () =>
        (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()).pool.ready as Record<string, number>;
      await until('a ready lab host per lab', async () => {
        const r = await ready();
        return Object.keys(r).length === labCount && Object.values(r).every((n) => n === 1);
      });
      const pooled = await labContainers(instance);
      assert.equal(pooled.length, labCount);
      assert.ok(pooled.every((c) => c.Labels['containerlabs.pool'] === 'true'));
      const t0 = performance.now();
      const s = await createSession(srv.base, 'processes');
      const took = performance.now() - t0;
      const host = pooled.find((c) => c.Labels['containerlabs.lab'] === 'processes')!;
      assert.equal(host.Labels['containerlabs.session'], s.id, 'the session runs on the pooled host');
      const term = await TermClient.open(srv.base, s, 'container');
      await term.waitFor(/root@box:.*# $/m);
      console.log(`pooled start: ${took.toFixed(0)} ms to the session, then a shell in the nested container`);
      await term.close();
      await until('the pool refilled', async () => (await ready()).processes === 1);
      assert.equal((await labContainers(instance)).length, labCount + 1, 'refilled behind the reader');
    } finally {
      assert.equal(await srv.stop('SIGTERM'), 0);
    }
    assert.deepEqual(await labContainers(instance), [], 'sessions and pool removed');
  });

  test('after SIGKILL, a restart takes the stored session back and removes the host nobody stored', async () => {
    const instance = `hosts-kill-${process.pid}`;
    const first = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    let kept: SessionInfo;
    let lost: SessionInfo;
    try {
      kept = await createSession(first.base, 'processes');
      lost = await createSession(first.base, 'cgroups');
    } finally {
      await first.stop('SIGKILL');
    }
    const left = await labContainers(instance);
    assert.equal(left.length, 2, 'the lab hosts outlived the killed server');
    assert.ok(
      left.every((c) => c.Labels['containerlabs.deadline']),
      'each carries its own deadline',
    );
    // As if the second session's write had never reached the disk.
    const store = new SqliteSessionStore(first.dataDir);
    await store.remove(lost.id);
    await store.close();
    const second = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    try {
      assert.deepEqual(
        (await labContainers(instance)).map((c) => c.Labels['containerlabs.session']),
        [kept.id],
        'the stored session kept its host, the other was removed during start-up',
      );
      assert.match(second.logs(), /took back 1 session\(s\) of an earlier run, removed 1 leftover/);
      const r = await fetch(`${second.base}/api/v1/sessions/${kept.id}`, {
        headers: { authorization: `Bearer ${kept.token}` },
      });
      assert.equal(r.status, 200, 'the token from before still works');
      // And it serves: a new session starts on the same engine.
      const s = await createSession(second.base, 'processes');
      assert.equal((await labContainers(instance)).length, 2);
      assert.ok(s.id);
    } finally {
      assert.equal(await second.stop('SIGTERM'), 0);
    }
    assert.deepEqual(await labContainers(instance), []);
  });
});
