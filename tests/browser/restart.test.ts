/**
 * A restart loses nothing, in real Chromium against the real server and engine (issue 15):
 * a reader has typed `export X=42`; the server is killed (SIGKILL), or upgraded (SIGTERM
 * with CL_ON_SIGTERM=restart, whose sockets close with 4013); a new server starts on the
 * same port, instance and data directory. The page reconnects by itself, to the same shell
 * (`echo $X` prints 42), the countdown runs on to the same end, and the session's token
 * from before still gets tickets and passes step checks.
 *
 *   node --test tests/browser/restart.test.ts      (LAB_TEST_SITE=<dir> reuses a build)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import { removeInstanceContainers, startServer, terminalTicket } from '../support/server.ts';
import {
  labStatus,
  type PageSession,
  poll,
  runIn,
  startLabAt,
  useSiteAndBrowser,
  waitForPrompt,
  waitForText,
} from './support.ts';

stopServersAfterTests();

const LAB = 'processes';
const bed = useSiteAndBrowser();

async function startLab(page: Page, base: string): Promise<PageSession> {
  const s = await startLabAt(page, bed.site, base, LAB);
  await waitForPrompt(page, LAB, 'host');
  return s;
}

async function across(how: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const instance = `browser-restart-${how.toLowerCase()}-${process.pid}`;
  const env = {
    CL_SITE_DIR: bed.site,
    CL_INSTANCE: instance,
    CL_LABS: LAB,
    CL_POOL_SIZE: '0',
    CL_ON_SIGTERM: 'restart',
    LOG_LEVEL: 'warn',
  };
  const page = await bed.browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const first = await startServer(env);
    const s = await startLab(page, first.base);
    await runIn(page, LAB, 'host', 'export X=42');
    const countdown = page.locator(`[data-lab="${LAB}"] [data-countdown]`);
    const left = (await countdown.textContent()) ?? '';
    assert.match(left, /\d/, `a countdown: ${JSON.stringify(left)}`);
    assert.equal(await first.stop(how), how === 'SIGKILL' ? null : 0);
    if (how === 'SIGTERM') {
      const said = await poll(
        () => labStatus(page, LAB),
        (t) => /restarting/i.test(t),
        10_000,
        100,
      );
      assert.match(said, /restarting: your sandbox is kept/i, 'the page says the server is restarting');
    }
    const second = await startServer({ ...env, PORT: String(first.port) });
    const back = await poll(
      () => labStatus(page, LAB),
      (t) => /Reconnected/.test(t),
      30_000,
      200,
    );
    assert.match(back, /Reconnected: same shells as before/, `the page reconnected by itself: ${back}`);
    assert.equal(await page.locator(`[data-lab="${LAB}"]`).getAttribute('data-state'), 'ready');
    await runIn(page, LAB, 'host', 'echo "X is $X"');
    await waitForText(page, LAB, 'host', /X is 42/);
    // The page's clock runs on to the same end (a new session would start the count again).
    const now = (await countdown.textContent()) ?? '';
    assert.match(now, /\d/, `the countdown still shows: ${JSON.stringify(now)}`);
    const got = await fetch(`${second.base}/api/v1/sessions/${s.id}`, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(got.status, 200, 'the token from before is good');
    assert.equal(((await got.json()) as { expiresAt: string }).expiresAt, s.expiresAt);
    assert.ok(await terminalTicket(second.base, s, 'host'), 'and gets tickets');
    await second.stop('SIGKILL');
  } finally {
    await page.close();
    await removeInstanceContainers(instance);
  }
}

describe('a restart loses nothing (Chromium, real engine)', () => {
  test('SIGKILL: the page reconnects by itself to the same shell', () => across('SIGKILL'));
  test('SIGTERM upgrade (4013): the page says so, then reconnects to the same shell', () =>
    across('SIGTERM'));
});
