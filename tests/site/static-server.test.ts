/**
 * The test static server behaves like a plain static host: directory index, redirects for directory
 * URLs without a slash, 404.html with status 404, content types (incl. .wasm and Pagefind's files),
 * sub-path mounting and no path traversal. Runs on its own small folder (no dist/ needed).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { contentTypeFor, type StaticServer, serveStatic } from './static-server.ts';

let root: string;
let server: StaticServer;
let sub: StaticServer;

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'static-server-'));
  const files: Record<string, string> = {
    'index.html': '<h1>home</h1>',
    '404.html': '<h1>not found</h1>',
    'lesson/index.html': '<h1>lesson</h1>',
    'page.html': '<h1>page</h1>',
    '_astro/a.js': 'export{}',
    'pagefind/wasm.en.pagefind': 'x',
    'pagefind/index/en_1.pf_index': 'x',
    'pagefind/fragment/en_1.pf_fragment': 'x',
    'pagefind/pagefind.en_1.pf_meta': 'x',
    'x.wasm': 'x',
  };
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), body);
  }
  writeFileSync(path.join(path.dirname(root), 'secret-outside-root.txt'), 'secret');
  server = await serveStatic(root);
  sub = await serveStatic(root, { base: '/sub' });
});

after(async () => {
  await server?.close();
  await sub?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(path.join(path.dirname(root), 'secret-outside-root.txt'), { force: true });
});

const get = (url: string) => fetch(url, { redirect: 'manual' });

test('serves index.html for directories, and binds to 127.0.0.1', async () => {
  assert.match(server.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const home = await get(server.url('/'));
  assert.equal(home.status, 200);
  assert.equal(await home.text(), '<h1>home</h1>');
  const lesson = await get(server.url('/lesson/'));
  assert.equal(await lesson.text(), '<h1>lesson</h1>');
  assert.equal(lesson.headers.get('content-type'), 'text/html; charset=utf-8');
});

test('redirects a directory URL without trailing slash, and serves page.html for /page', async () => {
  const res = await get(server.url('/lesson'));
  assert.equal(res.status, 301);
  assert.equal(res.headers.get('location'), '/lesson/');
  const page = await get(server.url('/page'));
  assert.equal(await page.text(), '<h1>page</h1>');
});

test('answers unknown paths with 404.html and status 404; HEAD has no body', async () => {
  const res = await get(server.url('/nope/'));
  assert.equal(res.status, 404);
  assert.equal(await res.text(), '<h1>not found</h1>');
  const head = await fetch(server.url('/lesson/'), { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
});

test('content types: JS, wasm and Pagefind files', async () => {
  assert.equal(
    (await get(server.url('/_astro/a.js'))).headers.get('content-type'),
    'text/javascript; charset=utf-8',
  );
  assert.equal((await get(server.url('/x.wasm'))).headers.get('content-type'), 'application/wasm');
  for (const f of [
    'wasm.en.pagefind',
    'index/en_1.pf_index',
    'fragment/en_1.pf_fragment',
    'pagefind.en_1.pf_meta',
  ]) {
    const res = await get(server.url(`/pagefind/${f}`));
    assert.equal(res.status, 200, f);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream', f);
  }
  assert.equal(contentTypeFor('a.woff2'), 'font/woff2');
  assert.equal(contentTypeFor('a.svg'), 'image/svg+xml');
});

test('never serves files outside the root', async () => {
  const name = 'secret-outside-root.txt';
  for (const p of [`/../${name}`, `/%2e%2e/${name}`, `/lesson/..%2f..%2f${name}`]) {
    const res = await get(`${server.origin}${p}`);
    assert.equal(res.status, 404, p);
    assert.doesNotMatch(await res.text(), /secret/, p);
  }
});

test('mounted under a sub-path: serves /sub/…, redirects /sub, 404 elsewhere', async () => {
  assert.equal(sub.base, '/sub/');
  assert.equal(sub.url('/lesson/'), `${sub.origin}/sub/lesson/`);
  assert.equal(await (await get(sub.url('/lesson/'))).text(), '<h1>lesson</h1>');
  const bare = await get(`${sub.origin}/sub`);
  assert.equal(bare.status, 301);
  assert.equal(bare.headers.get('location'), '/sub/');
  const outside = await get(`${sub.origin}/lesson/`);
  assert.equal(outside.status, 404);
});
