/**
 * The access code and the replies around it, against the real server in code mode:
 * guessing the code is rate limited per client; an invite link's redirect never leaves the
 * site; replies that carry a token are never cached; HSTS is sent when the site is served
 * over TLS (at a trusted proxy); refusals of malformed requests speak our words, not the
 * framework's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useServer } from '../support/fixtures.ts';
import { rawRequest } from './raw-http.ts';

const CODE = 'guess-me-not-2026';

describe('code mode: guesses, redirects, caching, HSTS, messages (real server)', () => {
  const srv = useServer('abuse-codes', {
    CL_POOL_SIZE: '0',
    CL_MODE: 'code',
    CL_ACCESS_CODE: CODE,
    CL_CREATE_PER_MINUTE: '100',
    CL_MAX_SESSIONS_PER_CLIENT: '10',
    // X-Forwarded-Proto is believed from loopback peers only (the HSTS case).
    CL_TRUST_PROXY: 'loopback',
  });

  const post = (from: string, headers: Record<string, string>) =>
    rawRequest(srv.port, {
      method: 'POST',
      target: '/api/v1/sessions',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"lab":"processes"}',
      localAddress: from,
    });

  test('wrong codes are rate limited per client; missing ones cost nothing; others are unaffected', async () => {
    const guesser = '127.0.0.2';
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++)
      statuses.push((await post(guesser, { 'x-access-token': `guess-${i}-xxxx` })).status);
    assert.deepEqual(statuses, new Array(10).fill(401), 'the first ten wrong codes are answered 401');
    const locked = await post(guesser, { 'x-access-token': 'guess-10-xxxx' });
    assert.equal(locked.status, 429, 'the eleventh wrong code within a minute');
    assert.equal(JSON.parse(locked.body).error.code, 'rate_limited');
    const retry = Number(locked.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    // While locked, even the right code is not compared (no oracle for the guesser).
    assert.equal((await post(guesser, { 'x-access-token': CODE })).status, 429);
    const link = await rawRequest(srv.port, {
      method: 'GET',
      target: `/?access=${CODE}`,
      localAddress: guesser,
    });
    assert.equal(link.status, 429, 'the invite link is refused too while locked');
    // Another client is not affected.
    const other = await post('127.0.0.3', { 'x-access-token': CODE });
    assert.equal(other.status, 201, other.body);
    // A reader without a code yet (no credential at all) is never locked out.
    const curious = '127.0.0.4';
    for (let i = 0; i < 20; i++) assert.equal((await post(curious, {})).status, 401);
    assert.equal((await post(curious, { 'x-access-token': CODE })).status, 201);
  });

  test('an invite link redirects to the same site, whatever its path says', async () => {
    for (const target of [
      `/.//evil.example/?access=${CODE}`,
      `//evil.example/?access=${CODE}`,
      `/\\evil.example/?access=${CODE}`,
      `/./\\evil.example/?access=${CODE}`,
      `/%2F%2Fevil.example/?access=${CODE}`,
      `/x/..//evil.example?access=${CODE}&keep=1`,
    ]) {
      const r = await rawRequest(srv.port, { method: 'GET', target, localAddress: '127.0.0.5' });
      assert.equal(r.status, 303, `${target}: ${r.status} ${r.body}`);
      const location = r.headers.location ?? '';
      const resolved = new URL(location, 'https://course.example/some/page');
      assert.equal(resolved.host, 'course.example', `${target} → Location ${location}`);
      assert.doesNotMatch(location, /access=/, 'the code is not repeated in the Location');
      assert.equal(r.headers['cache-control'], 'no-store', `${target}: the redirect sets a cookie`);
    }
  });

  test('a refused upgrade says Connection: close (a proxy must not reuse its dead socket)', async () => {
    const r = await rawRequest(srv.port, {
      method: 'GET',
      target: '/api/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/terminals/host?ticket=x',
      upgrade: true,
      localAddress: '127.0.0.8',
    });
    assert.equal(r.status, 401, 'no access code: refused before the upgrade');
    assert.equal(r.headers.connection, 'close');
  });

  test('replies that carry a token or a session are never cached', async () => {
    const created = await post('127.0.0.6', { 'x-access-token': CODE });
    assert.equal(created.status, 201);
    assert.equal(created.headers['cache-control'], 'no-store', 'POST /sessions (carries the token)');
    const s = JSON.parse(created.body) as { id: string; token: string };
    const read = await rawRequest(srv.port, {
      method: 'GET',
      target: `/api/v1/sessions/${s.id}`,
      headers: { 'x-access-token': CODE, authorization: `Bearer ${s.token}` },
    });
    assert.equal(read.status, 200);
    assert.equal(read.headers['cache-control'], 'no-store', 'GET /sessions/:id');
    const refused = await post('127.0.0.6', {});
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['cache-control'], 'no-store', 'a refusal of a lab route');
  });

  test('HSTS when served over TLS at a trusted proxy, and only then', async () => {
    const tls = await rawRequest(srv.port, {
      method: 'GET',
      target: '/',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(tls.status, 200);
    assert.match(tls.headers['strict-transport-security'] ?? '', /^max-age=\d{7,}/);
    const plain = await rawRequest(srv.port, { method: 'GET', target: '/' });
    assert.equal(plain.headers['strict-transport-security'], undefined, 'not over plain HTTP');
  });

  test('malformed requests are refused in our words, with our codes', async () => {
    const send = (headers: Record<string, string>, body: string | undefined) =>
      rawRequest(srv.port, {
        method: 'POST',
        target: '/api/v1/sessions',
        headers: { 'x-access-token': CODE, ...headers },
        body,
        localAddress: '127.0.0.7',
      });
    const cases: [string, Promise<Awaited<ReturnType<typeof send>>>, number, string, RegExp][] = [
      [
        'form body',
        send({ 'content-type': 'application/x-www-form-urlencoded' }, 'lab=processes'),
        415,
        'unsupported_media_type',
        /JSON/,
      ],
      [
        'text/plain body',
        send({ 'content-type': 'text/plain' }, 'lab=processes'),
        400,
        'bad_request',
        /JSON body/,
      ],
      [
        'invalid JSON',
        send({ 'content-type': 'application/json' }, '{"lab":'),
        400,
        'bad_request',
        /not valid JSON/,
      ],
      ['empty JSON body', send({ 'content-type': 'application/json' }, ''), 400, 'bad_request', /empty/],
      [
        'oversized body',
        send({ 'content-type': 'application/json' }, JSON.stringify({ lab: 'x'.repeat(20_000) })),
        413,
        'body_too_large',
        /too large/,
      ],
    ];
    for (const [what, p, status, code, message] of cases) {
      const r = await p;
      assert.equal(r.status, status, `${what}: ${r.body}`);
      const e = JSON.parse(r.body).error as { code: string; message: string };
      assert.equal(e.code, code, what);
      assert.match(e.message, message, what);
      // The framework's own wording names its internals.
      assert.doesNotMatch(
        e.message,
        /FST_|Unsupported Media Type|Body cannot be empty|Unexpected (token|end)|Request body is too large/,
        what,
      );
    }
  });
});
