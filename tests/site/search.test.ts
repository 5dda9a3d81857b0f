/**
 * Search: the Pagefind index exists, covers every lesson, and a search typed into Starlight's search
 * dialog in real Chromium returns results that link to the lesson containing the word. Pagefind
 * must not be fetched before the dialog is used (it loads on demand: see scripts/site-report.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { attr, DIST, find, lessons, type Page, readPage, text, themedContext, useBuiltSite } from './site.ts';

const PREFERRED_WORD = 'namespace';

const site = useBuiltSite({ serve: true, browser: true });

/** The indexed text of a page: Starlight marks the lesson body with `data-pagefind-body`. */
function bodyText(page: Page): string {
  const main = find(readPage(page), (el) => attr(el, 'data-pagefind-body') !== undefined);
  return main ? text(main) : '';
}

/** A word to search for: "namespace" if a lesson has it, else the most frequent long word of a lesson. */
function pickQuery(all: Page[]): { word: string; expected: Page[] } {
  const texts = all.map((p) => ({ page: p, text: bodyText(p).toLowerCase() }));
  let word = PREFERRED_WORD;
  if (!texts.some((x) => x.text.includes(word))) {
    const counts = new Map<string, number>();
    for (const m of (texts[0]?.text ?? '').matchAll(/\b[a-z]{7,}\b/g))
      counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    word = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  }
  return { word, expected: texts.filter((x) => x.text.includes(word)).map((x) => x.page) };
}

test('the Pagefind index exists and covers every lesson', () => {
  const dir = path.join(DIST, 'pagefind');
  for (const f of ['pagefind.js', 'pagefind-entry.json']) {
    assert.ok(existsSync(path.join(dir, f)), `dist/pagefind/${f} is missing: the search index was not built`);
  }
  const entry = JSON.parse(readFileSync(path.join(dir, 'pagefind-entry.json'), 'utf8')) as {
    languages: Record<string, { page_count: number }>;
  };
  const indexed = Object.values(entry.languages).reduce((n, l) => n + l.page_count, 0);
  const bodies = site.pages.filter((p) =>
    find(readPage(p), (el) => attr(el, 'data-pagefind-body') !== undefined),
  );
  const all = lessons(site.pages);
  for (const lesson of all) assert.ok(bodies.includes(lesson), `${lesson.path} has no data-pagefind-body`);
  assert.equal(indexed, bodies.length, 'pages in the Pagefind index vs pages with data-pagefind-body');
});

test('searching from the search dialog in Chromium finds the lesson that contains the word', async (t) => {
  const all = lessons(site.pages);
  assert.ok(all.length > 0, 'no lessons in the build');
  const { word, expected } = pickQuery(all);
  assert.ok(word, 'could not find a word to search for in the lessons');
  t.diagnostic(`query "${word}": expected in ${expected.map((p) => p.path).join(', ')}`);

  const { context, blocked } = await themedContext(site.browser, 'light');
  try {
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
    page.on('pageerror', (e) => errors.push(String(e)));
    const home = site.pages.find((p) => p.kind === 'home') ?? (all[0] as Page);
    await page.goto(site.server.url(home.path), { waitUntil: 'load' });

    const open = page.locator('button[data-open-modal]');
    await open.waitFor({ state: 'visible' });
    await page.waitForFunction(
      () => !document.querySelector('button[data-open-modal]')?.hasAttribute('disabled'),
    );
    const pagefindBefore = requests.filter((r) => r.startsWith(`${site.base}pagefind/`));
    await open.click();
    const dialog = page.locator('site-search dialog');
    await dialog.waitFor({ state: 'visible' });
    const input = dialog.locator('input[type="text"], input[type="search"]').first();
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(word);

    const results = dialog.locator('.pagefind-ui__result-link');
    await results.first().waitFor({ state: 'visible', timeout: 15_000 });
    // Pagefind's UI shows the first few results: load all of them. Its message says how
    // many there are; the "more" button may appear a moment after the first results, so
    // keep going until that many are listed.
    const more = dialog.locator('.pagefind-ui__button');
    const total = async () =>
      Number(
        /(\d+)\s+result/.exec((await dialog.locator('.pagefind-ui__message').textContent()) ?? '')?.[1] ?? 0,
      );
    const deadline = Date.now() + 20_000;
    // One <li> per page (links also count sub-results); a result's link appears only once
    // its fragment has loaded.
    const loaded = () =>
      page.evaluate(
        () =>
          [...document.querySelectorAll('#starlight__search li.pagefind-ui__result')].filter((li) =>
            li.querySelector('a.pagefind-ui__result-link'),
          ).length,
      );
    while ((await loaded()) < (await total()) && Date.now() < deadline) {
      if (await more.isVisible()) await more.click();
      else await page.waitForTimeout(100);
    }
    const hrefs = await results.evaluateAll((els) => els.map((el) => (el as HTMLAnchorElement).pathname));
    const message = await dialog
      .locator('.pagefind-ui__message')
      .textContent()
      .catch(() => '');
    t.diagnostic(`dialog says "${message?.trim()}"; result links: ${[...new Set(hrefs)].join(', ')}`);

    for (const p of expected) {
      assert.ok(hrefs.includes(p.path), `no search result links to ${p.path}, which contains "${word}"`);
    }
    // Following a result opens the lesson.
    const first = results.first();
    const target = await first.evaluate((el) => (el as HTMLAnchorElement).pathname);
    await Promise.all([page.waitForURL((u) => u.pathname === target), first.click()]);
    assert.equal(await page.evaluate(() => document.title.length > 0), true);

    assert.deepEqual(
      pagefindBefore,
      [],
      'Pagefind was fetched on page load, before the search dialog was used',
    );
    assert.deepEqual(errors, [], 'page errors during search');
    assert.deepEqual(blocked, [], 'requests outside the test server');
  } finally {
    await context.close();
  }
});
