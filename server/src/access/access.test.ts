import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../../../tests/unit-support/test-app.ts';
import { testLab } from '../../../tests/unit-support/test-lab.ts';
import {
  accessCookieOptions,
  accessPolicy,
  checkAccess,
  isLoopbackHost,
  refusalMessage,
  sameSecret,
  sameSitePath,
} from './access.ts';
import { assertOperator, isDirectLocal, isLoopbackAddress } from './operator.ts';

describe('access policy (pure)', () => {
  const code = { mode: 'code' as const, secret: 'class-of-2026', contact: 'Ana (ana@example.org)' };

  test('open lets everything through; code and local need the secret', () => {
    assert.deepEqual(checkAccess({ mode: 'open', secret: undefined }, undefined), { ok: true });
    assert.deepEqual(checkAccess(code, 'class-of-2026'), { ok: true });
    const missing = checkAccess(code, undefined);
    assert.equal(missing.ok, false);
    assert.equal(!missing.ok && missing.reason, 'missing');
    assert.equal(checkAccess(code, '').ok, false);
    const wrong = checkAccess(code, 'class-of-2025');
    assert.equal(!wrong.ok && wrong.reason, 'wrong');
    assert.equal(checkAccess({ mode: 'local', secret: 't0k' }, 't0k').ok, true);
  });

  test('messages say how to get access', () => {
    assert.match(
      refusalMessage(code, 'missing'),
      /need an access code: open the invite link you were given, or ask Ana/,
    );
    assert.match(refusalMessage(code, 'wrong'), /not accepted.*newest invite link/);
    assert.match(
      refusalMessage({ ...code, contact: undefined }, 'missing'),
      /ask the person who runs this site/,
    );
    assert.match(refusalMessage({ mode: 'local', secret: 'x' }, 'missing'), /local mode/);
  });

  test('policy from the config: local token wins, then code, else open', () => {
    assert.equal(accessPolicy({ mode: 'open' }, 'tok').mode, 'local');
    assert.deepEqual(accessPolicy({ mode: 'code', accessCode: 'abcdefgh' }, undefined), {
      mode: 'code',
      secret: 'abcdefgh',
      contact: undefined,
    });
    assert.deepEqual(accessPolicy({ mode: 'open' }, undefined), { mode: 'open', secret: undefined });
  });

  test('the access cookie: HttpOnly, SameSite=Strict, site-wide; a month in code mode, Secure over TLS', () => {
    assert.deepEqual(accessCookieOptions(code, true), {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure: true,
      maxAge: 30 * 24 * 3600,
    });
    assert.deepEqual(accessCookieOptions({ mode: 'local', secret: 't' }, false), {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure: false,
    });
  });

  test('loopback Host values (local mode) and same-site redirect paths', () => {
    for (const h of [
      '127.0.0.1',
      '127.0.0.1:4321',
      'localhost:80',
      'LOCALHOST',
      '[::1]:4321',
      '[::1]',
      '127.9.8.7',
    ])
      assert.ok(isLoopbackHost(h), h);
    for (const h of [
      undefined,
      '',
      'evil.example',
      'evil.example:4321',
      '127.0.0.1.evil.example',
      'localhost.evil.example',
      '0x7f.1',
      '2130706433',
      '[::2]',
      '[::ffff:127.0.0.1]',
      '::1',
      '127.0.0.1:4321:1',
      '127.0.0.1 evil',
    ])
      assert.ok(!isLoopbackHost(h), String(h));
    assert.equal(sameSitePath('/'), '/');
    assert.equal(sameSitePath('/02-why/'), '/02-why/');
    assert.equal(sameSitePath('//evil.com'), '/evil.com');
    assert.equal(sameSitePath('/\\evil.com'), '/evil.com');
    assert.equal(sameSitePath('\\/evil.com'), '/evil.com');
  });

  test('secrets compare in constant time', () => {
    assert.ok(sameSecret('a', 'a'));
    assert.ok(!sameSecret('a', 'ab'));
    assert.ok(!sameSecret(undefined, 'a'));
  });

  test('operator endpoints: token when set, else direct loopback only', () => {
    const req = (remoteAddress: string, headers: Record<string, string> = {}) => ({
      socket: { remoteAddress },
      headers,
    });
    assert.ok(
      isLoopbackAddress('127.0.0.1') && isLoopbackAddress('::1') && isLoopbackAddress('::ffff:127.0.0.5'),
    );
    assert.ok(!isLoopbackAddress('10.0.0.1') && !isLoopbackAddress(undefined as unknown as string));
    assert.ok(isDirectLocal(req('127.0.0.1')));
    assert.ok(!isDirectLocal(req('127.0.0.1', { 'x-forwarded-for': '1.2.3.4' })));
    assert.ok(!isDirectLocal(req('127.0.0.1', { forwarded: 'for=1.2.3.4' })));
    assert.ok(!isDirectLocal(req('172.18.0.1')));
    assert.doesNotThrow(() => assertOperator(req('127.0.0.1'), undefined, 'x', 'T'));
    assert.throws(() => assertOperator(req('10.1.1.1'), undefined, 'x', 'T'), { code: 'forbidden' });
    assert.throws(() => assertOperator(req('127.0.0.1'), 'secret-token', 'x', 'T'), { code: 'bad_token' });
    assert.doesNotThrow(() =>
      assertOperator(req('10.1.1.1', { authorization: 'Bearer secret-token' }), 'secret-token', 'x', 'T'),
    );
  });
});

describe('code mode in the app (fake runtime, no port)', () => {
  let app: FastifyInstance;
  before(async () => {
    ({ app } = await testApp({
      env: {
        CL_MODE: 'code',
        CL_ACCESS_CODE: 'invite-code-1',
        CL_MAX_SESSIONS: '10',
        CL_MAX_SESSIONS_PER_CLIENT: '10',
      },
      labs: [testLab({ terminals: [{ name: 'host', title: 'On the host', target: 'host' }] })],
    }));
  });
  after(() => app.close());

  const create = (headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { lab: 'processes' }, headers });

  test('401 without, 401 with a wrong code, 201 with the header or the invite cookie', async () => {
    assert.equal((await create()).statusCode, 401);
    assert.equal((await create({ 'x-access-token': 'nope-nope' })).statusCode, 401);
    assert.equal((await create({ 'x-access-token': 'invite-code-1' })).statusCode, 201);
    const link = await app.inject('/some/page/?access=invite-code-1&x=1');
    assert.equal(link.statusCode, 303);
    assert.equal(link.headers.location, '/some/page/?x=1');
    const cookie = String(link.headers['set-cookie']).split(';')[0]!;
    assert.equal((await create({ cookie })).statusCode, 201);
    const status = (await app.inject('/api/v1/admin/status')).json();
    assert.equal(status.access, 'code');
    assert.equal(status.mode, 'code');
  });

  test('the invite cookie as sent and as read: first of its name, among others; malformed is no credential', async () => {
    const link = await app.inject('/?access=invite-code-1');
    assert.equal(
      link.headers['set-cookie'],
      'cl_access=invite-code-1; Max-Age=2592000; Path=/; HttpOnly; SameSite=Strict',
    );
    assert.equal((await create({ cookie: 'a=1; cl_access=invite-code-1; b=2' })).statusCode, 201);
    assert.equal((await create({ cookie: 'cl_access=invite-code-1; cl_access=nope' })).statusCode, 201);
    assert.equal((await create({ cookie: 'cl_access=nope-nope; cl_access=invite-code-1' })).statusCode, 401);
    assert.equal(
      (await create({ cookie: 'cl_access=%E0%A4%A', 'x-access-token': 'invite-code-1' })).statusCode,
      201,
      'a cookie that does not decode is ignored: the header counts',
    );
    const none = await create({ cookie: 'cl_access=%E0%A4%A' });
    assert.equal(none.statusCode, 401);
    assert.match(none.json().error.message, /need an access code/, 'missing, not wrong');
  });
});
