/**
 * Lighthouse against the built site (dist/), served statically on 127.0.0.1 by the tests' own
 * static server (tests/site/static-server.ts), in the machine's Chromium (/usr/bin/chromium).
 *
 * Lighthouse is a devDependency pinned to one exact version in package.json (its scores move
 * between versions, so a figure names the version it came from), loaded with its own
 * chrome-launcher; `npm ci` installs it, the bench installs nothing. Nothing leaves
 * the machine: Chromium's background services are off and its resolver fails every host name but
 * 127.0.0.1; the bench also lists any request that went elsewhere. Whatever goes wrong (loading,
 * browser, build) makes the section "skipped" with the reason; it never throws.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startServer } from '../../tests/support/server.ts';
import { track } from './cleanup.ts';
import { errText } from './log.ts';
import { PEER_DIR } from './peers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DIST = join(ROOT, 'dist');
/** The median run of each row, as Lighthouse's own HTML report (git-ignored, overwritten). */
export const REPORT_DIR = join(PEER_DIR, 'lighthouse');
/**
 * Where `--lh-build` builds the site, leaving dist/ as it is: the repository's git-ignored scratch
 * folder (as tests/site/temp-project.ts uses), inside the project so that the build's own chunks
 * find the project's node_modules — not under bench/.peer, whose node_modules (wetty's) would
 * shadow them. Removed after the run.
 */
const BUILD_DIR = join(ROOT, 'test-results', 'tmp', `lighthouse-site-${process.pid}`);

export const DEFAULT_PAGES = ['/', '/03-a-container-is-a-process/', '/05-cgroups/'];
/** `lessons`: every lesson page of the built site; `all`: the home page and those. */
export type PageSet = 'lessons' | 'all';

/** The lesson pages of a built site: every `<dir>/index.html` (Astro's directory format). */
export function lessonPages(siteRoot: string): string[] {
  return readdirSync(siteRoot, { withFileTypes: true })
    .filter(
      (e) => e.isDirectory() && !e.name.startsWith('_') && existsSync(join(siteRoot, e.name, 'index.html')),
    )
    .map((e) => `/${e.name}/`)
    .sort();
}
export const PRESETS = ['mobile', 'desktop'] as const;
export type Preset = (typeof PRESETS)[number];
const CATEGORIES = ['performance', 'accessibility', 'best-practices', 'seo'] as const;

export const CHROME_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  // Every host name but 127.0.0.1 fails to resolve: nothing can be fetched from the internet.
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];

/** One audit that cost points: an opportunity/insight/diagnostic (performance) or a failed check. */
export interface Finding {
  id: string;
  title: string;
  display?: string;
  /** Lighthouse's estimate of what fixing it would save, per metric (ms; CLS unitless). */
  savings?: Record<string, number>;
  savingsBytes?: number;
  /** The checks of a checklist insight that failed, e.g. "No compression applied". */
  failedChecks?: string[];
}

export interface LighthouseRow {
  path: string;
  preset: Preset;
  /** Runs made (the row is the median one by performance score). */
  runs: number;
  /** 0–100. */
  scores: { performance?: number; accessibility?: number; bestPractices?: number; seo?: number };
  perfRange?: [number, number];
  fcpMs?: number;
  lcpMs?: number;
  tbtMs?: number;
  cls?: number;
  speedIndexMs?: number;
  transferBytes?: number;
  jsBytes?: number;
  requests?: number;
  /** Requests answered ≥ 400 or failed: "path status". */
  failedRequests: string[];
  /** Requests to anything but the static server (should be none). */
  offOrigin: string[];
  /** Performance audits that did not pass, the largest estimated saving first. */
  opportunities: Finding[];
  /**
   * Where the main thread's time went while the page loaded (Lighthouse's
   * mainthread-work-breakdown, from the trace; ms with the preset's CPU slowdown), largest first.
   */
  mainThread?: Array<{ group: string; ms: number }>;
  /** The long main-thread tasks (≥ 50 ms, slowed down) and what Lighthouse attributes each to. */
  longTasks?: Array<{ ms: number; url: string }>;
  /**
   * The same trace read by CPU time instead of wall time (`tdur`): Lighthouse's TBT as it would
   * be if every main-thread task after the first contentful paint took only its own CPU time
   * (× the preset's slowdown) — what the page costs, without the time other processes on this
   * shared machine took the CPU away. And the longest task's CPU time, unslowed.
   */
  cpu?: { tbtMs: number; longestTaskMs: number };
  /** Audits failed in accessibility, best-practices, seo. */
  failing: Array<Finding & { category: string }>;
  warnings: string[];
  /** Wall time of each run, s. */
  seconds: number[];
  report?: string;
  error?: string;
}

export interface LighthouseResult {
  skipped?: string;
  lighthouse?: string;
  chrome?: string;
  /** Lighthouse's CPU benchmark of this machine (its docs: < 1000 is a slow machine). */
  benchmarkIndex?: number;
  site: {
    /** The folder measured, relative to the repository. */
    dir?: string;
    builtNow: boolean;
    buildSeconds?: number;
    builtAt?: string;
    stale?: string;
  };
  runsPerRow: number;
  rows: LighthouseRow[];
  errors: string[];
  seconds: number;
}

// ---- The minimal shape of Lighthouse's result (LH.Result) this file reads ------------------------

interface LhrAudit {
  id: string;
  title: string;
  score: number | null;
  scoreDisplayMode: string;
  numericValue?: number;
  displayValue?: string;
  metricSavings?: Record<string, number | undefined>;
  details?: {
    type?: string;
    /** A table's rows; for a checklist, `{ name: { label, value } }`. */
    items?: Array<Record<string, unknown>> | Record<string, { label?: string; value?: boolean }>;
    overallSavingsMs?: number;
    overallSavingsBytes?: number;
  };
}
interface Lhr {
  lighthouseVersion: string;
  runtimeError?: { code: string; message: string };
  runWarnings?: string[];
  environment?: { hostUserAgent?: string; benchmarkIndex?: number };
  categories: Record<string, { score: number | null; auditRefs: Array<{ id: string; group?: string }> }>;
  audits: Record<string, LhrAudit>;
}
interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { beginData?: { url?: string }; frame?: string; data?: { url?: string } };
}
interface RunnerResult {
  lhr: Lhr;
  report: string | string[];
  artifacts?: { Trace?: { traceEvents?: TraceEvent[] } };
}
type LighthouseFn = (
  url: string,
  flags: Record<string, unknown>,
  config?: unknown,
) => Promise<RunnerResult | undefined>;
interface Launched {
  port: number;
  pid: number;
  process: import('node:child_process').ChildProcess;
  kill(): unknown;
}
interface Peer {
  lighthouse: LighthouseFn;
  desktopConfig: unknown;
  launch(opts: Record<string, unknown>): Promise<Launched>;
  version: string;
}

// ---- Install, build, load --------------------------------------------------------------------------

async function runQuiet(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number | null; out: string }> {
  const proc = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    out += d;
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs);
  const stop = track(`${cmd} ${args[0] ?? ''}`, () => proc.kill('SIGTERM'));
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  void stop();
  return { code, out };
}

/** The telling part of a failed command's output: its error line, else its last lines. */
function tail(out: string): string {
  const lines = out
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('at '));
  const error = lines.find((l) => /\b(error|not found|cannot|failed|ERR!)\b/i.test(l));
  return (error ?? lines.slice(-3).join(' / ')).slice(0, 400);
}

/** Lighthouse from the project's node_modules, and chrome-launcher as Lighthouse resolves it. */
async function loadLighthouse(): Promise<Peer | string> {
  try {
    const require = createRequire(import.meta.url);
    const lhPkg = JSON.parse(readFileSync(require.resolve('lighthouse/package.json'), 'utf8')) as {
      version: string;
    };
    const lh = (await import('lighthouse')) as unknown as { default: LighthouseFn; desktopConfig: unknown };
    // Its own dependency, hoisted or nested: the version it was released with.
    const clEntry = createRequire(require.resolve('lighthouse')).resolve('chrome-launcher');
    const cl = (await import(pathToFileURL(clEntry).href)) as { launch: Peer['launch'] };
    if (typeof lh.default !== 'function' || typeof cl.launch !== 'function')
      return 'lighthouse or chrome-launcher does not export what the bench expects';
    return {
      lighthouse: lh.default,
      desktopConfig: lh.desktopConfig,
      launch: cl.launch,
      version: lhPkg.version,
    };
  } catch (err) {
    return `cannot load lighthouse (a devDependency: npm ci): ${errText(err)}`;
  }
}

/** The newest file that feeds the build (READMEs and tests do not). */
function newestMtime(dir: string): { mtime: number; file: string } {
  let best = { mtime: 0, file: '' };
  if (!existsSync(dir)) return best;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || entry.name === 'README.md' || /\.test\.ts$/.test(entry.name)) continue;
    const file = join(entry.parentPath, entry.name);
    const m = statSync(file).mtimeMs;
    if (m > best.mtime) best = { mtime: m, file };
  }
  return best;
}

async function astroBuild(outDir: string | undefined): Promise<{ seconds: number } | string> {
  const astro = join(ROOT, 'node_modules', '.bin', 'astro');
  if (!existsSync(astro)) return 'astro is not installed (npm ci first)';
  const t0 = performance.now();
  const r = await runQuiet(astro, ['build', ...(outDir ? ['--outDir', outDir] : [])], {
    cwd: ROOT,
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    timeoutMs: 600_000,
  });
  const index = join(outDir ?? DIST, 'index.html');
  if (r.code !== 0 || !existsSync(index)) return `astro build failed (exit ${r.code}): ${tail(r.out)}`;
  return { seconds: (performance.now() - t0) / 1000 };
}

/**
 * The site to measure: dist/ as it is (built with `astro build` only when it is missing), or,
 * with `fresh`, a build of the current sources into BUILD_DIR (dist/ left alone).
 */
async function ensureSite(
  log: (s: string) => void,
  fresh: boolean,
): Promise<{ root: string; site: LighthouseResult['site'] } | string> {
  const rel = (d: string) => d.slice(ROOT.length + 1);
  if (fresh) {
    log(`lighthouse: building the site into ${rel(BUILD_DIR)}/ (astro build --outDir)`);
    const b = await astroBuild(BUILD_DIR);
    track('fresh site build', () => rmSync(BUILD_DIR, { recursive: true, force: true }));
    if (typeof b === 'string') return b;
    return {
      root: BUILD_DIR,
      site: {
        dir: `${rel(BUILD_DIR)}/`,
        builtNow: true,
        buildSeconds: b.seconds,
        builtAt: statSync(join(BUILD_DIR, 'index.html')).mtime.toISOString(),
      },
    };
  }
  const index = join(DIST, 'index.html');
  if (!existsSync(index)) {
    log('lighthouse: dist/ is missing: building the site (astro build)');
    const b = await astroBuild(undefined);
    if (typeof b === 'string') return `dist/ is missing and ${b}`;
    return {
      root: DIST,
      site: {
        dir: 'dist/',
        builtNow: true,
        buildSeconds: b.seconds,
        builtAt: statSync(index).mtime.toISOString(),
      },
    };
  }
  const builtAt = statSync(index).mtimeMs;
  const sources = ['src', 'content', 'public']
    .map((d) => newestMtime(join(ROOT, d)))
    .reduce((a, b) => (b.mtime > a.mtime ? b : a));
  const stale =
    sources.mtime > builtAt + 1000
      ? `${rel(sources.file)} was modified after dist/ was built (\`npm run build\`, or \`--lh-build\` to measure a fresh build)`
      : undefined;
  return {
    root: DIST,
    site: {
      dir: 'dist/',
      builtNow: false,
      builtAt: new Date(builtAt).toISOString(),
      ...(stale ? { stale } : {}),
    },
  };
}

// ---- One Lighthouse run -----------------------------------------------------------------------------

const score100 = (s: number | null | undefined) =>
  s === null || s === undefined ? undefined : Math.round(s * 100);

function num(lhr: Lhr, id: string): number | undefined {
  const v = lhr.audits[id]?.numericValue;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function savingsOf(a: LhrAudit): Record<string, number> | undefined {
  const s = Object.entries(a.metricSavings ?? {}).filter(
    (e): e is [string, number] => typeof e[1] === 'number' && e[1] > 0,
  );
  return s.length ? Object.fromEntries(s) : undefined;
}

/** Audits that lowered the performance score, biggest estimated time saving first. */
function opportunities(lhr: Lhr): Finding[] {
  const perf = lhr.categories.performance;
  if (!perf) return [];
  const found: Array<Finding & { rank: number }> = [];
  for (const ref of perf.auditRefs) {
    if (ref.group === 'metrics') continue;
    const a = lhr.audits[ref.id];
    if (!a || a.score === null || a.score >= 0.9) continue;
    if (!['metricSavings', 'numeric', 'binary'].includes(a.scoreDisplayMode)) continue;
    const savings = savingsOf(a);
    const checks =
      a.details?.type === 'checklist' && a.details.items && !Array.isArray(a.details.items)
        ? Object.values(a.details.items)
            .filter((c) => c.value === false && c.label)
            .map((c) => c.label as string)
        : [];
    const rank =
      Math.max(savings?.LCP ?? 0, savings?.FCP ?? 0, savings?.TBT ?? 0, (savings?.CLS ?? 0) * 10_000) +
      (a.details?.overallSavingsBytes ?? 0) / 1e6;
    found.push({
      id: a.id,
      title: a.title,
      ...(a.displayValue ? { display: a.displayValue } : {}),
      ...(savings ? { savings } : {}),
      ...(a.details?.overallSavingsBytes ? { savingsBytes: a.details.overallSavingsBytes } : {}),
      ...(checks.length ? { failedChecks: checks } : {}),
      rank,
    });
  }
  return found.sort((a, b) => b.rank - a.rank).map(({ rank: _r, ...f }) => f);
}

function mainThread(lhr: Lhr): LighthouseRow['mainThread'] {
  const items = lhr.audits['mainthread-work-breakdown']?.details?.items;
  if (!Array.isArray(items)) return undefined;
  return items
    .map((i) => ({ group: String(i.groupLabel ?? i.group ?? '?'), ms: Number(i.duration) }))
    .filter((i) => Number.isFinite(i.ms))
    .sort((a, b) => b.ms - a.ms);
}

function longTasks(lhr: Lhr, origin: string): LighthouseRow['longTasks'] {
  const items = lhr.audits['long-tasks']?.details?.items;
  if (!Array.isArray(items)) return undefined;
  return items
    .map((i) => ({ ms: Number(i.duration), url: String(i.url ?? '').replace(origin, '') }))
    .filter((i) => Number.isFinite(i.ms));
}

/** The page's main-thread tasks by CPU time (see LighthouseRow.cpu); undefined if the trace lacks them. */
export function cpuFigures(
  events: readonly TraceEvent[] | undefined,
  url: string,
  slowdown: number,
): LighthouseRow['cpu'] {
  if (!events) return undefined;
  const path = new URL(url).pathname;
  // The renderer thread that parsed the page (not about:blank's, nor the browser's).
  const parse = events.find(
    (e) =>
      e.name === 'ParseHTML' && e.args?.beginData?.url && new URL(e.args.beginData.url).pathname === path,
  );
  if (!parse) return undefined;
  const fcp = events.find((e) => e.name === 'firstContentfulPaint' && e.pid === parse.pid)?.ts ?? 0;
  let tbt = 0;
  let longest = 0;
  let seen = 0;
  let end = 0;
  const tasks = events
    .filter((e) => e.pid === parse.pid && e.tid === parse.tid && e.ph === 'X' && e.name === 'RunTask')
    .sort((a, b) => a.ts - b.ts);
  for (const t of tasks) {
    if (t.ts < end || t.tdur === undefined) continue; // nested, or no thread time recorded
    end = t.ts + (t.dur ?? 0);
    seen++;
    const ms = t.tdur / 1000;
    longest = Math.max(longest, ms);
    if (t.ts >= fcp) tbt += Math.max(0, ms * slowdown - 50);
  }
  return seen > 0 ? { tbtMs: tbt, longestTaskMs: longest } : undefined;
}

function failing(lhr: Lhr): LighthouseRow['failing'] {
  const out: LighthouseRow['failing'] = [];
  for (const cat of CATEGORIES) {
    if (cat === 'performance') continue;
    for (const ref of lhr.categories[cat]?.auditRefs ?? []) {
      const a = lhr.audits[ref.id];
      if (!a || a.score === null || a.score >= 1) continue;
      if (!['binary', 'numeric', 'metricSavings'].includes(a.scoreDisplayMode)) continue;
      out.push({
        category: cat,
        id: a.id,
        title: a.title,
        ...(a.displayValue ? { display: a.displayValue } : {}),
      });
    }
  }
  return out;
}

function summarizeRun(
  lhr: Lhr,
  origin: string,
  path: string,
  preset: Preset,
  seconds: number,
): LighthouseRow {
  const c = lhr.categories;
  const items = (lhr.audits['network-requests']?.details?.items ?? []) as unknown as Array<{
    url?: string;
    transferSize?: number;
    resourceType?: string;
    statusCode?: number;
  }>;
  const local = (u: string) =>
    u.startsWith(`${origin}/`) || /^(data|blob|about|chrome|chrome-extension):/.test(u);
  return {
    path,
    preset,
    runs: 1,
    scores: {
      performance: score100(c.performance?.score),
      accessibility: score100(c.accessibility?.score),
      bestPractices: score100(c['best-practices']?.score),
      seo: score100(c.seo?.score),
    },
    fcpMs: num(lhr, 'first-contentful-paint'),
    lcpMs: num(lhr, 'largest-contentful-paint'),
    tbtMs: num(lhr, 'total-blocking-time'),
    cls: num(lhr, 'cumulative-layout-shift'),
    speedIndexMs: num(lhr, 'speed-index'),
    transferBytes: num(lhr, 'total-byte-weight'),
    jsBytes: items.filter((r) => r.resourceType === 'Script').reduce((s, r) => s + (r.transferSize ?? 0), 0),
    requests: items.length,
    failedRequests: items
      .filter((r) => r.url && (r.statusCode === undefined || r.statusCode >= 400 || r.statusCode === -1))
      .map((r) => `${(r.url as string).replace(origin, '')} ${r.statusCode ?? 'failed'}`),
    offOrigin: items.map((r) => r.url ?? '').filter((u) => u && !local(u)),
    opportunities: opportunities(lhr),
    mainThread: mainThread(lhr),
    longTasks: longTasks(lhr, origin),
    failing: failing(lhr),
    warnings: lhr.runWarnings ?? [],
    seconds: [seconds],
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function failedRow(path: string, preset: Preset, error: string): LighthouseRow {
  const none = {
    failedRequests: [],
    offOrigin: [],
    opportunities: [],
    failing: [],
    warnings: [],
    seconds: [],
  };
  return { path, preset, runs: 0, scores: {}, ...none, error };
}

const slug = (path: string) => path.replace(/^\/|\/$/g, '').replace(/[^\w.-]+/g, '_') || 'home';

// ---- The section -------------------------------------------------------------------------------------

export async function benchLighthouse(
  opts: {
    runs: number;
    pages?: string[] | PageSet;
    presets?: readonly Preset[];
    build?: boolean;
    /** A built site to measure instead of dist/ (a folder with index.html). */
    site?: string;
  },
  log: (s: string) => void,
): Promise<LighthouseResult> {
  const t0 = performance.now();
  const presets = opts.presets ?? PRESETS;
  const result: LighthouseResult = {
    site: { builtNow: false },
    runsPerRow: opts.runs,
    rows: [],
    errors: [],
    seconds: 0,
  };
  const skip = (reason: string) => {
    log(`lighthouse: skipped: ${reason}`);
    result.skipped = reason;
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  };

  const chromePath = process.env.CHROME_PATH || '/usr/bin/chromium';
  if (!existsSync(chromePath)) return skip(`no Chromium at ${chromePath} (set CHROME_PATH)`);

  const given = opts.site ? resolve(ROOT, opts.site) : undefined;
  if (given && !existsSync(join(given, 'index.html')))
    return skip(`--lh-site ${opts.site}: no index.html there`);
  const site = await (given
    ? Promise.resolve<{ root: string; site: LighthouseResult['site'] }>({
        root: given,
        site: {
          dir: `${relative(ROOT, given)}/`,
          builtNow: false,
          builtAt: statSync(join(given, 'index.html')).mtime.toISOString(),
        },
      })
    : ensureSite(log, opts.build ?? false)
  ).catch((err: unknown) => `building the site failed: ${errText(err)}`);
  if (typeof site === 'string') return skip(site);
  result.site = site.site;
  const siteRoot = site.root;
  if (site.site.stale) log(`lighthouse: note: ${site.site.stale}`);
  const wanted = opts.pages ?? DEFAULT_PAGES;
  const pages =
    wanted === 'lessons'
      ? lessonPages(siteRoot)
      : wanted === 'all'
        ? ['/', ...lessonPages(siteRoot)]
        : wanted;
  if (typeof wanted === 'string') log(`lighthouse: ${wanted}: ${pages.join(', ')}`);

  const peer = await loadLighthouse();
  if (typeof peer === 'string') return skip(peer);
  result.lighthouse = peer.version;

  // The pages as readers get them: through our own server (npm start), which compresses.
  // No warm pool: the lab blocks only ask /api/v1/health before Start.
  let server: { origin: string; url(path: string): string };
  let stopServer: () => Promise<unknown>;
  try {
    const srv = await startServer({
      CL_SITE_DIR: siteRoot,
      CL_POOL_SIZE: '0',
      CL_INSTANCE: `bench-lh-${process.pid}`,
    });
    server = { origin: srv.base, url: (p: string) => new URL(p, srv.base).href };
    stopServer = track('server (lighthouse)', () => srv.stop());
  } catch (err) {
    return skip(`server: ${errText(err)}`);
  }

  let chrome: Launched | undefined;
  let stopChrome: (() => Promise<void>) | undefined;
  const launch = async () => {
    const c = await peer.launch({
      chromePath,
      chromeFlags: CHROME_FLAGS,
      logLevel: 'silent',
      handleSIGINT: false,
    });
    chrome = c;
    stopChrome = track('chromium (lighthouse)', async () => {
      if (c.process.exitCode !== null || c.process.signalCode !== null) return;
      const exited = once(c.process, 'exit');
      c.kill();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    });
  };
  const relaunch = async () => {
    await stopChrome?.();
    chrome = undefined;
    await launch();
  };

  try {
    try {
      await launch();
    } catch (err) {
      return skip(`Chromium did not start (${chromePath}): ${errText(err)}`);
    }
    try {
      const v = (await (await fetch(`http://127.0.0.1:${chrome?.port}/json/version`)).json()) as {
        Browser?: string;
      };
      result.chrome = v.Browser?.replace(/^\w+\//, '');
    } catch {}
    mkdirSync(REPORT_DIR, { recursive: true });
    const present = pages.filter((p) =>
      existsSync(join(siteRoot, p.replace(/^\//, ''), p.endsWith('/') ? 'index.html' : '')),
    );
    const total = present.length * presets.length * opts.runs;
    let done = 0;
    for (const preset of presets) {
      for (const path of pages) {
        const row: LighthouseRow[] = [];
        const url = server.url(path);
        let lastError: string | undefined;
        const file = join(siteRoot, path.replace(/^\//, ''), path.endsWith('/') ? 'index.html' : '');
        if (!existsSync(file)) {
          result.rows.push(failedRow(path, preset, `not in the built site (${file.slice(ROOT.length + 1)})`));
          continue;
        }
        const reports: string[] = [];
        for (let i = 0; i < opts.runs; i++) {
          done++;
          const t = performance.now();
          try {
            if (!chrome) await launch();
            const flags = {
              port: chrome?.port,
              output: 'html',
              logLevel: 'error',
              onlyCategories: [...CATEGORIES],
              disableFullPageScreenshot: true,
            };
            const rr = await withTimeout(
              peer.lighthouse(url, flags, preset === 'desktop' ? peer.desktopConfig : undefined),
              240_000,
              `lighthouse ${path} ${preset}`,
            );
            const secs = (performance.now() - t) / 1000;
            if (!rr) throw new Error('lighthouse returned nothing');
            if (rr.lhr.runtimeError)
              throw new Error(`${rr.lhr.runtimeError.code}: ${rr.lhr.runtimeError.message}`);
            result.benchmarkIndex ??= rr.lhr.environment?.benchmarkIndex;
            const summary = summarizeRun(rr.lhr, server.origin, path, preset, secs);
            // Lighthouse's presets: 4× CPU slowdown on mobile, none on desktop.
            const cpu = cpuFigures(rr.artifacts?.Trace?.traceEvents, url, preset === 'mobile' ? 4 : 1);
            row.push(cpu ? { ...summary, cpu } : summary);
            reports.push(Array.isArray(rr.report) ? (rr.report[0] ?? '') : rr.report);
            log(
              `lighthouse ${done}/${total}: ${path} ${preset}: performance ${row.at(-1)?.scores.performance ?? '–'} (${secs.toFixed(1)} s)`,
            );
          } catch (err) {
            lastError = errText(err);
            log(`lighthouse ${done}/${total}: ${path} ${preset}: failed: ${lastError}`);
            // A hung or crashed browser: start a fresh one for the next run.
            await relaunch().catch((e: unknown) => {
              result.errors.push(`relaunching Chromium: ${errText(e)}`);
            });
          }
        }
        if (!row.length) {
          result.rows.push(failedRow(path, preset, lastError ?? 'no run succeeded'));
          continue;
        }
        // The median run by performance score stands for the row.
        const order = row
          .map((r, i) => ({ r, i }))
          .sort((a, b) => (a.r.scores.performance ?? 0) - (b.r.scores.performance ?? 0));
        const mid = order[Math.floor((order.length - 1) / 2)] as { r: LighthouseRow; i: number };
        const perfs = row.map((r) => r.scores.performance ?? 0);
        const chosen: LighthouseRow = {
          ...mid.r,
          runs: row.length,
          seconds: row.flatMap((r) => r.seconds),
          ...(row.length > 1
            ? { perfRange: [Math.min(...perfs), Math.max(...perfs)] as [number, number] }
            : {}),
          ...(row.length < opts.runs
            ? { error: `${opts.runs - row.length} run(s) failed: ${lastError}` }
            : {}),
        };
        const bestReport = reports[mid.i];
        if (bestReport) {
          const name = `${slug(path)}-${preset}.html`;
          writeFileSync(join(REPORT_DIR, name), bestReport);
          chosen.report = `bench/.peer/lighthouse/${name}`;
        }
        result.rows.push(chosen);
      }
    }
  } catch (err) {
    result.errors.push(errText(err));
  } finally {
    await stopChrome?.();
    await stopServer();
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
