/**
 * Link check over the built site (offline): every internal href/src/srcset/poster in dist/**\/*.html
 * and every url() in dist/**\/*.css resolves to a file of the build, stays inside the site's base,
 * and every #fragment names an existing id. JS chunks' static imports resolve too. External links
 * are listed (test diagnostics), never fetched. The sitemap lists only pages that exist.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { analyseSite } from '../../scripts/site-report.ts';
import { checkLinks, formatProblems } from './link-check.ts';
import { DIST, listPages, type Page, requireDist, siteBase, siteUrl } from './site.ts';

let base: string;
let site: string | undefined;
let pages: Page[];

before(async () => {
  requireDist();
  base = await siteBase();
  site = await siteUrl();
  pages = listPages(DIST, base);
});

test('every internal link, script, stylesheet and image of every page resolves to a file in dist/', (t) => {
  assert.ok(pages.length > 0, 'no HTML pages in dist/');
  const report = checkLinks(DIST, pages, { base, site });
  const broken = report.problems.filter((p) => !p.reason.startsWith('no element with id='));
  t.diagnostic(`${pages.length} pages, ${report.checked} references, ${report.internal} internal`);
  const externals = [...report.external.entries()].sort(([a], [b]) => a.localeCompare(b));
  t.diagnostic(`${externals.length} external URLs (listed, not fetched):`);
  for (const [url, from] of externals) t.diagnostic(`  ${url}  ← ${[...from].join(', ')}`);
  assert.equal(broken.length, 0, `${broken.length} broken internal reference(s):\n${formatProblems(broken)}`);
});

test('every #fragment link points to an id that exists on its target page', () => {
  const report = checkLinks(DIST, pages, { base, site });
  const missing = report.problems.filter((p) => p.reason.startsWith('no element with id='));
  assert.equal(
    missing.length,
    0,
    `${missing.length} fragment link(s) to missing ids:\n${formatProblems(missing)}`,
  );
});

test('the static imports of every first-load script resolve to built chunks', async () => {
  const report = await analyseSite(DIST, base);
  const missing = report.pages.flatMap((p) => p.missing.map((m) => `  ${p.path}: ${m}`));
  // Missing images/icons are reported by the link test above; here only scripts and stylesheets.
  const code = missing.filter((m) => /\((js|css),/.test(m));
  assert.equal(code.length, 0, `scripts/stylesheets that do not exist in dist/:\n${code.join('\n')}`);
});

test('the sitemap (if the build has one) lists exactly the pages of the build', (t) => {
  const index = path.join(DIST, 'sitemap-index.xml');
  if (!existsSync(index)) {
    t.diagnostic(
      'no sitemap-index.xml (Starlight only writes one when `site` is configured): nothing to check',
    );
    return;
  }
  const locsIn = (xml: string) => [...xml.matchAll(/<loc>([^<]+)<\/loc>/g)].map((m) => new URL(m[1] ?? ''));
  const locs: string[] = [];
  for (const sitemap of locsIn(readFileSync(index, 'utf8'))) {
    const file = path.join(DIST, sitemap.pathname.slice(base.length));
    assert.ok(existsSync(file), `sitemap-index.xml lists ${sitemap.href}, but ${file} does not exist`);
    locs.push(...locsIn(readFileSync(file, 'utf8')).map((u) => u.pathname));
  }
  const built = pages.filter((p) => p.kind !== '404').map((p) => p.path);
  assert.deepEqual([...locs].sort(), [...built].sort(), 'sitemap <loc>s vs built pages');
});
