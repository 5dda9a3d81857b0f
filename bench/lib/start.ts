/**
 * Start → first prompt: how long a reader waits between clicking Start (POST
 * /api/v1/sessions) and the `reader@labhost` prompt on the `host` terminal. Sequential
 * starts cold (CL_POOL_SIZE=0) and warm (CL_POOL_SIZE=2), then a burst of readers at once.
 */
import type { SessionInfo, TermClient } from '../../tests/support/server.ts';
import { median, type Summary, summarize } from '../../tests/support/stats.ts';
import { track } from './cleanup.ts';
import { errText, log } from './log.ts';
import {
  benchEnv,
  health,
  lastServerProblem,
  type Ours,
  poolHits,
  poolOf,
  type StartPhases,
  startOurs,
  startToPrompt,
  stopSession,
  waitPoolFull,
} from './ours.ts';

export interface StartSeries {
  label: string;
  /** One entry per start that reached the prompt. */
  phases: StartPhases[];
  total: Summary;
  /** Median of each phase. */
  medians: StartPhases;
  deleteMs: Summary;
  errors: string[];
  /** Starts served from the warm pool / made cold, per the server's log. */
  poolHits?: { pooled: number; cold: number };
  /** Before each sequential warm start, did the pool refill in time? */
  poolRefilled?: number;
}

export interface StartResult {
  /** CL_POOL_SIZE as the warm server's /health reports it (null: no pool reported). */
  warmPool: { size: number; ready: number } | null;
  coldPool: { size: number; ready: number } | null;
  /** The first start after each server came up (not in the series: it pays one-off costs). */
  firstStartMs: { cold?: number; warm?: number };
  cold?: StartSeries;
  warm?: StartSeries;
  burstCold?: StartSeries;
  burstWarm?: StartSeries;
  errors: string[];
}

function series(label: string, phases: StartPhases[], deletes: number[], errors: string[]): StartSeries {
  const keys = ['post', 'upgrade', 'attach', 'firstByte', 'prompt', 'total'] as const;
  const medians = Object.fromEntries(
    keys.map((k) => [k, median(phases.map((p) => p[k]))]),
  ) as unknown as StartPhases;
  return {
    label,
    phases,
    total: summarize(phases.map((p) => p.total)),
    medians,
    deleteMs: summarize(deletes),
    errors,
  };
}

async function closeAndDelete(
  base: string,
  items: { session: SessionInfo; term: TermClient }[],
): Promise<number[]> {
  const deletes: number[] = [];
  for (const it of items) {
    await it.term.close();
    deletes.push(await stopSession(base, it.session));
  }
  return deletes;
}

async function sequential(
  srv: Ours,
  n: number,
  label: string,
  beforeEach?: () => Promise<void>,
): Promise<StartSeries> {
  const phases: StartPhases[] = [];
  const deletes: number[] = [];
  const errors: string[] = [];
  for (let i = 0; i < n; i++) {
    await beforeEach?.();
    try {
      const r = await startToPrompt(srv.base);
      phases.push(r.phases);
      deletes.push(...(await closeAndDelete(srv.base, [r])));
      log(`  ${label} #${i + 1}: ${r.phases.total.toFixed(0)} ms (POST ${r.phases.post.toFixed(0)} ms)`);
    } catch (err) {
      const why = lastServerProblem(srv.logs());
      errors.push(`${errText(err)}${why ? ` (server: ${why})` : ''}`);
      log(`  ${label} #${i + 1} failed: ${errors.at(-1)}`);
    }
  }
  return series(label, phases, deletes, errors);
}

async function burst(srv: Ours, n: number, label: string): Promise<StartSeries> {
  const settled = await Promise.allSettled(Array.from({ length: n }, () => startToPrompt(srv.base)));
  const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const why = lastServerProblem(srv.logs());
  const errors = settled.flatMap((s) =>
    s.status === 'rejected' ? [`${errText(s.reason)}${why ? ` (server: ${why})` : ''}`] : [],
  );
  const deletes = await closeAndDelete(srv.base, ok);
  const s = series(
    label,
    ok.map((r) => r.phases),
    deletes,
    errors,
  );
  log(
    `  ${label}: p50 ${s.total.p50.toFixed(0)} ms, max ${s.total.max.toFixed(0)} ms, ${errors.length} failed`,
  );
  return s;
}

async function withServer<T>(
  tag: string,
  env: Record<string, string>,
  fn: (srv: Ours) => Promise<T>,
): Promise<T> {
  const srv = await startOurs(tag, env);
  const stop = track(`server ${srv.instance}`, () => srv.stop());
  try {
    return await fn(srv);
  } finally {
    await stop();
  }
}

export async function benchStart(opts: { starts: number; burst: number }): Promise<StartResult> {
  const result: StartResult = { warmPool: null, coldPool: null, firstStartMs: {}, errors: [] };
  const env = benchEnv(Math.max(50, opts.burst * 2 + 10));

  log(`start → prompt, cold (CL_POOL_SIZE=0): ${opts.starts} sequential, then ${opts.burst} at once`);
  try {
    await withServer('cold', { ...env, CL_POOL_SIZE: '0' }, async (srv) => {
      result.coldPool = poolOf(await health(srv.base));
      const first = await startToPrompt(srv.base);
      result.firstStartMs.cold = first.phases.total;
      await closeAndDelete(srv.base, [first]);
      result.cold = await sequential(srv, opts.starts, 'cold');
      result.burstCold = await burst(srv, opts.burst, `${opts.burst} at once, cold`);
    });
  } catch (err) {
    result.errors.push(`cold: ${errText(err)}`);
    log(`cold starts failed: ${errText(err)}`);
  }

  log(`start → prompt, warm (CL_POOL_SIZE=2): ${opts.starts} sequential, then ${opts.burst} at once`);
  try {
    await withServer('warm', { ...env, CL_POOL_SIZE: '2' }, async (srv) => {
      result.warmPool = poolOf(await health(srv.base));
      if (result.warmPool) {
        if (!(await waitPoolFull(srv.base, 60_000))) log('  the pool did not fill within 60 s');
      } else {
        log('  /health reports no pool: the server ignores CL_POOL_SIZE; warm = cold');
        await new Promise((r) => setTimeout(r, 1000));
      }
      const first = await startToPrompt(srv.base);
      result.firstStartMs.warm = first.phases.total;
      await closeAndDelete(srv.base, [first]);
      const before = poolHits(srv.logs());
      let refilled = 0;
      result.warm = await sequential(srv, opts.starts, 'warm', async () => {
        // A reader arriving after the pool refilled: wait for it (not timed).
        if (result.warmPool && (await waitPoolFull(srv.base, 30_000))) refilled++;
      });
      const after = poolHits(srv.logs());
      result.warm.poolHits = { pooled: after.pooled - before.pooled, cold: after.cold - before.cold };
      result.warm.poolRefilled = refilled;
      if (result.warmPool) await waitPoolFull(srv.base, 60_000);
      const b0 = poolHits(srv.logs());
      result.burstWarm = await burst(srv, opts.burst, `${opts.burst} at once, CL_POOL_SIZE=2`);
      const b1 = poolHits(srv.logs());
      result.burstWarm.poolHits = { pooled: b1.pooled - b0.pooled, cold: b1.cold - b0.cold };
    });
  } catch (err) {
    result.errors.push(`warm: ${errText(err)}`);
    log(`warm starts failed: ${errText(err)}`);
  }
  return result;
}
