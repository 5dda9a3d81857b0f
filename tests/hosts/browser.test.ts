/**
 * One lab in real Chromium, its lab host on the test host's engine: a reader opens the
 * lesson, presses Start, and `ps -ef` in both terminals shows the app as PID 1 inside and
 * under another PID, child of unshare, on the host. Uses the site in LAB_TEST_SITE (run.ts
 * passes `dist/` when it is built) or builds one (tests/browser/support.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type {} from '../../src/lib/lab-controller.ts'; // window.__containerLabs
import {
  buildSite,
  type LabServer,
  launchBrowser,
  lessonWithLab,
  runIn,
  screenshotPath,
  startLabServer,
  waitForPrompt,
  waitForState,
} from '../browser/support.ts';
import { hostKind } from './support.ts';

const kind = hostKind();
const LAB = 'processes';

function psRows(text: string, command: string): { pid: number; ppid: number; cmd: string }[] {
  const lines = text.split('\n');
  const start = lines.findLastIndex((l) => /[$#] /.test(l) && l.endsWith(` ${command}`));
  const out: { pid: number; ppid: number; cmd: string }[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^\S+\s+(\d+)\s+(\d+)\s+\d+\s+\S+\s+\S+\s+\S+\s+(.*)$/.exec(line.trim());
    if (m) out.push({ pid: Number(m[1]), ppid: Number(m[2]), cmd: m[3]! });
  }
  return out;
}

describe(`a lab in Chromium on the ${kind} host`, () => {
  let browser: Browser;
  let server: LabServer;
  let page: Page;
  before(async () => {
    const site = buildSite();
    server = await startLabServer(site, { CL_INSTANCE: `hosts-browser-${process.pid}`, CL_POOL_SIZE: '0' });
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(server.url + lessonWithLab(site, LAB));
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('Start, then ps -ef inside and on the host', async () => {
    const lab = page.locator(`[data-lab="${LAB}"]`).first();
    await lab.scrollIntoViewIfNeeded();
    await lab.getByRole('button', { name: 'Start lab' }).click();
    await waitForState(page, LAB, 'ready').catch(async (err: Error) => {
      throw new Error(
        `${err.message}\nlab status: ${await lab.getByRole('status').textContent()}\n${server.log()}`,
      );
    });
    await waitForPrompt(page, LAB, 'container');
    await waitForPrompt(page, LAB, 'host');
    const inside = psRows(await runIn(page, LAB, 'container', 'ps -ef'), 'ps -ef');
    const outside = psRows(await runIn(page, LAB, 'host', 'ps -ef'), 'ps -ef');
    await page.screenshot({ path: screenshotPath(`hosts-${kind}-lab`) });
    assert.equal(inside.find((r) => r.cmd.includes('httpd'))?.pid, 1, JSON.stringify(inside));
    const app = outside.find((r) => r.cmd.startsWith('busybox httpd'));
    assert.ok(app && app.pid !== 1, JSON.stringify(outside));
    assert.match(outside.find((r) => r.pid === app.ppid)?.cmd ?? '', /^unshare /);
  });
});
