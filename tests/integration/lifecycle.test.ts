/**
 * What the server does with what it created, against a real engine: SIGTERM removes every
 * session's containers and the warm pool; after SIGKILL a restart removes the leftovers;
 * with no engine the site and API stay up and labs answer 503 with a way forward.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import { withServer } from '../support/fixtures.ts';
import { createSession, labContainers, startServer } from '../support/server.ts';

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

  test('SIGTERM removes every session container before exit', async () => {
    const instance = `it-term-${process.pid}`;
    await withServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' }, async (srv) => {
      await createSession(srv.base, 'processes');
      await createSession(srv.base, 'cgroups');
      assert.equal((await labContainers(instance)).length, 2);
    });
  });

  test('after SIGKILL, a restart removes the leftovers at once', async () => {
    const instance = `it-kill-${process.pid}`;
    const first = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    try {
      await createSession(first.base, 'processes');
    } finally {
      await first.stop('SIGKILL');
    }
    const left = await labContainers(instance);
    assert.equal(left.length, 1, 'the container outlived the killed server');
    assert.ok(left[0]!.Labels['containerlabs.deadline'], 'it carries its own deadline');
    const second = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    try {
      assert.deepEqual(await labContainers(instance), [], 'removed during start-up');
      assert.match(second.logs(), /removed leftover lab hosts/);
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
