/**
 * A lab that is stopped or reset leaves nothing behind in the page, and page scripts never
 * see a session token (real server, real engine, Chromium).
 * - The page's timers, WebSockets, fetches and listeners are counted from before its
 *   first script (support.ts watchResources). After Stop: no socket, no request, no
 *   interval or pending timeout the lab set; after Reset: the old session's sockets are
 *   gone and nothing grew; a second Start/Stop cycle ends where the first did.
 * - The session's token (read from the network answer to POST /api/v1/sessions) is
 *   nowhere a page script can read it: not in a global hook, the DOM, or storage.
 *
 *   node --test tests/browser/teardown.test.ts      (LAB_TEST_SITE=<dir> reuses a build)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  type HeldResources,
  lessonWithLab,
  pollStatus,
  sessionCreatedBy,
  useLabServer,
  useSiteAndBrowser,
  waitForPrompt,
  waitForState,
  watchResources,
} from './support.ts';

const LAB = 'processes';

const bed = useSiteAndBrowser();
const served = useLabServer(bed);

/** Waits until the page has no request in flight (a DELETE on Stop takes a moment). */
async function settled(held: () => Promise<HeldResources>, page: Page): Promise<HeldResources> {
  const deadline = Date.now() + 10_000;
  let h = await held();
  while ((h.requests > 0 || h.sockets.length > 0) && Date.now() < deadline) {
    await page.waitForTimeout(100);
    h = await held();
  }
  // Timeouts set while stopping (e.g. a last render) run out within a moment.
  await page.waitForTimeout(1000);
  return held();
}

function describeHeld(h: HeldResources): string {
  return JSON.stringify(h, null, 2);
}

describe('nothing left behind', () => {
  let page: Page;
  let held: () => Promise<HeldResources>;

  before(async () => {
    page = await bed.browser.newPage({ viewport: { width: 1280, height: 900 } });
    held = await watchResources(page);
  });

  after(async () => {
    await page?.close();
  });

  test('Stop and Reset close every socket, timer and request of the session', async (t) => {
    assert.ok(served.engine, `no Docker engine reachable:\n${served.server.log()}`);
    await page.goto(served.server.url + lessonWithLab(bed.site, LAB));
    const lab = page.locator(`[data-lab="${LAB}"]`);
    await lab.scrollIntoViewIfNeeded();
    await page.waitForLoadState('networkidle');
    const idle = await settled(held, page);
    t.diagnostic(`before Start: ${describeHeld(idle)}`);

    await lab.getByRole('button', { name: 'Start lab' }).click();
    await waitForState(page, LAB, 'ready');
    await waitForPrompt(page, LAB, 'host');
    const ready1 = await held();
    t.diagnostic(`ready: ${describeHeld(ready1)}`);
    assert.equal(ready1.sockets.length, 2, 'one socket per terminal');

    await lab.getByRole('button', { name: 'Stop' }).first().click();
    await waitForState(page, LAB, 'stopped');
    const stopped1 = await settled(held, page);
    t.diagnostic(`stopped: ${describeHeld(stopped1)}`);
    assert.deepEqual(stopped1.sockets, [], 'no socket after Stop');
    assert.equal(stopped1.requests, 0, 'no request after Stop');
    assert.deepEqual(stopped1.intervals, idle.intervals, 'no interval of the lab after Stop');
    assert.deepEqual(stopped1.timeouts, idle.timeouts, 'no pending timeout of the lab after Stop');
    assert.equal(
      stopped1.listeners.window,
      ready1.listeners.window,
      'no window listener of the session left',
    );

    await lab.getByRole('button', { name: 'Start again' }).click();
    await waitForState(page, LAB, 'ready');
    await waitForPrompt(page, LAB, 'host');
    await lab.getByRole('button', { name: 'Reset' }).click();
    await waitForState(page, LAB, 'ready');
    await waitForPrompt(page, LAB, 'host');
    const ready2 = await held();
    t.diagnostic(`after Reset: ${describeHeld(ready2)}`);
    assert.equal(ready2.sockets.length, 2, 'the old session’s sockets are closed');
    assert.equal(ready2.intervals.length, ready1.intervals.length, 'no interval added by Reset');
    assert.deepEqual(ready2.listeners, ready1.listeners, 'no listener added by a new session');

    await lab.getByRole('button', { name: 'Stop' }).first().click();
    await waitForState(page, LAB, 'stopped');
    const stopped2 = await settled(held, page);
    assert.deepEqual(stopped2, stopped1, 'a second Start/Reset/Stop ends where the first did');
  });

  test('Cancel while the sandbox is being made: nothing left in the page, and the late session is deleted', async () => {
    assert.ok(served.engine, 'no Docker engine reachable');
    const lab = page.locator(`[data-lab="${LAB}"]`);
    const before = await settled(held, page);
    // Hold the server's answer back, so Cancel surely comes first.
    await page.route('**/api/v1/sessions', async (route) => {
      if (route.request().method() !== 'POST') return route.fallback();
      const res = await route.fetch();
      await new Promise((r) => setTimeout(r, 1500));
      await route.fulfill({ response: res });
    });
    const created = sessionCreatedBy(page, () => lab.getByRole('button', { name: 'Start again' }).click());
    await waitForState(page, LAB, 'starting');
    await lab.getByRole('button', { name: 'Cancel' }).click();
    await waitForState(page, LAB, 'stopped');
    assert.match((await lab.locator('[data-status]').textContent()) ?? '', /^Start cancelled\./);
    const s = await created;
    await page.unroute('**/api/v1/sessions');
    const after = await settled(held, page);
    assert.deepEqual(after.sockets, [], 'no terminal was opened for the late session');
    assert.deepEqual(after.intervals, before.intervals);
    assert.deepEqual(after.timeouts, before.timeouts);
    assert.deepEqual(after.listeners, before.listeners);
    assert.equal(
      await pollStatus(served.server, s, 404, 10_000),
      404,
      'the page deleted the session that arrived after Cancel',
    );
  });
});

describe('session tokens stay out of page scripts', () => {
  test('a page script finds the token in no hook, no element and no storage', async () => {
    assert.ok(served.engine, 'no Docker engine reachable');
    const page = await bed.browser.newPage();
    await page.goto(served.server.url + lessonWithLab(bed.site, LAB));
    const lab = page.locator(`[data-lab="${LAB}"]`);
    const s = await sessionCreatedBy(page, () => lab.getByRole('button', { name: 'Start lab' }).click());
    await waitForState(page, LAB, 'ready');
    assert.ok(s.token.length >= 16, 'the server answered a token');
    const found = await page.evaluate((token) => {
      const places: string[] = [];
      const hook = (window as { __containerLabs?: Record<string, unknown> }).__containerLabs;
      for (const [name, fn] of Object.entries(hook ?? {})) {
        if (typeof fn !== 'function') continue;
        try {
          if (JSON.stringify(fn('processes', 'host') ?? null).includes(token)) places.push(`hook ${name}`);
        } catch {
          // a hook that needs other arguments
        }
      }
      if (document.documentElement.outerHTML.includes(token)) places.push('DOM');
      for (const [name, store] of [
        ['localStorage', localStorage],
        ['sessionStorage', sessionStorage],
      ] as const) {
        for (let i = 0; i < store.length; i++) {
          const k = store.key(i) ?? '';
          if (`${k}=${store.getItem(k)}`.includes(token)) places.push(name);
        }
      }
      if (document.cookie.includes(token)) places.push('cookie');
      return places;
    }, s.token);
    assert.deepEqual(found, [], 'the session token is readable by page scripts');
    await lab.getByRole('button', { name: 'Stop' }).first().click();
    await waitForState(page, LAB, 'stopped');
    await page.close();
  });
});
