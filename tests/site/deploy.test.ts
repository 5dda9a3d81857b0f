/**
 * The output of `npm run build` deploys to any static host:
 * - dist/404.html exists, and a plain static host (tests/site/static-server.ts) answers unknown URLs
 *   with it and status 404; it links back to the site;
 * - nothing in dist/ points outside the site's base, and no page hard-codes the dev origin
 *   (`http://localhost…`, `http://127.0.0.1…`, or the configured `site`) in a link or asset URL;
 * - the same project built with `--base /sub/` (a copy of the project, real lessons) works when
 *   served under /sub/: no link or asset leaves /sub/ or is missing, and in Chromium every page
 *   loads with no failed request and no request outside /sub/.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { analyseSite } from '../../scripts/site-report.ts';
import { checkLinks, formatProblems, type LinkProblem } from './link-check.ts';
import {
  attr,
  DIST,
  elements,
  launchChromium,
  listPages,
  type Page,
  readPage,
  requireDist,
  siteBase,
  siteUrl,
} from './site.ts';
import { serveStatic } from './static-server.ts';
import { makeTempProject, type TempProject } from './temp-project.ts';

const SUB = '/sub/';

let base: string;
let site: string | undefined;
let pages: Page[];
let project: TempProject | undefined;

before(async () => {
  requireDist();
  base = await siteBase();
  site = await siteUrl();
  pages = listPages(DIST, base);
});

after(async () => {
  await project?.cleanup();
});

test('dist/404.html exists and a static host serves it with status 404 for unknown URLs', async () => {
  assert.ok(existsSync(path.join(DIST, '404.html')), 'dist/404.html is missing: static hosts need it');
  const server = await serveStatic(DIST, { base });
  try {
    const res = await fetch(server.url('/this/page/does-not-exist/'));
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const body = await res.text();
    assert.match(body, /<title>[^<]*404|Not found|not found/i, 'the 404 response is not the 404 page');
    const home = await fetch(server.url('/'));
    assert.equal(home.status, 200, 'home page');
  } finally {
    await server.close();
  }
  const notFound = pages.find((p) => p.kind === '404');
  assert.ok(notFound);
  const hrefs = [...elements(readPage(notFound))]
    .filter((el) => el.tagName === 'a')
    .map((a) => attr(a, 'href'));
  assert.ok(hrefs.includes(base), `the 404 page has no link back to the site (${base})`);
});

test('no link or asset URL leaves the site base or hard-codes a dev origin', () => {
  const report = checkLinks(DIST, pages, { base, site });
  const outside = report.problems.filter((p) => p.reason.startsWith('outside the site base'));
  assert.equal(outside.length, 0, `references outside ${base}:\n${formatProblems(outside)}`);

  const devOrigins = [/^https?:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\]|0\.0\.0\.0)(:\d+)?(\/|$)/i];
  if (site)
    devOrigins.push(new RegExp(`^${new URL(site).origin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(/|$)`));
  const hardCoded: string[] = [];
  for (const page of pages) {
    for (const el of elements(readPage(page))) {
      // Canonical/alternate links and og:url are *meant* to be absolute (built from `site`).
      if (el.tagName === 'link' && /\b(canonical|alternate|sitemap)\b/.test(attr(el, 'rel') ?? '')) continue;
      for (const name of ['href', 'src', 'poster', 'action', 'data']) {
        const v = attr(el, name);
        if (v && devOrigins.some((re) => re.test(v.trim())))
          hardCoded.push(`${page.path}: <${el.tagName} ${name}="${v}">`);
      }
    }
  }
  assert.deepEqual(
    hardCoded,
    [],
    `absolute URLs to a dev/site origin (break on any other host):\n${hardCoded.join('\n')}`,
  );
});

/** Strip a base from a site path: `/sub/a/#x` → `/a/#x`. */
const rel = (p: string, b: string) => (p.startsWith(b) ? `/${p.slice(b.length)}` : p);

interface Load {
  /** Failed requests (status ≥ 400 or network failure), base-relative → the pages that made them. */
  failed: Map<string, Set<string>>;
  /** Document resources (scripts, styles, images, fonts, frames, navigations) requested outside the base. */
  outside: string[];
  /** Runtime API calls (fetch/XHR/WebSocket/EventSource) outside the base: listed, not failed. */
  apiOutside: Set<string>;
  unstyled: string[];
}

async function loadAll(outDir: string, b: string, sitePages: Page[]): Promise<Load> {
  const server = await serveStatic(outDir, { base: b });
  const browser = await launchChromium();
  const result: Load = { failed: new Map(), outside: [], apiOutside: new Set(), unstyled: [] };
  // Keyed by resource, not by page: the browser fetches some resources (favicon) once per origin.
  const fail = (what: string, where: string) => {
    if (!result.failed.has(what)) result.failed.set(what, new Set());
    result.failed.get(what)?.add(where);
  };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    for (const page of sitePages) {
      const p = await context.newPage();
      const where = rel(page.path, b);
      p.on('response', (r) => {
        const isDocument = r.request().resourceType() === 'document';
        if (r.status() >= 400 && !(isDocument && page.kind === '404')) {
          fail(`${r.status()} ${rel(new URL(r.url()).pathname, b)}`, where);
        }
      });
      p.on('requestfailed', (r) => fail(`failed ${rel(new URL(r.url()).pathname, b)}`, where));
      p.on('request', (r) => {
        const u = new URL(r.url());
        if (u.origin !== server.origin || u.pathname.startsWith(b)) return;
        // The lab client calls its server's API at run time (and falls back to recordings on a static host):
        // that is not a link of the site, so it is listed rather than failed.
        if (['fetch', 'xhr', 'websocket', 'eventsource'].includes(r.resourceType())) {
          result.apiOutside.add(`${r.resourceType()} ${u.pathname}`);
        } else {
          result.outside.push(`${page.path}: ${r.resourceType()} ${u.pathname}`);
        }
      });
      await p.goto(page.kind === '404' ? server.url(`${b}missing-page/`) : server.url(page.path), {
        waitUntil: 'load',
      });
      const font = await p.evaluate(() => getComputedStyle(document.body).fontFamily);
      if (/^(Times|serif|"Times New Roman")/i.test(font)) result.unstyled.push(`${page.path} (font ${font})`);
      await p.close();
    }
    await context.close();
  } finally {
    await browser.close();
    await server.close();
  }
  return result;
}

test(`the site built with --base ${SUB} works under ${SUB} as well as at / (same lessons, both built now)`, async (t) => {
  project = await makeTempProject('subpath');
  const rootOut = path.join(project.dir, 'dist-root');
  const subOut = path.join(project.dir, 'dist-sub');
  // Build both from the same snapshot of the lessons, so only the base differs.
  for (const [b, out] of [
    ['/', rootOut],
    [SUB, subOut],
  ] as const) {
    const build = await project.astro(['build', '--base', b, '--outDir', out], 180_000);
    assert.equal(build.code, 0, `astro build --base ${b} failed:\n${build.output.slice(-4000)}`);
    t.diagnostic(`built with base ${b} in ${build.ms} ms`);
  }
  const rootPages = listPages(rootOut, '/');
  const subPages = listPages(subOut, SUB);
  assert.deepEqual(
    subPages.map((p) => rel(p.path, SUB)),
    rootPages.map((p) => p.path),
    'the same pages at / and under the sub-path',
  );

  // 1. Offline: nothing leaves /sub/, and nothing is broken under /sub/ that is not broken at / too.
  const key = (p: LinkProblem, b: string) => `${rel(p.page, b)} → ${rel(p.target, b)}: ${p.reason}`;
  const atRoot = checkLinks(rootOut, rootPages, { base: '/', site }).problems;
  const atSub = checkLinks(subOut, subPages, { base: SUB, site }).problems;
  const rootKeys = new Set(atRoot.map((p) => key(p, '/')));
  const subOnly = atSub.filter((p) => p.reason.startsWith('outside') || !rootKeys.has(key(p, SUB)));
  if (atRoot.length) t.diagnostic(`${atRoot.length} reference(s) broken at / as well (see links.test.ts)`);
  assert.equal(subOnly.length, 0, `broken only when deployed under ${SUB}:\n${formatProblems(subOnly)}`);
  const weights = await analyseSite(subOut, SUB);
  const missingJs = weights.pages.flatMap((p) =>
    p.missing.filter((m) => /\((js|css),/.test(m)).map((m) => `${p.path}: ${m}`),
  );
  assert.deepEqual(missingJs, [], 'scripts/stylesheets missing under the sub-path');

  // 2. In Chromium: every page, served by a plain static host under /sub/, loads like it does at /.
  const rootLoad = await loadAll(rootOut, '/', rootPages);
  const subLoad = await loadAll(subOut, SUB, subPages);
  if (subLoad.apiOutside.size) {
    t.diagnostic(`runtime API calls outside ${SUB} (not site links): ${[...subLoad.apiOutside].join(', ')}`);
  }
  assert.deepEqual(subLoad.outside, [], `document resources requested outside ${SUB}`);
  assert.deepEqual(subLoad.unstyled, [], `pages without the site's CSS under ${SUB}`);
  const show = (m: Map<string, Set<string>>, keys: string[]) =>
    keys.map((k) => `${k} (on ${[...(m.get(k) ?? [])].join(', ')})`);
  const subFailures = [...subLoad.failed.keys()].filter((f) => !rootLoad.failed.has(f));
  if (rootLoad.failed.size) {
    t.diagnostic(`failing at / too: ${show(rootLoad.failed, [...rootLoad.failed.keys()]).join('; ')}`);
  }
  assert.deepEqual(show(subLoad.failed, subFailures), [], `requests that fail only under ${SUB}`);
});
