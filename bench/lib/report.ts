/** The Markdown report (bench/results/latest.md) built from the results object. */

import type { Summary } from '../../tests/support/stats.ts';
import type { BrowserResult } from './browser.ts';
import type { ClassResult, ClassSeries } from './class.ts';
import type { IdleResult, MemorySnapshot } from './idle.ts';
import type { Finding, LighthouseResult, LighthouseRow } from './lighthouse.ts';
import type { MachineInfo } from './machine.ts';
import type { StartResult, StartSeries } from './start.ts';
import { atLeast, atMost, mark, TARGETS } from './targets.ts';
import type { PathResult, TerminalResult } from './terminal.ts';
import { fmt } from './util.ts';

/** The sections of a full run, in order (`--only` picks some). */
export const SECTIONS = ['start', 'class', 'echo', 'idle', 'lighthouse', 'browser'] as const;

export interface BenchConfig {
  quick: boolean;
  only: string[];
  starts: number;
  burst: number;
  /** Readers in the class burst, their Starts' spread (ms) in the spread series, reading time (ms). */
  classSize: number;
  classSpreadMs: number;
  classReadMs: number;
  keys: number;
  rounds: number;
  size: string;
  idle: number;
  concurrency: number;
  /** Lighthouse runs per page and preset (the median one is reported). */
  lhRuns: number;
  /** Paths, or `lessons` / `all` (found in the built site). */
  lhPages: string[] | 'lessons' | 'all';
  lhPresets: readonly ('mobile' | 'desktop')[];
  /** Lighthouse measured a fresh build (in test-results/tmp/) instead of dist/. */
  lhBuild: boolean;
  /** Lighthouse measured this built site instead of dist/ (`--lh-site`). */
  lhSite?: string;
}

export interface Results {
  machine: MachineInfo;
  config: BenchConfig;
  durationSeconds?: number;
  start?: StartResult;
  class?: ClassResult;
  terminal?: TerminalResult;
  idle?: IdleResult;
  lighthouse?: LighthouseResult;
  browser?: BrowserResult;
  leftovers?: { ours: number; otherManaged: number; removed: number };
  errors: string[];
}

const MBf = (bytes: number, digits = 1) => fmt(bytes / 1e6, digits);

function startRow(s: StartSeries | undefined, name: string, target: string, ok: boolean | undefined): string {
  if (!s) return `| ${name} | – | – | – | ${target} | not run |`;
  const n = `${s.phases.length}${s.errors.length ? `, ${s.errors.length} failed` : ''}`;
  const hits = s.poolHits ? `; pool hits ${s.poolHits.pooled}/${s.poolHits.pooled + s.poolHits.cold}` : '';
  return `| ${name} (n=${n}${hits}) | ${fmt(s.total.p50, 0)} | ${fmt(s.total.p95, 0)} | ${fmt(s.total.max, 0)} | ${target} | ${mark(ok)} |`;
}

function phaseRow(s: StartSeries | undefined, name: string): string {
  if (!s) return `| ${name} | – | – | – | – | – | – | – |`;
  const m = s.medians;
  return `| ${name} | ${fmt(m.post, 0)} | ${fmt(m.upgrade, 0)} | ${fmt(m.attach, 0)} | ${fmt(m.firstByte, 0)} | ${fmt(m.prompt, 0)} | ${fmt(m.total, 0)} | ${fmt(s.deleteMs.p50, 0)} |`;
}

function startSection(r: StartResult): string[] {
  const out: string[] = [];
  const pool = r.warmPool
    ? `The warm server's /api/v1/admin/status reports a pool (size ${r.warmPool.size})`
    : 'The warm server\'s /api/v1/admin/status reports **no pool**: CL_POOL_SIZE is ignored, so "warm" is a second cold series';
  out.push('## Start → first prompt');
  out.push('');
  out.push(
    `Time from \`POST /api/v1/sessions\` to the \`reader@labhost…$ \` prompt on the \`host\` terminal's WebSocket (lab \`processes\`). ${pool}. Each start is followed by its DELETE (not timed in the start); warm starts wait until the pool has refilled first, as a reader arriving a little later would.`,
  );
  out.push('');
  out.push('| figure | p50 ms | p95 ms | max ms | target | met |');
  out.push('|---|---:|---:|---:|---|:-:|');
  out.push(
    startRow(
      r.cold,
      'cold, `CL_POOL_SIZE=0`, sequential',
      `p50 ≤ ${TARGETS.coldP50}`,
      atMost(r.cold?.total.p50, TARGETS.coldP50),
    ),
  );
  const w = r.warm;
  const warmOk =
    w && Number.isFinite(w.total.p50)
      ? w.total.p50 <= TARGETS.warmP50 && w.total.p95 <= TARGETS.warmP95
      : undefined;
  out.push(
    startRow(
      w,
      'warm, `CL_POOL_SIZE=2`, sequential',
      `p50 ≤ ${TARGETS.warmP50}, p95 ≤ ${TARGETS.warmP95}`,
      warmOk,
    ),
  );
  out.push(startRow(r.burstCold, 'readers at once, cold', '–', undefined));
  out.push(startRow(r.burstWarm, 'readers at once, `CL_POOL_SIZE=2`', '–', undefined));
  out.push('');
  out.push('Where the time goes (medians, ms):');
  out.push('');
  out.push('| series | POST → 201 | → WS open | → `attached` | → first byte | → prompt | total | DELETE |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  out.push(phaseRow(r.cold, 'cold'));
  out.push(phaseRow(r.warm, 'warm'));
  out.push(phaseRow(r.burstCold, 'at once, cold'));
  out.push(phaseRow(r.burstWarm, 'at once, pool 2'));
  out.push('');
  const f = r.firstStartMs;
  out.push(
    `First start after each server came up (not in the series): cold ${fmt(f.cold, 0)} ms, warm ${fmt(f.warm, 0)} ms.`,
  );
  for (const e of [...r.errors, ...(r.cold?.errors ?? []), ...(r.warm?.errors ?? [])])
    out.push(`- error: ${e}`);
  out.push('');
  return out;
}

function classRow(s: ClassSeries, ok: boolean | undefined): string {
  const served = s.phases.length === s.n ? `${s.n}` : `${s.phases.length} of ${s.n}`;
  const hits = `${s.poolHits.pooled}/${s.poolHits.pooled + s.poolHits.cold}`;
  return `| ${s.label} | ${served} | ${fmt(s.total.p50, 0)} | ${fmt(s.total.p95, 0)} | ${fmt(s.total.max, 0)} | ${hits} | ${s.poolBefore ?? '–'} | ${mark(ok)} |`;
}

function classSection(r: ClassResult): string[] {
  const out: string[] = [];
  out.push(`## A class at once (${r.n} readers)`);
  out.push('');
  out.push(
    `One server with its default pool settings (per-client limits raised: the bench is one loopback client playing every reader; \`CL_MAX_SESSIONS\` ${r.n * 2 + 10}). Start → prompt as above, per reader. "After page views": each reader's lesson page first sent its lab's hint (\`POST /api/v1/labs/:id/hint\`, as the page does when the lab comes into view), then the class read for ${fmt(r.readMs / 1000, 0)} s before pressing Start. Target: p95 ≤ ${TARGETS.classP95} ms within one second, every reader served.`,
  );
  out.push('');
  out.push('| series | served | p50 ms | p95 ms | max ms | pool hits | ready before | p95 met |');
  out.push('|---|---:|---:|---:|---:|---:|---:|:-:|');
  for (const s of r.series) {
    const atOnce = s.label.startsWith('at once');
    const ok = atOnce ? (s.phases.length === s.n ? atMost(s.total.p95, TARGETS.classP95) : false) : undefined;
    out.push(classRow(s, ok));
  }
  out.push('');
  out.push(
    'Where the time went (medians, ms; the server columns are its own account of each Start, from its log):',
  );
  out.push('');
  const serverKeys = [...new Set(r.series.flatMap((s) => Object.keys(s.server ?? {})))].filter(
    (k) => k !== 'ms',
  );
  out.push(
    `| series | POST → 201 | → WS open | → \`attached\` | → first byte | → prompt | total |${serverKeys.map((k) => ` server ${k} |`).join('')}`,
  );
  out.push(`|---|---:|---:|---:|---:|---:|---:|${serverKeys.map(() => '---:|').join('')}`);
  for (const s of r.series) {
    const m = s.medians;
    out.push(
      `| ${s.label} | ${fmt(m.post, 0)} | ${fmt(m.upgrade, 0)} | ${fmt(m.attach, 0)} | ${fmt(m.firstByte, 0)} | ${fmt(m.prompt, 0)} | ${fmt(m.total, 0)} |${serverKeys.map((k) => ` ${fmt(s.server?.[k], 0)} |`).join('')}`,
    );
  }
  out.push('');
  const f = r.floor;
  out.push(
    `Floor (node-pty + ws, bench/floor-server.ts), connect → prompt: p50 ${fmt(f?.p50, 0)} ms, p95 ${fmt(f?.p95, 0)} ms (n=${f?.n ?? 0}); a warm start's target is within ${TARGETS.warmVsFloor}× of it.`,
  );
  for (const s of r.series) {
    if (s.hints)
      out.push(
        `- ${s.label}: ${s.hints.sent} page views, answered ${Object.entries(s.hints.answers)
          .map(([k, v]) => `${k} ×${v}`)
          .join(', ')}.`,
      );
    for (const e of s.errors.slice(0, 5)) out.push(`- ${s.label}: error: ${e}`);
    if (s.errors.length > 5) out.push(`- ${s.label}: … ${s.errors.length - 5} more errors`);
  }
  for (const e of r.errors) out.push(`- error: ${e}`);
  out.push('');
  return out;
}

function cpuText(p: PathResult): string {
  if (!p.cpuPer100MB) return '–';
  const c = p.cpuPer100MB;
  const parts = Object.entries(c)
    .filter(([k]) => k !== 'bench client' && k !== 'lab host throttled')
    .map(([k, v]) => `${k} ${fmt(v, 2)}`);
  if (c['lab host throttled'] !== undefined)
    parts.push(`(lab host CFS-throttled ${fmt(c['lab host throttled'], 2)} s)`);
  return parts.join(', ');
}

function pathRow(p: PathResult, isOurs: boolean, floorMBps?: number): string {
  if (p.skipped) return `| ${p.name} | skipped: ${p.skipped} | | | | | | |`;
  const tp = p.throughput;
  const echoOk = isOurs
    ? mark(
        p.echo && Number.isFinite(p.echo.p50)
          ? p.echo.p50 <= TARGETS.echoP50 && p.echo.p99 <= TARGETS.echoP99
          : undefined,
      )
    : '';
  const tpOk = isOurs
    ? mark(
        tp
          ? tp.medianMBps >= TARGETS.throughputMBps &&
              (floorMBps === undefined || tp.medianMBps >= TARGETS.throughputVsFloor * floorMBps)
          : undefined,
      )
    : '';
  const range = tp && tp.runs.length > 1 ? ` (${fmt(tp.minMBps, 1)}–${fmt(tp.maxMBps, 1)})` : '';
  return `| ${p.name} | ${fmt(p.echo?.p50, 2)} | ${fmt(p.echo?.p99, 2)} | ${echoOk} | ${fmt(tp?.medianMBps, 1)}${range} | ${tpOk} | ${tp ? fmt(tp.frameBytes / 1024, 1) : '–'} | ${cpuText(p)} |`;
}

function terminalSection(t: TerminalResult, cfg: BenchConfig): string[] {
  const out: string[] = [];
  out.push('## Terminal path: keystroke echo and output throughput');
  out.push('');
  out.push(
    `Echo: type one key (alternately \`x\` and DEL), time until the shell's answer reaches the client; ${t.ours.echo?.n ?? cfg.keys} keys per path in ${cfg.rounds} interleaved round(s), 5 ms between keys. Throughput: \`head -c ${cfg.size} /dev/zero | base64\` in the shell, bytes counted at the client from Enter to the end marker (MB = 10⁶ bytes), median of ${cfg.rounds} run(s). CPU: seconds of CPU per 100 MB of output, per process (median); the client's own CPU is left out.`,
  );
  out.push('');
  out.push(
    `Targets for ours: echo p50 ≤ ${TARGETS.echoP50} ms and p99 ≤ ${TARGETS.echoP99} ms; throughput ≥ ${TARGETS.throughputMBps} MB/s and ≥ ${TARGETS.throughputVsFloor}× the floor.`,
  );
  out.push('');
  out.push(
    '| path | echo p50 ms | echo p99 ms | echo met | MB/s (min–max) | MB/s met | KiB / frame | CPU s / 100 MB |',
  );
  out.push('|---|---:|---:|:-:|---:|:-:|---:|---|');
  out.push(pathRow(t.ours, true, t.floor.throughput?.medianMBps));
  out.push(pathRow(t.floor, false));
  out.push(pathRow(t.peer, false));
  const r = t.ratios;
  out.push(
    `| **ours / floor** | ${fmt(r.oursFloor.echoP50, 2)}× | ${fmt(r.oursFloor.echoP99, 2)}× | | ${fmt(r.oursFloor.throughput, 2)}× | ${mark(atLeast(r.oursFloor.throughput, TARGETS.throughputVsFloor))} | | |`,
  );
  out.push(
    `| **ours / peer** | ${fmt(r.oursPeer.echoP50, 2)}× | ${fmt(r.oursPeer.echoP99, 2)}× | | ${fmt(r.oursPeer.throughput, 2)}× | | | |`,
  );
  out.push('');
  for (const p of [t.ours, t.floor, t.peer]) {
    out.push(`- ${p.name}: ${p.description}.`);
    for (const e of p.errors) out.push(`  - error: ${e}`);
  }
  out.push('');
  return out;
}

function per(snap: MemorySnapshot | undefined, pick: (s: MemorySnapshot) => number): number | undefined {
  return snap && snap.n > 0 ? pick(snap) / snap.n : undefined;
}

function idleSection(r: IdleResult): string[] {
  const out: string[] = [];
  const b = r.baseline;
  const bare = r.bare;
  const sh = r.withShells;
  const engine = (s: MemorySnapshot) => s.containers.workingSet + s.shims.pss;
  const hostDelta = (s: MemorySnapshot) => s.hostUsed - b.hostUsed - (s.benchRss - b.benchRss);
  out.push(`## Concurrent idle sessions (N = ${r.started} of ${r.requested} requested)`);
  out.push('');
  out.push(
    'N sessions started (bounded concurrency), measured as bare lab hosts, then again with each one\'s `host` shell open (a WebSocket kept open by the bench: a reader with the lesson open). "Engine-side" = the lab host\'s memory cgroup (usage − inactive file, as `docker stats`) + its containerd-shim (PSS). "Host" = change of MemTotal − MemAvailable since before the first start, less the bench client\'s own growth, divided by N: everything, kernel and dockerd included, but other work on this shared machine moves it too.',
  );
  out.push('');
  out.push('| figure | bare lab hosts | with a shell open each | target | met |');
  out.push('|---|---:|---:|---|:-:|');
  const mbRow = (name: string, f: (s: MemorySnapshot) => number, target = '', ok?: boolean) =>
    `| ${name} | ${MBf(per(bare, f) ?? Number.NaN, 2)} | ${MBf(per(sh, f) ?? Number.NaN, 2)} | ${target} | ${target ? mark(ok) : ''} |`;
  const eng = per(sh, engine);
  out.push(
    mbRow(
      'engine-side MB per session',
      engine,
      `≤ ${TARGETS.idleMBPerSession} MB`,
      atMost(eng === undefined ? undefined : eng / 1e6, TARGETS.idleMBPerSession),
    ),
  );
  out.push(mbRow('— lab host cgroup, MB (usage − inactive file)', (s) => s.containers.workingSet));
  out.push(mbRow('— of which anonymous (rss), MB', (s) => s.containers.rss));
  out.push(mbRow('— containerd-shim PSS, MB', (s) => s.shims.pss));
  out.push(mbRow("host MB per session (MemAvailable delta, less the bench client's growth, / N)", hostDelta));
  out.push(
    mbRow(
      'dockerd + containerd growth, MB per session',
      (s) => s.dockerdRss - b.dockerdRss + s.containerdRss - b.containerdRss,
    ),
  );
  out.push(
    `| our server RSS, MB (before: ${MBf(b.serverRss, 0)}) | ${MBf(bare?.serverRss ?? Number.NaN, 0)} | ${MBf(sh?.serverRss ?? Number.NaN, 0)} | | |`,
  );
  const e = r.activeEcho;
  out.push(
    `| echo of 1 active session, p50 / p99 ms | | ${fmt(e?.p50, 2)} / ${fmt(e?.p99, 2)} | p99 ≤ ${TARGETS.idleEchoP99} | ${mark(atMost(e?.p99, TARGETS.idleEchoP99))} |`,
  );
  out.push('');
  const rate = r.started && r.createSeconds ? r.started / r.createSeconds : Number.NaN;
  out.push(
    `- Started ${r.started} in ${fmt(r.createSeconds, 1)} s (${fmt(rate, 1)}/s; POST p50 ${fmt(r.postMs?.p50, 0)} ms, p95 ${fmt(r.postMs?.p95, 0)} ms); opened ${r.shellsOpen} shells in ${fmt(r.openSeconds, 1)} s; DELETE of all in ${fmt(r.deleteSeconds, 1)} s (p50 ${fmt(r.deleteMs?.p50, 0)} ms each). Left behind: ${r.leftAfter}.`,
  );
  if (r.broke) out.push(`- **Broke at N = ${r.broke.at}**: ${r.broke.error}`);
  for (const err of r.errors) out.push(`- error: ${err}`);
  out.push('');
  return out;
}

const KiB = (bytes: number | undefined) => (bytes === undefined ? '–' : fmt(bytes / 1024, 0));

/** Lighthouse's estimate of what fixing an audit saves, e.g. `LCP −450 ms, FCP −450 ms, 26 KiB`. */
function savingText(f: Finding): string {
  const s = f.savings ?? {};
  const parts = (['LCP', 'FCP', 'TBT'] as const)
    .filter((k) => (s[k] ?? 0) >= 10)
    .map((k) => `${k} −${fmt(s[k], 0)} ms`);
  if ((s.CLS ?? 0) > 0) parts.push(`CLS −${fmt(s.CLS, 3)}`);
  if (f.savingsBytes) parts.push(`${KiB(f.savingsBytes)} KiB`);
  const checks = f.failedChecks ?? [];
  if (!parts.length && f.display) parts.push(f.display.replace(/^Est savings of /, ''));
  return [...checks, ...parts].join(', ');
}

function lhRow(r: LighthouseRow): string {
  if (r.error && !r.runs)
    return `| \`${r.path}\` | ${r.preset} | error: ${r.error} | | | | | | | | | | | | |`;
  const s = r.scores;
  const perf = `${s.performance ?? '–'}${r.perfRange ? ` (${r.perfRange[0]}–${r.perfRange[1]})` : ''}`;
  const secs = r.seconds.length ? r.seconds.reduce((a, b) => a + b, 0) / r.seconds.length : Number.NaN;
  return `| \`${r.path}\` | ${r.preset} | ${perf} | ${mark(atLeast(s.performance, TARGETS.lighthousePerf))} | ${fmt(r.fcpMs, 0)} | ${fmt(r.lcpMs, 0)} | ${fmt(r.tbtMs, 0)} | ${fmt(r.cls, 3)} | ${KiB(r.transferBytes)} | ${KiB(r.jsBytes)} | ${r.requests ?? '–'} | ${s.accessibility ?? '–'} | ${s.bestPractices ?? '–'} | ${s.seo ?? '–'} | ${fmt(secs, 1)} |`;
}

function lighthouseSection(l: LighthouseResult): string[] {
  const out: string[] = [];
  out.push('## Lighthouse: the built site, served by our server');
  out.push('');
  if (l.skipped) {
    out.push(`Skipped: ${l.skipped}`);
    out.push('');
    return out;
  }
  const site = l.site.builtNow
    ? `built for this run, \`astro build\` ${fmt(l.site.buildSeconds, 0)} s`
    : `built ${l.site.builtAt ?? '?'}${l.site.stale ? ` — **may be stale**: ${l.site.stale}` : ''}`;
  out.push(
    `Lighthouse ${l.lighthouse ?? '?'} (Node API) in headless Chromium ${l.chrome ?? '?'} (Lighthouse's CPU benchmark index here: ${fmt(l.benchmarkIndex, 0)}), against \`${l.site.dir ?? 'dist/'}\` (${site}) served by our server (\`server/src/main.ts\`, as \`npm start\` serves readers: gzip/brotli) on 127.0.0.1. **mobile** is Lighthouse's default (emulated Moto G Power, simulated slow 4G: 150 ms RTT, 1.6 Mbps, 4× CPU slowdown); **desktop** its desktop preset (40 ms RTT, 10 Mbps, no CPU slowdown). Throttling is simulated from one unthrottled load, so the machine's load moves the figures less than it moves wall times. ${l.runsPerRow} run(s) per row${l.runsPerRow > 1 ? ', the median by performance score shown with the range' : ''}. Chromium resolves no host but 127.0.0.1: nothing is fetched from the internet.`,
  );
  out.push('');
  out.push(`Target: performance ≥ ${TARGETS.lighthousePerf} on every page, both presets.`);
  out.push('');
  out.push(
    '| page | preset | performance | met | FCP ms | LCP ms | TBT ms | CLS | transfer KiB | JS KiB | requests | a11y | best pr. | SEO | s / run |',
  );
  out.push('|---|---|---:|:-:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of l.rows) out.push(lhRow(r));
  out.push('');
  const secs = l.rows.flatMap((r) => r.seconds);
  out.push(
    `${secs.length} Lighthouse runs took ${fmt(
      secs.reduce((a, b) => a + b, 0),
      0,
    )} s; the section ${fmt(l.seconds, 0)} s. Transfer = every byte the page loaded (Lighthouse's total byte weight); JS = scripts' transfer size. Full reports of the rows: \`bench/.peer/lighthouse/<page>-<preset>.html\` (git-ignored, overwritten).`,
  );
  out.push('');

  out.push(
    'What lowered the performance score (performance audits not passed, largest estimated saving first):',
  );
  out.push('');
  for (const r of l.rows) {
    if (!r.runs) continue;
    const top = r.opportunities.slice(0, 4);
    out.push(
      `- \`${r.path}\` ${r.preset} (${r.scores.performance ?? '–'}): ${
        top.length
          ? top.map((f) => `${f.title}${savingText(f) ? ` (${savingText(f)})` : ''}`).join('; ')
          : 'nothing flagged'
      }`,
    );
  }
  out.push('');

  out.push(
    "Where the main thread's time went during the load (Lighthouse's main-thread work breakdown from the trace, ms with the preset's CPU slowdown; then the long tasks, ≥ 50 ms):",
  );
  out.push('');
  for (const r of l.rows) {
    if (!r.runs || !r.mainThread) continue;
    const groups = r.mainThread.map((g) => `${g.group} ${fmt(g.ms, 0)}`).join(', ');
    const tasks = (r.longTasks ?? []).map((t) => `${fmt(t.ms, 0)}${t.url ? ` (${t.url})` : ''}`).join(', ');
    const cpu = r.cpu
      ? `; by CPU time: TBT ${fmt(r.cpu.tbtMs, 0)} ms, longest task ${fmt(r.cpu.longestTaskMs, 1)} ms unslowed`
      : '';
    out.push(
      `- \`${r.path}\` ${r.preset} (TBT ${fmt(r.tbtMs, 0)} ms${cpu}): ${groups}; long tasks: ${tasks || 'none'}`,
    );
  }
  out.push('');

  const failing = new Map<string, { f: Finding & { category: string }; where: string[] }>();
  for (const r of l.rows)
    for (const f of r.failing) {
      const k = `${f.category} ${f.id}`;
      const e = failing.get(k) ?? { f, where: [] };
      e.where.push(`${r.path} ${r.preset}`);
      failing.set(k, e);
    }
  if (failing.size) {
    out.push('Checks failed in the other categories:');
    out.push('');
    for (const { f, where } of failing.values())
      out.push(
        `- ${f.category}: ${f.title} (\`${f.id}\`${f.display ? `, ${f.display}` : ''}) — ${where.length === l.rows.filter((r) => r.runs).length ? 'every row' : where.join(', ')}`,
      );
    out.push('');
  }
  const failed = [...new Set(l.rows.flatMap((r) => r.failedRequests))];
  const off = [...new Set(l.rows.flatMap((r) => r.offOrigin))];
  out.push(
    `Requests that failed: ${failed.length ? failed.map((f) => `\`${f}\``).join(', ') : 'none'}. Requests to anything but 127.0.0.1: ${off.length ? off.map((u) => `\`${u}\``).join(', ') : 'none'}.`,
  );
  if (failed.some((f) => f.startsWith('/api/v1/health ')))
    out.push(
      '(`/api/v1/health` is the lab boot script asking whether a lab server is there; a static host has none, so it answers 404 — and Chromium logs that 404 as a console error — and the lab blocks offer the recording. Behind our server it answers JSON.)',
    );
  const warnings = [...new Set(l.rows.flatMap((r) => r.warnings))];
  for (const w of warnings) out.push(`- Lighthouse warning: ${w.replace(/\s+/g, ' ').slice(0, 300)}`);
  for (const r of l.rows) if (r.error && r.runs) out.push(`- \`${r.path}\` ${r.preset}: ${r.error}`);
  for (const e of l.errors) out.push(`- error: ${e}`);
  out.push('');
  return out;
}

export function summaryLine(s: Summary | undefined): string {
  return s ? `p50 ${fmt(s.p50, 2)} p95 ${fmt(s.p95, 2)} p99 ${fmt(s.p99, 2)} max ${fmt(s.max, 2)}` : '–';
}

export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [];
  out.push('# Container Labs benchmark');
  out.push('');
  out.push(`- Date: ${m.date} (run took ${fmt(r.durationSeconds, 0)} s)`);
  out.push(
    `- Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, kernel ${m.kernel}, ${m.os}; Docker ${m.docker}, cgroup ${m.cgroup}; Node ${m.node}; load average at start ${m.loadavgAtStart.join(' / ')}`,
  );
  const c = r.config;
  const what = [
    c.only.includes('start') ? `${c.starts} sequential starts per series, ${c.burst} at once` : '',
    c.only.includes('class')
      ? `a class of ${c.classSize} (within 1 s, and over ${c.classSpreadMs / 1000} s; ${c.classReadMs / 1000} s of reading after the page views)`
      : '',
    c.only.includes('echo') ? `${c.keys} keys and ${c.size} × ${c.rounds} per terminal path` : '',
    c.only.includes('idle') ? `${c.idle} idle sessions` : '',
    c.only.includes('lighthouse')
      ? `Lighthouse on ${typeof c.lhPages === 'string' ? `${c.lhPages} pages` : `${c.lhPages.length} pages`} × ${(c.lhPresets ?? ['mobile', 'desktop']).join(', ')} × ${c.lhRuns} run(s)${c.lhBuild ? ' of a fresh build' : ''}`
      : '',
  ].filter(Boolean);
  const flags = `${c.quick ? ' --quick' : ''}${c.only.length < SECTIONS.length ? ` --only ${c.only.join(',')}` : ''}${c.lhBuild ? ' --lh-build' : ''}${c.lhSite ? ` --lh-site ${c.lhSite}` : ''}${c.lhRuns !== 1 ? ` --lh-runs ${c.lhRuns}` : ''}`;
  out.push(`- Run: \`node bench/run.ts${flags}\` — ${what.join('; ')}`);
  out.push(
    '- One run on one machine that other work shares: the figures are noisy. Read them as sizes and ratios (all paths are measured in the same run, interleaved), not as exact values. Targets are printed next to them, never asserted.',
  );
  out.push('');
  if (r.start) out.push(...startSection(r.start));
  if (r.class) out.push(...classSection(r.class));
  if (r.terminal) out.push(...terminalSection(r.terminal, c));
  if (r.idle) out.push(...idleSection(r.idle));
  if (r.lighthouse) out.push(...lighthouseSection(r.lighthouse));
  if (r.browser) out.push(...browserSection(r.browser));
  if (r.leftovers) {
    out.push(
      `After the run: ${r.leftovers.ours} containers of this run (label \`containerlabs.managed=true\`, instance \`${'bench-<pid>-*'}\`) were left${r.leftovers.removed ? ` and force-removed by the bench (${r.leftovers.removed})` : ''}; ${r.leftovers.otherManaged} managed containers of other instances (not the bench's) were running.`,
    );
    out.push('');
  }
  for (const e of r.errors) out.push(`- error: ${e}`);
  return `${out.join('\n').trimEnd()}\n`;
}

function browserSection(b: BrowserResult): string[] {
  const out = [
    '',
    "## The lab in the reader's tab (in-browser VM) beside our server",
    '',
    `The same lesson page (lab \`${b.lab}\`) in headless Chromium: **in the browser**, the built site served as plain files (no lab server), Run in my browser restores the lab's saved VM${b.vmBuild ? ` (build ${b.vmBuild})` : ''}; **server**, Start lab on our server (a lab host container). Download = bytes the page fetched from Start to ready with an empty cache; warm = the same after a reload (VM files from the Cache API). ps -ef = typing \`ps -ef\` in the host terminal until its prompt is back; echo = one key (x, then DEL) until it shows. Tab = PSS of the renderer processes with the lab ready, and what they kept after the measurements and a garbage collection (the met column takes the first). Targets for the in-browser mode: Start → prompts ≤ 3 s, ps -ef ≤ 1.5 s, download ≤ 12 MB, tab ≤ 400 MB (absolute times only beside the server's, same run).`,
    '',
    '| mode | download MB | Start → both prompts ms (warm) | ps -ef p50 / max ms | echo p50 / p95 ms | tab MB at ready / kept | met |',
    '|---|---:|---:|---:|---:|---:|:-:|',
  ];
  for (const r of b.rows) {
    if (r.skipped) {
      out.push(`| ${r.mode === 'vm' ? 'in the browser' : 'server'} | skipped: ${r.skipped} | | | | | |`);
      continue;
    }
    const vm = r.mode === 'vm';
    const met = vm
      ? mark(
          (r.startWarmMs ?? r.startMs ?? Infinity) <= 3000 &&
            (r.psMs?.p50 ?? Infinity) <= 1500 &&
            (r.downloadBytes ?? Infinity) <= 12e6 &&
            (r.tabMB ?? Infinity) <= 400,
        )
      : '–';
    out.push(
      `| ${vm ? 'in the browser' : 'server'} | ${MBf(r.downloadBytes ?? Number.NaN)} | ${fmt(r.startMs ?? Number.NaN, 0)}${r.startWarmMs !== undefined ? ` (${fmt(r.startWarmMs, 0)})` : ''} | ${fmt(r.psMs?.p50 ?? Number.NaN, 0)} / ${fmt(r.psMs?.max ?? Number.NaN, 0)} | ${fmt(r.echoMs?.p50 ?? Number.NaN, 1)} / ${fmt(r.echoMs?.p95 ?? Number.NaN, 1)} | ${fmt(r.tabMB ?? Number.NaN, 0)} / ${fmt(r.tabKeptMB ?? Number.NaN, 0)} | ${met} |`,
    );
  }
  return out;
}
