/**
 * SIGTERM drain against the real server and engine: open terminals get a notice, new
 * sessions are refused with 503 + Retry-After during the grace period (existing ones keep
 * working), then every lab host is removed and the process exits 0.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import { createSession, labContainers, startServer, TermClient } from '../support/server.ts';
import { until } from './support.ts';

stopServersAfterTests();

describe('graceful drain (real engine)', () => {
  test('SIGTERM: notice to live terminals, 503 for new sessions during the grace, all removed, exit 0', async () => {
    const instance = `deploy-drain-${process.pid}`;
    // Three labs: a pool of one each, plus the reader's host, is four containers.
    const srv = await startServer({
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '1',
      CL_LABS: 'processes,namespaces,cgroups',
      CL_DRAIN_GRACE: '3s',
    });
    const s = await createSession(srv.base, 'processes');
    const host = await TermClient.open(srv.base, s, 'host');
    await host.ready();
    await until('the pool to refill', async () => (await labContainers(instance)).length === 4);

    const t0 = performance.now();
    const exited = once(srv.proc, 'exit') as Promise<[number | null]>;
    srv.proc.kill('SIGTERM');
    await until('the notice', () => host.controls.some((c) => c.type === 'notice'), 5000);
    const notice = host.controls.find((c) => c.type === 'notice')!;
    assert.match(String(notice.message), /shutting down: your lab ends in 3 s/);

    const refused = await fetch(`${srv.base}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"lab":"namespaces"}',
    });
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) >= 5, 'Retry-After is set');
    assert.match((await refused.json()).error.message, /shutting down/);
    // The live session still works during the grace period.
    assert.match(await host.exec('echo still-here'), /still-here/);
    const m = await (await fetch(`${srv.base}/metrics`)).text();
    assert.match(m, /containerlabs_draining 1/);
    assert.match(m, /containerlabs_sessions_refused_total\{reason="draining"\} 1/);

    const [code] = await exited;
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(code, 0);
    assert.ok(seconds >= 2.9, `waited the grace period (${seconds.toFixed(1)} s)`);
    assert.ok(seconds < 15, `then ended promptly (${seconds.toFixed(1)} s)`);
    assert.equal(await host.closed(), 4012, 'the terminal was closed: the server is shutting down');
    assert.deepEqual(await labContainers(instance), [], 'sessions and warm pool removed');
    assert.match(srv.logs(), /"msg":"draining"/);
  });

  test('with no terminal open, SIGTERM ends the sessions at once', async () => {
    const instance = `deploy-drain-idle-${process.pid}`;
    const srv = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0', CL_DRAIN_GRACE: '30s' });
    await createSession(srv.base, 'processes');
    const t0 = performance.now();
    assert.equal(await srv.stop('SIGTERM'), 0);
    assert.ok(performance.now() - t0 < 5000, 'no grace period when nobody watches a terminal');
    assert.deepEqual(await labContainers(instance), []);
  });

  test('a second signal a second later ends the grace period', async () => {
    const instance = `deploy-drain-hurry-${process.pid}`;
    const srv = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0', CL_DRAIN_GRACE: '60s' });
    const s = await createSession(srv.base, 'processes');
    const host = await TermClient.open(srv.base, s, 'host');
    await host.ready();
    const t0 = performance.now();
    const exited = once(srv.proc, 'exit') as Promise<[number | null]>;
    srv.proc.kill('SIGTERM');
    await until('the notice', () => host.controls.some((c) => c.type === 'notice'), 5000);
    await new Promise((r) => setTimeout(r, 1200));
    srv.proc.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 0);
    assert.ok(performance.now() - t0 < 15_000, 'did not wait the 60 s grace');
    assert.deepEqual(await labContainers(instance), []);
  });
});
