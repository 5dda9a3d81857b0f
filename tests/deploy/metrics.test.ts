/**
 * GET /metrics against the real server and engine, read with a Prometheus text-format
 * parser: the counters exist from the start and move when a session starts, is refused
 * and ends; the pool gauge is per lab; engine errors are counted; access is loopback-only
 * by default and token-only with CL_METRICS_TOKEN.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { withServer } from '../support/fixtures.ts';
import { createSession, deleteSession } from '../support/server.ts';
import { histogramCount, sample, scrape, until } from './support.ts';

const post = (base: string) =>
  fetch(`${base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"lab":"processes"}',
  });

describe('metrics (real engine)', () => {
  test('counters move with a start, a refusal and an end; gauges follow the sessions and the pool', async () => {
    const env = {
      CL_INSTANCE: `deploy-metrics-${process.pid}`,
      CL_POOL_SIZE: '1',
      CL_LABS: 'processes,namespaces',
      CL_MAX_SESSIONS_PER_CLIENT: '1',
    };
    await withServer(env, async (srv) => {
      await until('the warm pool to fill', async () => {
        const m = await scrape(srv.base);
        return (
          sample(m, 'containerlabs_pool_ready', { lab: 'processes' }) === 1 &&
          sample(m, 'containerlabs_pool_ready', { lab: 'namespaces' }) === 1
        );
      });
      const m0 = await scrape(srv.base);
      for (const name of [
        'containerlabs_sessions_active',
        'containerlabs_sessions_started_total',
        'containerlabs_sessions_refused_total',
        'containerlabs_sessions_ended_total',
        'containerlabs_pool_ready',
        'containerlabs_session_start_seconds',
        'containerlabs_engine_errors_total',
        'containerlabs_engine_up',
        'process_resident_memory_bytes',
      ]) {
        assert.ok(
          m0.some((f) => f.name === name),
          `${name} is exported`,
        );
      }
      assert.equal(
        m0.find((f) => f.name === 'containerlabs_pool_ready')!.metrics.length,
        2,
        'one pool gauge per enabled lab (CL_LABS)',
      );
      assert.equal(sample(m0, 'containerlabs_sessions_active'), 0);
      assert.equal(sample(m0, 'containerlabs_engine_up'), 1);
      assert.equal(sample(m0, 'containerlabs_sessions_refused_total', { reason: 'too_many_sessions' }), 0);

      const s = await createSession(srv.base, 'processes');
      const refused = await post(srv.base);
      assert.equal(refused.status, 429, 'the per-client cap (1) refuses a second session');
      const m1 = await scrape(srv.base);
      assert.equal(sample(m1, 'containerlabs_sessions_active'), 1);
      assert.equal(
        sample(m1, 'containerlabs_sessions_started_total', { lab: 'processes', pooled: 'true' }) -
          sample(m0, 'containerlabs_sessions_started_total', { lab: 'processes', pooled: 'true' }),
        1,
        'the start came from the warm pool',
      );
      assert.equal(
        histogramCount(m1, 'containerlabs_session_start_seconds') -
          histogramCount(m0, 'containerlabs_session_start_seconds'),
        1,
      );
      assert.equal(sample(m1, 'containerlabs_sessions_refused_total', { reason: 'too_many_sessions' }), 1);

      assert.equal(await deleteSession(srv.base, s), 204);
      const m2 = await scrape(srv.base);
      assert.equal(sample(m2, 'containerlabs_sessions_active'), 0);
      assert.equal(
        sample(m2, 'containerlabs_sessions_ended_total', { reason: 'stopped' }) -
          sample(m0, 'containerlabs_sessions_ended_total', { reason: 'stopped' }),
        1,
      );
      assert.equal(
        (await post(srv.base).then((r) => r.json())).lab,
        'processes',
        'the per-client cap frees up after the end',
      );
      const other = await fetch(`${srv.base}/api/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"lab":"cgroups"}',
      });
      assert.equal(other.status, 404, 'a lab left out of CL_LABS is not offered');
    });
  });

  test('engine errors are counted; /metrics is loopback-only by default, token-only with CL_METRICS_TOKEN', async () => {
    const token = 'metrics-token-0123456789';
    const noEngine = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
    const env = {
      ...noEngine,
      CL_INSTANCE: `deploy-metrics-noengine-${process.pid}`,
      CL_METRICS_TOKEN: token,
    };
    await withServer(env, async (srv) => {
      assert.equal((await fetch(`${srv.base}/metrics`)).status, 401, 'no token');
      assert.equal(
        (await fetch(`${srv.base}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } }))
          .status,
        401,
      );
      const auth = { authorization: `Bearer ${token}` };
      const m0 = await scrape(srv.base, auth);
      assert.equal(sample(m0, 'containerlabs_engine_up'), 0);
      assert.equal((await post(srv.base)).status, 503);
      const m1 = await scrape(srv.base, auth);
      assert.ok(
        sample(m1, 'containerlabs_engine_errors_total', {
          operation: 'createLabHost',
          code: 'engine_unavailable',
        }) >= 1,
        'the failed create is counted',
      );
      assert.equal(
        sample(m1, 'containerlabs_sessions_refused_total', { reason: 'engine_unavailable' }) -
          sample(m0, 'containerlabs_sessions_refused_total', { reason: 'engine_unavailable' }),
        1,
      );
    });
    await withServer({ ...noEngine, CL_INSTANCE: `deploy-metrics-loopback-${process.pid}` }, async (open) => {
      assert.equal((await fetch(`${open.base}/metrics`)).status, 200, 'direct from loopback');
      const proxied = await fetch(`${open.base}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      assert.equal(proxied.status, 403, 'relayed by a proxy on this machine: not local');
      assert.match((await proxied.json()).error.message, /CL_METRICS_TOKEN/);
    });
  });
});
