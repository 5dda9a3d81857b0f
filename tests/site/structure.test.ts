/**
 * Page structure of the built site:
 * - every page has the dark-mode toggle (Starlight's theme select with dark/light/auto), and it works
 *   in Chromium: choosing a theme sets `<html data-theme>` and `localStorage['starlight-theme']`,
 *   and the choice survives a reload;
 * - every lesson page has the site navigation: the sidebar (`nav[aria-label="Main"]`) links to every
 *   lesson of the build and marks the current one with aria-current="page";
 * - every lesson page has highlighted code: at least one Expressive Code block with coloured tokens,
 *   and no code block in the lesson body that escaped Expressive Code.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Browser } from 'playwright-core';
import {
  ancestors,
  attr,
  DIST,
  type Document,
  describe,
  type Element,
  find,
  findAll,
  hasClass,
  launchChromium,
  lessons,
  type Page,
  readPage,
  useBuiltSite,
} from './site.ts';
import { type StaticServer, serveStatic } from './static-server.ts';

const site = useBuiltSite();
const docs = new Map<Page, Document>();

/** A page's parsed HTML (parsed once). */
function doc(p: Page): Document {
  const d = docs.get(p) ?? readPage(p);
  docs.set(p, d);
  return d;
}

/** Normalise an href found on `page` to a site path, or undefined if it leaves the site. */
function sitePath(href: string, page: Page): string | undefined {
  const u = new URL(href, new URL(page.path, 'http://x.invalid'));
  if (u.origin !== 'http://x.invalid') return undefined;
  let p = u.pathname;
  if (!p.endsWith('/') && !p.endsWith('.html')) p += '/';
  return p;
}

test('every page has the dark-mode toggle (theme select with dark, light and auto)', () => {
  const missing: string[] = [];
  for (const page of site.pages) {
    const picker = find(doc(page), (el) => el.tagName === 'starlight-theme-select');
    const select = picker && find(picker, (el) => el.tagName === 'select');
    const values = select
      ? findAll(select, (el) => el.tagName === 'option').map((o) => attr(o, 'value'))
      : [];
    if (!['dark', 'light', 'auto'].every((v) => values.includes(v))) {
      missing.push(
        `${page.path}: ${picker ? `options ${JSON.stringify(values)}` : 'no <starlight-theme-select>'}`,
      );
    }
  }
  assert.deepEqual(missing, [], `pages without a working theme toggle:\n${missing.join('\n')}`);
});

test('every lesson page has a sidebar linking to every lesson, with the current one marked', () => {
  const all = lessons(site.pages);
  assert.ok(all.length > 0, 'the build has no lesson pages');
  const problems: string[] = [];
  for (const page of all) {
    const nav = find(doc(page), (el) => el.tagName === 'nav' && attr(el, 'aria-label') === 'Main');
    if (!nav) {
      problems.push(`${page.path}: no <nav aria-label="Main"> (sidebar)`);
      continue;
    }
    const links = findAll(nav, (el) => el.tagName === 'a' && attr(el, 'href') !== undefined);
    const targets = new Set(links.map((a) => sitePath(attr(a, 'href') as string, page)));
    const absent = all.filter((l) => !targets.has(l.path)).map((l) => l.path);
    if (absent.length) {
      problems.push(
        `${page.path}: sidebar has ${links.length} link(s); missing lessons ${absent.join(', ')}`,
      );
    }
    const current = links.filter((a) => attr(a, 'aria-current') === 'page');
    const currentPaths = current.map((a) => sitePath(attr(a, 'href') as string, page));
    if (!currentPaths.includes(page.path)) {
      problems.push(`${page.path}: no sidebar link with aria-current="page" to itself`);
    }
  }
  assert.deepEqual(problems, [], `navigation problems:\n${problems.join('\n')}`);
});

/** A code block Expressive Code rendered: `.expressive-code pre` with tokens coloured per theme. */
function highlighted(block: Element): boolean {
  const pre = find(block, (el) => el.tagName === 'pre');
  if (!pre) return false;
  const coloured = findAll(
    pre,
    (el) => el.tagName === 'span' && /--0:\s*#|color:\s*#/.test(attr(el, 'style') ?? ''),
  );
  return coloured.length > 0;
}

test('every lesson page has highlighted code (Expressive Code) and no unhighlighted code block', () => {
  const problems: string[] = [];
  for (const page of lessons(site.pages)) {
    const body = find(doc(page), (el) => hasClass(el, 'sl-markdown-content'));
    if (!body) {
      problems.push(`${page.path}: no .sl-markdown-content (lesson body)`);
      continue;
    }
    const blocks = findAll(body, (el) => hasClass(el, 'expressive-code'));
    if (blocks.length === 0) problems.push(`${page.path}: no code block (.expressive-code) at all`);
    for (const block of blocks) {
      if (!highlighted(block))
        problems.push(`${page.path}: code block without coloured tokens: ${describe(block)}`);
    }
    for (const pre of findAll(body, (el) => el.tagName === 'pre')) {
      if (!ancestors(pre).some((a) => hasClass(a, 'expressive-code'))) {
        problems.push(`${page.path}: <pre> outside Expressive Code: ${describe(pre)}`);
      }
    }
  }
  assert.deepEqual(problems, [], `code highlighting problems:\n${problems.join('\n')}`);
});

test('the theme toggle switches and persists the theme in Chromium', async () => {
  const server: StaticServer = await serveStatic(DIST, { base: site.base });
  const browser: Browser = await launchChromium();
  try {
    // A fresh profile whose OS preference is dark: Starlight starts in "auto" → dark.
    const context = await browser.newContext({ colorScheme: 'dark', viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const target = lessons(site.pages)[0] ?? (site.pages[0] as Page);
    await page.goto(server.url(target.path), { waitUntil: 'load' });
    const select = page.locator('starlight-theme-select select').locator('visible=true').first();
    const state = () =>
      page.evaluate(() => ({
        theme: document.documentElement.dataset.theme,
        stored: localStorage.getItem('starlight-theme'),
        bg: getComputedStyle(document.body).backgroundColor,
      }));
    const initial = await state();
    assert.equal(initial.theme, 'dark', 'initial theme with a dark OS preference');
    await select.selectOption('light');
    const light = await state();
    assert.deepEqual([light.theme, light.stored], ['light', 'light'], 'after choosing Light');
    assert.notEqual(light.bg, initial.bg, 'the page background did not change with the theme');
    await page.reload({ waitUntil: 'load' });
    assert.equal((await state()).theme, 'light', 'the chosen theme does not survive a reload');
    await select.selectOption('dark');
    const dark = await state();
    assert.deepEqual([dark.theme, dark.stored], ['dark', 'dark'], 'after choosing Dark');
    await context.close();
  } finally {
    await browser.close();
    await server.close();
  }
});
