/**
 * Guards hold on every spelling of every protected route, in every access mode (real server,
 * real engine). For each guarded request whose plain spelling is refused (no access code, no
 * session token, a foreign Origin, a request relayed by a proxy to an operator route, a new
 * session while the server drains, a foreign Host in local mode), every other spelling of
 * its path (percent-escapes of each character in upper and lower case, doubled and trailing
 * slashes, `.`/`..` segments, `;` parameters, case changes) and the methods HEAD and OPTIONS
 * must be refused as well: no 2xx, no terminal attached, no container created.
 *
 * Requests are sent byte for byte over TCP (tests/abuse/raw-http.ts), so nothing on the
 * client side normalises them first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { useServer } from '../support/fixtures.ts';
import { labContainers, type RunningServer, type SessionInfo, terminalTicket } from '../support/server.ts';
import { type RawReply, type RawRequest, rawRequest } from './raw-http.ts';
import { spellings } from './spellings.ts';

after(() => {
  console.log(`\n--- guarded requests: ${sent.requests} sent in ${(sent.ms / 1000).toFixed(1)} s ---\n`);
});

const CODE = 'paths-code-2026';
const EVIL = 'http://evil.example';

type Mode = 'open' | 'code' | 'local';

interface Case {
  /** What the plain spelling meets. */
  guard: string;
  method: string;
  path: string;
  /** A query string, or a function giving a fresh one for each request (a single-use ticket). */
  query?: string | (() => Promise<string>);
  headers?: Record<string, string>;
  body?: string;
  upgrade?: boolean;
}

/** Got through: a 2xx, or an upgrade after which the terminal talks. */
function passed(r: RawReply): boolean {
  if (r.status >= 200 && r.status < 300) return true;
  // A refusal after the upgrade sends an `error` message, then closes; anything else on
  // the socket (`attached`, output) means the terminal opened.
  if (r.status === 101) return r.ws?.kind === 'text' && !r.ws.text.startsWith('{"type":"error"');
  return false;
}

function describeReply(r: RawReply): string {
  if (r.status === 101)
    return `101 then ${r.ws?.kind === 'close' ? `close ${r.ws.code}` : r.ws?.kind === 'text' ? r.ws.text.slice(0, 60) : 'nothing'}`;
  return String(r.status);
}

async function inBatches<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += n) out.push(...(await Promise.all(items.slice(i, i + n).map(fn))));
  return out;
}

/** Requests sent by tryAll, for the figures printed at the end. */
const sent = { requests: 0, ms: 0 };

/**
 * Sends the plain spelling (it must be refused), then every spelling × method; returns the
 * ones that got through.
 */
async function tryAll(port: number, c: Case): Promise<string[]> {
  const t0 = performance.now();
  const req = async (method: string, path: string): Promise<RawRequest> => ({
    method,
    target: path + (typeof c.query === 'function' ? await c.query() : (c.query ?? '')),
    headers: { ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}), ...c.headers },
    // A body only where the method carries one.
    body: method === c.method ? c.body : undefined,
    upgrade: c.upgrade && method === 'GET',
  });
  const plain = await rawRequest(port, await req(c.method, c.path));
  assert.ok(
    !passed(plain),
    `premise: the plain ${c.method} ${c.path} (${c.guard}) must be refused, got ${describeReply(plain)}`,
  );
  const attempts: { method: string; path: string; note: string }[] = [];
  for (const m of new Set([c.method, 'HEAD', 'OPTIONS'])) {
    if (m !== c.method) attempts.push({ method: m, path: c.path, note: 'plain path' });
    for (const s of spellings(c.path)) attempts.push({ method: m, path: s.path, note: s.note });
  }
  // At most 8 at once: a session keeps 16 outstanding tickets, so each request's own
  // fresh ticket is still valid when it arrives.
  const got = await inBatches(attempts, 8, async (a) => ({
    a,
    r: await rawRequest(port, await req(a.method, a.path)),
  }));
  sent.requests += attempts.length + 1;
  sent.ms += performance.now() - t0;
  return got
    .filter(({ r }) => passed(r))
    .map(({ a, r }) => `${a.method} ${a.path} (${a.note}) → ${describeReply(r)} [${c.guard}]`);
}

/** Every guarded request of a live session in `mode`. `cred` unlocks the access check. */
function cases(mode: Mode, s: SessionInfo, cred: Record<string, string>, base: string, port: number): Case[] {
  const id = s.id;
  const ticket = async () => `?ticket=${await terminalTicket(base, s, 'host', cred)}`;
  const bearer = { authorization: `Bearer ${s.token}` };
  const sessionRoutes: Omit<Case, 'guard'>[] = [
    { method: 'GET', path: `/api/v1/sessions/${id}` },
    { method: 'POST', path: `/api/v1/sessions/${id}/extend` },
    { method: 'GET', path: `/api/v1/sessions/${id}/processes` },
    { method: 'GET', path: `/api/v1/sessions/${id}/cgroup` },
    { method: 'GET', path: `/api/v1/sessions/${id}/checks` },
    { method: 'POST', path: `/api/v1/sessions/${id}/checks/sleep-host-pid`, body: '{"answer":"1"}' },
    // Last: a DELETE that got through would end the session the other cases use.
    { method: 'DELETE', path: `/api/v1/sessions/${id}` },
  ];
  const terminal = `/api/v1/sessions/${id}/terminals/host`;
  const ownOrigin = { origin: `http://127.0.0.1:${port}` };
  const out: Case[] = [];
  if (mode !== 'open') {
    // The access code (code) or start-up token (local): nothing else is missing.
    out.push({ guard: 'access', method: 'POST', path: '/api/v1/sessions', body: '{"lab":"processes"}' });
    out.push({ guard: 'access', method: 'POST', path: '/api/v1/sessions/', body: '{"lab":"processes"}' });
    // A counted hint makes the server build a spare lab host: the container count shows a leak too.
    out.push({ guard: 'access', method: 'POST', path: '/api/v1/labs/processes/hint' });
    for (const r of sessionRoutes.slice(0, -1)) out.push({ guard: 'access', ...r, headers: bearer });
    out.push({ guard: 'access', method: 'POST', path: `${terminal}/tickets`, headers: bearer });
    out.push({
      guard: 'access',
      method: 'GET',
      path: terminal,
      query: ticket,
      headers: ownOrigin,
      upgrade: true,
    });
  }
  // The session token, and the terminal ticket (with the access credential, where one is needed):
  // none, a made-up one, the session's token in its place.
  for (const r of sessionRoutes.slice(0, -1)) out.push({ guard: 'token', ...r, headers: cred });
  for (const query of ['', '?ticket=AAAAAAAAAAAAAAAAAAAAAA', `?ticket=${s.token}&token=${s.token}`]) {
    out.push({
      guard: 'token',
      method: 'GET',
      path: terminal,
      query,
      headers: { ...cred, ...ownOrigin },
      upgrade: true,
    });
  }
  out.push({ guard: 'token', method: 'POST', path: `${terminal}/tickets`, headers: cred });
  // A foreign page's socket: everything right but the Origin.
  out.push({
    guard: 'origin',
    method: 'GET',
    path: terminal,
    query: ticket,
    headers: { ...cred, origin: EVIL },
    upgrade: true,
  });
  // Operator routes answer direct loopback requests only; a relayed one must be refused.
  const relayed = { 'x-forwarded-for': '203.0.113.7' };
  out.push({ guard: 'operator', method: 'GET', path: '/metrics', headers: relayed });
  out.push({ guard: 'operator', method: 'GET', path: '/api/v1/admin/sessions', headers: relayed });
  out.push({ guard: 'operator', method: 'DELETE', path: `/api/v1/admin/sessions/${id}`, headers: relayed });
  // A spelling that got through would end every session and stop the server: the test would see it.
  out.push({ guard: 'operator', method: 'POST', path: '/api/v1/admin/shutdown', headers: relayed });
  for (const r of sessionRoutes.slice(-1)) {
    if (mode !== 'open') out.push({ guard: 'access', ...r, headers: bearer });
    out.push({ guard: 'token', ...r, headers: cred });
  }
  return out;
}

async function adminSessionCount(srv: RunningServer): Promise<number> {
  const r = await fetch(`${srv.base}/api/v1/admin/sessions`);
  assert.equal(r.status, 200);
  return ((await r.json()) as { sessions: unknown[] }).sessions.length;
}

/** Local mode prints its token in the start-up link. */
function localToken(srv: RunningServer): string {
  const m = /\?access=([A-Za-z0-9_-]+)/.exec(srv.logs());
  assert.ok(m, `no access link in the local-mode start-up output:\n${srv.logs()}`);
  return m[1]!;
}

for (const mode of ['open', 'code', 'local'] as const) {
  describe(`${mode} mode: every spelling of every protected route meets its guard`, () => {
    const fx = useServer(`abuse-paths-${mode}`, {
      CL_POOL_SIZE: '0',
      CL_CREATE_PER_MINUTE: '1000',
      CL_MAX_SESSIONS_PER_CLIENT: '20',
      ...(mode === 'code' ? { CL_MODE: 'code', CL_ACCESS_CODE: CODE } : {}),
      ...(mode === 'local' ? { CL_MODE: 'local' } : {}),
    });
    let s: SessionInfo;
    let cred: Record<string, string> = {};

    before(async () => {
      if (mode === 'code') cred = { 'x-access-token': CODE };
      if (mode === 'local') cred = { 'x-access-token': localToken(fx.srv) };
      s = await fx.session('processes', cred);
    });

    test('no spelling or method gets past a guard the plain spelling meets', async () => {
      const leaks: string[] = [];
      let tried = 0;
      for (const c of cases(mode, s, cred, fx.base, fx.port)) {
        leaks.push(...(await tryAll(fx.port, c)));
        tried++;
      }
      assert.deepEqual(leaks.slice(0, 40), [], `${leaks.length} requests got past a guard`);
      assert.ok(tried >= 10, `only ${tried} guarded requests tried`);
      // Nothing was created or ended behind a guard's back.
      assert.equal(await adminSessionCount(fx.srv), 1);
      assert.equal((await labContainers(fx.instance)).length, 1);
      const t = await fx.terminal(s, 'host', { headers: cred, prompt: false });
      await t.close();
      assert.equal(fx.srv.proc.exitCode, null);
    });
  });
}

describe('draining: no spelling of POST /api/v1/sessions starts a session, nor of the hint a spare', () => {
  const fx = useServer('abuse-paths-drain', { CL_POOL_SIZE: '0', CL_DRAIN_GRACE: '120s' });

  test('every spelling and method is refused while the server drains', async () => {
    const srv = fx.srv;
    const s = await fx.session('processes');
    // An open terminal makes the drain wait its grace period.
    const t = await fx.terminal(s, 'host', { prompt: false });
    srv.proc.kill('SIGTERM');
    // The drain would wait out its grace (the fixture's SIGTERM may come within the second
    // in which the server takes a signal for the same one again): end it, the fixture
    // then removes its containers.
    fx.defer(() => srv.stop('SIGKILL'));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await rawRequest(srv.port, {
        method: 'POST',
        target: '/api/v1/sessions',
        headers: { 'content-type': 'application/json' },
        body: '{"lab":"processes"}',
      });
      if (r.status === 503) break;
      assert.ok(Date.now() < deadline, `the server never started draining (last ${r.status})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const leaks = await tryAll(srv.port, {
      guard: 'drain',
      method: 'POST',
      path: '/api/v1/sessions',
      body: '{"lab":"processes"}',
    });
    // A server going away makes no spares either.
    leaks.push(
      ...(await tryAll(srv.port, { guard: 'drain', method: 'POST', path: '/api/v1/labs/processes/hint' })),
    );
    assert.deepEqual(leaks.slice(0, 40), [], `${leaks.length} requests got past the drain`);
    assert.equal((await labContainers(fx.instance)).length, 1);
    await t.close();
  });
});

describe('local mode answers only requests addressed to this machine (DNS rebinding)', () => {
  const fx = useServer('abuse-paths-host', { CL_POOL_SIZE: '0', CL_MODE: 'local' });
  let s: SessionInfo;
  let cred: Record<string, string>;

  before(async () => {
    cred = { 'x-access-token': localToken(fx.srv) };
    s = await fx.session('processes', cred);
  });

  test('a foreign Host is refused on every route, with or without the credential', async () => {
    const leaks: string[] = [];
    for (const host of ['evil.example', `evil.example:${fx.port}`, '127.0.0.1.evil.example', '0x7f.1']) {
      const foreign = { host, origin: `http://${host}` };
      const list: Case[] = [
        { guard: 'host', method: 'POST', path: '/api/v1/sessions', body: '{"lab":"processes"}' },
        { guard: 'host', method: 'GET', path: `/api/v1/sessions/${s.id}` },
        { guard: 'host', method: 'GET', path: `/api/v1/sessions/${s.id}/terminals/host`, upgrade: true },
        { guard: 'host', method: 'GET', path: '/api/v1/labs' },
        { guard: 'host', method: 'POST', path: '/api/v1/labs/processes/hint' },
      ];
      for (const c of list) {
        const withCred: Case = {
          ...c,
          headers: { ...foreign, ...cred, authorization: `Bearer ${s.token}` },
          ...(c.upgrade
            ? { query: async () => `?ticket=${await terminalTicket(fx.base, s, 'host', cred)}` }
            : {}),
        };
        leaks.push(...(await tryAll(fx.port, withCred)).map((l) => `Host ${host}: ${l}`));
      }
    }
    assert.deepEqual(leaks.slice(0, 40), [], `${leaks.length} requests with a foreign Host got through`);
    // Loopback names stay usable.
    for (const host of [`127.0.0.1:${fx.port}`, `localhost:${fx.port}`]) {
      const r = await rawRequest(fx.port, {
        method: 'GET',
        target: `/api/v1/sessions/${s.id}`,
        headers: { host, ...cred, authorization: `Bearer ${s.token}` },
      });
      assert.equal(r.status, 200, `Host ${host}`);
    }
    assert.equal((await labContainers(fx.instance)).length, 1);
  });
});
