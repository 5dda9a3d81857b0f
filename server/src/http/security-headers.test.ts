import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { testApp } from '../../../tests/unit-support/test-app.ts';
import { inlineScriptHashes, pageCspDirectives } from './security-headers.ts';

test('inline scripts of every page are hashed; external and JSON data scripts are not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'csp-'));
  try {
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'index.html'), '<script>x()</script><script src="/a.js"></script>');
    writeFileSync(
      join(dir, 'a', 'index.html'),
      '<script type="module">x()</script><script type="application/ld+json">{}</script><script>y()</script>',
    );
    const hashes = inlineScriptHashes(dir);
    // sha256("x()") and sha256("y()"), base64
    assert.deepEqual(hashes, [
      "'sha256-D6IGS8VMvCoyaR/l0h9tERrBTATY01CoPS7l6xDv0kI='",
      "'sha256-nwG+cZ8J4yZ7RZ4RWxVDwCwkMn9GJelY2VgKXNi2Uvk='",
    ]);
    const csp = pageCspDirectives(hashes);
    assert.deepEqual(csp['script-src'], ["'self'", "'wasm-unsafe-eval'", ...hashes]);
    assert.ok(!Object.values(csp).flat().includes("'unsafe-eval'"));
    assert.ok(!csp['script-src']?.includes("'unsafe-inline'"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Every header a security-header middleware (ours or helmet's) may set, in lower case. */
const SECURITY_HEADER_NAMES = [
  'content-security-policy',
  'content-security-policy-report-only',
  'cross-origin-embedder-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'permissions-policy',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-powered-by',
  'x-xss-protection',
];

/** The security headers of a reply; a CSP's directives one per `; ` (CSP allows any spacing). */
const pick = (headers: Record<string, unknown>) =>
  Object.fromEntries(
    SECURITY_HEADER_NAMES.filter((n) => headers[n] !== undefined).map((n) => {
      const v = String(headers[n]);
      return [n, n.startsWith('content-security-policy') ? v.split(/\s*;\s*/).join('; ') : v];
    }),
  );

describe('security headers on every kind of reply (app, fake runtime)', () => {
  const COMMON = {
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
    'referrer-policy': 'strict-origin-when-cross-origin',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  };
  const INLINE = 'console.log(1)';
  let dir: string;
  let app: FastifyInstance;
  let csp: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'csp-site-'));
    writeFileSync(join(dir, 'index.html'), `<!doctype html><title>x</title><script>${INLINE}</script>`);
    writeFileSync(join(dir, '404.html'), '<!doctype html><title>not found</title>');
    writeFileSync(join(dir, 'app.js'), 'export {};\n');
    const hash = createHash('sha256').update(INLINE).digest('base64');
    assert.deepEqual(inlineScriptHashes(dir), [`'sha256-${hash}'`]);
    // The policy as it has been sent since the CSP came in, directive by directive.
    csp = [
      "default-src 'self'",
      `script-src 'self' 'wasm-unsafe-eval' 'sha256-${hash}'`,
      "worker-src 'self'",
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data:",
      "font-src 'self' data:",
      "connect-src 'self'",
      "object-src 'none'",
      "base-uri 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join('; ');
    ({ app } = await testApp({
      env: {
        CL_SITE_DIR: dir,
        CL_MODE: 'code',
        CL_ACCESS_CODE: 'the-code-1234',
        CL_TRUST_PROXY: '127.0.0.1',
      },
    }));
  });
  after(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a page: the common headers and the CSP with the inline script hashes, nothing else', async () => {
    const r = await app.inject('/');
    assert.equal(r.statusCode, 200);
    assert.deepEqual(pick(r.headers), { ...COMMON, 'content-security-policy': csp });
    assert.match(csp, /'sha256-[A-Za-z0-9+/=]+'/);
    const missing = await app.inject('/no/such/page/');
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(pick(missing.headers), { ...COMMON, 'content-security-policy': csp }, 'the 404 page');
  });

  test('API replies, assets, refusals and errors: the common headers, no CSP', async () => {
    const cases: Array<[string, number, InjectOptions]> = [
      ['health', 200, { url: '/api/v1/health' }],
      ['an asset', 200, { url: '/app.js' }],
      ['an unknown API path', 404, { url: '/api/v1/nothing' }],
      [
        'a lab route without the code',
        401,
        { method: 'POST', url: '/api/v1/sessions', payload: { lab: 'processes' } },
      ],
      ['the operator API from elsewhere', 403, { url: '/metrics', remoteAddress: '10.1.2.3' }],
      [
        'a malformed body',
        400,
        {
          method: 'POST',
          url: '/api/v1/sessions',
          headers: { 'content-type': 'application/json', 'x-access-token': 'the-code-1234' },
          payload: '{',
        },
      ],
    ];
    for (const [what, status, req] of cases) {
      const r = await app.inject(req);
      assert.equal(r.statusCode, status, what);
      assert.deepEqual(pick(r.headers), COMMON, what);
    }
  });

  test('over TLS (a trusted proxy says so): HSTS for a year, this host only; never over plain HTTP', async () => {
    const tls = await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } });
    assert.deepEqual(pick(tls.headers), {
      ...COMMON,
      'content-security-policy': csp,
      'strict-transport-security': 'max-age=31536000',
    });
    const api = await app.inject({ url: '/api/v1/health', headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(api.headers['strict-transport-security'], 'max-age=31536000');
    const untrusted = await app.inject({
      url: '/',
      remoteAddress: '127.0.0.9',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(untrusted.headers['strict-transport-security'], undefined, 'an untrusted peer says https');
  });

  test('a refused WebSocket upgrade says Connection: close; a plain request does not', async () => {
    const up = await app.inject({
      url: '/api/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/terminals/host',
      headers: { upgrade: 'websocket', connection: 'Upgrade' },
    });
    assert.equal(up.statusCode, 401);
    assert.equal(up.headers.connection, 'close');
    assert.deepEqual(pick(up.headers), COMMON);
    const plain = await app.inject('/api/v1/health');
    assert.notEqual(plain.headers.connection, 'close');
  });
});
