/**
 * What a lesson's first frame has to render, in Chromium at a phone's viewport (412 × 823, as
 * Lighthouse's mobile preset): the heavy blocks of the page — Expressive Code blocks, the
 * inline SVG diagrams, lesson 8's saved-image figure, a lab block that has not started — are rendered when they are on or
 * near the screen and skipped (`content-visibility: auto`, src/styles/lesson.css) when they
 * are far below it, so the first style and layout pass stays small however long the lesson
 * (Lighthouse's total blocking time, issue 17). Prints, per lesson, how many elements the
 * skipped blocks hold. The timing itself is measured by the bench (`npm run bench:lighthouse`),
 * not here.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import {
  DIST,
  launchChromium,
  lessons,
  listPages,
  type Page,
  requireDist,
  siteBase,
  themedContext,
} from './site.ts';
import { type StaticServer, serveStatic } from './static-server.ts';

const VIEWPORT = { width: 412, height: 823 };
const HEAVY =
  '.sl-markdown-content .expressive-code, .sl-markdown-content svg[role="img"], figure.image-on-disk, .lab[data-state="idle"]';

let server: StaticServer;
let browser: Browser;
let pages: Page[];

before(async () => {
  requireDist();
  const base = await siteBase();
  pages = lessons(listPages(DIST, base));
  server = await serveStatic(DIST, { base });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('off-screen code blocks, diagrams and idle labs are skipped in the first frame; on-screen ones are rendered', async (t) => {
  assert.ok(pages.length > 0, 'no lesson pages in dist/');
  const problems: string[] = [];
  for (const p of pages) {
    const { context } = await themedContext(browser, 'light', VIEWPORT);
    const page = await context.newPage();
    // The lab stays as the HTML has it (idle): its health check is held, never answered.
    await page.route('**/api/v1/health', () => {});
    await page.goto(server.url(p.path), { waitUntil: 'load' });
    const blocks = await page.evaluate(async (sel) => {
      // After the first frame: Chromium decides what to skip when it lays the page out.
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return (
        [...document.querySelectorAll<Element>(sel)]
          // Not those inside another heavy block, nor those not displayed (a tab not chosen).
          .filter(
            (el) => !el.parentElement?.closest('.expressive-code, svg') && el.getClientRects().length > 0,
          )
          .map((el) => {
            // A child that renders when the block does (not the <link>/<script> Expressive Code puts
            // in its first block, nor an SVG's <title>).
            const first = el.querySelector(
              ':scope > :not(link, script, style, title, desc, defs, noscript, template)',
            );
            return {
              what: `${el.tagName.toLowerCase()}.${(el.getAttribute('class') ?? '').split(' ')[0]}`,
              top: el.getBoundingClientRect().top + window.scrollY,
              skipped: first ? !first.checkVisibility({ contentVisibilityAuto: true }) : false,
              elements: el.querySelectorAll('*').length,
            };
          })
      );
    }, HEAVY);
    await context.close();
    // Chromium renders auto blocks within a margin around the viewport (up to 1.5 screens
    // below it, as seen in Chromium 156): "far" is three screens down.
    const far = blocks.filter((b) => b.top > 3 * VIEWPORT.height);
    const near = blocks.filter((b) => b.top < VIEWPORT.height);
    const skipped = blocks.filter((b) => b.skipped);
    t.diagnostic(
      `${p.path}: ${blocks.length} heavy blocks (${blocks.reduce((n, b) => n + b.elements, 0)} elements); skipped in the first frame: ${skipped.length} (${skipped.reduce((n, b) => n + b.elements, 0)} elements)`,
    );
    for (const b of far.filter((x) => !x.skipped))
      problems.push(
        `${p.path}: ${b.what} at ${Math.round(b.top)} px (${b.elements} elements) is rendered, far below the screen`,
      );
    for (const b of near.filter((x) => x.skipped))
      problems.push(`${p.path}: ${b.what} at ${Math.round(b.top)} px is on the first screen but skipped`);
  }
  assert.equal(problems.length, 0, `${problems.length} problem(s):\n${problems.join('\n')}`);
});
