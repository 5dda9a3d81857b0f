/**
 * The control paths under abuse, over the real server and engine: a flood of terminal
 * resizes, a client that never reads while it sends garbage and pings, and many parallel
 * loops on the inspection routes. What each may cost is read from the server itself:
 * engine calls from GET /metrics (`containerlabs_engine_calls_total`), memory from
 * /proc/<pid>/status. An honest session types alongside; its echo latency is printed.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import parsePrometheus from 'parse-prometheus-text-format';
import { useServer } from '../support/fixtures.ts';
import type { RunningServer, SessionInfo, TermClient } from '../support/server.ts';
import { formatSummary, summarize } from '../support/stats.ts';
import { EchoProbe, healthFor, rssKiB, sampler, sleep } from './support.ts';

/** Generous bounds: the 2 cores are shared with the attack, the engine and other tests. */
const ECHO_BOUND_MS = 5_000;
const HEALTH_BOUND_MS = 5_000;
const RSS_GROWTH_BOUND_KIB = 64 * 1024;

async function engineCalls(srv: RunningServer, operation: string): Promise<number> {
  const text = await (await fetch(`${srv.base}/metrics`)).text();
  const family = parsePrometheus(text).find((f) => f.name === 'containerlabs_engine_calls_total');
  const series = family?.metrics.find((m) => m.labels?.operation === operation);
  if (!series) throw new Error(`no containerlabs_engine_calls_total{operation="${operation}"} in /metrics`);
  return Number(series.value);
}

/** Resolves once `read` has not changed for `quietMs` (polled), or throws after `timeoutMs`. */
async function settled(read: () => Promise<number>, quietMs: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let last = await read();
  let since = performance.now();
  for (;;) {
    await sleep(250);
    const now = await read();
    if (now !== last) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return now;
    }
    if (performance.now() > deadline) throw new Error(`still changing after ${timeoutMs} ms (${now})`);
  }
}

const mib = (kib: number) => (kib / 1024).toFixed(0);

/** Lines of the server's JSON log. */
function logLines(srv: RunningServer): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of srv.logs().split('\n')) {
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {}
  }
  return out;
}

describe('control paths under abuse (real server, real engine)', () => {
  const fx = useServer(
    'abuse-control',
    { CL_POOL_SIZE: '0', CL_MAX_SESSIONS_PER_CLIENT: '5' },
    { engine: true, report: 'control paths: figures' },
  );
  const report = fx.report;
  let srv: RunningServer;
  /** The attacker's session. */
  let a: SessionInfo;
  /** An honest reader's terminal, typing alongside every attack. */
  let honest: TermClient;

  before(async () => {
    srv = fx.srv;
    a = await fx.session('processes');
    honest = await fx.terminal(await fx.session('processes'), 'host');
  });

  /**
   * Runs `attack` while the honest terminal echoes; returns a check of its round trips, to
   * call after the attack's own figures are reported.
   */
  async function withHonestEcho(label: string, attack: Promise<unknown>): Promise<() => void> {
    const probe = await EchoProbe.start(honest);
    const samples = await probe.during(attack, 100, 15_000);
    await probe.stop();
    const st = summarize(samples);
    report.push(formatSummary(`honest echo during ${label}`, st));
    return () => {
      assert.ok(st.n > 0, 'no echo sample');
      assert.ok(st.max < ECHO_BOUND_MS, `honest echo took ${st.max.toFixed(0)} ms`);
    };
  }

  test('100 000 resize frames: engine resizes stay near 10/s, the last size wins, memory bounded', async () => {
    const N = 100_000;
    const t = await fx.terminal(a, 'host');
    const pid = srv.pid;
    let rss: ReturnType<typeof sampler> | undefined;
    try {
      const r0 = await engineCalls(srv, 'resize');
      const rss0 = rssKiB(pid);
      rss = sampler(() => rssKiB(pid), 200);
      const t0 = performance.now();
      let sentMs = 0;
      const last = { cols: 133, rows: 41 };
      const flood = (async () => {
        for (let i = 0; i < N - 1; i++) {
          // Every frame differs from the one before it; none is the final size.
          const size = { cols: 20 + ((i * 7) % 100), rows: 5 + ((i * 3) % 30) };
          t.resize(size.cols, size.rows);
          // As fast as the socket takes them: wait only while our own send buffer is full.
          while (t.raw.bufferedAmount > 256 * 1024) await sleep(1);
          if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
        }
        t.resize(last.cols, last.rows);
        while (t.raw.bufferedAmount > 0) await sleep(5);
        sentMs = performance.now() - t0;
        // The server has everything; wait until it stops calling the engine.
        return settled(() => engineCalls(srv, 'resize'), 1500, 120_000);
      })();
      const echoOk = await withHonestEcho('the resize flood', flood);
      const r1 = await flood;
      const seconds = (performance.now() - t0) / 1000;
      const during = rss.stop();
      rss = undefined;
      const calls = r1 - r0;
      const peak = Math.max(...during);
      const size = (await t.exec('stty size', 20_000)).trim();
      report.push(
        `resize flood: ${N} frames sent in ${(sentMs / 1000).toFixed(1)} s; ${calls} engine resize calls ` +
          `until quiet after ${seconds.toFixed(1)} s; final stty size "${size}"; server RSS ` +
          `${mib(rss0)} MiB before, max ${mib(peak)} MiB`,
      );
      // At most ~10 per second while frames arrive, plus the last one.
      const bound = Math.ceil(10 * seconds) + 5;
      assert.ok(calls <= bound, `${calls} engine resize calls in ${seconds.toFixed(1)} s (bound ${bound})`);
      assert.ok(calls >= 1, 'no resize reached the engine');
      assert.equal(size, `${last.rows} ${last.cols}`, 'the TTY has the last size sent');
      assert.ok(peak - rss0 < RSS_GROWTH_BOUND_KIB, `server RSS grew by ${mib(peak - rss0)} MiB`);
      echoOk();
    } finally {
      rss?.stop();
      await t.close();
    }
  });

  test('clients that never read and send garbage and pings for 30 s are closed; memory bounded', async () => {
    const pid = srv.pid;
    const garbage = await fx.terminal(a, 'host', { prompt: false });
    const pinger = await fx.terminal(a, 'container', { prompt: false });
    await garbage.ready();
    await pinger.ready();
    const rss0 = rssKiB(pid);
    const rss = sampler(() => rssKiB(pid), 200);
    const floodStart = Date.now();
    const sent = { garbage: 0, pings: 0 };
    // Never read: the kernel buffers fill, then whatever the server queues for us. (Only
    // the protocol's own `ping` messages: ws itself cuts a socket with 60 WebSocket-level
    // pongs unsent, see the unit tests of ws-bridge.ts.)
    const attack = (c: TermClient, frame: (i: number) => void, count: (n: number) => void) => {
      c.pauseReading();
      return (async () => {
        let i = 0;
        while (Date.now() - floodStart < 30_000 && c.raw.readyState === c.raw.OPEN) {
          frame(i++);
          if (c.raw.bufferedAmount > 1024 * 1024) await sleep(10);
          if (i % 200 === 0) await new Promise((r) => setImmediate(r));
        }
        count(i);
      })();
    };
    const attacks = Promise.all([
      attack(
        garbage,
        (i) => garbage.raw.send(i % 2 ? JSON.stringify({ type: 'ping', t: i }) : `{x${i % 10}`),
        (n) => {
          sent.garbage = n;
        },
      ),
      attack(
        pinger,
        (i) => pinger.raw.send(JSON.stringify({ type: 'ping', t: i })),
        (n) => {
          sent.pings = n;
        },
      ),
    ]);
    let health: number[] = [];
    const healthLoop = (async () => {
      health = await healthFor(srv, 30_000 - (Date.now() - floodStart), { timeoutMs: HEALTH_BOUND_MS * 2 });
    })();
    let echoOk: () => void;
    let during: number[];
    try {
      echoOk = await withHonestEcho('the garbage and ping flood', Promise.all([attacks, healthLoop]));
    } finally {
      during = rss.stop();
    }
    const peak = Math.max(...during);
    // Read again: whatever the server sent is taken in, then the socket's end.
    for (const c of [garbage, pinger]) c.resumeReading();
    const deadline = Date.now() + 10_000;
    while ((garbage.closeCode === null || pinger.closeCode === null) && Date.now() < deadline)
      await sleep(100);
    const closes = logLines(srv).filter((l) => l.msg === 'closed a terminal socket');
    const closedFor = (terminal: string, reason: string) =>
      closes.find((l) => l.terminal === terminal && l.reason === reason);
    const malformed = closedFor('host', 'too many malformed control messages');
    const flooded = closedFor('container', 'too many control messages');
    const hs = summarize(health);
    report.push(
      `never-reading clients: ${sent.garbage} garbage/ping frames and ${sent.pings} pings sent; ` +
        `closed with ${garbage.closeCode} and ${pinger.closeCode}; server closed them after ` +
        `${malformed ? Number(malformed.time) - floodStart : '-'} ms (malformed) and ` +
        `${flooded ? Number(flooded.time) - floodStart : '-'} ms (flood); server RSS ` +
        `${mib(rss0)} MiB before, max ${mib(peak)} MiB`,
    );
    report.push(formatSummary('health during the garbage and ping flood', hs));
    assert.ok(peak - rss0 < RSS_GROWTH_BOUND_KIB, `server RSS grew by ${mib(peak - rss0)} MiB`);
    assert.ok(hs.n > 0 && hs.max < HEALTH_BOUND_MS, `health took ${hs.max} ms`);
    assert.ok(malformed, 'the server did not close the garbage socket for its malformed messages');
    assert.equal(malformed.code, 1008);
    assert.ok(flooded, 'the server did not close the ping socket for its flood');
    assert.equal(flooded.code, 1008);
    // Closed early, not at the end of the 30 s.
    assert.ok(Number(malformed.time) - floodStart < 10_000, 'the garbage socket was closed late');
    assert.ok(Number(flooded.time) - floodStart < 10_000, 'the ping socket was closed late');
    assert.notEqual(garbage.closeCode, null, 'the garbage socket is still open');
    assert.notEqual(pinger.closeCode, null, 'the ping socket is still open');
    assert.equal(srv.proc.exitCode, null, 'the server exited');
    echoOk();
  });

  test('50 parallel loops on /processes, /cgroup and a check: engine execs bounded, every answer valid', async () => {
    const LOOPS = 50;
    const auth = { authorization: `Bearer ${a.token}` };
    const url = (p: string) => `${srv.base}/api/v1/sessions/${a.id}/${p}`;
    const kinds = ['processes', 'cgroup', 'check'] as const;
    const answered = { processes: 0, cgroup: 0, check: 0 };
    const bad: string[] = [];
    const e0 = await engineCalls(srv, 'exec');
    const t0 = performance.now();
    const loop = async (n: number) => {
      for (let i = n; performance.now() - t0 < 10_000; i++) {
        const kind = kinds[i % kinds.length]!;
        const signal = AbortSignal.timeout(30_000);
        const r =
          kind === 'check'
            ? await fetch(url('checks/sleep-host-pid'), {
                method: 'POST',
                headers: { ...auth, 'content-type': 'application/json' },
                body: JSON.stringify({ answer: '1' }),
                signal,
              })
            : await fetch(url(kind), { headers: auth, signal });
        const text = await r.text();
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {}
        const valid =
          kind === 'processes'
            ? Array.isArray(body.processes) && body.processes.length > 0
            : kind === 'cgroup'
              ? (body.version === '1' || body.version === '2') &&
                typeof (body.memory as { limit?: unknown })?.limit === 'number' &&
                'percent' in ((body.cpu as object) ?? {})
              : body.id === 'sleep-host-pid' && body.passed === false && typeof body.message === 'string';
        if (r.status !== 200 || !valid) bad.push(`${kind}: ${r.status} ${text.slice(0, 200)}`);
        else answered[kind]++;
      }
    };
    const flood = Promise.all(Array.from({ length: LOOPS }, (_, n) => loop(n)));
    const echoOk = await withHonestEcho('the inspection flood', flood);
    const seconds = (performance.now() - t0) / 1000;
    const execs = (await engineCalls(srv, 'exec')) - e0;
    // Two kinds of snapshot (processes, cgroup), each at most about once a second.
    const bound = 2 * Math.ceil(seconds + 2);
    report.push(
      `inspection flood: ${LOOPS} loops for ${seconds.toFixed(1)} s answered ` +
        `${answered.processes} /processes, ${answered.cgroup} /cgroup, ${answered.check} checks ` +
        `with ${execs} engine execs (bound ${bound}); ${bad.length} bad answers`,
    );
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} requests did not answer 200 with a valid body`);
    assert.ok(answered.processes > 0 && answered.cgroup > 0 && answered.check > 0, JSON.stringify(answered));
    assert.ok(execs <= bound, `${execs} engine execs in ${seconds.toFixed(1)} s (bound ${bound})`);
    echoOk();
  });
});
