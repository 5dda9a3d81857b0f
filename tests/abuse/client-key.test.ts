/**
 * Per-client limits count an IPv6 client by its /64: one subscriber line or cloud host
 * usually holds a whole /64, so counting single addresses would give one client 2^64 keys.
 * The addresses arrive the way a reverse proxy passes them (X-Forwarded-For from a trusted
 * loopback peer); nothing is sent anywhere but to our own server on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useServer } from '../support/fixtures.ts';

describe('per-client limits and IPv6 (real server)', () => {
  const srv = useServer('abuse-clientkey', {
    CL_POOL_SIZE: '0',
    CL_TRUST_PROXY: 'loopback',
    CL_MAX_SESSIONS_PER_CLIENT: '2',
    CL_CREATE_PER_MINUTE: '100',
  });

  const start = async (client: string) => {
    const r = await fetch(`${srv.base}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': client },
      body: '{"lab":"processes"}',
    });
    await r.body?.cancel();
    return r.status;
  };

  test('addresses of one /64 share the quota; another /64 has its own', async () => {
    assert.equal(await start('2001:db8:1:2::a'), 201);
    assert.equal(await start('2001:db8:1:2:ffff:ffff:ffff:ffff'), 201, 'the same /64, written out');
    assert.equal(await start('2001:db8:1:2::c'), 429, 'a third address of the same /64');
    assert.equal(await start('2001:DB8:1:2:0:0:0:d'), 429, 'the same /64 in another spelling');
    assert.equal(await start('2001:db8:1:3::a'), 201, 'the next /64 is another client');
    // IPv4-mapped IPv6 is the IPv4 client.
    assert.equal(await start('198.51.100.7'), 201);
    assert.equal(await start('::ffff:198.51.100.7'), 201);
    assert.equal(await start('::ffff:c633:6407'), 429, 'the same IPv4 address, mapped, in hex');
    const admin = (await (await fetch(`${srv.base}/api/v1/admin/sessions`)).json()) as {
      sessions: { client: string }[];
    };
    assert.deepEqual([...new Set(admin.sessions.map((s) => s.client))].sort(), [
      '198.51.100.7',
      '2001:db8:1:2::/64',
      '2001:db8:1:3::/64',
    ]);
  });
});
