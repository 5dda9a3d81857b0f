/**
 * `/api/v1/health` is public and every lesson page asks it: it must not turn requests into
 * engine calls, nor tell anyone the engine's version or its raw errors. Counted on a real
 * server through its own metrics: with no engine, every engine probe is a failed `info`
 * call (`containerlabs_engine_errors_total{operation="info"}`).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  type RunningServer,
  removeInstanceContainers,
  startServer,
  stopStartedServers,
} from '../support/server.ts';

async function failedInfoCalls(srv: RunningServer): Promise<number> {
  const text = await (await fetch(`${srv.base}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^containerlabs_engine_errors_total\{([^}]*)\} (\d+(?:\.\d+)?)$/gm)) {
    if (/operation="info"/.test(m[1]!)) n += Number(m[2]);
  }
  return n;
}

/** `n` health requests, `parallel` at a time; the bodies as text. */
async function hammer(srv: RunningServer, n: number, parallel: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i += parallel) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(parallel, n - i) }, async () => {
        const r = await fetch(`${srv.base}/api/v1/health`);
        assert.equal(r.status, 200);
        return r.text();
      }),
    );
    bodies.push(...batch);
  }
  return bodies;
}

describe('public health (real server)', () => {
  const instance = `abuse-health-${process.pid}`;
  after(async () => {
    await stopStartedServers();
    await removeInstanceContainers(instance);
  });

  test('with no engine: 600 requests cost a handful of engine probes; no raw error is shown', async () => {
    const missing = `/tmp/containerlabs-no-engine-${process.pid}.sock`;
    const srv = await startServer({
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '0',
      DOCKER_HOST: `unix://${missing}`,
    });
    const before = await failedInfoCalls(srv);
    const t0 = performance.now();
    const bodies = await hammer(srv, 600, 30);
    const seconds = (performance.now() - t0) / 1000;
    const probes = (await failedInfoCalls(srv)) - before;
    console.log(`health: 600 requests in ${seconds.toFixed(1)} s → ${probes} engine probes`);
    // One probe per 5 s window at most (plus the window that was open when we began).
    assert.ok(probes <= Math.ceil(seconds / 5) + 2, `${probes} engine probes for 600 health requests`);
    for (const b of new Set(bodies)) {
      const j = JSON.parse(b) as Record<string, unknown>;
      assert.deepEqual(Object.keys(j).sort(), ['labs', 'status']);
      assert.equal((j.labs as { available: boolean }).available, false);
      assert.ok(!b.includes(missing), 'the engine address is not public');
      assert.doesNotMatch(b, /ENOENT|ECONNREFUSED|connect /, 'the raw engine error is not public');
    }
    // The operator still sees why.
    const status = (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()) as {
      engine: { reachable: boolean; error: string };
    };
    assert.equal(status.engine.reachable, false);
    assert.match(status.engine.error, /ENOENT|connect/);
  });

  test('with an engine: the reply names no engine, version or pool', async () => {
    const srv = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    const b = await (await fetch(`${srv.base}/api/v1/health`)).text();
    assert.deepEqual(JSON.parse(b), { status: 'ok', labs: { available: true } });
    const status = (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()) as {
      engine: { version: string };
    };
    assert.match(status.engine.version, /^docker /);
    assert.ok(!b.includes(status.engine.version));
  });
});
