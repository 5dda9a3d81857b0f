/**
 * The labs in real Chromium against the real server and a real Docker engine:
 * Start → two shells → `ps -ef` inside and outside, Run buttons, a dropped connection
 * coming back to the same shell, flow control under `yes`, Extend, Reset, Stop and page
 * leave ending the session; then the same site without a server (static hosting) and
 * with a server that has no engine, both playing the recorded session.
 * Screenshots (light/dark × 1280/390) go to test-results/screenshots/lab-*.png.
 *
 *   npm run test:browser        (builds the site into test-results/browser-site first)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { BrowserContext, Page } from 'playwright-core';
import type {} from '../../src/lib/lab-controller.ts'; // window.__containerLabs
import { runBlockIndex } from '../../src/plugins/run-block-index.ts';
import { type StaticServer, serveStatic } from '../site/static-server.ts';
import { requireEngine } from '../support/server.ts';
import {
  type LabServer,
  lessonWithLab,
  nextSession,
  type PageSession,
  pollStatus,
  runIn,
  screenshotPath,
  sessionCreatedBy,
  sessionStatus,
  shootElement,
  startLabServer,
  termText,
  typeIn,
  useSiteAndBrowser,
  waitForPrompt,
  waitForState,
  waitForText,
} from './support.ts';

const LAB = 'processes';
/** A lab only the lab server runs (no `browser` mode): what a reader gets without one. */
const SERVER_ONLY = 'layers';

const bed = useSiteAndBrowser();

/** `ps -ef` rows: { pid, ppid, cmd }. */
function psRows(text: string): { pid: number; ppid: number; cmd: string }[] {
  const rows: { pid: number; ppid: number; cmd: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^\S+\s+(\d+)\s+(\d+)\s+\d+\s+\S+\s+\S+\s+\S+\s+(.*)$/.exec(line.trim());
    if (m) rows.push({ pid: Number(m[1]), ppid: Number(m[2]), cmd: m[3]! });
  }
  return rows;
}

/** The output of the last run of `command` in a terminal: after its prompt line, up to the next prompt. */
function lastOutput(text: string, command: string): string {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/[$#] /.test(lines[i]!) && lines[i]!.endsWith(` ${command}`)) return lines.slice(i + 1).join('\n');
  }
  return '';
}

describe('live labs: real server, real engine', () => {
  let server: LabServer;
  let context: BrowserContext;
  let page: Page;
  let lesson: string;
  /** The page's current session, as the server answered its POST /api/v1/sessions. */
  let session: PageSession | undefined;
  const controlSent: string[] = [];

  before(async () => {
    server = await startLabServer(bed.site);
    // Live labs need an engine and the lab images: without them these tests fail, saying so.
    await requireEngine('the live-lab browser tests');
    lesson = lessonWithLab(bed.site, LAB);
    context = await bed.browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    page = await context.newPage();
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => {
        if (typeof f.payload === 'string') controlSent.push(f.payload);
      });
    });
  });

  after(async () => {
    await context?.close();
    await server?.stop();
  });

  test('Start opens both terminals; ps -ef shows the app as PID 1 inside and under another PID on the host', async (t) => {
    await page.goto(server.url + lesson);
    const lab = page.locator(`[data-lab="${LAB}"]`).first();
    await lab.scrollIntoViewIfNeeded();
    await assert.doesNotReject(lab.getByRole('button', { name: 'Start lab' }).waitFor());
    // No terminal code before Start.
    const early = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name));
    assert.ok(
      !early.some((n) => n.includes('lab-controller')),
      `terminal code loaded before Start: ${early.join(', ')}`,
    );

    await shootElement(page, lab, 'lab-idle-light-1280');
    const created = nextSession(page);
    await lab.getByRole('button', { name: 'Start lab' }).click();
    assert.match((await lab.getByRole('status').textContent()) ?? '', /Starting/);
    await shootElement(page, lab, 'lab-starting-light-1280');
    session = await created;
    await waitForState(page, LAB, 'ready').catch(async (err: Error) => {
      const status = await lab.getByRole('status').textContent();
      throw new Error(`${err.message}\nlab status: ${status}\nserver log:\n${server.log()}`);
    });
    await waitForPrompt(page, LAB, 'container');
    await waitForPrompt(page, LAB, 'host');

    const inside = psRows(lastOutput(await runIn(page, LAB, 'container', 'ps -ef'), 'ps -ef'));
    const outside = psRows(lastOutput(await runIn(page, LAB, 'host', 'ps -ef'), 'ps -ef'));
    t.diagnostic(`inside: ${JSON.stringify(inside)}`);
    t.diagnostic(`outside: ${JSON.stringify(outside)}`);
    const appInside = inside.find((r) => r.cmd.includes('httpd'));
    assert.equal(appInside?.pid, 1, 'inside the container, the app (httpd) is PID 1');
    const appOutside = outside.find((r) => r.cmd.startsWith('busybox httpd'));
    assert.ok(appOutside, 'on the host, ps -ef lists the app');
    assert.notEqual(appOutside.pid, 1, 'on the host, the app has another PID');
    const parent = outside.find((r) => r.pid === appOutside.ppid);
    assert.match(
      parent?.cmd ?? '',
      /unshare/,
      'its parent on the host is the runtime that started it (unshare)',
    );

    // Screenshots of the running lab: light and dark, wide and narrow.
    for (const theme of ['light', 'dark'] as const) {
      await page.evaluate((th) => {
        localStorage.setItem('starlight-theme', th);
        document.documentElement.dataset.theme = th;
      }, theme);
      // The terminals follow Starlight's theme (MutationObserver on data-theme).
      await page.waitForFunction((th) => {
        const bg = getComputedStyle(document.querySelector('.lab .xterm-viewport')!).backgroundColor;
        return th === 'dark' ? bg === 'rgb(18, 20, 25)' : bg === 'rgb(255, 255, 255)';
      }, theme);
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
        await page.waitForTimeout(400); // fit addon runs on the next frame after a resize
        await lab.evaluate((el) => el.scrollIntoView({ block: 'start' }));
        await page.waitForTimeout(200);
        await page.screenshot({ path: screenshotPath(`lab-page-${theme}-${width}`) });
        await shootElement(page, lab, `lab-running-${theme}-${width}`);
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    // Wide view: the lab covers the window, above Starlight's header; Esc leaves it.
    await lab.getByRole('button', { name: 'Wide view' }).click();
    await page.waitForTimeout(400);
    assert.ok(
      await page.evaluate(() => document.elementFromPoint(20, 20)?.closest('[data-lab-block]') !== null),
      'the wide view is on top of the page',
    );
    await page.screenshot({ path: screenshotPath('lab-wide-view-dark-1280') });
    await page.keyboard.press('Escape');
    assert.equal(await lab.getByRole('button', { name: 'Wide view' }).getAttribute('aria-pressed'), 'false');
    const wide = await page.evaluate(() => {
      const [a, b] = [...document.querySelectorAll('.lab__term')].map((e) => e.getBoundingClientRect());
      return a && b ? Math.abs(a.top - b.top) < 2 && b.left > a.right : false;
    });
    assert.ok(wide, 'at 1280 px the terminals sit side by side');
  });

  test('the running lab passes axe (serious/critical)', async () => {
    // xterm pauses drawing while a terminal is off screen: axe must look at what a reader sees.
    await page.locator(`[data-lab="${LAB}"] .lab__terms`).scrollIntoViewIfNeeded();
    for (const theme of ['light', 'dark']) {
      await page.evaluate((th) => {
        document.documentElement.dataset.theme = th;
      }, theme);
      await page.waitForTimeout(300); // xterm redraws its rows in the next animation frames
      const result = await new AxeBuilder({ page })
        .include(`[data-lab="${LAB}"]`)
        .include('.run-block')
        .analyze();
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert.deepEqual(
        bad.map(
          (v) =>
            `${theme}: ${v.id}: ${v.nodes.map((n) => `${n.target.join(' ')} ${n.html.slice(0, 120)} ${n.failureSummary}`).join(', ')}`,
        ),
        [],
      );
    }
  });

  test('a Run button types its command into its terminal', async (t) => {
    const block = page.locator('.run-block[data-run]').first();
    const target = (await block.getAttribute('data-run'))!;
    const code = (await block.getAttribute('data-run-code'))!;
    const firstLine = code.split('\n')[0]!;
    await block.locator('.run-block__button').click();
    const terminals = target === 'both' ? ['container', 'host'] : [target];
    for (const term of terminals) {
      const text = await waitForText(
        page,
        LAB,
        term,
        new RegExp(`${firstLine.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\\s\\S]*[$#] $`),
      );
      t.diagnostic(`${term}: ${text.split('\n').slice(-4).join(' | ')}`);
    }
    assert.match((await page.locator(`[data-lab="${LAB}"] [data-status]`).textContent()) ?? '', /^Ran /);
  });

  test('after a dropped connection the same shell comes back', async () => {
    await runIn(page, LAB, 'host', 'export X=42');
    await page.evaluate((l) => window.__containerLabs?.drop(l, 'host'), LAB);
    await page.waitForFunction(
      (l) => /Reconnected/.test(document.querySelector(`[data-lab="${l}"] [data-status]`)?.textContent ?? ''),
      LAB,
      { timeout: 20_000 },
    );
    await waitForPrompt(page, LAB, 'host');
    const text = await runIn(page, LAB, 'host', 'echo "X is $X"');
    assert.match(lastOutput(text, 'echo "X is $X"'), /X is 42/);
    assert.equal(
      await page.locator(`[data-lab="${LAB}"] [data-terminal="host"] [data-badge]`).textContent(),
      '',
    );
  });

  test('copy with Ctrl+Shift+C, paste with Ctrl+Shift+V', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await runIn(page, LAB, 'host', 'echo copy-$((6*7))');
    // Triple-click selects a whole line in xterm.
    const row = page.locator(`[data-lab="${LAB}"] [data-terminal="host"] .xterm-rows > div`, {
      hasText: /^copy-42\s*$/,
    });
    const box = await row.last().boundingBox();
    assert.ok(box, 'the copy-42 line is on screen');
    await page.mouse.click(box.x + 20, box.y + box.height / 2, { clickCount: 3 });
    await page.keyboard.press('Control+Shift+C');
    assert.match(await page.evaluate(() => navigator.clipboard.readText()), /^copy-42\s*$/);
    await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((6*7))'));
    await typeIn(page, LAB, 'host', '');
    await page.keyboard.press('Control+Shift+V');
    await page.keyboard.press('Enter');
    await waitForText(page, LAB, 'host', /\npasted-42\n[\s\S]*[$#] $/);
  });

  test('after `exit`, Enter opens a new shell', async () => {
    await typeIn(page, LAB, 'host', 'exit\n');
    await waitForText(page, LAB, 'host', /The shell exited\. Press Enter for a new one\.\]$/);
    assert.equal(
      await page.locator(`[data-lab="${LAB}"] [data-terminal="host"] [data-badge]`).textContent(),
      'Shell exited',
    );
    await page.keyboard.press('Enter');
    await waitForPrompt(page, LAB, 'host');
    const text = await runIn(page, LAB, 'host', 'echo "new shell, X=[$X]"');
    assert.match(lastOutput(text, 'echo "new shell, X=[$X]"'), /new shell, X=\[\]/);
  });

  test('flow control: `yes` does not freeze the page, and pause/resume reach the server', async (t) => {
    assert.ok(
      controlSent.some((p) => p.includes('"resize"')),
      'the client sent its size',
    );
    controlSent.length = 0;
    // A slow machine is where xterm falls behind: throttle the CPU so the client must pause.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 8 });
    await typeIn(page, LAB, 'container', 'yes "flow control"\n');
    let slowest = 0;
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      const t0 = Date.now();
      await page.evaluate(() => document.title);
      slowest = Math.max(slowest, Date.now() - t0);
      await page.waitForTimeout(100);
    }
    t.diagnostic(`slowest page round trip while flooding: ${slowest} ms`);
    assert.ok(slowest < 1500, `the page stalled for ${slowest} ms`);
    await page.keyboard.press('Control+C');
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
    await cdp.detach();
    await waitForPrompt(page, LAB, 'container', 60_000);
    const kinds = controlSent.map((p) => (JSON.parse(p) as { type: string }).type);
    t.diagnostic(
      `control messages: ${[...new Set(kinds)].join(', ')} (${kinds.filter((k) => k === 'pause').length} pauses)`,
    );
    assert.ok(kinds.includes('pause'), 'the client paused the output');
    assert.equal(
      kinds.filter((k) => k === 'pause').length,
      kinds.filter((k) => k === 'resume').length,
      'every pause was resumed',
    );
  });

  test("keyboard: Esc then Tab leaves the terminal; screen reader mode adds xterm's accessibility tree", async () => {
    const lab = page.locator(`[data-lab="${LAB}"]`);
    await typeIn(page, LAB, 'container', '');
    await page.keyboard.press('Tab'); // a plain Tab goes to the shell
    assert.ok(await page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea')));
    const focusedTerminal = () =>
      page.evaluate(
        () => document.activeElement?.closest<HTMLElement>('[data-terminal]')?.dataset.terminal ?? null,
      );
    assert.equal(await focusedTerminal(), 'container');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Tab');
    assert.equal(await focusedTerminal(), 'host', 'Esc, Tab moved on to the next terminal');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Tab');
    assert.equal(await focusedTerminal(), null, 'and Esc, Tab again out of the terminals');
    const toggle = lab.getByRole('button', { name: 'Screen reader mode' });
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
    await page.waitForFunction(
      (l) => document.querySelectorAll(`[data-lab="${l}"] .xterm-accessibility-tree`).length === 2,
      LAB,
    );
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
    await page.waitForFunction(
      (l) => document.querySelectorAll(`[data-lab="${l}"] .xterm-accessibility-tree`).length === 0,
      LAB,
    );
  });

  test('Extend asks for more time', async (t) => {
    const lab = page.locator(`[data-lab="${LAB}"]`);
    assert.match((await lab.locator('[data-countdown]').textContent()) ?? '', /^\d+:\d\d$/);
    await lab.getByRole('button', { name: 'Extend' }).click();
    await page.waitForFunction(
      (l) =>
        /Extended|longer|limit|maximum/i.test(
          document.querySelector(`[data-lab="${l}"] [data-status]`)?.textContent ?? '',
        ),
      LAB,
    );
    t.diagnostic((await lab.locator('[data-status]').textContent()) ?? '');
  });

  test('Reset gives a fresh sandbox and ends the old one', async () => {
    const old = session;
    assert.ok(old, 'the lab has a session');
    const fresh = await sessionCreatedBy(page, () =>
      page.locator(`[data-lab="${LAB}"]`).getByRole('button', { name: 'Reset' }).click(),
    );
    session = fresh;
    await waitForState(page, LAB, 'ready');
    assert.notEqual(fresh.id, old.id);
    assert.equal(await pollStatus(server, old, 404), 404, 'the old session is gone');
    await waitForPrompt(page, LAB, 'host');
    const text = await runIn(page, LAB, 'host', 'echo "X is [$X]"');
    assert.match(lastOutput(text, 'echo "X is [$X]"'), /X is \[\]/, 'a fresh shell');
  });

  test('Stop ends the session (GET → 404)', async () => {
    const s = session;
    assert.ok(s, 'the lab has a session');
    assert.equal(await sessionStatus(server, s), 200);
    await page.locator(`[data-lab="${LAB}"]`).getByRole('button', { name: 'Stop' }).first().click();
    await waitForState(page, LAB, 'stopped');
    assert.equal(await pollStatus(server, s, 404), 404);
    assert.ok(
      await page.locator(`[data-lab="${LAB}"]`).getByRole('button', { name: 'Start again' }).isVisible(),
    );
  });

  test('leaving the page ends the session', async () => {
    const s = await sessionCreatedBy(page, () =>
      page.locator(`[data-lab="${LAB}"]`).getByRole('button', { name: 'Start again' }).click(),
    );
    await waitForState(page, LAB, 'ready');
    assert.equal(await sessionStatus(server, s), 200);
    await page.goto('about:blank');
    assert.equal(await pollStatus(server, s, 404), 404, 'pagehide deleted the session');
  });
});

describe('without a server (static hosting)', () => {
  let statik: StaticServer;
  let page: Page;

  before(async () => {
    statik = await serveStatic(bed.site);
    page = await bed.browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await page?.close();
    await statik?.close();
  });

  test('a lesson loads at most 60 KB of JS (gzipped) until the reader acts', async (t) => {
    const { gzipSync } = await import('node:zlib');
    const js: { url: string; gz: number }[] = [];
    const seen: Promise<void>[] = [];
    page.on('response', (res) => {
      if (!/javascript/.test(res.headers()['content-type'] ?? '')) return;
      seen.push(res.body().then((b) => void js.push({ url: res.url(), gz: gzipSync(b).length })));
    });
    await page.goto(statik.url(lessonWithLab(bed.site, LAB)), { waitUntil: 'networkidle' });
    await Promise.all(seen);
    const inline = await page.evaluate(() =>
      [...document.querySelectorAll('script:not([src])')].map((s) => s.textContent ?? ''),
    );
    // Search (Pagefind and Starlight's search UI) is excluded from the budget.
    const counted = js.filter((f) => !/\/pagefind\/|ui-core/.test(f.url));
    const total = counted.reduce((n, f) => n + f.gz, 0) + inline.reduce((n, s) => n + gzipSync(s).length, 0);
    for (const f of js)
      t.diagnostic(
        `${(f.gz / 1024).toFixed(1)} KB  ${new URL(f.url).pathname}${counted.includes(f) ? '' : ' (search, not counted)'}`,
      );
    t.diagnostic(
      `first-load JS: ${(total / 1024).toFixed(1)} KB gzipped (${counted.length} files + ${inline.length} inline)`,
    );
    assert.ok(!js.some((f) => /lab-controller|xterm/.test(f.url)), 'no terminal code on first load');
    assert.ok(total <= 60 * 1024, `first-load JS is ${total} bytes gzipped`);
  });

  test('a lab that can run in the tab offers that instead', async () => {
    // The page the first-load test opened: the processes lab has modes server and browser.
    const lab = page.locator(`[data-lab="${LAB}"]`);
    await waitForState(page, LAB, 'offline', 10_000);
    assert.match((await lab.locator('[data-note]').textContent()) ?? '', /can run in your browser/);
    assert.ok(await lab.getByRole('button', { name: /Run in my browser/ }).isVisible());
  });

  test('each lab says live labs need the server, and plays its recording', async () => {
    const LAB = SERVER_ONLY;
    await page.goto(statik.url(lessonWithLab(bed.site, LAB)), { waitUntil: 'networkidle' });
    const lab = page.locator(`[data-lab="${LAB}"]`);
    await waitForState(page, LAB, 'offline', 10_000);
    assert.match((await lab.locator('[data-note]').textContent()) ?? '', /lab server/);
    assert.equal(
      await page.locator('.run-block__button').first().isVisible(),
      false,
      'no Run buttons without a server',
    );
    await lab.scrollIntoViewIfNeeded();
    await lab.getByRole('button', { name: 'Play recording' }).click();
    await page.waitForFunction(
      (l) => document.querySelector<HTMLElement>(`[data-lab="${l}"]`)?.dataset.player === 'playing',
      LAB,
    );
    await page.waitForTimeout(3000);
    await shootElement(page, lab, 'lab-recording-playing-light-1280');
    // Pause, then resume: the player stops and goes on.
    await lab.getByRole('button', { name: 'Pause' }).click();
    await page.waitForFunction(
      (l) => document.querySelector<HTMLElement>(`[data-lab="${l}"]`)?.dataset.player === 'paused',
      LAB,
    );
    // xterm.js renders writes queued just before the pause asynchronously: let them land,
    // then nothing more may appear.
    await page.waitForTimeout(300);
    const paused = await termText(page, LAB, 'host');
    await page.waitForTimeout(1500);
    assert.equal(await termText(page, LAB, 'host'), paused, 'nothing is written while paused');
    await lab.getByRole('button', { name: 'Resume' }).click();
    await page.waitForFunction(
      (l) => document.querySelector<HTMLElement>(`[data-lab="${l}"]`)?.dataset.player === 'ended',
      LAB,
      // Lesson 8's recording runs about 75 s (its twelve blocks, typed as a person types).
      { timeout: 150_000 },
    );
    // The recording is this lesson's own runnable blocks (scripts/record-labs.ts), run in a real
    // lab: each block's command in its terminal, after the real prompts.
    const slug = lessonWithLab(bed.site, LAB).replace(/^\/|\/$/g, '');
    const blocks = (await runBlockIndex()).filter((b) => b.lesson === slug && b.lab === LAB);
    assert.ok(blocks.length > 0, `no runnable blocks in ${slug}`);
    const shown = {
      container: (await termText(page, LAB, 'container')).replace(/\s+/g, ''),
      host: (await termText(page, LAB, 'host')).replace(/\s+/g, ''),
    };
    assert.match(shown.container, /root@box/, 'the recording shows the container prompt');
    assert.match(shown.host, /reader@labhost/, 'and the lab host prompt');
    // Each terminal ends on the last block typed into it (a long recording scrolls its first
    // blocks out of the screen; tests/site/recordings.test.ts checks every block is in the cast).
    for (const name of ['container', 'host'] as const) {
      const last = blocks.filter((b) => b.target === name || b.target === 'both').at(-1);
      if (!last) continue;
      // Its first 30 characters: readline redraws a line that reaches the right margin.
      assert.ok(
        shown[name].includes((last.code.split('\n')[0] ?? '').slice(0, 30).replace(/\s+/g, '')),
        `the recording ends with block ${last.order} (${last.code.split('\n')[0]}) in ${name}`,
      );
    }
    assert.ok(await lab.getByRole('button', { name: 'Replay' }).isVisible());
    await shootElement(page, lab, 'lab-recording-ended-light-1280');
  });
});

describe('a server without a container engine', () => {
  let server: LabServer;
  let page: Page;

  before(async () => {
    server = await startLabServer(bed.site, { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    page = await bed.browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
  });

  after(async () => {
    await page?.close();
    await server?.stop();
  });

  test('explains how to get live labs and offers the recording', async () => {
    const LAB = SERVER_ONLY;
    await page.goto(server.url + lessonWithLab(bed.site, LAB));
    await waitForState(page, LAB, 'engine-down', 10_000);
    const lab = page.locator(`[data-lab="${LAB}"]`);
    assert.match((await lab.locator('[data-note]').textContent()) ?? '', /container engine/);
    assert.ok(await lab.getByRole('button', { name: 'Play recording' }).isVisible());
    // Retry asks the server again and gets its engine_unavailable answer.
    await lab.getByRole('button', { name: 'Retry' }).click();
    await waitForState(page, LAB, 'engine-down');
    await lab.scrollIntoViewIfNeeded();
    await shootElement(page, lab, 'lab-engine-down-dark-1280');
  });
});

describe('a session that runs out of time', () => {
  let server: LabServer;
  let page: Page;

  before(async () => {
    server = await startLabServer(bed.site, {
      CL_SESSION_TTL: '12s',
      CL_SESSION_MAX_LIFETIME: '20s',
      CL_REAP_INTERVAL: '1s',
    });
    // Live labs need an engine and the lab images: without them these tests fail, saying so.
    await requireEngine('the expiry browser test');
    page = await bed.browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await page?.close();
    await server?.stop();
  });

  test('the countdown warns, then the lab shows it has expired', async () => {
    await page.goto(server.url + lessonWithLab(bed.site, LAB));
    const lab = page.locator(`[data-lab="${LAB}"]`);
    await lab.scrollIntoViewIfNeeded();
    await lab.getByRole('button', { name: 'Start lab' }).click();
    await waitForState(page, LAB, 'ready');
    assert.match((await lab.locator('[data-countdown]').textContent()) ?? '', /^0:(0\d|1[0-2])$/);
    assert.equal(
      await lab.getAttribute('data-time-low'),
      '',
      'little time left: the countdown is highlighted',
    );
    assert.match((await lab.locator('[data-status]').textContent()) ?? '', /left in this lab\. Press Extend/);
    await waitForState(page, LAB, 'expired', 40_000);
    assert.match((await lab.locator('[data-status]').textContent()) ?? '', /Time is up/);
    assert.ok(await lab.getByRole('button', { name: 'Start again' }).isVisible());
    await shootElement(page, lab, 'lab-expired-light-1280');
  });
});
