/**
 * The kernel view (process map, namespace diff, cgroup meters) and the step checks in
 * real Chromium against the real server and a real Docker engine:
 * - processes lab: a `sleep 1000 &` typed in the container terminal shows up in the
 *   process map with both of its PIDs (the host PID as the API reports it, the inside
 *   PID as `echo $!` prints it), and goes away when it ends; no /processes or /cgroup
 *   request while the view is closed or the page hidden; the namespace diff; the check
 *   fails before the step and passes after it; the progress survives a reload;
 * - cgroups lab: the 128 MiB memory limit, an OOM kill by `mem-hog 200` as an event and
 *   an announcement, the checks;
 * - static hosting: checks say they need a live lab.
 * axe (serious/critical) on the open panels, light and dark. Screenshots (light, dark,
 * narrow) go to test-results/screenshots/panels-*.png.
 *
 *   npm run test:browser        (or: node --test tests/browser/panels.test.ts)
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import type { CgroupReading, ProcessSnapshot } from '../../src/lib/lab-api.ts';
import { type StaticServer, serveStatic } from '../site/static-server.ts';
import { requireEngine } from '../support/server.ts';
import {
  type LabServer,
  labState,
  nextSession,
  type PageSession,
  ROOT,
  runIn,
  sessionCreatedBy,
  shootElement,
  startLabServer,
  useSiteAndBrowser,
  waitForPrompt,
  waitForState,
} from './support.ts';

/** Site path of the lesson with `<Check lab=…>` blocks of that lab. */
function lessonWithChecks(site: string, lab: string): string {
  for (const dir of readdirSync(site, { withFileTypes: true })) {
    const file = path.join(site, dir.name, 'index.html');
    if (
      dir.isDirectory() &&
      existsSync(file) &&
      readFileSync(file, 'utf8').includes(`data-check-lab="${lab}"`)
    )
      return `/${dir.name}/`;
  }
  throw new Error(`no lesson in ${site} has a <Check lab="${lab}">`);
}

/** The lines a command printed: after its prompt line, up to the next prompt. */
function outputOf(text: string, command: string): string[] {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/[$#] /.test(lines[i]!) && lines[i]!.endsWith(` ${command}`)) {
      const out: string[] = [];
      for (const l of lines.slice(i + 1)) {
        if (/[$#] $/.test(l) || /[$#] \S/.test(l)) break;
        out.push(l);
      }
      return out;
    }
  }
  return [];
}

async function api<T>(server: LabServer, s: PageSession | undefined, what: string): Promise<T> {
  assert.ok(s, 'the lab has a session');
  const res = await fetch(`${server.url}/api/v1/sessions/${s.id}/${what}`, {
    headers: { authorization: `Bearer ${s.token}` },
  });
  assert.equal(res.status, 200, `GET …/${what}`);
  return (await res.json()) as T;
}

/** Counts the page's requests to the inspection endpoints. */
function countPanelRequests(page: Page): { processes: number; cgroup: number; total(): number } {
  const n = {
    processes: 0,
    cgroup: 0,
    total() {
      return this.processes + this.cgroup;
    },
  };
  page.on('request', (req) => {
    const m = /\/api\/v1\/sessions\/[^/]+\/(processes|cgroup)$/.exec(new URL(req.url()).pathname);
    if (m) n[m[1] as 'processes' | 'cgroup']++;
  });
  return n;
}

async function setTheme(page: Page, theme: 'light' | 'dark'): Promise<void> {
  await page.evaluate((th) => {
    localStorage.setItem('starlight-theme', th);
    document.documentElement.dataset.theme = th;
  }, theme);
  await page.waitForTimeout(150);
}

/** Pretends the tab went to the background (or came back): document.visibilityState + its event. */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((h) => {
    if (h) Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    else delete (document as { visibilityState?: unknown }).visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

async function axe(page: Page, selectors: string[], label: string): Promise<void> {
  let builder = new AxeBuilder({ page });
  for (const s of selectors) builder = builder.include(s);
  const result = await builder.analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map(
      (v) =>
        `${label}: ${v.id}: ${v.nodes.map((n) => `${n.target.join(' ')} ${n.html.slice(0, 120)} ${n.failureSummary}`).join(', ')}`,
    ),
    [],
  );
}

/** Runs a step check from its block; resolves with the result region once it says pass or fail. */
async function pressCheck(check: Locator, answer?: string): Promise<{ kind: string; text: string }> {
  if (answer !== undefined) await check.getByRole('textbox').fill(answer);
  const result = check.locator('[data-check-result]');
  // Mark the region, so a re-run that answers the same text is still seen as new.
  await result.evaluate((el) => {
    (el as HTMLElement).dataset.kind = 'test-waiting';
  });
  await check.getByRole('button', { name: 'Check' }).click();
  await check
    .page()
    .waitForFunction(
      (el) => ['pass', 'fail', 'error'].includes((el as HTMLElement).dataset.kind ?? ''),
      await result.elementHandle(),
      { timeout: 60_000 },
    );
  return { kind: (await result.getAttribute('data-kind')) ?? '', text: (await result.textContent()) ?? '' };
}

// Its own build: labs.test.ts builds into test-results/browser-site, and the two may run side by side.
const bed = useSiteAndBrowser(path.join(ROOT, 'test-results', 'panels-site'));

describe('kernel view and step checks: real server, real engine', () => {
  let server: LabServer;
  let context: BrowserContext;
  let page: Page;
  let requests: ReturnType<typeof countPanelRequests>;
  /** The page's current session, as the server answered its POST /api/v1/sessions. */
  let session: PageSession | undefined;

  before(async () => {
    server = await startLabServer(bed.site);
    // Live labs need an engine and the lab images: without them these tests fail, saying so.
    await requireEngine('the kernel view browser tests');
    context = await bed.browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    page = await context.newPage();
    requests = countPanelRequests(page);
  });

  after(async () => {
    await context?.close();
    await server?.stop();
  });

  const LAB = 'processes';

  test('processes lab: the check fails before the step; no panel request while the kernel view is closed', async (t) => {
    await page.goto(server.url + lessonWithChecks(bed.site, LAB));
    const lab = page.locator(`[data-lab="${LAB}"]`);
    const check = page.locator(`[data-check-lab="${LAB}"][data-check="sleep-host-pid"]`);
    assert.equal(
      await lab
        .locator('[data-check-progress]')
        .textContent()
        .then((s) => s?.trim()),
      '0 of 1 step done',
    );
    assert.equal(await check.getByText('Done').isVisible(), false);
    assert.equal(
      await lab.locator('details[data-kernel-view]').isVisible(),
      false,
      'no kernel view before Start',
    );

    // Check on an idle lab starts it, then runs the check: nothing runs yet, so it fails.
    await check.scrollIntoViewIfNeeded();
    const created = nextSession(page);
    const early = await pressCheck(check, '4242');
    session = await created;
    t.diagnostic(`before the step: ${early.text}`);
    assert.equal(early.kind, 'fail');
    assert.match(early.text, /not running in the container yet/);
    assert.match(early.text, /Hint: Inside, ps -ef/, 'the hint follows a failure');
    assert.equal(await labState(page, LAB), 'ready');

    const kv = lab.locator('details[data-kernel-view]');
    assert.ok(await kv.isVisible(), 'the kernel view appears once the session is ready');
    assert.equal(await kv.getAttribute('open'), null, 'closed by default');
    await waitForPrompt(page, LAB, 'container');
    await waitForPrompt(page, LAB, 'host');
    await page.waitForTimeout(3000);
    assert.equal(requests.total(), 0, 'no /processes or /cgroup request while the kernel view is closed');
  });

  test('the process map shows a sleep started in the container with both of its PIDs, live', async (t) => {
    const lab = page.locator(`[data-lab="${LAB}"]`);
    await runIn(page, LAB, 'container', 'sleep 1000 &');
    const echoed = outputOf(await runIn(page, LAB, 'container', 'echo $!'), 'echo $!');
    const insidePid = Number(echoed.find((l) => /^\d+$/.test(l.trim()))?.trim());
    assert.ok(insidePid > 1, `echo $! printed a PID: ${JSON.stringify(echoed)}`);

    const opened = Date.now();
    await lab.getByText('Kernel view', { exact: true }).click();
    const row = lab.locator('tr[data-in-container]', { hasText: 'sleep 1000' });
    await row.waitFor({ timeout: 5000 });
    t.diagnostic(`sleep row after ${Date.now() - opened} ms`);
    const hostPidShown = Number(await row.locator('[data-col="host-pid"]').textContent());
    const insideShown = (await row.locator('[data-col="inside-pid"]').textContent())?.trim();

    const snap = await api<ProcessSnapshot>(server, session, 'processes');
    const sleep = snap.processes.find((p) => p.cmd === 'sleep 1000');
    assert.ok(sleep, 'the API lists the sleep');
    assert.equal(hostPidShown, sleep.pid, 'the host PID on the panel is the API’s');
    assert.equal(insideShown, String(insidePid), 'the container PID on the panel is what echo $! printed');
    assert.equal(sleep.nspid.at(-1), insidePid);
    assert.notEqual(sleep.pid, insidePid, 'two different numbers for one process');

    // The container's PID 1: one row, its host PID and 1.
    const init = lab.locator('tr', { hasText: 'container’s PID 1' });
    assert.equal((await init.locator('[data-col="inside-pid"]').textContent())?.trim(), '1');
    const initHost = snap.processes.find((p) => p.inContainer && p.nspid.length === 2 && p.nspid[1] === 1);
    assert.equal(Number(await init.locator('[data-col="host-pid"]').textContent()), initHost?.pid);
    assert.match(
      (await lab.locator('[data-kv-panel="processes"] .kv-summary').textContent()) ?? '',
      new RegExp(`PID ${initHost?.pid} on the host = PID 1 in the container`),
    );
    assert.equal(await row.locator('[data-col="users"]').textContent(), 'reader → root');
    // (time: this kernel has time namespaces, and the lab hosts' seccomp profile refuses new ones)
    assert.equal(await row.locator('[data-col="shared"]').textContent(), 'net, cgroup, time');

    // About once a second while open.
    const n0 = requests.processes;
    await page.waitForTimeout(4000);
    const rate = requests.processes - n0;
    t.diagnostic(`${rate} /processes requests in 4 s`);
    assert.ok(rate >= 2 && rate <= 6, `polls about once a second (${rate} in 4 s)`);
    assert.equal(requests.cgroup, 0, 'the processes tab asks for processes only');

    // A process that starts appears within a second or so; one that exits disappears.
    await runIn(page, LAB, 'container', 'sleep 1001 &');
    await lab.locator('tr', { hasText: 'sleep 1001' }).waitFor({ timeout: 3000 });
    await runIn(page, LAB, 'container', 'kill %2');
    await lab.locator('tr', { hasText: 'sleep 1001' }).waitFor({ state: 'detached', timeout: 3000 });

    for (const theme of ['light', 'dark'] as const) {
      await setTheme(page, theme);
      await shootElement(page, lab.locator('details[data-kernel-view]'), `panels-processes-${theme}-1280`);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    await shootElement(page, lab.locator('details[data-kernel-view]'), 'panels-processes-dark-390');
    await page.setViewportSize({ width: 1280, height: 900 });
    await setTheme(page, 'light');
  });

  test('the check passes after the step and shows progress; the ✓ and the count survive a reload', async (t) => {
    const lab = page.locator(`[data-lab="${LAB}"]`);
    const check = page.locator(`[data-check-lab="${LAB}"][data-check="sleep-host-pid"]`);
    const snap = await api<ProcessSnapshot>(server, session, 'processes');
    const sleep = snap.processes.find((p) => p.cmd === 'sleep 1000')!;
    // The container's number is not the answer: the server says so.
    const wrong = await pressCheck(check, String(sleep.nspid.at(-1)));
    assert.equal(wrong.kind, 'fail');
    assert.match(wrong.text, /its PID inside the container/);
    const right = await pressCheck(check, String(sleep.pid));
    t.diagnostic(right.text);
    assert.equal(right.kind, 'pass');
    assert.match(right.text, new RegExp(`Passed\\. Right: PID ${sleep.pid} on the host`));
    assert.ok(await check.getByText('Done').isVisible(), 'a ✓ on the passed check');
    assert.equal((await lab.locator('[data-check-progress]').textContent())?.trim(), '1 of 1 step done');
    await check.scrollIntoViewIfNeeded();
    for (const theme of ['light', 'dark'] as const) {
      await setTheme(page, theme);
      await shootElement(page, check, `panels-check-passed-${theme}-1280`);
    }
    await setTheme(page, 'light');
    // Re-run on demand: the same check again answers again.
    assert.equal((await pressCheck(check, String(sleep.pid))).kind, 'pass');

    await page.reload();
    await page.waitForFunction(
      () => document.querySelector('[data-check-progress-text]')?.textContent === '1 of 1 step done',
    );
    assert.equal(await check.getAttribute('data-passed'), '');
    assert.ok(await check.getByText('Done').isVisible(), 'the ✓ is still there after a reload');
    assert.equal(await labState(page, LAB), 'idle', 'no lab started');
  });

  test('no request while the page is hidden or the view closed; the namespace diff; axe on the open panels', async () => {
    const lab = page.locator(`[data-lab="${LAB}"]`);
    if ((await labState(page, LAB)) !== 'ready') {
      session = await sessionCreatedBy(page, () => lab.locator('[data-action="start"]').click());
      await waitForState(page, LAB, 'ready');
    }
    const kv = lab.locator('details[data-kernel-view]');
    if ((await kv.getAttribute('open')) !== null) await kv.locator('summary').click();
    await kv.locator('summary').click();
    await lab.locator('tr', { hasText: 'container’s PID 1' }).waitFor({ timeout: 5000 });

    await setHidden(page, true);
    await page.waitForTimeout(300); // a request already on its way is aborted, not repeated
    const hidden = requests.total();
    await page.waitForTimeout(3000);
    assert.equal(requests.total(), hidden, 'no request while the page is hidden');
    await setHidden(page, false);
    await page.waitForTimeout(1500);
    assert.ok(requests.total() > hidden, 'polling resumes when the page is visible again');

    await kv.locator('summary').click(); // close
    await page.waitForTimeout(300);
    const closed = requests.total();
    await page.waitForTimeout(3000);
    assert.equal(requests.total(), closed, 'no request once the view is closed');
    await kv.locator('summary').click(); // open again

    // Tabs by keyboard: arrow keys move between them.
    await lab.getByRole('tab', { name: 'Processes' }).focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(await lab.getByRole('tab', { name: 'Namespaces' }).getAttribute('aria-selected'), 'true');
    assert.ok(
      await page.evaluate(() => document.activeElement?.getAttribute('data-kv-tab') === 'namespaces'),
      'focus follows the selected tab',
    );
    const ns = lab.locator('[data-kv-panel="namespaces"]');
    await ns.locator('tr[data-ns-kind]').first().waitFor({ timeout: 5000 });
    const verdicts = await ns
      .locator('tr[data-ns-kind]')
      .evaluateAll((rows) =>
        rows.map(
          (r) =>
            `${(r as HTMLElement).dataset.nsKind}:${r.querySelector('[data-col="verdict"]')?.textContent?.trim()}`,
        ),
      );
    assert.deepEqual(verdicts, [
      'pid:≠Separate',
      'mnt:≠Separate',
      'uts:≠Separate',
      'ipc:≠Separate',
      'user:≠Separate',
      'net:=Shared',
      'cgroup:=Shared',
      'time:=Shared',
    ]);
    // The inode numbers are the kernel's: the same on both sides exactly where shared.
    const snap = await api<ProcessSnapshot>(server, session, 'processes');
    const net = ns.locator('tr[data-ns-kind="net"] td.kv-num');
    assert.deepEqual(await net.allTextContents(), [snap.host.namespaces.net, snap.host.namespaces.net]);
    assert.match(
      (await ns.locator('.kv-summary').textContent()) ?? '',
      /Shared with the host: net, cgroup, time/,
    );

    await kv.scrollIntoViewIfNeeded();
    for (const theme of ['light', 'dark'] as const) {
      await setTheme(page, theme);
      await axe(
        page,
        [`[data-lab="${LAB}"] details[data-kernel-view]`, '[data-check]'],
        `namespaces ${theme}`,
      );
      await shootElement(page, kv, `panels-namespaces-${theme}-1280`);
      await lab.getByRole('tab', { name: 'Processes' }).click();
      await lab.locator('tr', { hasText: 'container’s PID 1' }).waitFor();
      await axe(page, [`[data-lab="${LAB}"] details[data-kernel-view]`], `processes ${theme}`);
      await lab.getByRole('tab', { name: 'Namespaces' }).click();
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    await shootElement(page, kv, 'panels-namespaces-dark-390');
    await page.setViewportSize({ width: 1280, height: 900 });
    await setTheme(page, 'light');
    await lab.getByRole('button', { name: 'Stop' }).first().click();
    await waitForState(page, LAB, 'stopped');
    const stopped = requests.total();
    await page.waitForTimeout(2000);
    assert.equal(requests.total(), stopped, 'no request after the session ended');
  });

  test('cgroups lab: the 128 MiB limit, an OOM kill as an event, and the checks', async (t) => {
    const CG = 'cgroups';
    await page.goto(server.url + lessonWithChecks(bed.site, CG));
    const lab = page.locator(`[data-lab="${CG}"]`);
    assert.equal((await lab.locator('[data-check-progress]').textContent())?.trim(), '0 of 3 steps done');
    session = await sessionCreatedBy(page, () => lab.getByRole('button', { name: 'Start lab' }).click());
    await waitForState(page, CG, 'ready');
    await waitForPrompt(page, CG, 'host');
    const kv = lab.locator('details[data-kernel-view]');
    await kv.locator('summary').click();
    await lab.getByRole('tab', { name: 'cgroup' }).click();
    // Opening showed the Processes tab for a moment: count from the switch on.
    await page.waitForTimeout(300);
    const cgBefore = requests.cgroup;
    const procBefore = requests.processes;
    const panel = lab.locator('[data-kv-panel="cgroup"]');
    const memory = panel.locator('[data-kv-meter="memory"]');
    await page.waitForFunction(
      () => /of 128 MiB/.test(document.querySelector('[data-kv-value="memory"]')?.textContent ?? ''),
      undefined,
      { timeout: 5000 },
    );
    const meter = memory.getByRole('meter', { name: 'Memory' });
    assert.equal(await meter.getAttribute('aria-valuemax'), String(128 * 1024 * 1024));
    assert.match((await meter.getAttribute('aria-valuetext')) ?? '', /MiB of 128 MiB/);
    assert.match((await panel.locator('[data-kv-version]').textContent()) ?? '', /^cgroup v[12]$/);
    assert.match((await panel.locator('[data-kv-value="pids"]').textContent()) ?? '', /of 100 tasks/);
    // CPU needs two readings, then shows cores against the 0.5-core limit.
    await page.waitForFunction(
      () => /of 0\.5 cores/.test(document.querySelector('[data-kv-value="cpu"]')?.textContent ?? ''),
      undefined,
      { timeout: 5000 },
    );
    assert.match((await panel.locator('[data-kv-note="cpu"]').textContent()) ?? '', /Throttled in \d+ of/);

    const oomCheck = page.locator(`[data-check-lab="${CG}"][data-check="oom-kill"]`);
    const early = await pressCheck(oomCheck);
    assert.equal(early.kind, 'fail');
    assert.match(early.text, /No OOM kill yet/);

    await lab.locator('.lab__terms').scrollIntoViewIfNeeded();
    const hog = await runIn(page, CG, 'host', 'mem-hog 200');
    t.diagnostic(outputOf(hog, 'mem-hog 200').join(' | '));
    const event = panel.locator('[data-kv-event="oom"]');
    await event.waitFor({ timeout: 5000 });
    const eventText = (await event.textContent()) ?? '';
    t.diagnostic(`event: ${eventText}`);
    assert.match(eventText, /OOM kill at \d\d:\d\d:\d\d/);
    await page.waitForFunction(
      (l) =>
        /OOM kill/.test(document.querySelector(`[data-lab="${l}"] [data-kv-announce]`)?.textContent ?? ''),
      CG,
    );
    const cg = await api<CgroupReading>(server, session, 'cgroup');
    assert.ok((cg.memory.oomKills ?? 0) >= 1, 'the API counts the kill too');
    assert.equal(requests.processes, procBefore, 'the cgroup tab asks for /cgroup only');
    assert.ok(requests.cgroup > cgBefore);

    await kv.scrollIntoViewIfNeeded();
    for (const theme of ['light', 'dark'] as const) {
      await setTheme(page, theme);
      await axe(page, [`[data-lab="${CG}"] details[data-kernel-view]`, '[data-check]'], `cgroup ${theme}`);
      await shootElement(page, kv, `panels-cgroup-${theme}-1280`);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    await shootElement(page, kv, 'panels-cgroup-dark-390');
    await page.setViewportSize({ width: 1280, height: 900 });
    await setTheme(page, 'light');

    const late = await pressCheck(oomCheck);
    assert.equal(late.kind, 'pass');
    assert.match(late.text, /OOM-killed/);
    const memCheck = page.locator(`[data-check-lab="${CG}"][data-check="memory-limit"]`);
    assert.equal((await pressCheck(memCheck, '64')).kind, 'fail');
    assert.equal((await pressCheck(memCheck, '128')).kind, 'pass');
    assert.equal((await lab.locator('[data-check-progress]').textContent())?.trim(), '2 of 3 steps done');
    // An empty answer is caught in the page, before any request.
    await memCheck.getByRole('textbox').fill('');
    const posts: string[] = [];
    const onRequest = (req: { method(): string; url(): string }) => {
      if (req.method() === 'POST' && /\/checks\//.test(req.url())) posts.push(req.url());
    };
    page.on('request', onRequest);
    const empty = await pressCheck(memCheck);
    page.off('request', onRequest);
    assert.equal(empty.kind, 'error');
    assert.match(empty.text, /Type your answer/);
    assert.deepEqual(posts, []);
    const pidsCheck = page.locator(`[data-check-lab="${CG}"][data-check="pids-limit"]`);
    assert.equal(await pidsCheck.getByRole('textbox').count(), 0, 'a check without an answer has no input');
  });
});

describe('a step check without a server (static hosting)', () => {
  let statik: StaticServer;
  let page: Page;

  before(async () => {
    statik = await serveStatic(bed.site);
    page = await bed.browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
  });

  after(async () => {
    await page?.close();
    await statik?.close();
  });

  test('says it needs a live lab, and offers no Check button', async () => {
    // A lab only the lab server runs (labs that can run in the tab keep their checks).
    await page.goto(statik.url(lessonWithChecks(bed.site, 'layers')));
    await waitForState(page, 'layers', 'offline', 10_000);
    const check = page.locator('[data-check="overlay-mounted"]');
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('[data-check]')?.dataset.labMode === 'offline',
    );
    assert.match(
      (await check.locator('[data-check-offline]').textContent()) ?? '',
      /need the course's lab server/,
    );
    assert.ok(await check.locator('[data-check-offline]').isVisible());
    assert.equal(await check.getByRole('button', { name: 'Check' }).isVisible(), false);
    await check.scrollIntoViewIfNeeded();
    await shootElement(page, check, 'panels-check-offline-dark-1280');
  });
});
