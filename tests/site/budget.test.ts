/**
 * JS budget on the built site (the same analysis `npm run build` prints via scripts/site-report.ts):
 * every page's first-load JS — module scripts, their static imports, inline scripts; not Pagefind,
 * not dynamic import() — is at most JS_BUDGET_GZIP_BYTES gzipped. The report CLI agrees (exit 0).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, test } from 'node:test';
import { analyseSite, formatReport, JS_BUDGET_GZIP_BYTES, kb } from '../../scripts/site-report.ts';
import { DIST, lessons, listPages, ROOT, requireDist, siteBase } from './site.ts';

let base: string;

before(async () => {
  requireDist();
  base = await siteBase();
});

test(`every page loads at most ${kb(JS_BUDGET_GZIP_BYTES)} of JS (gzipped) on first load`, async (t) => {
  const report = await analyseSite(DIST, base);
  for (const line of formatReport(report).split('\n')) t.diagnostic(line);
  const lessonPaths = new Set(lessons(listPages(DIST, base)).map((p) => p.path));
  assert.ok(
    report.pages.some((p) => lessonPaths.has(p.path)),
    'no lesson page was analysed',
  );
  const over = report.overBudget.map((p) => {
    const top = p.assets
      .filter((a) => a.kind === 'js')
      .sort((a, b) => b.gzipBytes - a.gzipBytes)
      .slice(0, 5)
      .map((a) => `${a.url} ${kb(a.gzipBytes)}`);
    return `${p.path}: ${kb(p.jsGzipBytes)} (largest: ${top.join(', ')})`;
  });
  assert.deepEqual(over, [], `pages over the first-load JS budget:\n${over.join('\n')}`);
});

test('scripts/site-report.ts runs on dist/ without a browser and exits 0', () => {
  const run = spawnSync(process.execPath, ['scripts/site-report.ts', DIST, '--base', base], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `site-report exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /Max first-load JS: [\d.]+ KB/);
  assert.match(run.stdout, /Total page weight/);
});
