/**
 * Each way the server ends or refuses a lab's terminals shows its own message in real
 * Chromium (real server, real engine). The server refuses a terminal socket after the
 * upgrade, with an `error` message and a close code (server/src/terminal/protocol.ts), so
 * the page can tell the cases apart:
 * - 4000 session ended: the operator ends it (DELETE /api/v1/admin/sessions/:id, loopback);
 * - 4012 server shutting down: SIGTERM to the server;
 * - 4003 foreign origin: the page is served through a proxy that rewrites Host (a
 *   misconfigured reverse proxy), so the Origin is not the server's own;
 * - 4011 replaced: the session's terminal is opened from elsewhere (Node, with a fresh ticket);
 * - 4001 a bad ticket is not final: the page fetches a fresh one and attaches.
 * The shell exiting (4010) is in labs.test.ts ("after `exit`, Enter opens a new shell").
 * Sessions are read from the network answer to POST /api/v1/sessions, never from the page.
 *
 *   node --test tests/browser/refusals.test.ts      (LAB_TEST_SITE=<dir> reuses a build)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { TermClient } from '../support/server.ts';
import {
  countSockets,
  hostRewritingProxy,
  type LabServer,
  labStatus,
  lessonWithLab,
  type PageSession,
  pollStatus,
  sessionCreatedBy,
  sessionStatus,
  startLabAt,
  type TestProxy,
  useLabServer,
  useSiteAndBrowser,
  waitForPrompt,
  waitForState,
} from './support.ts';

const LAB = 'processes';

const bed = useSiteAndBrowser();

/** Opens the lesson at `base` and starts its lab; resolves once ready, with the session. */
const startLab = (page: Page, base: string): Promise<PageSession> => startLabAt(page, bed.site, base, LAB);

describe('refusals and endings, each with its own message', () => {
  const served = useLabServer(bed);
  let server: LabServer;
  let context: BrowserContext;

  before(async () => {
    server = served.server;
    context = await bed.browser.newContext({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await context?.close();
  });

  test('4000: a session the operator ends says it has ended, and does not reconnect', async () => {
    assert.ok(served.engine, `no Docker engine reachable:\n${server.log()}`);
    const page = await context.newPage();
    const sockets = countSockets(page);
    const s = await startLab(page, server.url);
    const opened = sockets.opened();
    const r = await fetch(`${server.url}/api/v1/admin/sessions/${s.id}`, { method: 'DELETE' });
    assert.equal(r.status, 204, 'the admin API (loopback) ended the session');
    await waitForState(page, LAB, 'expired', 15_000);
    const status = await labStatus(page, LAB);
    assert.match(status, /This sandbox has ended/);
    assert.doesNotMatch(status, /Time is up|network|restarting/);
    await page.waitForTimeout(2000);
    assert.equal(sockets.opened(), opened, 'no socket opened after the session ended');
    assert.ok(
      await page.locator(`[data-lab="${LAB}"]`).getByRole('button', { name: 'Start again' }).isVisible(),
    );
    await page.close();
  });

  test('4003: behind a proxy that rewrites Host, the page says the server refuses this address, once', async () => {
    assert.ok(served.engine, 'no Docker engine reachable');
    let proxy: TestProxy | undefined;
    const page = await context.newPage();
    try {
      proxy = await hostRewritingProxy(server.url);
      const refusals: string[] = [];
      page.on('websocket', (ws) =>
        ws.on('framereceived', (f) => {
          if (typeof f.payload === 'string' && f.payload.includes('"error"')) refusals.push(f.payload);
        }),
      );
      const sockets = countSockets(page);
      await page.goto(proxy.url + lessonWithLab(bed.site, LAB));
      const lab = page.locator(`[data-lab="${LAB}"]`);
      await lab.scrollIntoViewIfNeeded();
      const s = await sessionCreatedBy(page, () => lab.getByRole('button', { name: 'Start lab' }).click());
      await waitForState(page, LAB, 'error', 20_000);
      const status = await labStatus(page, LAB);
      assert.match(status, /does not accept terminals from this address/);
      assert.doesNotMatch(status, /network/);
      assert.ok(
        refusals.length > 0 && refusals.every((m) => m.includes('"forbidden"')),
        `the server refused with its own error: ${refusals.join(' | ')}`,
      );
      await page.waitForTimeout(3000);
      assert.equal(sockets.opened(), 2, 'one socket per terminal, no retry loop');
      assert.equal(await labStatus(page, LAB), status, 'the message stays');
      // The page gave its useless session back.
      assert.equal(
        await pollStatus(server, s, 404, 10_000),
        404,
        'the page ended the session it could not use',
      );
    } finally {
      await page.close();
      await proxy?.close();
    }
  });

  test('4011: a terminal opened elsewhere says so, and leaves the session to the other side', async () => {
    assert.ok(served.engine, 'no Docker engine reachable');
    // A second browser context: its own cookies and storage, as another window would have.
    const other = await bed.browser.newContext({ viewport: { width: 1280, height: 900 } });
    let node: TermClient | undefined;
    try {
      const page = await other.newPage();
      const s = await startLab(page, server.url);
      await waitForPrompt(page, LAB, 'host');
      node = await TermClient.open(server.url, s, 'host');
      await node.ready();
      await waitForState(page, LAB, 'error', 15_000);
      const status = await labStatus(page, LAB);
      assert.match(status, /opened in another window/);
      assert.doesNotMatch(status, /network|ended/);
      // The page must not end a session another window now uses.
      await page.waitForTimeout(1500);
      assert.equal(await sessionStatus(server, s), 200, 'the session lives on');
      const out = await node.exec('echo still-$((40+2))');
      assert.match(out, /still-42/, 'the terminal that took over still works');
      await fetch(`${server.url}/api/v1/sessions/${s.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${s.token}` },
      });
    } finally {
      await node?.close();
      await other.close();
    }
  });

  test('4001: a used ticket is not final: the page gets a fresh one and attaches', async () => {
    assert.ok(served.engine, 'no Docker engine reachable');
    const page = await context.newPage();
    const refusals: string[] = [];
    page.on('websocket', (ws) =>
      ws.on('framereceived', (f) => {
        if (typeof f.payload === 'string' && f.payload.includes('"error"')) refusals.push(f.payload);
      }),
    );
    // The page gets first tickets that the server does not know (as if used or expired).
    await page.route('**/api/v1/sessions', async (route) => {
      if (route.request().method() !== 'POST') return route.fallback();
      const res = await route.fetch();
      const body = (await res.json()) as PageSession;
      for (const t of body.terminals) t.ticket = 'not-a-ticket-the-server-issued';
      await route.fulfill({ response: res, json: body });
    });
    const sockets = countSockets(page);
    const s = await startLab(page, server.url);
    await waitForPrompt(page, LAB, 'host');
    await waitForPrompt(page, LAB, 'container');
    assert.equal(
      refusals.filter((m) => m.includes('"bad_token"')).length,
      2,
      `each terminal was refused once: ${refusals.join(' | ')}`,
    );
    assert.equal(sockets.opened(), 4, 'one refused and one good socket per terminal');
    assert.match(await labStatus(page, LAB), /^Ready/);
    await page.close();
    await fetch(`${server.url}/api/v1/sessions/${s.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${s.token}` },
    });
  });
});

describe('the server shutting down', () => {
  const served = useLabServer(bed);
  let page: Page;

  before(async () => {
    page = await bed.browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await page?.close();
  });

  test('4012: SIGTERM to the server says it is restarting, not that the sandbox ended', async () => {
    assert.ok(served.engine, 'no Docker engine reachable');
    const sockets = countSockets(page);
    await startLab(page, served.server.url);
    const opened = sockets.opened();
    await served.server.stop();
    await waitForState(page, LAB, 'error', 15_000).catch(async (err: Error) => {
      throw new Error(
        `${err.message}\nlab state: ${await page.locator(`[data-lab="${LAB}"]`).getAttribute('data-state')}\nstatus: ${await labStatus(page, LAB)}`,
      );
    });
    const status = await labStatus(page, LAB);
    assert.match(status, /The lab server is restarting/);
    assert.doesNotMatch(status, /network|ended/);
    await page.waitForTimeout(2000);
    assert.equal(sockets.opened(), opened, 'no reconnect to a server that said it is going');
  });
});
