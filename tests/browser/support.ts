/**
 * Helpers for the browser tests of the labs: build the site once into its own folder,
 * start the real server on it (tests/support/server.ts, the tests' one starter), launch
 * system Chromium, and read terminals through the page's test hook (`window.__containerLabs`,
 * installed by src/lib/lab-controller.ts: a terminal's text and a simulated drop, nothing
 * about sessions). Sessions are read from the network (nextSession).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchChromium } from '../site/site.ts';
import { startServer } from '../support/server.ts';
import { scaled } from '../support/slowness.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOTS = path.join(ROOT, 'test-results', 'screenshots');
/** The site these tests run against: built here, so a concurrent `npm run build` cannot swap dist/ under them. */
export const SITE = path.join(ROOT, 'test-results', 'browser-site');

/** Builds the site into `outDir` (skip with LAB_TEST_SITE=<dir> to use a ready build). */
export function buildSite(outDir = SITE): string {
  if (process.env.LAB_TEST_SITE) return path.resolve(process.env.LAB_TEST_SITE);
  const astro = path.join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs');
  const r = spawnSync(process.execPath, [astro, 'build', '--outDir', outDir], {
    cwd: ROOT,
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`astro build failed:\n${r.stdout}\n${r.stderr}`);
  return outDir;
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

export interface LabServer {
  url: string;
  /** Everything the server printed (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * The real server serving `site` (tests/support/server.ts), with the limits a test's many
 * Starts from one address would hit raised; `env` adds to or overrides that.
 */
export async function startLabServer(site: string, env: Record<string, string> = {}): Promise<LabServer> {
  const srv = await startServer({
    CL_SITE_DIR: site,
    CL_INSTANCE: `browser-test-${process.pid}-${Date.now()}`,
    // The tests start several sessions a minute from one address.
    CL_CREATE_PER_MINUTE: '100',
    CL_MAX_SESSIONS_PER_CLIENT: '10',
    LOG_LEVEL: 'warn',
    ...env,
  });
  return {
    url: srv.base,
    log: srv.logs,
    stop: async () => {
      await srv.stop();
    },
  };
}

/** What a browser test file shares: the site it built, and one Chromium. */
export interface TestBed {
  readonly site: string;
  readonly browser: Browser;
}

/**
 * Builds the site (into `outDir`, so test files can build side by side) and launches
 * Chromium before the file's tests; closes it after them.
 */
export function useSiteAndBrowser(outDir = SITE): TestBed {
  const bed = { site: '', browser: undefined as unknown as Browser };
  before(async () => {
    bed.site = buildSite(outDir);
    bed.browser = await launchBrowser();
  });
  after(async () => {
    await bed.browser?.close();
  });
  return bed;
}

/** Whether the server can start labs (a reachable engine). */
export async function labsAvailable(server: LabServer): Promise<boolean> {
  const health = (await (await fetch(`${server.url}/api/v1/health`)).json()) as {
    labs?: { available?: boolean };
  };
  return health.labs?.available === true;
}

/** A real server for the tests of one describe block, started before them, stopped after. */
export function useLabServer(
  bed: TestBed,
  env: Record<string, string> = {},
): { server: LabServer; engine: boolean } {
  const held = { server: undefined as unknown as LabServer, engine: false };
  before(async () => {
    held.server = await startLabServer(bed.site, env);
    held.engine = await labsAvailable(held.server);
  });
  after(async () => {
    await held.server?.stop();
  });
  return held;
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
  timeout = 20_000,
): Promise<string> {
  const text = await poll(
    () => termText(page, lab, terminal),
    (t) => re.test(t),
    timeout,
    100,
  );
  if (re.test(text)) return text;
  throw new Error(`terminal ${lab}/${terminal} never matched ${re}; its text:\n${text}`);
}

/** Reads until `done` holds or `ms` pass, every `everyMs`; returns the last value read. */
export async function poll<T>(
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms: number,
  everyMs: number,
): Promise<T> {
  const deadline = Date.now() + scaled(ms);
  let v = await read();
  while (!done(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, everyMs));
    v = await read();
  }
  return v;
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

export async function waitForState(page: Page, lab: string, state: string, timeout = 30_000): Promise<void> {
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

// ---- sessions read from the network, never from the page -----------------------------

/** What POST /api/v1/sessions answered the page (the id and token tests need). */
export interface PageSession {
  id: string;
  token: string;
  lab: string;
  expiresAt: string;
  terminals: { name: string; title: string; url: string; ticket?: string }[];
}

/**
 * The next session the server creates for the page, read from the network answer to
 * POST /api/v1/sessions (page scripts have no way to the token). Call it before the click.
 */
export async function nextSession(page: Page): Promise<PageSession> {
  const res = await page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/sessions',
    { timeout: scaled(30_000) },
  );
  if (res.status() !== 201)
    throw new Error(`POST /api/v1/sessions answered ${res.status()}: ${await res.text()}`);
  return (await res.json()) as PageSession;
}

/** Runs `action` (e.g. a click on Start) and returns the session it made the page create. */
export async function sessionCreatedBy(page: Page, action: () => Promise<unknown>): Promise<PageSession> {
  const session = nextSession(page);
  await action();
  return session;
}

/** GET /api/v1/sessions/:id with the session's token: 200 while it lives, 404 once gone. */
export async function sessionStatus(server: LabServer, s: PageSession): Promise<number> {
  const res = await fetch(`${server.url}/api/v1/sessions/${s.id}`, {
    headers: { authorization: `Bearer ${s.token}` },
  });
  return res.status;
}

/** Polls sessionStatus until it is `want` (or `ms` pass); returns the last status. */
export async function pollStatus(
  server: LabServer,
  s: PageSession,
  want: number,
  ms = 15_000,
): Promise<number> {
  return poll(
    () => sessionStatus(server, s),
    (st) => st === want,
    ms,
    250,
  );
}

/** The text of a lab's status line (its aria-live region). */
export async function labStatus(page: Page, lab: string): Promise<string> {
  return (await page.locator(`[data-lab="${lab}"] [data-status]`).textContent()) ?? '';
}

/** Counts the terminal sockets a page opens (Playwright sees every WebSocket it creates). */
export function countSockets(page: Page): { opened(): number } {
  let n = 0;
  page.on('websocket', (ws) => {
    if (/\/terminals\//.test(new URL(ws.url()).pathname)) n++;
  });
  return { opened: () => n };
}

// ---- a misconfigured reverse proxy --------------------------------------------------------

export interface TestProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * A loopback reverse proxy in front of `target` that forwards requests and WebSocket
 * upgrades unchanged except for Host, which it sets to the target's own (a proxy without
 * `proxy_set_header Host $host`): the page's Origin then names the proxy, the Host the
 * server, and the server takes the terminal sockets for a foreign origin.
 */
export async function hostRewritingProxy(target: string): Promise<TestProxy> {
  const { createServer: createHttpServer, request: httpRequest } = await import('node:http');
  const { connect } = await import('node:net');
  const t = new URL(target);
  const port = Number(t.port);
  const upgraded = new Set<import('node:net').Socket>();
  const server = createHttpServer((req, res) => {
    const up = httpRequest(
      {
        host: t.hostname,
        port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: t.host },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = connect(port, t.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i]!;
        lines.push(`${name}: ${name.toLowerCase() === 'host' ? t.host : req.rawHeaders[i + 1]}`);
      }
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      up.write(head);
      socket.pipe(up).pipe(socket);
    });
    for (const s of [up, socket as import('node:net').Socket]) {
      upgraded.add(s);
      s.on('close', () => upgraded.delete(s));
    }
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of upgraded) s.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- what a page holds: timers, sockets, requests, listeners ------------------------------

/** What the page's scripts hold right now (counted by {@link watchResources}). */
export interface HeldResources {
  /** Intervals set and not cleared, with where each was set. */
  intervals: string[];
  /** Timeouts set that have neither fired nor been cleared, with where each was set. */
  timeouts: string[];
  /** WebSockets not closed yet (connecting, open or closing), by URL path. */
  sockets: string[];
  /** fetch() calls that have not settled. */
  requests: number;
  /** Listeners added and not removed, per target: window, document, or anything else. */
  listeners: { window: number; document: number; other: number };
}

declare global {
  interface Window {
    __heldResources?: () => HeldResources;
  }
}

/**
 * Wraps the page's timer, WebSocket, fetch and listener functions before any page script
 * runs, so a test can ask what the page still holds (e.g. after Stop). Test code only: the
 * site knows nothing of it.
 */
export async function watchResources(page: Page): Promise<() => Promise<HeldResources>> {
  await page.addInitScript(() => {
    const where = () =>
      (new Error().stack ?? '')
        .split('\n')
        .slice(3, 6)
        .map((l) => l.trim())
        .join(' < ');
    const timeouts = new Map<unknown, string>();
    const intervals = new Map<unknown, string>();
    const sockets = new Set<WebSocket>();
    let requests = 0;
    const listeners = new Map<EventTarget, Set<string>>();
    const keyOf = new WeakMap<object, number>();
    let nextKey = 0;
    const key = (type: string, fn: unknown, opts: unknown) => {
      if (typeof fn !== 'object' && typeof fn !== 'function') return '';
      if (!fn) return '';
      let k = keyOf.get(fn);
      if (k === undefined) {
        k = nextKey++;
        keyOf.set(fn, k);
      }
      const capture = typeof opts === 'boolean' ? opts : Boolean((opts as { capture?: boolean })?.capture);
      return `${type}/${k}/${capture}`;
    };
    const { setTimeout: st, clearTimeout: ct, setInterval: si, clearInterval: ci, fetch: f } = window;
    // A fired timeout is no longer held; an interval is until cleared.
    window.setTimeout = ((fn: TimerHandler, ms?: number, ...args: unknown[]) => {
      const run = (...a: unknown[]) => {
        timeouts.delete(id);
        if (typeof fn === 'function') fn(...a);
      };
      const id = st(run, ms, ...args);
      timeouts.set(id, where());
      return id;
    }) as typeof setTimeout;
    window.setInterval = ((fn: TimerHandler, ms?: number, ...args: unknown[]) => {
      const id = si(fn, ms, ...args);
      intervals.set(id, where());
      return id;
    }) as typeof setInterval;
    const untrack = (held: Map<unknown, string>, clear: (id?: number) => void) => (id?: number) => {
      held.delete(id);
      clear(id);
    };
    window.clearTimeout = untrack(timeouts, ct) as typeof clearTimeout;
    window.clearInterval = untrack(intervals, ci) as typeof clearInterval;
    window.fetch = (...args: Parameters<typeof fetch>) => {
      requests++;
      return f(...args).finally(() => requests--);
    };
    const add = EventTarget.prototype.addEventListener;
    const remove = EventTarget.prototype.removeEventListener;
    EventTarget.prototype.addEventListener = function (type, fn, opts) {
      const k = key(type, fn, opts);
      const once = typeof opts === 'object' && opts?.once;
      if (k && !once) {
        const set = listeners.get(this) ?? new Set<string>();
        set.add(k);
        listeners.set(this, set);
      }
      return add.call(this, type, fn, opts);
    };
    EventTarget.prototype.removeEventListener = function (type, fn, opts) {
      listeners.get(this)?.delete(key(type, fn, opts));
      return remove.call(this, type, fn, opts);
    };
    const WS = window.WebSocket;
    class CountedWebSocket extends WS {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        sockets.add(this);
        add.call(this, 'close', () => sockets.delete(this));
      }
    }
    window.WebSocket = CountedWebSocket;
    window.__heldResources = () => {
      const count = { window: 0, document: 0, other: 0 };
      for (const [target, set] of listeners) {
        const kind = target === window ? 'window' : target === document ? 'document' : 'other';
        count[kind] += set.size;
      }
      return {
        intervals: [...intervals.values()],
        timeouts: [...timeouts.values()],
        sockets: [...sockets].map((s) => new URL(s.url).pathname),
        requests,
        listeners: count,
      };
    };
  });
  return async () => {
    const held = await page.evaluate(() => window.__heldResources?.());
    if (!held) throw new Error('watchResources: the page has no counters (was it loaded after the call?)');
    return held;
  };
}

/** Opens the lesson of `lab` on `base`, presses Start lab; resolves once ready, with the session. */
export async function startLabAt(page: Page, site: string, base: string, lab: string): Promise<PageSession> {
  await page.goto(base + lessonWithLab(site, lab));
  const block = page.locator(`[data-lab="${lab}"]`);
  await block.scrollIntoViewIfNeeded();
  const s = await sessionCreatedBy(page, () => block.getByRole('button', { name: 'Start lab' }).click());
  await waitForState(page, lab, 'ready');
  return s;
}
