/**
 * Unit tests of scripts/site-report.ts on a small synthetic build: which scripts count as first-load
 * JS (static import chains yes; dynamic import(), Pagefind and <template> content no), gzip sizes,
 * the budget and the CLI exit codes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { analyseSite, formatReport, JS_BUDGET_GZIP_BYTES, sitePathOf } from './site-report.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function site(files: Record<string, string | Buffer>): string {
  const dist = mkdtempSync(path.join(tmpdir(), 'site-report-'));
  dirs.push(dist);
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dist, rel)), { recursive: true });
    writeFileSync(path.join(dist, rel), body);
  }
  return dist;
}

const gz = (s: string | Buffer) => gzipSync(s, { level: 9 }).length;

const page = (head: string, body = '') =>
  `<!doctype html><html><head><title>t</title>${head}</head><body>${body}</body></html>`;

test('follows static imports (import, export-from, side-effect) and skips dynamic import() and Pagefind', async () => {
  const files = {
    'index.html': page(
      '<script type="module" src="/_astro/entry.js"></script><link rel="stylesheet" href="/_astro/a.css">',
      '<template><script type="module" src="/_astro/inert.js"></script></template>',
    ),
    '01-lesson/index.html': page('<script type="module">import "/_astro/inline-dep.js";</script>'),
    '_astro/entry.js':
      'import{a}from"./chunk-a.js";export{b}from"./chunk-b.js";import"./side.js";const s=()=>import("./lazy.js");import("/pagefind/pagefind.js");',
    '_astro/chunk-a.js': 'import{c}from"./chunk-c.js";export const a=1;',
    '_astro/chunk-b.js': 'export const b=2;',
    '_astro/chunk-c.js': 'export const c=3;',
    '_astro/side.js': 'console.log(1)',
    '_astro/lazy.js': 'export const huge="x";',
    '_astro/inert.js': 'export const inert=1;',
    '_astro/inline-dep.js': 'export default 1;',
    '_astro/a.css': 'body{color:red}@font-face{src:url(/_astro/f.woff2)}',
    '_astro/f.woff2': randomBytes(1000),
    'pagefind/pagefind.js': 'export const p=1;',
  };
  const dist = site(files);
  const report = await analyseSite(dist, '/');
  const home = report.pages.find((p) => p.path === '/');
  assert.ok(home);
  const js = home.assets
    .filter((a) => a.kind === 'js')
    .map((a) => a.url)
    .sort();
  assert.deepEqual(js, [
    '/_astro/chunk-a.js',
    '/_astro/chunk-b.js',
    '/_astro/chunk-c.js',
    '/_astro/entry.js',
    '/_astro/side.js',
  ]);
  const expected = ['entry.js', 'chunk-a.js', 'chunk-b.js', 'chunk-c.js', 'side.js'].reduce(
    (n, f) => n + gz(files[`_astro/${f}` as keyof typeof files]),
    0,
  );
  assert.equal(home.jsGzipBytes, expected);
  assert.equal(home.cssGzipBytes, gz(files['_astro/a.css']));
  assert.equal(home.otherBytes, 1000, 'the font is counted raw (already compressed)');
  assert.equal(home.totalTransferBytes, home.htmlGzipBytes + home.jsGzipBytes + home.cssGzipBytes + 1000);
  assert.equal(home.assets.find((a) => a.url === '/_astro/chunk-c.js')?.via, '/_astro/chunk-a.js');

  const lesson = report.pages.find((p) => p.path === '/01-lesson/');
  assert.ok(lesson);
  assert.deepEqual(
    lesson.assets.map((a) => a.url),
    ['inline#1 "import \\"/_astro/inline-dep.js\\";"', '/_astro/inline-dep.js'],
    'inline module scripts count, and their static imports are followed',
  );
  assert.equal(report.maxJs?.path, '/');
  assert.deepEqual(report.overBudget, []);
  assert.match(formatReport(report), /Max first-load JS: [\d.]+ KB gzipped on \/ /);
});

test('a page over the budget is reported, and the CLI exits 1; a missing dist exits 2', async () => {
  const big = randomBytes(JS_BUDGET_GZIP_BYTES + 4096).toString('base64'); // incompressible enough
  const dist = site({
    'index.html': page('<script type="module" src="/_astro/big.js"></script>'),
    '_astro/big.js': `export const s=${JSON.stringify(big)};`,
  });
  const report = await analyseSite(dist, '/');
  assert.equal(report.overBudget.length, 1);
  assert.match(formatReport(report), /FAIL: 1 page\(s\) over the 60\.0 KB first-load JS budget/);

  const script = fileURLToPath(new URL('./site-report.ts', import.meta.url));
  const over = spawnSync(process.execPath, [script, dist, '--base', '/'], { encoding: 'utf8' });
  assert.equal(over.status, 1, over.stdout + over.stderr);
  const none = spawnSync(process.execPath, [script, path.join(dist, 'nope')], { encoding: 'utf8' });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /npm run build/);
  const bad = spawnSync(process.execPath, [script, dist, '--bsae', '/'], { encoding: 'utf8' });
  assert.equal(bad.status, 2, 'an unknown option is an error, not a folder');
  assert.match(bad.stderr, /Unknown option '--bsae'[\s\S]*usage: node scripts\/site-report\.ts/);
});

test('resolves URLs under a sub-path base and reports files that are missing', async () => {
  const dist = site({
    'index.html': page(
      '<script type="module" src="/sub/_astro/e.js"></script><link rel="icon" href="/sub/nope.svg">',
    ),
    '_astro/e.js': 'import "./gone.js";',
  });
  const report = await analyseSite(dist, '/sub/');
  const home = report.pages[0];
  assert.equal(home?.path, '/sub/');
  assert.deepEqual(
    home?.assets.map((a) => a.url),
    ['/sub/_astro/e.js'],
  );
  assert.deepEqual(home?.missing, [
    '/sub/_astro/gone.js (js, via /sub/_astro/e.js)',
    '/sub/nope.svg (other, via /sub/)',
  ]);
});

test('sitePathOf maps built files to URLs', () => {
  assert.equal(sitePathOf('index.html'), '/');
  assert.equal(sitePathOf('01-a/index.html'), '/01-a/');
  assert.equal(sitePathOf('404.html', '/sub'), '/sub/404.html');
});
