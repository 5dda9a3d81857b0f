/**
 * Concurrent idle sessions: N readers who started a lab and are reading, not typing. What
 * does each cost the machine, and does the one reader who *is* typing still get a fast
 * echo? Phases: N lab hosts (no terminal yet), then each with its `host` shell open (the
 * usual state of a reader on a lesson page), then one extra active session's echo.
 */
import { createSession, type SessionInfo, type TermClient } from '../../tests/support/server.ts';
import { type Summary, summarize } from '../../tests/support/stats.ts';
import { track } from './cleanup.ts';
import { containerMemory, ourContainers, shimMemory } from './engine.ts';
import { errText, log } from './log.ts';
import { meminfo, pidOf, rssBytes } from './machine.ts';
import { measureEcho } from './measure.ts';
import { benchEnv, openHost, startOurs, stopSession } from './ours.ts';
import { mapLimit, sleep } from './util.ts';

export interface MemorySnapshot {
  /** Sessions (lab hosts) measured. */
  n: number;
  /** Host: MemTotal − MemAvailable. */
  hostUsed: number;
  /** The bench process itself (it holds the N WebSockets): subtracted from the host delta. */
  benchRss: number;
  serverRss: number;
  dockerdRss: number;
  containerdRss: number;
  /** Sums over the lab hosts' memory cgroups. */
  containers: {
    usage: number;
    workingSet: number;
    rss: number;
    cache: number;
    measured: number;
    source: string;
  };
  /** Sum of the lab hosts' containerd-shim PSS. */
  shims: { count: number; pss: number };
}

export interface IdleResult {
  requested: number;
  started: number;
  /** Where it broke, if it did: the first failure and at which count. */
  broke?: { at: number; error: string };
  createSeconds: number;
  postMs: Summary;
  openSeconds?: number;
  shellsOpen: number;
  baseline: MemorySnapshot;
  bare?: MemorySnapshot;
  withShells?: MemorySnapshot;
  activeEcho?: Summary;
  deleteSeconds?: number;
  deleteMs?: Summary;
  leftAfter: number;
  errors: string[];
}

async function snapshot(instance: string, serverPid: number): Promise<MemorySnapshot> {
  const ids = (await ourContainers(instance)).map((c) => c.id);
  const mems = await Promise.all(ids.map((id) => containerMemory(id)));
  const containers = { usage: 0, workingSet: 0, rss: 0, cache: 0, measured: 0, source: '' };
  for (const m of mems) {
    if (!m) continue;
    containers.usage += m.usage;
    containers.workingSet += m.workingSet;
    containers.rss += m.rss;
    containers.cache += m.cache;
    containers.measured++;
    containers.source = m.source;
  }
  const dockerd = pidOf('dockerd');
  const containerd = pidOf('containerd');
  return {
    n: ids.length,
    hostUsed: meminfo().used,
    benchRss: process.memoryUsage().rss,
    serverRss: rssBytes(serverPid),
    dockerdRss: dockerd ? rssBytes(dockerd) : Number.NaN,
    containerdRss: containerd ? rssBytes(containerd) : Number.NaN,
    containers,
    shims: shimMemory(ids),
  };
}

export async function benchIdle(opts: { n: number; keys: number; concurrency: number }): Promise<IdleResult> {
  const env = { ...benchEnv(opts.n + 10), CL_POOL_SIZE: '0' };
  const srv = await startOurs('idle', env);
  const stopServer = track(`server ${srv.instance}`, () => srv.stop());
  const sessions: SessionInfo[] = [];
  const terms: TermClient[] = [];
  const stopTerms = track('idle terminals', () => Promise.all(terms.map((t) => t.close())));
  const errors: string[] = [];
  const result: Partial<IdleResult> = { requested: opts.n, errors, shellsOpen: 0 };
  try {
    await sleep(2000);
    result.baseline = await snapshot(srv.instance, srv.pid);

    log(`idle: starting ${opts.n} sessions, ${opts.concurrency} at a time`);
    const posts: number[] = [];
    let broke: IdleResult['broke'];
    const t0 = performance.now();
    await mapLimit(
      Array.from({ length: opts.n }, (_, i) => i),
      opts.concurrency,
      async () => {
        if (broke) return;
        const a = performance.now();
        try {
          const s = await createSession(srv.base, 'processes');
          posts.push(performance.now() - a);
          sessions.push(s);
          if (sessions.length % 25 === 0) log(`  ${sessions.length} started`);
        } catch (err) {
          broke ??= { at: sessions.length, error: errText(err) };
        }
      },
    );
    result.createSeconds = (performance.now() - t0) / 1000;
    result.started = sessions.length;
    result.postMs = summarize(posts);
    result.broke = broke;
    if (broke) log(`  broke at ${broke.at}: ${broke.error}`);
    log(`  ${sessions.length} lab hosts in ${result.createSeconds.toFixed(1)} s; letting them settle`);
    await sleep(5000);
    result.bare = await snapshot(srv.instance, srv.pid);

    log(`idle: opening the host terminal of each (${opts.concurrency} at a time)`);
    const t1 = performance.now();
    const opened = await mapLimit(sessions, opts.concurrency, async (s) => {
      const t = await openHost(srv.base, s);
      terms.push(t);
      return t;
    });
    result.openSeconds = (performance.now() - t1) / 1000;
    const failedOpens = opened.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
    if (failedOpens.length)
      errors.push(`${failedOpens.length} terminals failed to open: ${errText(failedOpens[0]?.reason)}`);
    result.shellsOpen = terms.length;
    log(`  ${terms.length} shells open in ${result.openSeconds.toFixed(1)} s; letting them settle`);
    await sleep(5000);
    result.withShells = await snapshot(srv.instance, srv.pid);

    log(`idle: echo of one active session while ${sessions.length} are open`);
    try {
      const active = await createSession(srv.base, 'processes');
      sessions.push(active);
      const t = await openHost(srv.base, active);
      terms.push(t);
      result.activeEcho = summarize(await measureEcho(t, { keys: opts.keys }));
      log(
        `  active echo p50 ${result.activeEcho.p50.toFixed(2)} ms, p99 ${result.activeEcho.p99.toFixed(2)} ms`,
      );
    } catch (err) {
      errors.push(`active session: ${errText(err)}`);
    }
  } catch (err) {
    errors.push(errText(err));
    log(`idle failed: ${errText(err)}`);
  } finally {
    await stopTerms();
    log(`idle: deleting ${sessions.length} sessions`);
    const t2 = performance.now();
    const dels = await mapLimit(sessions, opts.concurrency, (s) => stopSession(srv.base, s));
    result.deleteSeconds = (performance.now() - t2) / 1000;
    const ok = dels.flatMap((d) => (d.status === 'fulfilled' ? [d.value] : []));
    const bad = dels.filter((d) => d.status === 'rejected') as PromiseRejectedResult[];
    if (bad.length) errors.push(`${bad.length} DELETEs failed: ${errText(bad[0]?.reason)}`);
    result.deleteMs = summarize(ok);
    result.leftAfter = (await ourContainers(srv.instance)).length;
    log(
      `  deleted in ${result.deleteSeconds.toFixed(1)} s; ${result.leftAfter} left with instance ${srv.instance}`,
    );
    await stopServer();
  }
  return result as IdleResult;
}
