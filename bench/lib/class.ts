/**
 * The class burst (issue 15): an instructor says "now press Start", and a whole class does,
 * within a second; and the same class spread over ten seconds. One server with its default
 * pool settings (only the per-client limits are raised: the bench is one loopback client
 * playing every reader, and CL_MAX_SESSIONS leaves room for them all, so any refusal is
 * the server's own doing). Each series, one after the other on the same server:
 *
 *   - at once, no page views: N Starts at random moments within 1 s, nothing announced;
 *   - at once, after page views: each reader first opens the lesson (its page sends the
 *     lab's hint, POST /api/v1/labs/:id/hint, as lab-boot.ts does when the lab scrolls
 *     into view), reads for a while, then the N Starts come within 1 s;
 *   - spread: the same readers, their Starts spread evenly at random over 10 s.
 *
 * A server without the hint route answers 404: the row says so, and is a second cold burst.
 * Also here, for the warm-start target: the floor's connect → prompt (bench/floor-server.ts,
 * node-pty + ws), measured in the same run.
 */
import type { SessionInfo, TermClient } from '../../tests/support/server.ts';
import { TermClient as Client } from '../../tests/support/server.ts';
import { median, type Summary, summarize } from '../../tests/support/stats.ts';
import { track } from './cleanup.ts';
import { errText, log } from './log.ts';
import {
  benchEnv,
  health,
  LAB,
  lastServerProblem,
  type Ours,
  poolHits,
  poolOf,
  type StartPhases,
  startOurs,
  startToPrompt,
  stopSession,
} from './ours.ts';
import { startFloor } from './peers.ts';
import { sleep } from './util.ts';

export interface ClassSeries {
  label: string;
  /** Readers in the series, and how many reached their prompt. */
  n: number;
  phases: StartPhases[];
  total: Summary;
  medians: StartPhases;
  /** Starts served from the warm pool / made on demand (the server's session.started log). */
  poolHits: { pooled: number; cold: number };
  /** Refusals and failures, with the server's reason. */
  errors: string[];
  /** Page views sent before the Starts, and what the server answered (status → count). */
  hints?: { sent: number; answers: Record<string, number> };
  /** The server's own account of each Start (its session.started log line), medians in ms. */
  server?: Record<string, number>;
  /** Ready pool hosts just before the first Start of the series. */
  poolBefore?: number;
}

export interface ClassResult {
  n: number;
  spreadMs: number;
  readMs: number;
  series: ClassSeries[];
  /** The floor: connect → `bench$ ` prompt of a node-pty bash (bench/floor-server.ts). */
  floor?: Summary;
  errors: string[];
}

function seriesOf(
  label: string,
  n: number,
  phases: StartPhases[],
  errors: string[],
  hits: { pooled: number; cold: number },
): ClassSeries {
  const keys = ['post', 'upgrade', 'attach', 'firstByte', 'prompt', 'total'] as const;
  const medians = Object.fromEntries(
    keys.map((k) => [k, median(phases.map((p) => p[k]))]),
  ) as unknown as StartPhases;
  return { label, n, phases, total: summarize(phases.map((p) => p.total)), medians, poolHits: hits, errors };
}

/** Medians of the numeric fields of the server's session.started lines logged after `from`. */
function serverAccount(logs: string, from: number): Record<string, number> | undefined {
  const fields = new Map<string, number[]>();
  for (const line of logs.slice(from).split('\n')) {
    if (!line.includes('"session.started"')) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      for (const [k, v] of Object.entries(j)) {
        if (typeof v !== 'number' || !/Ms$|^ms$/.test(k)) continue;
        const list = fields.get(k) ?? [];
        list.push(v);
        fields.set(k, list);
      }
    } catch {}
  }
  if (fields.size === 0) return undefined;
  return Object.fromEntries([...fields].map(([k, v]) => [k, median(v)]));
}

/** One reader's page view: the hint its lesson page sends. The answer's status (or `error`). */
async function pageView(base: string): Promise<string> {
  try {
    const r = await fetch(`${base}/api/v1/labs/${LAB}/hint`, { method: 'POST' });
    await r.body?.cancel();
    return String(r.status);
  } catch (err) {
    return `error ${errText(err)}`;
  }
}

/** Ready hosts of the lab in the pool (0 when the server reports no pool). */
async function poolReady(srv: Ours): Promise<number> {
  return poolOf(await health(srv.base))?.ready ?? 0;
}

/** N readers, each pressing Start at its offset (ms from now); every one to its prompt. */
async function readers(
  srv: Ours,
  label: string,
  offsets: number[],
  opts: { views: boolean; readMs: number },
): Promise<ClassSeries> {
  let hints: ClassSeries['hints'];
  if (opts.views) {
    const answers: Record<string, number> = {};
    for (const a of await Promise.all(offsets.map(() => pageView(srv.base))))
      answers[a] = (answers[a] ?? 0) + 1;
    hints = { sent: offsets.length, answers };
    // The class reads the lesson; the instructor says "now press Start".
    await sleep(opts.readMs);
  }
  const poolBefore = await poolReady(srv);
  const logFrom = srv.logs().length;
  const before = poolHits(srv.logs());
  const t0 = performance.now();
  const settled = await Promise.allSettled(
    offsets.map(async (at) => {
      await sleep(Math.max(0, at - (performance.now() - t0)));
      return startToPrompt(srv.base);
    }),
  );
  const after = poolHits(srv.logs());
  const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const why = lastServerProblem(srv.logs());
  const errors = settled.flatMap((s) =>
    s.status === 'rejected' ? [`${errText(s.reason)}${why ? ` (server: ${why})` : ''}`] : [],
  );
  const s = seriesOf(
    label,
    offsets.length,
    ok.map((r) => r.phases),
    errors,
    { pooled: after.pooled - before.pooled, cold: after.cold - before.cold },
  );
  s.hints = hints;
  s.poolBefore = poolBefore;
  s.server = serverAccount(srv.logs(), logFrom);
  log(
    `  ${label}: p50 ${s.total.p50.toFixed(0)} ms, p95 ${s.total.p95.toFixed(0)} ms, max ${s.total.max.toFixed(0)} ms, ` +
      `pool hits ${s.poolHits.pooled}/${ok.length}, ${errors.length} failed`,
  );
  await endAll(srv, ok);
  return s;
}

async function endAll(srv: Ours, items: { session: SessionInfo; term: TermClient }[]): Promise<void> {
  await Promise.all(items.map((it) => it.term.close()));
  for (const it of items) await stopSession(srv.base, it.session).catch(() => {});
}

/** Let the pool settle after a series: its ready count stops changing for 3 s (at most 60 s). */
async function settle(srv: Ours): Promise<void> {
  const end = Date.now() + 60_000;
  let last = -1;
  let since = Date.now();
  while (Date.now() < end) {
    const now = await poolReady(srv);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= 3000) return;
    await sleep(250);
  }
}

/** Floor connect → prompt: open a socket to the node-pty server, wait for `bench$ `. */
async function floorConnects(n: number): Promise<Summary | undefined> {
  const floor = await startFloor();
  const stop = track('floor server', () => floor.stop());
  try {
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const term = await Client.connect(`${floor.url}?cols=160&rows=50`, { label: 'floor' });
      await term.waitFor(/bench\$ $/, 10_000);
      samples.push(performance.now() - t0);
      await term.close();
    }
    return summarize(samples);
  } finally {
    await stop();
  }
}

export async function benchClass(opts: {
  n: number;
  spreadMs: number;
  readMs: number;
}): Promise<ClassResult> {
  const result: ClassResult = {
    n: opts.n,
    spreadMs: opts.spreadMs,
    readMs: opts.readMs,
    series: [],
    errors: [],
  };
  const within = (ms: number) =>
    Array.from({ length: opts.n }, () => Math.random() * ms).sort((a, b) => a - b);

  log(`class: floor connect → prompt (${Math.max(10, opts.n)} connects)`);
  try {
    result.floor = await floorConnects(Math.max(10, opts.n));
  } catch (err) {
    result.errors.push(`floor: ${errText(err)}`);
  }

  log(`class: ${opts.n} readers pressing Start within 1 s, then spread over ${opts.spreadMs / 1000} s`);
  // Room for the whole class and then some: a refusal would be the server's, not the quota's.
  // The server's default pool (CL_POOL_SIZE 1): the test servers' starter turns it off.
  const srv = await startOurs('class', { ...benchEnv(opts.n * 2 + 10), CL_POOL_SIZE: '1' });
  const stop = track(`server ${srv.instance}`, () => srv.stop());
  try {
    await settle(srv);
    result.series.push(
      await readers(srv, 'at once, no page views', within(1000), { views: false, readMs: 0 }),
    );
    await settle(srv);
    result.series.push(
      await readers(srv, 'at once, after page views', within(1000), { views: true, readMs: opts.readMs }),
    );
    await settle(srv);
    result.series.push(
      await readers(srv, `spread over ${opts.spreadMs / 1000} s, after page views`, within(opts.spreadMs), {
        views: true,
        readMs: opts.readMs,
      }),
    );
  } catch (err) {
    const why = lastServerProblem(srv.logs());
    result.errors.push(`${errText(err)}${why ? ` (server: ${why})` : ''}`);
    log(`class burst failed: ${errText(err)}`);
  } finally {
    await stop();
  }
  return result;
}
