/**
 * Terminal sockets authenticate with a single-use ticket that expires after about 30 s,
 * never with the session's long-lived token in the URL (URLs end up in proxy logs and
 * browser histories). Real server, real engine, real clock.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { useServer } from '../support/fixtures.ts';
import { type SessionInfo, socketOutcome, terminalTicket } from '../support/server.ts';
import { sleep } from './support.ts';

describe('terminal tickets (real server)', () => {
  const srv = useServer('abuse-tickets', { CL_POOL_SIZE: '0' }, { engine: true });
  let s: SessionInfo;
  const url = (query: string) =>
    `${srv.base.replace(/^http/, 'ws')}/api/v1/sessions/${s.id}/terminals/host${query}`;

  before(async () => {
    s = await srv.session('processes');
  });

  test('the session token does not open a terminal; nothing the server hands out carries it', async () => {
    assert.equal(await socketOutcome(url(`?token=${s.token}`)), 'close 4001 bad_token');
    assert.equal(await socketOutcome(url(`?ticket=${s.token}`)), 'close 4001 bad_token');
    for (const t of s.terminals) {
      assert.ok(!t.url.includes(s.token), `terminal URL ${t.url}`);
      assert.ok(t.ticket && t.ticket !== s.token, 'each terminal comes with a ticket of its own');
    }
    const read = (await (
      await fetch(`${srv.base}/api/v1/sessions/${s.id}`, {
        headers: { authorization: `Bearer ${s.token}` },
      })
    ).json()) as SessionInfo;
    assert.ok(
      read.terminals.every((t) => t.ticket === undefined),
      'GET /sessions/:id hands out no tickets',
    );
  });

  test('a ticket opens one socket', async () => {
    const t = s.terminals.find((x) => x.name === 'host')!.ticket!;
    assert.equal(await socketOutcome(url(`?ticket=${t}`)), 'attached');
    assert.equal(await socketOutcome(url(`?ticket=${t}`)), 'close 4001 bad_token');
  });

  test('a ticket expires after about 30 s', async () => {
    const fresh = await terminalTicket(srv.base, s, 'host');
    const stale = await terminalTicket(srv.base, s, 'host');
    assert.equal(await socketOutcome(url(`?ticket=${fresh}`)), 'attached', 'within its time');
    await sleep(31_000);
    assert.equal(await socketOutcome(url(`?ticket=${stale}`)), 'close 4001 bad_token', 'after 31 s');
    assert.ok(!srv.logs().includes(stale) && !srv.logs().includes(fresh), 'tickets are not logged');
  });
});
