/**
 * The terminal path, side by side: keystroke echo and output throughput through
 *   ours  — WebSocket → our server → docker exec TTY → bash in a lab host;
 *   floor — WebSocket → ws + node-pty (bench/floor-server.ts) → bash on the host;
 *   peer  — socket.io → wetty (npm) → node-pty → bash on the host.
 * The three are measured in interleaved rounds, so the machine's noise hits them alike.
 */
import { createSession, TermClient } from '../../tests/support/server.ts';
import { median, type Summary, summarize } from '../../tests/support/stats.ts';
import { track } from './cleanup.ts';
import { containerCpu, ourContainers, shimPid } from './engine.ts';
import { errText, log } from './log.ts';
import { cpuSeconds, pidOf } from './machine.ts';
import { type CpuWatch, measureEcho, measureThroughput, type ThroughputRun } from './measure.ts';
import { benchEnv, openHost, SIZE, startOurs } from './ours.ts';
import { ensureWetty, PEER_DIR, startFloor, startWetty } from './peers.ts';
import { type ByteTerm, WettyTerm, waitForText } from './terms.ts';

export interface PathResult {
  name: string;
  description: string;
  echo?: Summary;
  echoSamples?: number[];
  throughput?: {
    runs: ThroughputRun[];
    medianMBps: number;
    minMBps: number;
    maxMBps: number;
    bytes: number;
    /** Median bytes per message the client received. */
    frameBytes: number;
  };
  /** CPU seconds per 100 MB of output, per process, median over the runs. */
  cpuPer100MB?: Record<string, number>;
  skipped?: string;
  errors: string[];
}

export interface TerminalResult {
  ours: PathResult;
  floor: PathResult;
  peer: PathResult;
  ratios: {
    oursFloor: { echoP50?: number; echoP99?: number; throughput?: number };
    oursPeer: { echoP50?: number; echoP99?: number; throughput?: number };
  };
}

interface Live {
  result: PathResult;
  term: ByteTerm;
  watch: CpuWatch;
}

const proc = (pid: number | undefined) => (pid === undefined ? undefined : () => cpuSeconds(pid));

export async function benchTerminal(opts: {
  keys: number;
  size: string;
  rounds: number;
}): Promise<TerminalResult> {
  const ours: PathResult = {
    name: 'ours',
    description: 'WebSocket → Fastify/ws → docker exec TTY (dockerode) → bash -l in the lab host',
    errors: [],
  };
  const floor: PathResult = {
    name: 'floor',
    description: 'WebSocket → ws + node-pty (bench/floor-server.ts) → bash on the host',
    errors: [],
  };
  const peer: PathResult = {
    name: 'peer',
    description: 'wetty (npm) → node-pty → bash on the host',
    errors: [],
  };
  const live: Live[] = [];
  const stops: (() => Promise<void>)[] = [];

  // ours
  try {
    const srv = await startOurs('term', { ...benchEnv(10), CL_POOL_SIZE: '0' });
    stops.push(track(`server ${srv.instance}`, () => srv.stop()));
    const s = await createSession(srv.base, 'processes');
    const term = await openHost(srv.base, s);
    stops.push(track('ours terminal', () => term.close()));
    const [c] = await ourContainers(srv.instance);
    live.push({
      result: ours,
      term,
      watch: {
        'our server': proc(srv.pid),
        dockerd: proc(pidOf('dockerd')),
        'containerd-shim': proc(c ? shimPid(c.id) : undefined),
        // The lab host itself (head, base64, the tty's line discipline): it has --cpus 0.5.
        'lab host': c && containerCpu(c.id) ? () => containerCpu(c.id)?.cpu ?? Number.NaN : undefined,
        'lab host throttled':
          c && containerCpu(c.id) ? () => containerCpu(c.id)?.throttled ?? Number.NaN : undefined,
      },
    });
  } catch (err) {
    ours.skipped = `could not start: ${errText(err)}`;
  }

  /** A path to a host bash (floor, peer): its server and terminal, stopped at the end; at the prompt. */
  const hostBash = async <S extends { pid: number; stop(): Promise<void> }>(
    result: PathResult,
    name: string,
    start: () => Promise<S>,
    open: (srv: S) => Promise<ByteTerm>,
  ): Promise<void> => {
    const srv = await start();
    stops.push(track(`${name} server`, () => srv.stop()));
    const term = await open(srv);
    stops.push(track(`${name} terminal`, () => term.close()));
    term.send('\r');
    await waitForText(term, /bench\$ $/);
    live.push({ result, term, watch: { [`${name} server`]: proc(srv.pid) } });
  };

  // floor
  try {
    await hostBash(floor, 'floor', startFloor, (f) =>
      TermClient.connect(`${f.url}?cols=${SIZE.cols}&rows=${SIZE.rows}`, {
        label: 'floor',
        collect: false,
        ...SIZE,
      }),
    );
  } catch (err) {
    floor.skipped = `could not start: ${errText(err)}`;
  }

  // peer
  const w = await ensureWetty(log);
  if (!w.ok) {
    peer.skipped = w.reason;
    log(`peer skipped: ${w.reason}`);
  } else {
    peer.name = `wetty ${w.version}`;
    try {
      await hostBash(peer, 'wetty', startWetty, (srv) =>
        WettyTerm.open(PEER_DIR, srv.origin, srv.base, SIZE),
      );
    } catch (err) {
      peer.skipped = `could not start: ${errText(err)}`;
      log(`peer failed: ${errText(err)}`);
    }
  }

  const perRound = Math.max(2, Math.ceil(opts.keys / opts.rounds / 2) * 2);
  const echoes = new Map<Live, number[]>(live.map((l) => [l, []]));
  const runs = new Map<Live, ThroughputRun[]>(live.map((l) => [l, []]));
  for (let round = 1; round <= opts.rounds; round++) {
    for (const l of live) {
      try {
        const e = await measureEcho(l.term, { keys: perRound });
        echoes.get(l)?.push(...e);
        const t = await measureThroughput(l.term, { size: opts.size, watch: l.watch });
        runs.get(l)?.push(t);
        log(
          `  round ${round}/${opts.rounds} ${l.result.name}: echo p50 ${median(e).toFixed(2)} ms, ` +
            `${t.mbPerSecond.toFixed(1)} MB/s (${(t.bytes / 1e6).toFixed(1)} MB in ${t.seconds.toFixed(2)} s)`,
        );
      } catch (err) {
        l.result.errors.push(errText(err));
        log(`  round ${round} ${l.result.name} failed: ${errText(err)}`);
      }
    }
  }
  for (const l of live) {
    const e = echoes.get(l) ?? [];
    const r = runs.get(l) ?? [];
    if (e.length) {
      l.result.echo = summarize(e);
      l.result.echoSamples = e.map((v) => Math.round(v * 1000) / 1000);
    }
    if (r.length) {
      const mbps = r.map((x) => x.mbPerSecond);
      l.result.throughput = {
        runs: r,
        medianMBps: median(mbps),
        minMBps: Math.min(...mbps),
        maxMBps: Math.max(...mbps),
        bytes: r[0]?.bytes ?? 0,
        frameBytes: median(r.map((x) => x.bytes / x.frames)),
      };
      const names = Object.keys(r[0]?.cpu ?? {});
      l.result.cpuPer100MB = Object.fromEntries(
        names.map((k) => [k, median(r.map((x) => ((x.cpu[k] ?? Number.NaN) / x.bytes) * 1e8))]),
      );
    }
  }
  for (const stop of stops.reverse()) await stop();

  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  return {
    ours,
    floor,
    peer,
    ratios: {
      oursFloor: {
        echoP50: ratio(ours.echo?.p50, floor.echo?.p50),
        echoP99: ratio(ours.echo?.p99, floor.echo?.p99),
        throughput: ratio(ours.throughput?.medianMBps, floor.throughput?.medianMBps),
      },
      oursPeer: {
        echoP50: ratio(ours.echo?.p50, peer.echo?.p50),
        echoP99: ratio(ours.echo?.p99, peer.echo?.p99),
        throughput: ratio(ours.throughput?.medianMBps, peer.throughput?.medianMBps),
      },
    },
  };
}
