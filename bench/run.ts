/**
 * The Container Labs benchmark: `npm run bench` (node bench/run.ts). Not a test: it prints
 * figures and the targets next to them, and never fails on a figure. See bench/README.md.
 *
 *   --quick              small N everywhere (a smoke run, a minute or two)
 *   --only a,b           sections: start, class (the class burst), echo (the terminal path: echo + throughput), idle,
 *                        lighthouse (the built site in Lighthouse, mobile and desktop),
 *                        browser (a lab in the tab's VM beside our server, in Chromium)
 *   --idle N             idle sessions (default 200)
 *   --starts N           sequential starts per series (default 10)
 *   --burst N            readers starting at once (default 10)
 *   --class N            readers in the class burst (default 30)
 *   --spread S           the class's Starts spread over S seconds in its last series (default 10)
 *   --read S             seconds the class reads the lesson between page view and Start (default 15)
 *   --keys N             keystrokes per path (default 600)
 *   --size S             throughput output size for head -c (default 50M)
 *   --rounds N           interleaved rounds of the terminal path (default 3)
 *   --concurrency N      sessions started/opened/deleted at once in the idle section (default 8)
 *   --lh-runs N          Lighthouse runs per page and preset, the median reported (default 1)
 *   --lh-pages a,b       site paths for Lighthouse (default /, /03-a-container-is-a-process/, /05-cgroups/);
 *                        `lessons`: every lesson page of the built site, `all`: those and the home page
 *   --lh-presets p       Lighthouse presets: mobile, desktop or mobile,desktop (default)
 *   --lh-site DIR        Lighthouse: measure the site built in DIR (e.g. an older build to compare)
 *   --lh-build           Lighthouse: measure a fresh build of the current sources (made in
 *                        test-results/tmp/, removed after); default: dist/ as it is, built if missing
 *   --out NAME           results file name in bench/results/ (default: latest for a full run,
 *                        partial for --quick or --only)
 *
 * Results: the table on stdout and in bench/results/<name>.md, everything in <name>.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchBrowser } from './lib/browser.ts';
import { benchClass } from './lib/class.ts';
import { stopAll } from './lib/cleanup.ts';
import { engineVersion, managedContainers, removeContainers } from './lib/engine.ts';
import { benchIdle } from './lib/idle.ts';
import { benchLighthouse, DEFAULT_PAGES, type PageSet, PRESETS, type Preset } from './lib/lighthouse.ts';
import { errText, log } from './lib/log.ts';
import { machineInfo } from './lib/machine.ts';
import { INSTANCE_PREFIX } from './lib/ours.ts';
import { type BenchConfig, type Results, renderMarkdown, SECTIONS } from './lib/report.ts';
import { benchStart } from './lib/start.ts';
import { benchTerminal } from './lib/terminal.ts';

function config(): BenchConfig & { out: string } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      idle: { type: 'string' },
      starts: { type: 'string' },
      burst: { type: 'string' },
      class: { type: 'string' },
      spread: { type: 'string' },
      read: { type: 'string' },
      keys: { type: 'string' },
      size: { type: 'string' },
      rounds: { type: 'string' },
      concurrency: { type: 'string' },
      'lh-runs': { type: 'string' },
      'lh-pages': { type: 'string' },
      'lh-presets': { type: 'string' },
      'lh-build': { type: 'boolean', default: false },
      'lh-site': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: node bench/run.ts [--quick] [--only start,class,echo,idle,lighthouse] [--idle N] (see bench/README.md)\n',
    );
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, dflt: number, min = 1) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got ${v}`);
    return n;
  };
  const quick = values.quick ?? false;
  const aliases: Record<string, (typeof SECTIONS)[number]> = {
    start: 'start',
    starts: 'start',
    class: 'class',
    echo: 'echo',
    throughput: 'echo',
    terminal: 'echo',
    idle: 'idle',
    lighthouse: 'lighthouse',
    lh: 'lighthouse',
    browser: 'browser',
    vm: 'browser',
  };
  const only = values.only
    ? [
        ...new Set(
          values.only.split(',').map((s) => {
            const k = aliases[s.trim()];
            if (!k) throw new Error(`--only: unknown section "${s}" (use ${SECTIONS.join(', ')})`);
            return k;
          }),
        ),
      ]
    : [...SECTIONS];
  const size = values.size ?? (quick ? '10M' : '50M');
  if (!/^\d+[KMG]?$/.test(size)) throw new Error(`--size: expected e.g. 50M, got ${size}`);
  const partial = quick || only.length < SECTIONS.length;
  return {
    quick,
    only,
    starts: int('starts', values.starts, quick ? 3 : 10),
    burst: int('burst', values.burst, quick ? 4 : 10),
    classSize: int('class', values.class, quick ? 6 : 30),
    classSpreadMs: 1000 * int('spread', values.spread, quick ? 3 : 10),
    classReadMs: 1000 * int('read', values.read, quick ? 5 : 15, 0),
    keys: int('keys', values.keys, quick ? 100 : 600, 2),
    rounds: int('rounds', values.rounds, quick ? 1 : 3),
    size,
    idle: int('idle', values.idle, quick ? 10 : 200),
    concurrency: int('concurrency', values.concurrency, 8),
    lhRuns: int('lh-runs', values['lh-runs'], 1),
    lhBuild: values['lh-build'] ?? false,
    ...(values['lh-site'] ? { lhSite: values['lh-site'] } : {}),
    lhPages: lhPages(values['lh-pages']),
    lhPresets: lhPresets(values['lh-presets']),
    out: values.out ?? (partial ? 'partial' : 'latest'),
  };
}

/** `--lh-pages`: `lessons` (every lesson page of the site), `all` (the home page too), or paths. */
function lhPages(v: string | undefined): string[] | PageSet {
  if (v === undefined) return DEFAULT_PAGES;
  if (v === 'lessons' || v === 'all') return v;
  return v
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => (p.startsWith('/') ? p : `/${p}`));
}

/** `--lh-presets mobile`, `desktop` or both (default). */
function lhPresets(v: string | undefined): Preset[] {
  if (v === undefined) return [...PRESETS];
  const out = v.split(',').map((p) => p.trim());
  for (const p of out)
    if (!(PRESETS as readonly string[]).includes(p))
      throw new Error(`--lh-presets: unknown preset "${p}" (use ${PRESETS.join(', ')})`);
  return [...new Set(out)] as Preset[];
}

/** Numbers rounded for the JSON file; NaN/Infinity become null. */
function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null;
  return v;
}

/** Force-remove whatever lab host of this run is still there (by label); how many. */
async function removeOurLeftovers(): Promise<number> {
  const ours = (await managedContainers()).filter((c) => c.instance.startsWith(INSTANCE_PREFIX));
  if (ours.length) await removeContainers(ours.map((c) => c.id));
  return ours.length;
}

/** Lay the JSON out as the project's formatter (biome) would, so `npm run lint` stays clean. */
function formatJson(file: string): void {
  const biome = join(import.meta.dirname, '..', 'node_modules', '.bin', 'biome');
  if (!existsSync(biome)) return;
  spawnSync(biome, ['format', '--write', file], { stdio: 'ignore', cwd: join(import.meta.dirname, '..') });
}

async function main(): Promise<number> {
  const cfg = config();
  const started = performance.now();
  let interrupted = false;
  const onSignal = (sig: string) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: stopping what the bench started (again to force)`);
    void stopAll(log)
      .then(removeOurLeftovers)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  // Lighthouse alone needs no Docker engine: no engine check, no leftover check.
  const usesDocker = cfg.only.some((s) => s !== 'lighthouse');
  let engine = { docker: 'unreachable', cgroup: '?' };
  try {
    engine = await engineVersion();
  } catch (err) {
    if (usesDocker)
      log(`the Docker engine is not reachable (${errText(err)}): our server's figures will fail`);
  }
  const results: Results = { machine: machineInfo(engine.docker, engine.cgroup), config: cfg, errors: [] };
  log(
    `Container Labs bench: ${cfg.only.join(', ')}${cfg.quick ? ' (quick)' : ''}; instances ${INSTANCE_PREFIX}*`,
  );

  try {
    if (cfg.only.includes('start'))
      results.start = await benchStart({ starts: cfg.starts, burst: cfg.burst });
    if (cfg.only.includes('class'))
      results.class = await benchClass({
        n: cfg.classSize,
        spreadMs: cfg.classSpreadMs,
        readMs: cfg.classReadMs,
      });
    if (cfg.only.includes('echo')) {
      log(`terminal path: ${cfg.keys} keys and ${cfg.size} × ${cfg.rounds} per path (ours, floor, peer)`);
      results.terminal = await benchTerminal({ keys: cfg.keys, size: cfg.size, rounds: cfg.rounds });
    }
    if (cfg.only.includes('idle')) {
      results.idle = await benchIdle({
        n: cfg.idle,
        keys: Math.min(cfg.keys, 300),
        concurrency: cfg.concurrency,
      });
    }
    if (cfg.only.includes('lighthouse')) {
      log(
        `lighthouse: ${typeof cfg.lhPages === 'string' ? `${cfg.lhPages} pages` : cfg.lhPages.join(', ')} × ${cfg.lhPresets.join(', ')} × ${cfg.lhRuns} run(s)`,
      );
      // Never throws: a failed install, build or browser makes the section "skipped".
      results.lighthouse = await benchLighthouse(
        {
          runs: cfg.lhRuns,
          pages: cfg.lhPages,
          presets: cfg.lhPresets,
          build: cfg.lhBuild,
          ...(cfg.lhSite ? { site: cfg.lhSite } : {}),
        },
        log,
      ).catch((err: unknown) => ({
        skipped: `unexpected error: ${errText(err)}`,
        site: { builtNow: false },
        runsPerRow: cfg.lhRuns,
        rows: [],
        errors: [],
        seconds: 0,
      }));
    }
    if (cfg.only.includes('browser')) {
      log('browser: the in-browser VM beside our server, in Chromium');
      results.browser = await benchBrowser({ quick: cfg.quick });
    }
  } catch (err) {
    results.errors.push(errText(err));
    log(`bench failed: ${errText(err)}`);
  } finally {
    await stopAll(log);
  }

  // Nothing of ours may be left: every server removed its hosts on SIGTERM; check by label.
  if (usesDocker) {
    try {
      const managed = await managedContainers();
      const ours = managed.filter((c) => c.instance.startsWith(INSTANCE_PREFIX));
      if (ours.length) await removeContainers(ours.map((c) => c.id));
      results.leftovers = {
        ours: ours.length,
        otherManaged: managed.length - ours.length,
        removed: ours.length,
      };
      log(`left behind: ${ours.length} of this run's containers${ours.length ? ' (force-removed now)' : ''}`);
    } catch (err) {
      results.errors.push(`leftover check: ${errText(err)}`);
    }
  }

  results.durationSeconds = (performance.now() - started) / 1000;
  const md = renderMarkdown(results);
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${cfg.out}.md`), md);
  const jsonFile = join(dir, `${cfg.out}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(results, jsonReplacer, 2)}\n`);
  formatJson(jsonFile);
  process.stdout.write(`\n${md}`);
  log(`written: bench/results/${cfg.out}.md and .json`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    void stopAll(log).then(() => process.exit(1));
  },
);
