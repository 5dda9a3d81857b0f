/**
 * What the server does with what it created, against a real engine: SIGTERM removes every
 * session's containers and the warm pool; after SIGKILL a restart takes back the stored
 * sessions and removes the hosts nobody stored;
 * with no engine the site and API stay up and labs answer 503 with a way forward.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Docker from 'dockerode';
import { SqliteSessionStore } from '../../server/src/store/sqlite-store.ts';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import { withServer } from '../support/fixtures.ts';
import {
  createSession,
  labContainers,
  removeInstanceContainers,
  type SessionInfo,
  startServer,
} from '../support/server.ts';

stopServersAfterTests();

describe('server lifecycle (real engine)', () => {
  test('the warm pool: one ready lab host per lab, taken by a Start, refilled, removed at SIGTERM', async () => {
    const instance = `it-pool-${process.pid}`;
    // Three labs, so the count below is the pool's and not the course's.
    const env = { CL_INSTANCE: instance, CL_POOL_SIZE: '1', CL_LABS: 'processes,namespaces,cgroups' };
    await withServer(env, async (srv) => {
      const readyPerLab = async () =>
        (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()).pool.ready;
      const until = async (cond: () => Promise<boolean>) => {
        for (let i = 0; i < 100 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 200));
        assert.ok(await cond());
      };
      await until(async () => Object.values(await readyPerLab()).every((n) => n === 1));
      const pooled = await labContainers(instance);
      assert.equal(pooled.length, 3);
      assert.ok(pooled.every((c) => c.Labels['containerlabs.pool'] === 'true'));
      const s = await createSession(srv.base, 'processes');
      const host = pooled.find((c) => c.Labels['containerlabs.lab'] === 'processes')!;
      assert.equal(host.Labels['containerlabs.session'], s.id, 'the session runs on the pooled host');
      await until(async () => (await readyPerLab()).processes === 1);
      assert.equal((await labContainers(instance)).length, 4, 'refilled behind the reader');
    });
  });

  test('SIGTERM while the warm pool is filling leaves nothing behind, not even the host being made', async () => {
    const instance = `it-fill-${process.pid}`;
    const docker = new Docker();
    // The signal goes out the moment the engine reports the pool's first container created:
    // the server is then between its create and its start of that host.
    const events = (await docker.getEvents({
      filters: { type: ['container'], event: ['create'], label: [`containerlabs.instance=${instance}`] },
    })) as NodeJS.ReadableStream & { destroy(): void };
    try {
      const created = new Promise<void>((resolve) => events.once('data', () => resolve()));
      const srv = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '1' }, { waitForHealth: false });
      await created;
      assert.equal(await srv.stop('SIGTERM'), 0, 'exit 0');
      // The engine finishes what it was asked for even after the asker is gone: give it time.
      await new Promise((r) => setTimeout(r, 3000));
      const left = await labContainers(instance);
      assert.deepEqual(
        left.map((c) => `${c.Labels['containerlabs.lab']} pool=${c.Labels['containerlabs.pool'] ?? 'false'}`),
        [],
        'no lab host of the stopped server is left',
      );
    } finally {
      events.destroy();
      await removeInstanceContainers(instance);
    }
  });

  test('SIGTERM removes every session container before exit', async () => {
    const instance = `it-term-${process.pid}`;
    await withServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' }, async (srv) => {
      await createSession(srv.base, 'processes');
      await createSession(srv.base, 'cgroups');
      assert.equal((await labContainers(instance)).length, 2);
    });
  });

  test('after SIGKILL, a restart takes the stored session back and removes the host nobody stored', async () => {
    const instance = `it-kill-${process.pid}`;
    const first = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    let kept: SessionInfo;
    let lost: SessionInfo;
    try {
      kept = await createSession(first.base, 'processes');
      lost = await createSession(first.base, 'processes');
    } finally {
      await first.stop('SIGKILL');
    }
    assert.equal((await labContainers(instance)).length, 2, 'the containers outlived the killed server');
    // As if the second session's write had never reached the disk.
    const store = new SqliteSessionStore(first.dataDir);
    await store.remove(lost.id);
    await store.close();
    const second = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    try {
      const left = await labContainers(instance);
      assert.deepEqual(
        left.map((c) => c.Labels['containerlabs.session']),
        [kept.id],
        'the stored session kept its host, the other was removed during start-up',
      );
      const r = await fetch(`${second.base}/api/v1/sessions/${kept.id}`, {
        headers: { authorization: `Bearer ${kept.token}` },
      });
      assert.equal(r.status, 200, 'the token from before still works');
      assert.equal((await r.json()).expiresAt, kept.expiresAt, 'with the same expiry');
      assert.match(second.logs(), /took back 1 session\(s\) of an earlier run, removed 1 leftover/);
    } finally {
      await second.stop();
    }
  });

  test('with no engine: health answers, the site is served, labs get 503 with help', async () => {
    const env = { DOCKER_HOST: 'unix:///nonexistent/docker.sock', CL_INSTANCE: `it-noengine-${process.pid}` };
    await withServer(env, async (srv) => {
      const h = await (await fetch(`${srv.base}/api/v1/health`)).json();
      assert.equal(h.status, 'ok');
      assert.equal(h.labs.available, false);
      assert.match(h.labs.help, /Docker engine/);
      assert.equal((await (await fetch(`${srv.base}/api/v1/admin/status`)).json()).engine.reachable, false);
      const r = await fetch(`${srv.base}/api/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"lab":"processes"}',
      });
      assert.equal(r.status, 503);
      const body = await r.json();
      assert.equal(body.error.code, 'engine_unavailable');
      assert.match(body.error.message, /Docker/);
      assert.equal((await fetch(`${srv.base}/api/v1/labs`)).status, 200);
    });
  });
});
