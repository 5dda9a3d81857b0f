/**
 * Helpers for the browser tests of the labs: build the site once into its own folder,
 * start the real server (`node server/src/main.ts`) on a free port, launch system
 * Chromium, and read terminals through the page's test hook (`window.__containerLabs`,
 * installed by src/lib/lab-controller.ts).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchChromium } from '../site/site.ts';
import { scaled } from '../support/slowness.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOTS = path.join(ROOT, 'test-results', 'screenshots');
/** The site these tests run against: built here, so a concurrent `npm run build` cannot swap dist/ under them. */
export const SITE = path.join(ROOT, 'test-results', 'browser-site');

/** Builds the site into SITE (skip with LAB_TEST_SITE=<dir> to use a ready build). */
export function buildSite(): string {
  if (process.env.LAB_TEST_SITE) return path.resolve(process.env.LAB_TEST_SITE);
  const astro = path.join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs');
  const r = spawnSync(process.execPath, [astro, 'build', '--outDir', SITE], {
    cwd: ROOT,
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`astro build failed:\n${r.stdout}\n${r.stderr}`);
  return SITE;
}

/** Site path of the first lesson with `<Lab id=labId>` and at least one Run block for it. */
export function lessonWithLab(site: string, labId: string): string {
  const candidates: string[] = [];
  for (const dir of readdirSync(site, { withFileTypes: true })) {
    const file = path.join(site, dir.name, 'index.html');
    if (!dir.isDirectory() || !existsSync(file)) continue;
    const html = readFileSync(file, 'utf8');
    if (html.includes(`data-lab="${labId}"`)) {
      if (html.includes('class="run-block"')) return `/${dir.name}/`;
      candidates.push(`/${dir.name}/`);
    }
  }
  if (candidates[0]) return candidates[0];
  throw new Error(`no lesson in ${site} has <Lab id="${labId}" />`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface LabServer {
  url: string;
  /** Everything the server printed (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** Starts the real server as a child process and waits for /api/v1/health. */
export async function startLabServer(site: string, env: Record<string, string> = {}): Promise<LabServer> {
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(process.execPath, ['server/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      CL_SITE_DIR: site,
      CL_INSTANCE: `browser-test-${port}`,
      CL_DRAIN_GRACE: '0',
      // The tests start several sessions a minute from one address.
      CL_CREATE_PER_MINUTE: '100',
      CL_MAX_SESSIONS_PER_CLIENT: '10',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  const deadline = Date.now() + scaled(30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${url}/api/v1/health`);
      if (res.status === 200 || res.status === 503) return { url, log: () => output, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`the server did not answer /api/v1/health within ${scaled(30_000) / 1000} s:\n${output}`);
}

/** System Chromium with the project's flags (one definition: tests/site/site.ts). */
export function launchBrowser(): Promise<Browser> {
  return launchChromium();
}

/** The text of one terminal of a lab (scrollback included, wrapped lines joined). */
export function termText(page: Page, lab: string, terminal: string): Promise<string> {
  return page.evaluate(([l, t]) => window.__containerLabs?.text(l!, t!) ?? '', [lab, terminal]);
}

/** Waits until the terminal's text matches (polls the page). */
export async function waitForText(
  page: Page,
  lab: string,
  terminal: string,
  re: RegExp,
  timeout = scaled(20_000),
): Promise<string> {
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = await termText(page, lab, terminal);
    if (re.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal ${lab}/${terminal} never matched ${re}; its text:\n${text}`);
}

/** A shell prompt at the very end of the terminal. */
export const PROMPT_AT_END = /[$#] $/;

export function waitForPrompt(page: Page, lab: string, terminal: string, timeout?: number): Promise<string> {
  return waitForText(page, lab, terminal, PROMPT_AT_END, timeout);
}

/** Types into a terminal like a reader: click it, then keystrokes. */
export async function typeIn(page: Page, lab: string, terminal: string, keys: string): Promise<void> {
  await page.locator(`[data-lab="${lab}"] [data-terminal="${terminal}"] .xterm`).click();
  await page.keyboard.type(keys, { delay: 5 });
}

/** Runs a command and returns the terminal text once the prompt is back. */
export async function runIn(page: Page, lab: string, terminal: string, command: string): Promise<string> {
  await typeIn(page, lab, terminal, `${command}\n`);
  const escaped = command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return waitForText(page, lab, terminal, new RegExp(`${escaped}\\n[\\s\\S]*[$#] $`));
}

export function labState(page: Page, lab: string): Promise<string | undefined> {
  return page.evaluate((l) => document.querySelector<HTMLElement>(`[data-lab="${l}"]`)?.dataset.state, lab);
}

export async function waitForState(
  page: Page,
  lab: string,
  state: string,
  timeout = scaled(30_000),
): Promise<void> {
  await page.waitForFunction(
    ([l, s]) => document.querySelector<HTMLElement>(`[data-lab="${l}"]`)?.dataset.state === s,
    [lab, state],
    { timeout },
  );
}

export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return path.join(SCREENSHOTS, `${name}.png`);
}

/**
 * Screenshot of one element with a little margin, cut from a full-page capture so
 * Starlight's fixed header never covers it (an element screenshot would show the header
 * over a tall block on a phone).
 */
export async function shootElement(page: Page, el: Locator, name: string, margin = 12): Promise<string> {
  const box = await el.boundingBox();
  if (!box) throw new Error(`${name}: element not visible`);
  const { scrollX, scrollY, width } = await page.evaluate(() => ({
    scrollX: window.scrollX,
    scrollY: window.scrollY,
    width: document.documentElement.clientWidth,
  }));
  const x = Math.max(0, box.x + scrollX - margin);
  const file = screenshotPath(name);
  await page.screenshot({
    path: file,
    fullPage: true,
    clip: {
      x,
      y: Math.max(0, box.y + scrollY - margin),
      width: Math.min(width - x, box.width + 2 * margin),
      height: box.height + 2 * margin,
    },
  });
  return file;
}
