/**
 * Behind a reverse proxy (simulated with the headers a proxy sets): with CL_TRUST_PROXY
 * the per-client cap keys on X-Forwarded-For and terminals accept the public origin from
 * X-Forwarded-Proto/-Host; without it those headers change nothing. With a list of proxy
 * addresses, a client cannot pick its address by sending its own X-Forwarded-For.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { withServer } from '../support/fixtures.ts';
import { socketOutcome, terminalSocketUrl } from '../support/server.ts';

const post = (base: string, xff: string) =>
  fetch(`${base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': xff },
    body: '{"lab":"processes"}',
  });

const PUBLIC = {
  origin: 'https://labs.example.org',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'labs.example.org',
};

/** No warm pool; one session per client address, so the tests see which address counts. */
const ONE_CLIENT = { CL_POOL_SIZE: '0', CL_MAX_SESSIONS_PER_CLIENT: '1' };

describe('reverse proxy headers (real engine)', () => {
  test('CL_TRUST_PROXY=true: per-client cap by forwarded address, public origin accepted', async () => {
    const env = { CL_INSTANCE: `deploy-proxy-${process.pid}`, CL_TRUST_PROXY: 'true', ...ONE_CLIENT };
    await withServer(env, async (srv) => {
      const a = await post(srv.base, '203.0.113.1');
      assert.equal(a.status, 201);
      assert.equal((await post(srv.base, '203.0.113.2')).status, 201, 'another client address');
      assert.equal((await post(srv.base, '203.0.113.1')).status, 429, 'the same client again');
      const s = await a.json();
      const url = () => terminalSocketUrl(srv.base, s, s.terminals[0].name);
      assert.equal(await socketOutcome(await url(), PUBLIC), 'attached', 'the public origin opens terminals');
      assert.equal(
        await socketOutcome(await url(), { ...PUBLIC, origin: 'https://evil.example' }),
        'close 4003 forbidden',
      );
    });
  });

  test('CL_TRUST_PROXY unset: forwarded headers are ignored', async () => {
    await withServer({ CL_INSTANCE: `deploy-noproxy-${process.pid}`, ...ONE_CLIENT }, async (srv) => {
      const a = await post(srv.base, '203.0.113.1');
      assert.equal(a.status, 201);
      assert.equal((await post(srv.base, '203.0.113.2')).status, 429, 'all one client: 127.0.0.1');
      const s = await a.json();
      const url = await terminalSocketUrl(srv.base, s, s.terminals[0].name);
      assert.equal(
        await socketOutcome(url, PUBLIC),
        'close 4003 forbidden',
        'a forwarded host is not trusted',
      );
    });
  });

  test('CL_TRUST_PROXY=loopback: the address the proxy appended counts, not what the client sent', async () => {
    const env = { CL_INSTANCE: `deploy-proxylist-${process.pid}`, CL_TRUST_PROXY: 'loopback', ...ONE_CLIENT };
    await withServer(env, async (srv) => {
      // nginx's $proxy_add_x_forwarded_for: "<what the client sent>, <its real address>".
      assert.equal((await post(srv.base, '10.9.9.9, 203.0.113.5')).status, 201);
      assert.equal(
        (await post(srv.base, '10.9.9.8, 203.0.113.5')).status,
        429,
        'a spoofed first hop changes nothing',
      );
    });
  });
});
