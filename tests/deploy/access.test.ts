/**
 * Code mode against the real server and engine: reading stays open; lab endpoints and
 * terminal sockets need the shared code (401 without it or with a wrong one, with a
 * message that says how to get one); an invite link sets the cookie that unlocks them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  labContainers,
  type RunningServer,
  type SessionInfo,
  socketOutcome,
  startServer,
  terminalTicket,
} from '../support/server.ts';

const CODE = 'open-sesame-2026';

function post(base: string, headers: Record<string, string> = {}) {
  return fetch(`${base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: '{"lab":"processes"}',
  });
}

describe('code mode (real engine)', () => {
  const instance = `deploy-code-${process.pid}`;
  let srv: RunningServer;
  before(async () => {
    srv = await startServer({
      CL_MODE: 'code',
      CL_ACCESS_CODE: CODE,
      CL_ACCESS_CONTACT: 'the course team at labs@example.org',
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '0',
      CL_DRAIN_GRACE: '0',
    });
  });
  after(async () => {
    assert.equal(await srv.stop(), 0);
    assert.deepEqual(await labContainers(instance), []);
  });

  test('the operator status says code; the site and the lab list stay open', async () => {
    const h = await (await fetch(`${srv.base}/api/v1/admin/status`)).json();
    assert.equal(h.access, 'code');
    assert.equal((await fetch(`${srv.base}/api/v1/labs`)).status, 200);
    assert.equal((await fetch(`${srv.base}/`)).status, 200);
  });

  test('no code → 401 with a way to get one; wrong code → 401; nothing is created', async () => {
    const none = await post(srv.base);
    assert.equal(none.status, 401);
    const body = await none.json();
    assert.equal(body.error.code, 'bad_token');
    assert.match(body.error.message, /need an access code: open the invite link/);
    assert.match(body.error.message, /labs@example\.org/);
    const wrong = await post(srv.base, { 'x-access-token': 'not-the-code' });
    assert.equal(wrong.status, 401);
    assert.match((await wrong.json()).error.message, /not accepted/);
    const wrongCookie = await post(srv.base, { cookie: 'cl_access=guess-guess' });
    assert.equal(wrongCookie.status, 401);
    const badLink = await fetch(`${srv.base}/?access=not-the-code`, { redirect: 'manual' });
    assert.equal(badLink.status, 401);
    assert.equal(badLink.headers.get('set-cookie'), null);
    assert.deepEqual(await labContainers(instance), []);
    assert.match(srv.logs(), /lab request refused: access/);
    assert.ok(!srv.logs().includes('not-the-code'), 'offered codes are not logged');
  });

  test('the invite link sets an HttpOnly cookie; with it a lab starts and its terminal opens', async () => {
    const link = await fetch(`${srv.base}/03-a-container-is-a-process/?access=${CODE}`, {
      redirect: 'manual',
    });
    assert.equal(link.status, 303);
    assert.equal(link.headers.get('location'), '/03-a-container-is-a-process/');
    const setCookie = link.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^cl_access=/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Max-Age=\d+/);
    const cookie = setCookie.split(';')[0]!;

    const r = await post(srv.base, { cookie });
    assert.equal(r.status, 201);
    const s = (await r.json()) as SessionInfo;
    const ws = srv.base.replace(/^http/, 'ws');
    const wsUrl = (ticket: string) => `${ws}${s.terminals[0]!.url}?ticket=${ticket}&cols=120&rows=40`;
    // The ticket that came with the session is good: but not without the code.
    const first = s.terminals[0]!.ticket!;
    assert.equal(await socketOutcome(wsUrl(first)), 'http 401', 'a terminal socket without the code');
    assert.equal(await socketOutcome(wsUrl(first), { cookie: 'cl_access=wrong-code-1' }), 'http 401');
    assert.equal(
      await socketOutcome(wsUrl(first), { cookie }),
      'attached',
      'the terminal opened with the cookie',
    );
    assert.equal(
      await socketOutcome(wsUrl(first), { cookie }),
      'close 4001 bad_token',
      'a ticket opens one socket',
    );
    // Tickets need the code too.
    const refused = await fetch(
      `${srv.base}/api/v1/sessions/${s.id}/terminals/${s.terminals[0]!.name}/tickets`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${s.token}` },
      },
    );
    assert.equal(refused.status, 401);
    const again = await terminalTicket(srv.base, s, s.terminals[0]!.name, { cookie });
    assert.equal(await socketOutcome(wsUrl(again), { cookie }), 'attached', 'a fresh ticket');

    // The header works for API clients too; and the session API needs the code as well.
    const get = await fetch(`${srv.base}/api/v1/sessions/${s.id}`, {
      headers: { authorization: `Bearer ${s.token}`, 'x-access-token': CODE },
    });
    assert.equal(get.status, 200);
    const noCode = await fetch(`${srv.base}/api/v1/sessions/${s.id}`, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(noCode.status, 401);
    const del = await fetch(`${srv.base}/api/v1/sessions/${s.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${s.token}`, cookie },
    });
    assert.equal(del.status, 204);
  });
});
