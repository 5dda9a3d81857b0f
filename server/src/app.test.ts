import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { socketOutcome, TermClient } from '../../tests/support/terminal.ts';
import type { FakeRuntime } from '../../tests/unit-support/fake-runtime.ts';
import { testApp } from '../../tests/unit-support/test-app.ts';

const setup = (accessToken?: string) => testApp({ accessToken });

describe('HTTP API (fake runtime, no port)', () => {
  let app: FastifyInstance;
  let runtime: FakeRuntime;
  before(async () => {
    ({ app, runtime } = await setup());
  });
  after(() => app.close());

  const create = () => app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { lab: 'processes' } });

  test('health says only whether labs are available; the engine is on the operator status', async () => {
    const r = await app.inject('/api/v1/health');
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { status: 'ok', labs: { available: true } });
    const status = await app.inject('/api/v1/admin/status');
    assert.equal(status.statusCode, 200);
    assert.equal(status.json().engine.reachable, true);
    assert.equal(status.json().engine.version, 'fake 1.0');
    assert.equal(status.json().access, 'open');
  });

  test('labs lists id, title and terminal names', async () => {
    const r = await app.inject('/api/v1/labs');
    assert.deepEqual(
      r.json().labs[0].terminals.map((t: { name: string }) => t.name),
      ['container', 'host'],
    );
    assert.equal(r.json().labs[0].id, 'processes');
  });

  test('POST /sessions → 201 with id, token, lab, expiresAt, terminals[name,url]', async () => {
    const r = await create();
    assert.equal(r.statusCode, 201);
    const s = r.json();
    assert.equal(s.lab, 'processes');
    assert.match(s.token, /^[A-Za-z0-9_-]{22}$/);
    assert.ok(Date.parse(s.expiresAt) > Date.now());
    assert.deepEqual(
      s.terminals.map((t: { name: string; url: string }) => [t.name, t.url]),
      [
        ['container', `/api/v1/sessions/${s.id}/terminals/container`],
        ['host', `/api/v1/sessions/${s.id}/terminals/host`],
      ],
    );
  });

  test('unknown lab → 404, malformed → 400, each with error.code and message', async () => {
    const unknown = await app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { lab: 'nope' } });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error.code, 'unknown_lab');
    for (const payload of ['{not json', '[]', '{"lab":5}', '{"lab":"processes","x":1}', '"processes"']) {
      const r = await app.inject({
        method: 'POST',
        url: '/api/v1/sessions',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.statusCode, 400, payload);
      assert.equal(r.json().error.code, 'bad_request', payload);
      assert.ok(r.json().error.message.length > 5);
    }
    const big = await app.inject({
      method: 'POST',
      url: '/api/v1/sessions',
      payload: JSON.stringify({ lab: 'x'.repeat(100_000) }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().error.code, 'body_too_large');
    assert.equal(big.json().error.message, 'The request body is too large (at most 16 KiB).');
  });

  test('GET/DELETE need the Bearer token; DELETE removes the host before 204', async () => {
    const s = (await create()).json();
    const noAuth = await app.inject(`/api/v1/sessions/${s.id}`);
    assert.equal(noAuth.statusCode, 401);
    assert.equal(noAuth.json().error.code, 'bad_token');
    const wrong = await app.inject({
      url: `/api/v1/sessions/${s.id}`,
      headers: { authorization: 'Bearer nope' },
    });
    assert.equal(wrong.statusCode, 401);
    const auth = { authorization: `Bearer ${s.token}` };
    const ok = await app.inject({ url: `/api/v1/sessions/${s.id}`, headers: auth });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().id, s.id);
    assert.equal(ok.json().token, undefined, 'the token is never sent back');
    const before = runtime.hosts.size;
    const del = await app.inject({ method: 'DELETE', url: `/api/v1/sessions/${s.id}`, headers: auth });
    assert.equal(del.statusCode, 204);
    assert.equal(runtime.hosts.size, before - 1);
    const gone = await app.inject({ url: `/api/v1/sessions/${s.id}`, headers: auth });
    assert.equal(gone.statusCode, 404);
  });

  test('extend returns a later expiry', async () => {
    const s = (await create()).json();
    const r = await app.inject({
      method: 'POST',
      url: `/api/v1/sessions/${s.id}/extend`,
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(r.statusCode, 200);
    assert.ok(Date.parse(r.json().expiresAt) >= Date.parse(s.expiresAt));
  });

  test('engine down → 503 engine_unavailable; health still 200', async () => {
    runtime.reachable = false;
    try {
      const r = await create();
      assert.equal(r.statusCode, 503);
      assert.equal(r.json().error.code, 'engine_unavailable');
      const h = await app.inject('/api/v1/health');
      assert.equal(h.statusCode, 200);
      assert.equal(h.json().labs.available, false);
      assert.match(h.json().labs.help, /Docker/);
      assert.doesNotMatch(h.payload, /down/, 'the engine error itself is not public');
      assert.equal((await app.inject('/api/v1/admin/status')).json().engine.error, 'down');
    } finally {
      runtime.reachable = true;
    }
  });

  test('unknown API route → JSON 404', async () => {
    const r = await app.inject('/api/v1/nothing');
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error.code, 'not_found');
  });
});

describe('terminal WebSocket (fake runtime, ephemeral port)', () => {
  let app: FastifyInstance;
  let base: string;
  before(async () => {
    ({ app } = await setup());
    await app.listen({ host: '127.0.0.1', port: 0 });
    const a = app.server.address();
    base = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  after(() => app.close());

  const newSession = async () => {
    const r = await fetch(`http://${base}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lab: 'processes' }),
    });
    return (await r.json()) as {
      id: string;
      token: string;
      terminals: { name: string; url: string; ticket: string }[];
    };
  };

  /** A fresh ticket for a terminal of `s`, as the page gets one before a reconnect. */
  const ticket = async (s: { id: string; token: string }, name: string) => {
    const r = await fetch(`http://${base}/api/v1/sessions/${s.id}/terminals/${name}/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(r.status, 201);
    return ((await r.json()) as { ticket: string }).ticket;
  };

  /** Opens a terminal socket at `url` (the tests' terminal client); resolves once attached. */
  const open = (url: string, headers: Record<string, string> = {}) =>
    TermClient.connect(`ws://${base}${url}`, { headers });

  /** How the server answered a socket it refuses after the upgrade: close code and error code. */
  const refusal = (url: string, headers: Record<string, string> = {}) =>
    socketOutcome(`ws://${base}${url}`, headers);

  test('no, wrong, used or misplaced ticket, unknown terminal, foreign origin: closed with a code', async () => {
    const s = await newSession();
    const [container, host] = s.terminals;
    assert.equal(await refusal(host!.url), 'close 4001 bad_token', 'no ticket');
    assert.equal(await refusal(`${host!.url}?ticket=wrong`), 'close 4001 bad_token', 'a wrong ticket');
    assert.equal(await refusal(`${host!.url}?token=${s.token}`), 'close 4001 bad_token', 'the session token');
    assert.equal(
      await refusal(`${host!.url}?ticket=${container!.ticket}`),
      'close 4001 bad_token',
      "another terminal's",
    );
    const t = await ticket(s, 'host');
    assert.equal(
      await refusal(`${host!.url}?ticket=${t}`, { origin: 'https://evil.example' }),
      'close 4003 forbidden',
      'a foreign origin',
    );
    assert.equal(await refusal(`/api/v1/sessions/${s.id}/terminals/Nope?ticket=x`), 'close 1008 bad_request');
    const ok = await open(`${host!.url}?ticket=${host!.ticket}`, { origin: `http://${base}` });
    assert.equal(ok.controls[0]?.type, 'attached', 'the first ticket of the session');
    await ok.close();
    assert.equal(
      await refusal(`${host!.url}?ticket=${host!.ticket}`),
      'close 4001 bad_token',
      'a used ticket',
    );
    const unknown = await fetch(`http://${base}/api/v1/sessions/${s.id}/terminals/nope/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(unknown.status, 404, 'no ticket for a terminal the lab does not have');
  });

  test('bytes echo through; garbage control messages get an error and change nothing', async () => {
    const s = await newSession();
    const t = await open(`${s.terminals[1]!.url}?ticket=${s.terminals[1]!.ticket}`);
    assert.equal(t.controls[0]?.type, 'attached');
    t.send('hello');
    await t.waitFor(/hello/, 5000);
    // Frames the page never sends, on purpose: through the client's raw socket.
    for (const junk of ['not json', '{"type":"resize","cols":-1,"rows":2}', '{"type":"boom"}', 'null']) {
      const from = t.controls.length;
      t.raw.send(junk);
      assert.equal((await t.control((m) => m.type === 'error', 5000, from)).code, 'bad_message');
    }
    const from = t.controls.length;
    t.raw.send(JSON.stringify({ type: 'ping', t: 7 }));
    assert.deepEqual(await t.control(() => true, 5000, from), { type: 'pong', t: 7 });
    await t.close();
  });

  test('an oversized frame closes the socket with 1009; the server keeps serving', async () => {
    const s = await newSession();
    const t = await open(`${s.terminals[1]!.url}?ticket=${s.terminals[1]!.ticket}`);
    t.raw.send(Buffer.alloc(64 * 1024 + 1), { binary: true });
    assert.equal(await t.closed(), 1009);
    const again = await open(`${s.terminals[1]!.url}?ticket=${await ticket(s, 'host')}`);
    assert.equal(again.controls[0]?.type, 'attached');
    await again.close();
  });

  test('deleting the session closes its sockets with 4000', async () => {
    const s = await newSession();
    const t = await open(`${s.terminals[0]!.url}?ticket=${s.terminals[0]!.ticket}`);
    await fetch(`http://${base}/api/v1/sessions/${s.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(await t.closed(), 4000);
  });
});

describe('local mode access token', () => {
  let app: FastifyInstance;
  before(async () => {
    ({ app } = await setup('s3cret-token'));
  });
  after(() => app.close());

  test('lab endpoints refuse without the token; the printed link sets a cookie that unlocks them', async () => {
    const refused = await app.inject({
      method: 'POST',
      url: '/api/v1/sessions',
      payload: { lab: 'processes' },
    });
    assert.equal(refused.statusCode, 401);
    assert.match(refused.json().error.message, /local mode/);
    const wrong = await app.inject('/?access=nope');
    assert.equal(wrong.statusCode, 401);
    const link = await app.inject('/?access=s3cret-token');
    assert.equal(link.statusCode, 303);
    assert.equal(link.headers.location, '/');
    const cookie = String(link.headers['set-cookie']).split(';')[0]!;
    assert.match(String(link.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/sessions',
      payload: { lab: 'processes' },
      headers: { cookie },
    });
    assert.equal(ok.statusCode, 201);
    const health = await app.inject('/api/v1/health');
    assert.equal(health.statusCode, 200, 'health and the site stay open');
  });
});

describe('POST /api/v1/labs/:id/hint (fake runtime, no port)', () => {
  let app: FastifyInstance;
  before(async () => {
    ({ app } = await setup());
  });
  after(() => app.close());

  test("a lesson page's hint: 202 and whether it counted; unknown lab 404, malformed id 400", async () => {
    const hint = (lab: string) => app.inject({ method: 'POST', url: `/api/v1/labs/${lab}/hint` });
    const first = await hint('processes');
    assert.equal(first.statusCode, 202);
    assert.deepEqual(first.json(), { counted: true });
    assert.equal(first.headers['cache-control'], 'no-store');
    // Hints for one lab stop counting at CL_POOL_MAX (40 by default): more could make no spare.
    let counted = 1;
    for (let i = 0; i < 59; i++) if ((await hint('processes')).json().counted) counted++;
    assert.equal(counted, 40);
    const unknown = await hint('nope');
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error.code, 'unknown_lab');
    const long = await hint('x'.repeat(65));
    assert.equal(long.statusCode, 400);
    assert.equal(long.json().error.code, 'bad_request');
  });
});
