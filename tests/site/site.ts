/**
 * Shared helpers for the tests of the built site (`tests/site/*.test.ts`): where dist/ is, which
 * pages it has (discovered, never hard-coded), HTML parsing (parse5), launching Chromium, and
 * the before/after of a file that needs them (useBuiltSite).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type DefaultTreeAdapterMap, parse as parseHtml } from 'parse5';
import type { Browser, BrowserContext, LaunchOptions } from 'playwright-core';
import { loadAllLabs } from '../../labs/load.ts';
import { listHtmlFiles, sitePathOf } from '../../scripts/site-report.ts';
import { type RunBlock, runBlockIndex } from '../../src/plugins/run-block-index.ts';
import { type StaticServer, serveStatic } from './static-server.ts';

export type Node = DefaultTreeAdapterMap['node'];
export type Element = DefaultTreeAdapterMap['element'];
export type Document = DefaultTreeAdapterMap['document'];

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RESULTS = path.join(ROOT, 'test-results');
/** The build the tests are about: `dist/`, or `SITE_DIST`. */
export const SOURCE_DIST = path.resolve(process.env.SITE_DIST ?? path.join(ROOT, 'dist'));

/** Files every finished Starlight build has; Pagefind's entry file is written near the end of a build. */
const BUILD_MARKERS = ['index.html', '404.html', path.join('pagefind', 'pagefind-entry.json')];
const complete = (dir: string) => BUILD_MARKERS.every((f) => existsSync(path.join(dir, f)));

/**
 * A private copy of the build for this test file (each file is its own process), so that a
 * `npm run build` started meanwhile in the same checkout (it empties dist/ first) cannot change the
 * site under a running test. Waits up to ~30 s for a build in progress to finish. Removed on exit.
 */
function snapshot(source: string): string {
  if (!existsSync(path.join(source, 'index.html')) && !existsSync(source)) return source;
  const dest = path.join(RESULTS, 'tmp', `dist-${process.pid}-${Date.now().toString(36)}`);
  for (let attempt = 0; attempt < 30; attempt++) {
    try {
      if (complete(source)) {
        rmSync(dest, { recursive: true, force: true });
        cpSync(source, dest, { recursive: true });
        if (complete(dest)) {
          process.on('exit', () => rmSync(dest, { recursive: true, force: true }));
          return dest;
        }
      }
    } catch {
      // files vanished mid-copy: a build is running; try again
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
  }
  rmSync(dest, { recursive: true, force: true });
  return source; // incomplete build: requireDist() (or the tests) will say so
}

/** The built site under test (a snapshot of SOURCE_DIST; `SITE_SNAPSHOT=0` to read it in place). */
export const DIST = process.env.SITE_SNAPSHOT === '0' ? SOURCE_DIST : snapshot(SOURCE_DIST);

/** Fails (never skips) when there is no (complete) built site. Call at the top of every test file. */
export function requireDist(dist = DIST): void {
  const missing = BUILD_MARKERS.filter((f) => !existsSync(path.join(dist, f)));
  if (missing.length) {
    assert.fail(
      `No complete built site at ${SOURCE_DIST} (missing: ${missing.join(', ')}).\n` +
        'The site tests check the output of a build: run `npm run build` first, then `npm run test:site`.',
    );
  }
}

/** The configured `base` of the site (astro.config.mjs), or `SITE_BASE`; always `/…/`. */
export async function siteBase(): Promise<string> {
  let base = process.env.SITE_BASE;
  if (base === undefined) {
    try {
      base = (await astroConfig()).base ?? '/';
    } catch (err) {
      // The config could not be imported outside Astro: use what the build did (the site title link).
      const home = path.join(DIST, 'index.html');
      const m = existsSync(home)
        ? /<a href="([^"]*)" class="site-title/.exec(readFileSync(home, 'utf8'))
        : null;
      base = m?.[1] ?? '/';
      console.warn(
        `siteBase: astro.config.mjs not importable (${String(err)}); using ${base} from the build`,
      );
    }
  }
  if (!base.startsWith('/')) base = `/${base}`;
  return base.endsWith('/') ? base : `${base}/`;
}

/** The project's astro.config.mjs (default export), imported once. */
let configPromise: Promise<{ base?: string; site?: string }> | undefined;
export function astroConfig(): Promise<{ base?: string; site?: string }> {
  configPromise ??= import(pathToFileURL(path.join(ROOT, 'astro.config.mjs')).href).then(
    (m: { default?: { base?: string; site?: string } }) => m.default ?? {},
  );
  return configPromise;
}

/** The configured `site` (absolute URL) or undefined. */
export async function siteUrl(): Promise<string | undefined> {
  try {
    return (await astroConfig()).site;
  } catch {
    return undefined;
  }
}

export type PageKind = 'home' | 'lesson' | '404';

export interface Page {
  /** Relative to dist, posix: `01-intro/index.html`. */
  file: string;
  /** Absolute file. */
  abs: string;
  /** Site path including the base: `/01-intro/`. */
  path: string;
  kind: PageKind;
}

/**
 * Every HTML page of the built site. The home page is `index.html`, the not-found page `404.html`,
 * and every other page is a lesson (the site has no other kind of page: they all come from content/).
 */
export function listPages(dist = DIST, base = '/'): Page[] {
  return listHtmlFiles(dist).map((rel) => {
    const file = rel.split(path.sep).join('/');
    const kind: PageKind = file === 'index.html' ? 'home' : file === '404.html' ? '404' : 'lesson';
    return { file, abs: path.join(dist, rel), path: sitePathOf(rel, base), kind };
  });
}

export function lessons(pages: Page[]): Page[] {
  return pages.filter((p) => p.kind === 'lesson');
}

// ---------------------------------------------------------------------------------------------
// HTML helpers (parse5 trees)

export function parse(html: string): Document {
  return parseHtml(html, { sourceCodeLocationInfo: true });
}

export function readPage(page: Page): Document {
  return parse(readFileSync(page.abs, 'utf8'));
}

export function* elements(node: Node): Generator<Element> {
  if ('tagName' in node) yield node as Element;
  for (const child of 'childNodes' in node ? node.childNodes : []) yield* elements(child);
  // <template> content is inert: not descended into.
}

export function attr(el: Element, name: string): string | undefined {
  return el.attrs.find((a) => a.name === name)?.value;
}

export function hasClass(el: Element, cls: string): boolean {
  return (attr(el, 'class') ?? '').split(/\s+/).includes(cls);
}

export function ancestors(el: Element): Element[] {
  const out: Element[] = [];
  let p = el.parentNode as Node | null;
  while (p && 'tagName' in p) {
    out.push(p as Element);
    p = (p as Element).parentNode as Node | null;
  }
  return out;
}

export function text(node: Node): string {
  if (node.nodeName === '#text' && 'value' in node) return node.value;
  if (node.nodeName === 'script' || node.nodeName === 'style') return '';
  return ('childNodes' in node ? node.childNodes : []).map(text).join('');
}

export function find(root: Node, pred: (el: Element) => boolean): Element | undefined {
  for (const el of elements(root)) if (pred(el)) return el;
  return undefined;
}

export function findAll(root: Node, pred: (el: Element) => boolean): Element[] {
  return [...elements(root)].filter(pred);
}

/** `<tag class="a b" id="x">` at line N: a short description of an element for messages. */
export function describe(el: Element): string {
  const id = attr(el, 'id');
  const cls = attr(el, 'class');
  const href = attr(el, 'href') ?? attr(el, 'src');
  const loc = el.sourceCodeLocation ? ` (line ${el.sourceCodeLocation.startLine})` : '';
  return `<${el.tagName}${id ? ` id="${id}"` : ''}${cls ? ` class="${cls}"` : ''}${href !== undefined ? ` ${attr(el, 'href') !== undefined ? 'href' : 'src'}="${href}"` : ''}>${loc}`;
}

// ---------------------------------------------------------------------------------------------
// Chromium

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(extra: LaunchOptions = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    assert.fail(
      `Chromium not found at ${CHROMIUM_PATH}: install it (apt-get install chromium) or set CHROMIUM_PATH.`,
    );
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
    ...extra,
  });
}

export type Theme = 'light' | 'dark';

/**
 * A browser context whose pages start in the given Starlight theme: `localStorage['starlight-theme']`
 * is set before any page script runs (Starlight's ThemeProvider reads it, then sets
 * `<html data-theme>`), and the OS preference is emulated to match.
 * Requests that leave 127.0.0.1 are aborted and recorded in `blocked` (the site must be self-contained).
 */
export async function themedContext(
  browser: Browser,
  theme: Theme,
  viewport = { width: 1280, height: 900 },
): Promise<{ context: BrowserContext; blocked: string[] }> {
  const context = await browser.newContext({ colorScheme: theme, viewport, reducedMotion: 'reduce' });
  await context.addInitScript((t: string) => {
    try {
      localStorage.setItem('starlight-theme', t);
    } catch {}
  }, theme);
  const blocked: string[] = [];
  await context.route(
    (url) => url.hostname !== '127.0.0.1',
    (route) => {
      blocked.push(route.request().url());
      return route.abort();
    },
  );
  return { context, blocked };
}

/** What a site test file works on, filled in before its tests (useBuiltSite). */
export interface BuiltSite {
  /** The site's base, `/…/`. */
  base: string;
  /** Every page of the build. */
  pages: Page[];
  /** With `serve`: the build on a static server at `base`. */
  server: StaticServer;
  /** With `browser`: Chromium. */
  browser: Browser;
}

/**
 * Before the file's tests: fail without a complete build (requireDist), read its base and
 * pages; with `serve`, start a static server on it, with `browser`, Chromium. Both are
 * closed after the tests.
 */
export function useBuiltSite(opts: { serve?: boolean; browser?: boolean } = {}): BuiltSite {
  const it = {} as BuiltSite;
  before(async () => {
    requireDist();
    it.base = await siteBase();
    it.pages = listPages(DIST, it.base);
    if (opts.serve) it.server = await serveStatic(DIST, { base: it.base });
    if (opts.browser) it.browser = await launchChromium();
  });
  after(async () => {
    await it.browser?.close();
    await it.server?.close();
  });
  return it;
}

/** The built lesson pages and the runnable-block index they must match, read before a file's tests. */
export function useLessonPages(): { base: string; pages: Page[]; index: RunBlock[] } {
  const held = { base: '', pages: [] as Page[], index: [] as RunBlock[] };
  before(async () => {
    requireDist();
    held.base = await siteBase();
    held.pages = lessons(listPages(DIST, held.base));
    held.index = await runBlockIndex({ root: ROOT, labs: await loadAllLabs(path.join(ROOT, 'labs')) });
  });
  return held;
}
