/**
 * Screenshots of one lesson (the first lesson with a code block, found in dist/) in the light and
 * the dark theme, saved to test-results/screenshots/<lesson>-<theme>.png (the first 1280×900) and
 * <lesson>-<theme>-full.png (the whole page) for a person to look at. Asserts the theme was
 * applied (`<html data-theme>`), that the page background sampled from the PNG pixels matches the
 * theme (light is light, dark is dark, and they differ), and that code blocks change theme too.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page as PwPage } from 'playwright-core';
import {
  DIST,
  find,
  hasClass,
  launchChromium,
  lessons,
  listPages,
  type Page,
  RESULTS,
  readPage,
  requireDist,
  siteBase,
  type Theme,
  themedContext,
} from './site.ts';
import { type StaticServer, serveStatic } from './static-server.ts';

const OUT = path.join(RESULTS, 'screenshots');

let server: StaticServer;
let browser: Browser;
let target: Page;

before(async () => {
  requireDist();
  const base = await siteBase();
  const pages = listPages(DIST, base);
  const all = lessons(pages);
  assert.ok(all.length > 0, 'the build has no lesson pages (only the home and 404 pages)');
  target = all.find((p) => find(readPage(p), (el) => hasClass(el, 'expressive-code'))) ?? (all[0] as Page);
  server = await serveStatic(DIST, { base });
  browser = await launchChromium();
  await mkdir(OUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

type RGB = [number, number, number];

/** Decode the PNG in the page itself (canvas) and return the most common colour among sample points. */
async function samplePng(page: PwPage, png: Buffer, points: Array<[number, number]>): Promise<RGB> {
  const colours = await page.evaluate(
    async ({ b64, pts }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      if (!ctx) throw new Error('no 2d context');
      ctx.drawImage(img, 0, 0);
      return pts.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
    },
    { b64: png.toString('base64'), pts: points },
  );
  const counts = new Map<string, number>();
  for (const c of colours) counts.set(c.join(','), (counts.get(c.join(',')) ?? 0) + 1);
  const [best] = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  return (best?.[0] ?? '0,0,0').split(',').map(Number) as RGB;
}

const luminance = ([r, g, b]: RGB) => (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
const parseRgb = (css: string): RGB => (css.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number) as RGB;

interface Shot {
  file: string;
  background: RGB;
  cssBackground: RGB;
  codeBackground: RGB | undefined;
}

async function shoot(theme: Theme): Promise<Shot> {
  const { context } = await themedContext(browser, theme, { width: 1280, height: 900 });
  try {
    const page = await context.newPage();
    const response = await page.goto(server.url(target.path), { waitUntil: 'load' });
    assert.equal(response?.status(), 200);
    await page.evaluate(() => document.fonts.ready);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), theme);
    const slug = target.path.replace(/^\/|\/$/g, '').replace(/[^\w-]+/g, '_') || 'home';
    // What a visitor sees first (readable at full size), and the whole page (for the pixel samples).
    const file = path.join(OUT, `${slug}-${theme}.png`);
    await writeFile(file, await page.screenshot());
    // A full-page capture paints beyond the viewport, where content-visibility: auto
    // (src/styles/lesson.css) skips the blocks a reader would see rendered on scrolling to them.
    await page.addStyleTag({ content: '* { content-visibility: visible !important; }' });
    const png = await page.screenshot({ fullPage: true });
    await writeFile(path.join(OUT, `${slug}-${theme}-full.png`), png);
    // Sample a column of points along the right edge of the content pane and the bottom-left corner:
    // page background there on Starlight's layout (the sidebar and header have their own colours).
    const { width, height } = await page.evaluate(() => ({
      width: document.documentElement.scrollWidth,
      height: document.documentElement.scrollHeight,
    }));
    const points: Array<[number, number]> = [];
    for (let i = 1; i <= 8; i++) points.push([width - 4, Math.floor((height * i) / 9)]);
    points.push([Math.floor(width / 2), height - 4]);
    const background = await samplePng(page, png, points);
    const cssBackground = parseRgb(
      await page.evaluate(() => getComputedStyle(document.body).backgroundColor),
    );
    const code = await page.$('.expressive-code pre');
    const codeBackground = code
      ? parseRgb(await code.evaluate((el) => getComputedStyle(el).backgroundColor))
      : undefined;
    return { file, background, cssBackground, codeBackground };
  } finally {
    await context.close();
  }
}

test('a lesson in light and dark themes: screenshots saved and backgrounds differ', async (t) => {
  const light = await shoot('light');
  const dark = await shoot('dark');
  t.diagnostic(`lesson ${target.path}`);
  t.diagnostic(`light: ${light.file} background rgb(${light.background}) css rgb(${light.cssBackground})`);
  t.diagnostic(`dark:  ${dark.file} background rgb(${dark.background}) css rgb(${dark.cssBackground})`);
  assert.ok(luminance(light.background) > 0.8, `light background too dark: rgb(${light.background})`);
  assert.ok(luminance(dark.background) < 0.25, `dark background too light: rgb(${dark.background})`);
  assert.ok(
    luminance(light.background) - luminance(dark.background) > 0.5,
    'light and dark screenshots have (nearly) the same background',
  );
  // The pixel sampled from the PNG is the body background the theme's CSS declares.
  for (const shot of [light, dark]) {
    const diff = shot.background.map((c, i) => Math.abs(c - (shot.cssBackground[i] ?? 0)));
    assert.ok(Math.max(...diff) <= 3, `sampled rgb(${shot.background}) ≠ body rgb(${shot.cssBackground})`);
  }
  if (light.codeBackground && dark.codeBackground) {
    t.diagnostic(`code block: light rgb(${light.codeBackground}), dark rgb(${dark.codeBackground})`);
    assert.notDeepEqual(light.codeBackground, dark.codeBackground, 'code blocks do not follow the theme');
  }
});
