/**
 * The "browser" section: the same lesson page in headless Chromium, its lab started in the
 * tab (the in-browser VM, no server: the built site served as plain files) and, in the
 * same run, started on our server (a lab host container). Per mode: bytes the page
 * downloaded for the lab, Start → both prompts, `ps -ef` in the host terminal until the
 * prompt is back, one keystroke's echo, and the tab's memory (the renderer processes' PSS).
 * The first start (cold cache) and a second one after a reload (the Cache API) are apart.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { serveStatic } from '../../tests/site/static-server.ts';
import { ROOT } from '../../tests/support/server.ts';
import { type Summary, summarize } from '../../tests/support/stats.ts';
import { readCurrent } from '../../vm/lib/manifest.ts';
import { log } from './log.ts';
import { benchEnv, startOurs } from './ours.ts';

export interface BrowserModeResult {
  mode: 'vm' | 'server';
  skipped?: string;
  /** Bytes the page fetched from Start to ready (first start, empty cache). */
  downloadBytes?: number;
  /** Start → both prompts, first start (ms). */
  startMs?: number;
  /** The same after a reload (VM files from the Cache API). */
  startWarmMs?: number;
  psMs?: Summary;
  echoMs?: Summary;
  /** The renderer's PSS with the lab ready (MB). */
  tabMB?: number;
  /** The same after the measurements and a garbage collection (what the tab keeps). */
  tabKeptMB?: number;
}

export interface BrowserResult {
  lab: string;
  rows: BrowserModeResult[];
  vmBuild?: string;
}

const LAB = 'processes';

/** PSS (MB) of the Chromium renderer processes of one profile dir. */
function rendererPss(profile: string): number {
  let kb = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer')) continue;
      // Renderers do not carry the profile dir: match their parent browser's.
      const ppid = /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      const parent = (p: string | undefined) => (p ? readFileSync(`/proc/${p}/cmdline`, 'utf8') : '');
      const pp = /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${ppid}/status`, 'utf8'))?.[1];
      if (!parent(ppid).includes(profile) && !parent(pp).includes(profile)) continue;
      const m = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return kb / 1024;
}

function text(page: Page, terminal: string): Promise<string> {
  return page.evaluate(([l, t]) => window.__containerLabs?.text(l!, t!) ?? '', [LAB, terminal]);
}

async function until(page: Page, terminal: string, re: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (let seen = await text(page, terminal); !re.test(seen); seen = await text(page, terminal)) {
    if (Date.now() > deadline)
      throw new Error(
        `terminal ${terminal} never matched ${re}; it ends with ${JSON.stringify(seen.slice(-120))}`,
      );
    await page.waitForTimeout(20);
  }
}

async function startLab(page: Page, mode: 'vm' | 'server'): Promise<number> {
  const root = page.locator(`[data-lab="${LAB}"]`).first();
  const t0 = performance.now();
  await root.locator(mode === 'vm' ? '[data-action="start-vm"]' : '[data-action="start"]').click();
  await page.waitForFunction(
    (l) => document.querySelector<HTMLElement>(`[data-lab="${l}"]`)?.dataset.state === 'ready',
    LAB,
    { timeout: 300_000 },
  );
  for (const t of ['container', 'host']) await until(page, t, /[$#] $/, 300_000);
  return performance.now() - t0;
}

async function measure(page: Page, rounds: number, keys: number): Promise<Partial<BrowserModeResult>> {
  const term = page.locator(`[data-lab="${LAB}"] [data-terminal="host"] .xterm`);
  await term.click();
  const ps: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const marker = `ps${i}`;
    const t0 = performance.now();
    await page.keyboard.type(`ps -ef # ${marker}\n`);
    await until(page, 'host', new RegExp(`${marker}\\n[\\s\\S]*CMD[\\s\\S]*[$#] $`), 120_000);
    ps.push(performance.now() - t0);
  }
  // One key, its echo; then DEL, the prompt alone again (the line never grows).
  const echo: number[] = [];
  for (let i = 0; i < keys; i++) {
    let t0 = performance.now();
    await page.keyboard.type('x');
    await until(page, 'host', /x$/, 30_000);
    echo.push(performance.now() - t0);
    t0 = performance.now();
    await page.keyboard.press('Backspace');
    // The VM's bash rubs the x out with "\b \b" (a space written over it), the server's
    // with an erase to the end of the line: the prompt is back either way.
    await until(page, 'host', /[$#] +$/, 30_000);
    echo.push(performance.now() - t0);
  }
  return { psMs: summarize(ps), echoMs: summarize(echo) };
}

export async function benchBrowser(opts: { quick: boolean }): Promise<BrowserResult> {
  const site = path.join(ROOT, 'dist');
  const result: BrowserResult = { lab: LAB, rows: [] };
  const cur = readCurrent(ROOT);
  if (!existsSync(path.join(site, 'index.html'))) {
    result.rows.push({ mode: 'vm', skipped: 'no dist/: run npm run build first' });
    return result;
  }
  const { chromium } = await import('playwright-core');
  const rounds = opts.quick ? 2 : 5;
  const keys = opts.quick ? 10 : 40;
  const run = async (mode: 'vm' | 'server', origin: string, lesson: string): Promise<BrowserModeResult> => {
    const profile = mkdtempSync(path.join(tmpdir(), `bench-chromium-${mode}-`));
    let ctx: BrowserContext | undefined;
    try {
      ctx = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        headless: true,
        args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
        viewport: { width: 1280, height: 900 },
      });
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      let bytes = 0;
      let counting = false;
      // Bytes on the wire, as the browser counts them once each response is read to its end
      // (response.body() here missed the VM state: the page reads it as a stream, for its
      // progress bar, and body() then fails).
      const sized: Promise<void>[] = [];
      page.on('requestfinished', (req) => {
        if (!counting) return;
        sized.push(
          req
            .sizes()
            .then((z) => {
              bytes += z.responseBodySize + z.responseHeadersSize;
            })
            .catch(() => {}),
        );
      });
      await page.goto(`${origin}${lesson}`, { waitUntil: 'networkidle' });
      counting = true;
      const startMs = await startLab(page, mode);
      counting = false;
      await Promise.all(sized);
      const tabMB = rendererPss(profile);
      const m = await measure(page, rounds, keys);
      // What the page keeps: V8 collects what the download and the restore left (the
      // compressed and the unpacked state) when it likes; here at once (DevTools protocol).
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('HeapProfiler.collectGarbage');
      await page.waitForTimeout(1000);
      const tabKeptMB = rendererPss(profile);
      let startWarmMs: number | undefined;
      if (mode === 'vm') {
        await page.reload({ waitUntil: 'networkidle' });
        startWarmMs = await startLab(page, mode);
      }
      return { mode, downloadBytes: bytes, startMs, startWarmMs, tabMB, tabKeptMB, ...m };
    } catch (err) {
      return { mode, skipped: `failed: ${(err as Error).message.split('\n')[0]}` };
    } finally {
      await ctx?.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    }
  };
  const lesson = '/03-a-container-is-a-process/';
  if ('reason' in cur) result.rows.push({ mode: 'vm', skipped: cur.reason });
  else {
    result.vmBuild = cur.manifest.hash;
    const s = await serveStatic(site);
    try {
      log('browser: the lab in the tab (static site, no server)');
      result.rows.push(await run('vm', s.origin, lesson));
    } finally {
      await s.close();
    }
  }
  log('browser: the same page on our server (a lab host)');
  const ours = await startOurs('browser', { ...benchEnv(5), CL_POOL_SIZE: '1', CL_SITE_DIR: site });
  try {
    await new Promise((r) => setTimeout(r, 3000));
    result.rows.push(await run('server', ours.base, lesson));
  } finally {
    await ours.stop();
  }
  return result;
}
