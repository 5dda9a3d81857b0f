/**
 * Accessibility: axe-core (all rules enabled by default, WCAG 2.x A/AA and best practices) in real
 * Chromium on every page of the build — home, every lesson, and the not-found page as a visitor sees
 * it (an unknown URL answered with 404.html) — in the light AND the dark theme.
 * No violation of impact "serious" or "critical" is allowed; every violation found (any impact) is
 * printed with its nodes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Page as PwPage } from 'playwright-core';
import { type Theme, themedContext, useBuiltSite } from './site.ts';

/** One axe violation, as @axe-core/playwright returns it (axe-core is its dependency, not ours). */
type Result = Awaited<ReturnType<AxeBuilder['analyze']>>['violations'][number];

const BLOCKING = new Set(['serious', 'critical']);
const THEMES: Theme[] = ['light', 'dark'];

const site = useBuiltSite({ serve: true, browser: true });

function formatViolations(violations: Result[]): string {
  return violations
    .map((v) => {
      const nodes = v.nodes
        .map((n) => {
          const summary = (n.failureSummary ?? '').replace(/\n\s*/g, ' ');
          return `      - ${n.target.join(' ')}\n        ${n.html.slice(0, 300)}\n        ${summary}`;
        })
        .join('\n');
      return `  [${v.impact}] ${v.id}: ${v.help} (${v.nodes.length} node(s))\n    ${v.helpUrl}\n${nodes}`;
    })
    .join('\n');
}

/**
 * Let the page finish what it does on its own after `load` — fonts, idle-time scripts (Expressive Code
 * makes overflowing code blocks focusable in an idle callback), lazy lab boot — so axe audits what a
 * visitor gets, not a half-initialised page.
 */
async function settle(page: PwPage): Promise<void> {
  // Bounded: a response whose body the page never reads (the lab health probe) keeps "networkidle" away.
  await page.waitForLoadState('networkidle', { timeout: 1500 }).catch(() => {});
  await page.evaluate(async () => {
    await document.fonts.ready;
    const idle = () =>
      new Promise<void>((resolve) =>
        'requestIdleCallback' in window
          ? requestIdleCallback(() => resolve(), { timeout: 2000 })
          : setTimeout(resolve, 50),
      );
    await idle();
    await new Promise((r) => requestAnimationFrame(() => r(undefined)));
    await idle();
  });
}

async function audit(sitePath: string, theme: Theme, expectStatus: number): Promise<Result[]> {
  const { context, blocked } = await themedContext(site.browser, theme);
  try {
    const page = await context.newPage();
    const response = await page.goto(site.server.url(sitePath), { waitUntil: 'load' });
    assert.equal(response?.status(), expectStatus, `HTTP status of ${sitePath}`);
    await settle(page);
    const applied = await page.evaluate(() => document.documentElement.dataset.theme);
    assert.equal(applied, theme, `<html data-theme> on ${sitePath}`);
    const results = await new AxeBuilder({ page }).analyze();
    assert.deepEqual(blocked, [], `${sitePath} requested resources outside the test server`);
    return results.violations;
  } finally {
    await context.close();
  }
}

test('axe: no serious or critical violations on any page, light and dark', async (t) => {
  assert.ok(site.pages.length > 0, 'no pages in dist/');
  const targets = site.pages.map((p) => {
    if (p.kind !== '404') return { label: p.path, path: p.path, status: 200 };
    const unknown = `${p.path.replace(/404\.html$/, '')}no-such-page/`;
    return { label: `404 page (served for ${unknown})`, path: unknown, status: 404 };
  });
  const failures: string[] = [];
  for (const target of targets) {
    for (const theme of THEMES) {
      await t.test(`${target.label} [${theme}]`, async (st) => {
        const violations = await audit(target.path, theme, target.status);
        if (violations.length) st.diagnostic(`violations:\n${formatViolations(violations)}`);
        const blocking = violations.filter((v) => BLOCKING.has(v.impact ?? ''));
        if (blocking.length) failures.push(`${target.label} [${theme}]:\n${formatViolations(blocking)}`);
        assert.equal(
          blocking.length,
          0,
          `${blocking.length} serious/critical axe violation(s) on ${target.label} [${theme}]:\n${formatViolations(blocking)}`,
        );
      });
    }
  }
  t.diagnostic(
    `${targets.length} pages × ${THEMES.length} themes audited; ${failures.length} with blocking violations`,
  );
});
