/**
 * The server under abuse, over its real HTTP and WebSocket ports: foreign origins, missing
 * and wrong tokens, oversized and malformed frames, an output flood to a client that stops
 * reading, oversized bodies, slowloris sockets, and the session caps and creation rate.
 * Afterwards the server process still runs, health answers 200, no token reached the log
 * and no container id reached any response, URL or control message.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { randomToken } from '../../server/src/sessions/session-manager.ts';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import { useServer } from '../support/fixtures.ts';
import {
  createSession,
  deleteSession,
  labContainers,
  type RunningServer,
  removeInstanceContainers,
  type SessionInfo,
  socketOutcome,
  startServer,
  type TermClient,
  terminalTicket,
} from '../support/server.ts';
import { formatSummary, summarize } from '../support/stats.ts';
import { dockerdPid, healthFor, httpFrom, rssKiB, sampler, sleep } from './support.ts';

stopServersAfterTests();
const capsInstance = `abuse-caps-${process.pid}`;
const TOKEN_RE = /^[A-Za-z0-9_-]{22}$/;
/** Health must keep answering within this during the floods (generous: 2 shared cores). */
const HEALTH_BOUND_MS = 5_000;

/** Everything the server said to us: response URLs, headers, bodies, control messages. */
const seen: string[] = [];
const tokens = new Set<string>();
const containerIds = new Set<string>();

const realFetch = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
  const r = await realFetch(input, init);
  const body = await r.clone().text();
  seen.push(String(input), JSON.stringify([...r.headers]), body);
  try {
    const j = JSON.parse(body) as { token?: unknown };
    if (typeof j.token === 'string') tokens.add(j.token);
  } catch {}
  return r;
};

async function noteContainers(inst: string): Promise<void> {
  for (const c of await labContainers(inst)) containerIds.add(c.Id);
}

/** How a terminal socket went (tests/support/server.ts socketOutcome), noted for the end check. */
async function outcome(url: string, headers: Record<string, string> = {}): Promise<string> {
  const o = await socketOutcome(url, headers);
  seen.push(url, o);
  return o;
}

function termUrl(base: string, s: SessionInfo, name: string, query: string): string {
  const t = s.terminals.find((x) => x.name === name)!;
  return `${base.replace(/^http/, 'ws')}${t.url}${query}`;
}

/** Every terminal client of this file, so their control messages can be checked at the end. */
const clients: TermClient[] = [];

/** Sends raw bytes on a new connection; resolves with the response head (or what came in 5 s). */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      got += d;
      if (got.includes('\r\n\r\n')) sock.destroy();
    });
    sock.on('error', () => {});
    sock.on('close', () => resolve(got));
    sock.setTimeout(5000, () => sock.destroy());
    sock.write(text);
  });
}

/** Slowloris: sockets that send a request's headers one line every few seconds. */
function slowloris(port: number, n: number, everyMs: number, giveUpMs: number) {
  const opened = performance.now();
  const socks: { sock: Socket; closedAfterMs: number | null; byServer: boolean; response: string }[] = [];
  for (let i = 0; i < n; i++) {
    const entry = {
      sock: connect({ host: '127.0.0.1', port }),
      closedAfterMs: null as number | null,
      byServer: false,
      response: '',
    };
    entry.sock.setEncoding('utf8');
    entry.sock.on('data', (d: string) => {
      entry.response += d;
    });
    entry.sock.on('error', () => {});
    entry.sock.on('close', () => {
      entry.closedAfterMs = performance.now() - opened;
      clearInterval(timer);
    });
    entry.sock.on('end', () => {
      entry.byServer = true;
    });
    entry.sock.write(`GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
    let line = 0;
    const timer = setInterval(() => {
      if (!entry.sock.destroyed) entry.sock.write(`X-Slow-${line++}: ${'a'.repeat(8)}\r\n`);
    }, everyMs);
    socks.push(entry);
  }
  const giveUp = setTimeout(() => {
    for (const e of socks) e.sock.destroy();
  }, giveUpMs);
  giveUp.unref();
  return {
    socks,
    async settled(): Promise<void> {
      while (socks.some((e) => e.closedAfterMs === null)) await sleep(250);
      clearTimeout(giveUp);
    },
  };
}

describe('server under abuse (real server, real engine)', () => {
  const fx = useServer(
    'abuse-server',
    { CL_POOL_SIZE: '0', CL_MAX_SESSIONS_PER_CLIENT: '5', CL_CREATE_PER_MINUTE: '60' },
    { engine: true, report: 'server abuse: figures' },
  );
  const report = fx.report;
  let srv: RunningServer;
  let s: SessionInfo;
  let loris: ReturnType<typeof slowloris>;
  const LORIS = 20;
  const LORIS_GIVE_UP_MS = 75_000;
  /** A terminal of the file's session at its prompt, kept for the check at the end. */
  const open = async (prompt = true): Promise<TermClient> => {
    const t = await fx.terminal(s, 'host', prompt ? {} : { prompt: false });
    clients.push(t);
    return t;
  };

  before(async () => {
    srv = fx.srv;
    // In the background for the whole file: the server must close these by itself.
    loris = slowloris(srv.port, LORIS, 2000, LORIS_GIVE_UP_MS);
    fx.defer(() => {
      for (const e of loris.socks) e.sock.destroy();
    });
    s = await fx.session('processes');
    await noteContainers(fx.instance);
  });

  after(async () => {
    await removeInstanceContainers(capsInstance);
    globalThis.fetch = realFetch;
  });

  test('tokens: 128 random bits, required on every session route and terminal', async () => {
    assert.match(s.token, TOKEN_RE);
    assert.equal(Buffer.from(s.token, 'base64url').length, 16);
    const other = await createSession(srv.base, 'processes');
    try {
      assert.notEqual(other.token, s.token);
      const get = (token?: string) =>
        fetch(`${srv.base}/api/v1/sessions/${s.id}`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
      assert.equal((await get()).status, 401, 'no token');
      assert.equal((await get(randomToken())).status, 401, 'a random token');
      assert.equal((await get(other.token)).status, 401, "another session's token");
      assert.equal((await get(s.token.slice(0, -1))).status, 401, 'a truncated token');
      assert.equal((await get(s.token)).status, 200, 'its own token');
      const del = await fetch(`${srv.base}/api/v1/sessions/${s.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${other.token}` },
      });
      assert.equal(del.status, 401, "delete with another session's token");
      // Terminals open with a single-use ticket for that session and terminal, never with
      // the token; a refusal closes the socket with a code the page can show.
      const refused = 'close 4001 bad_token';
      assert.equal(await outcome(termUrl(srv.base, s, 'host', '')), refused, 'terminal without ticket');
      assert.equal(
        await outcome(termUrl(srv.base, s, 'host', `?ticket=${randomToken()}`)),
        refused,
        'random',
      );
      assert.equal(await outcome(termUrl(srv.base, s, 'host', `?token=${s.token}`)), refused, 'the token');
      assert.equal(
        await outcome(termUrl(srv.base, s, 'host', `?ticket=${s.token}`)),
        refused,
        'token as ticket',
      );
      const others = await terminalTicket(srv.base, other, 'host');
      assert.equal(
        await outcome(termUrl(srv.base, s, 'host', `?ticket=${others}`)),
        refused,
        "other's ticket",
      );
      const forContainer = await terminalTicket(srv.base, s, 'container');
      assert.equal(
        await outcome(termUrl(srv.base, s, 'host', `?ticket=${forContainer}`)),
        refused,
        "the container terminal's ticket on the host terminal",
      );
      const once = await terminalTicket(srv.base, s, 'host');
      assert.equal(
        await outcome(termUrl(srv.base, s, 'host', `?ticket=${once}`)),
        'attached',
        'its own ticket',
      );
      assert.equal(
        await outcome(termUrl(srv.base, s, 'host', `?ticket=${once}`)),
        refused,
        'the same ticket again',
      );
      const tickets = (name: string, token: string) =>
        fetch(`${srv.base}/api/v1/sessions/${s.id}/terminals/${name}/tickets`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
      assert.equal((await tickets('host', other.token)).status, 401, "a ticket with another session's token");
      assert.equal((await tickets('nope', s.token)).status, 404, 'a ticket for an unknown terminal');
      const ws = srv.base.replace(/^http/, 'ws');
      assert.equal(
        await outcome(
          `${ws}/api/v1/sessions/${s.id}/terminals/nope?ticket=${await terminalTicket(srv.base, s, 'host')}`,
        ),
        refused,
        'unknown terminal',
      );
      assert.equal(
        await outcome(`${ws}/api/v1/sessions/x/terminals/host?ticket=${s.token}`),
        'close 1008 bad_request',
        'malformed session id',
      );
    } finally {
      await deleteSession(srv.base, other);
    }
  });

  test('token generator: unique, 16 bytes, every bit unbiased (20 000 tokens)', () => {
    const N = 20_000;
    const all = new Set<string>();
    const ones = new Array<number>(128).fill(0);
    for (let i = 0; i < N; i++) {
      const t = randomToken();
      assert.match(t, TOKEN_RE);
      all.add(t);
      const b = Buffer.from(t, 'base64url');
      assert.equal(b.length, 16);
      for (let bit = 0; bit < 128; bit++) if (b[bit >> 3]! & (1 << (bit & 7))) ones[bit]!++;
    }
    assert.equal(all.size, N, 'a token repeated');
    // Each bit is a fair coin: 20 000 flips stay within ±5 sigma (sigma ≈ 71) of 10 000.
    const worst = Math.max(...ones.map((k) => Math.abs(k - N / 2)));
    report.push(
      `token bits: worst deviation from N/2 over 128 bit positions: ${worst} (5 sigma = ${Math.round((5 * Math.sqrt(N)) / 2)})`,
    );
    assert.ok(worst < 5 * (Math.sqrt(N) / 2), `bit bias ${worst}`);
  });

  test('foreign Origin: refused with 4003 and a message; own origin allowed', async () => {
    const url = async () =>
      termUrl(srv.base, s, 'host', `?ticket=${await terminalTicket(srv.base, s, 'host')}`);
    for (const origin of [
      'http://evil.example',
      'null',
      `http://127.0.0.1:${srv.port + 1}`,
      `http://localhost:${srv.port}`,
    ]) {
      assert.equal(await outcome(await url(), { origin }), 'close 4003 forbidden', origin);
    }
    assert.equal(await outcome(await url(), { origin: srv.base }), 'attached', 'own origin');
    assert.match(srv.logs(), /terminal refused: foreign origin/);
  });

  test('malformed control messages get an error reply; the same terminal keeps working', async () => {
    const t = await open();
    try {
      const garbage = [
        '{',
        'null',
        '[]',
        '42',
        '"resize"',
        '{"type":"resize","cols":-1,"rows":5}',
        '{"type":"resize","cols":1e9,"rows":1e9}',
        '{"type":"__proto__"}',
        '{"type":"exec","cmd":"id"}',
        randomBytes(512).toString('base64'),
        'x'.repeat(60_000),
      ];
      const before = t.controls.length;
      for (const g of garbage) t.raw.send(g);
      const deadline = Date.now() + 5000;
      while (
        t.controls.slice(before).filter((c) => c.type === 'error').length < garbage.length &&
        Date.now() < deadline
      ) {
        await sleep(50);
      }
      const errors = t.controls.slice(before).filter((c) => c.type === 'error');
      assert.equal(errors.length, garbage.length, JSON.stringify(t.controls.slice(before)));
      for (const e of errors) assert.equal(e.code, 'bad_message');
      // Valid ones still work on the same socket, and so does the shell.
      t.raw.send(JSON.stringify({ type: 'ping', t: 7 }));
      t.resize(100, 30);
      // (The resize reaches the TTY through the engine, asynchronously.)
      let size = '';
      for (let i = 0; i < 20 && size !== '30 100'; i++) {
        if (i) await sleep(100);
        size = (await t.exec('stty size')).trim();
      }
      assert.equal(size, '30 100');
      assert.ok(t.controls.some((c) => c.type === 'pong' && c.t === 7));
      assert.equal(t.closeCode, null);
    } finally {
      await t.close();
    }
  });

  test('a text frame that is not UTF-8 closes that socket (1007), nothing else', async () => {
    const t = await open();
    // A text frame with bytes that are not UTF-8 (ws validates before we see it).
    t.raw.send(Buffer.from([0xff, 0xfe, 0x80, 0x81]), { binary: false });
    const deadline = Date.now() + 5000;
    while (t.closeCode === null && Date.now() < deadline) await sleep(50);
    assert.equal(t.closeCode, 1007);
    assert.equal(srv.proc.exitCode, null);
  });

  test('a frame over 64 KiB closes the socket with 1009; a reconnect gets the same shell', async () => {
    for (const binary of [true, false]) {
      const t = await open();
      await t.exec('export MARK=same-shell');
      t.raw.send(binary ? Buffer.alloc(64 * 1024 + 1, 0x61) : 'a'.repeat(64 * 1024 + 1), { binary });
      const deadline = Date.now() + 5000;
      while (t.closeCode === null && Date.now() < deadline) await sleep(50);
      assert.equal(t.closeCode, 1009, `${binary ? 'binary' : 'text'} frame`);
      const again = await open(false);
      try {
        await again.ready();
        assert.equal((await again.exec('echo $MARK')).trim(), 'same-shell');
      } finally {
        await again.close();
      }
    }
    // A frame of exactly 64 KiB is fine.
    const t = await open();
    try {
      t.raw.send(JSON.stringify({ type: 'ping', pad: 'p'.repeat(64 * 1024 - 30) }).slice(0, 64 * 1024));
      assert.equal((await t.exec('echo ok-$((1+1))')).trim(), 'ok-2');
    } finally {
      await t.close();
    }
  });

  test('output flood to a client that stops reading: server memory stays bounded, health answers', async () => {
    const pid = srv.pid;
    const dpid = dockerdPid();
    const t = await open();
    try {
      const rss0 = rssKiB(pid);
      const d0 = dpid ? rssKiB(dpid) : Number.NaN;
      const rss = sampler(() => rssKiB(pid), 200);
      const drss = dpid ? sampler(() => rssKiB(dpid), 500) : null;
      // Stop reading the TCP socket: the kernel buffers fill, then the server's.
      t.pauseReading();
      t.send('timeout 6 yes; echo "@@flood$((40+2))@@"\r');
      const health = await healthFor(srv, 7000);
      const during = rss.stop();
      t.resumeReading();
      const text = await t.waitFor(/@@flood42@@/, 60_000);
      const yLines = (text.match(/^y$/gm) ?? []).length;
      const rss1 = rssKiB(pid);
      const dd = drss?.stop() ?? [];
      const hs = summarize(health);
      const peak = Math.max(...during);
      report.push(
        `flood, reader paused: server RSS ${(rss0 / 1024).toFixed(0)} MiB before, ` +
          `max ${(peak / 1024).toFixed(0)} MiB during, ${(rss1 / 1024).toFixed(0)} MiB after; ` +
          `${yLines} lines reached the reader once it read again` +
          (dpid
            ? `; dockerd RSS ${(d0 / 1024).toFixed(0)} → max ${(Math.max(...dd) / 1024).toFixed(0)} MiB`
            : ''),
      );
      report.push(formatSummary('health during the paused flood', hs));
      assert.ok(peak - rss0 < 64 * 1024, `server RSS grew by ${((peak - rss0) / 1024).toFixed(0)} MiB`);
      assert.ok(hs.max < HEALTH_BOUND_MS, `health took ${hs.max} ms`);
      assert.equal((await t.exec('echo alive-$((6*7))', 20_000)).trim(), 'alive-42');
    } finally {
      await t.close();
    }
  });

  test('output flood with nobody attached: only the replay tail is kept', async () => {
    const pid = srv.pid;
    const t = await open();
    const rss0 = rssKiB(pid);
    const rss = sampler(() => rssKiB(pid), 200);
    t.send('timeout 5 yes; clear; echo "@@gone$((40+2))@@"\r');
    await sleep(300);
    await t.close();
    const health = await healthFor(srv, 6000);
    const during = rss.stop();
    const again = await open(false);
    try {
      await again.ready();
      const replayed = Buffer.byteLength(again.output);
      const hs = summarize(health);
      report.push(
        `flood, nobody attached: server RSS ${(rss0 / 1024).toFixed(0)} MiB before, max ${(Math.max(...during) / 1024).toFixed(0)} MiB; replay on reconnect ${replayed} bytes`,
      );
      report.push(formatSummary('health during the detached flood', hs));
      assert.ok(replayed <= 64 * 1024, `replayed ${replayed} bytes`);
      assert.ok(Math.max(...during) - rss0 < 64 * 1024, 'server RSS grew by more than 64 MiB');
      assert.ok(hs.max < HEALTH_BOUND_MS, `health took ${hs.max} ms`);
      await again.waitFor(/@@gone42@@/, 20_000);
      assert.equal((await again.exec('echo alive-$((6*7))', 20_000)).trim(), 'alive-42');
    } finally {
      await again.close();
    }
  });

  test('HTTP bodies: over 16 KiB → 413, malformed → 400, unknown lab → 404', async () => {
    const post = (body: string, type = 'application/json') =>
      fetch(`${srv.base}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': type }, body });
    const big = await post(JSON.stringify({ lab: 'processes', pad: 'x'.repeat(20 * 1024) }));
    assert.equal(big.status, 413);
    // A declared 4 MiB body is refused on its headers, before the server reads any of it
    // (a client that sends it all anyway gets EPIPE: the server has answered and closed).
    const huge = await rawExchange(
      srv.port,
      `POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${4 * 1024 * 1024}\r\n\r\n{"lab":"`,
    );
    assert.match(huge, /^HTTP\/1\.1 413 /);
    assert.equal((await post('{"lab":')).status, 400);
    assert.equal((await post('[]')).status, 400);
    assert.equal((await post('{"lab":"processes","extra":1}')).status, 400);
    assert.equal((await post('{"lab":"../../etc/passwd"}')).status, 404);
    assert.equal((await post('lab=processes', 'application/x-www-form-urlencoded')).status, 415);
    assert.equal((await big.json()).error.code, 'body_too_large');
  });

  test('session caps and creation rate: 429 with Retry-After, 503 when full, no race', async () => {
    const caps = await startServer({
      CL_INSTANCE: capsInstance,
      CL_POOL_SIZE: '0',
      CL_MAX_SESSIONS: '4',
      CL_MAX_SESSIONS_PER_CLIENT: '2',
      CL_CREATE_PER_MINUTE: '3',
    });
    const made: { s: SessionInfo; from: string }[] = [];
    const create = async (from: string) => {
      const r = await httpFrom(caps.base, '/api/v1/sessions', {
        method: 'POST',
        body: '{"lab":"processes"}',
        localAddress: from,
      });
      seen.push(r.body, JSON.stringify(r.headers));
      if (r.status === 201) {
        const s = JSON.parse(r.body) as SessionInfo;
        tokens.add(s.token);
        made.push({ s, from });
      }
      return r;
    };
    try {
      // A burst of 8 parallel Starts from one client: exactly its quota of 2 succeeds.
      const burst = await Promise.all(Array.from({ length: 8 }, () => create('127.0.0.2')));
      const codes = burst.map((r) => r.status).sort();
      assert.deepEqual(codes, [201, 201, 429, 429, 429, 429, 429, 429]);
      for (const r of burst.filter((x) => x.status === 429)) {
        assert.ok(Number(r.headers['retry-after']) > 0, 'Retry-After');
        assert.equal(JSON.parse(r.body).error.code, 'rate_limited');
      }
      // Another client fills the server; a third one finds it full.
      assert.equal((await create('127.0.0.3')).status, 201);
      assert.equal((await create('127.0.0.3')).status, 201);
      const full = await create('127.0.0.4');
      assert.equal(full.status, 503);
      assert.equal(JSON.parse(full.body).error.code, 'out_of_capacity');
      assert.ok(Number(full.headers['retry-after']) > 0);
      await noteContainers(capsInstance);
      // The first client ends its sessions; its third Start this minute is allowed, the
      // fourth is over the rate.
      for (const m of made.filter((x) => x.from === '127.0.0.2'))
        assert.equal(await deleteSession(caps.base, m.s), 204);
      const third = await create('127.0.0.2');
      assert.equal(third.status, 201);
      await deleteSession(caps.base, made.at(-1)!.s);
      const fourth = await create('127.0.0.2');
      assert.equal(fourth.status, 429);
      assert.match(JSON.parse(fourth.body).error.message, /Too many labs started/);
      const retry = Number(fourth.headers['retry-after']);
      report.push(`caps: burst of 8 → 2×201 + 6×429; full → 503; rate → 429 Retry-After ${retry}s`);
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
      assert.equal((await fetch(`${caps.base}/api/v1/health`)).status, 200);
      for (const t of tokens) assert.ok(!caps.logs().includes(t), 'a token is in the log');
    } finally {
      for (const m of made) await deleteSession(caps.base, m.s).catch(() => {});
      assert.equal(await caps.stop(), 0);
      await removeInstanceContainers(capsInstance);
    }
  });

  test('slowloris: the server closes sockets that trickle headers; health answered all along', async () => {
    const health = await healthFor(srv, LORIS_GIVE_UP_MS, {
      everyMs: 500,
      until: () => loris.socks.every((e) => e.closedAfterMs !== null),
    });
    await loris.settled();
    const closed = loris.socks.map((e) => e.closedAfterMs!);
    const st = summarize(closed.map((ms) => ms / 1000));
    report.push(
      `slowloris: ${LORIS} sockets, one header line every 2 s; closed by the server after ` +
        `p50=${st.p50.toFixed(1)}s max=${st.max.toFixed(1)}s; answers: ${[...new Set(loris.socks.map((e) => e.response.split('\r\n')[0] || '(none)'))].join(', ')}`,
    );
    if (health.length)
      report.push(formatSummary('health while slowloris sockets were open', summarize(health)));
    for (const e of loris.socks) {
      assert.ok(e.byServer, 'a slowloris socket was not closed by the server');
      assert.ok(e.closedAfterMs! < LORIS_GIVE_UP_MS - 1000, `open for ${e.closedAfterMs} ms`);
    }
  });

  test('afterwards: process alive, health 200, no token in the log, no container id anywhere', async () => {
    assert.equal(srv.proc.exitCode, null, 'the server process exited');
    const h = await fetch(`${srv.base}/api/v1/health`);
    assert.equal(h.status, 200);
    assert.equal((await h.json()).status, 'ok');
    const logs = srv.logs();
    const errors = logs.split('\n').filter((l) => /"level":(50|60)/.test(l));
    console.log(errors.map((l) => l.slice(0, 400)).join('\n'));
    assert.deepEqual(errors, [], 'error or fatal lines in the log');
    assert.ok(tokens.size >= 3, `only ${tokens.size} tokens seen`);
    for (const t of tokens) assert.ok(!logs.includes(t), 'a token is in the server log');
    assert.ok(containerIds.size >= 1, 'no container ids collected');
    for (const c of clients) seen.push(JSON.stringify(c.controls));
    const everything = seen.join('\n');
    for (const id of containerIds) {
      assert.ok(!everything.includes(id.slice(0, 12)), `container id ${id.slice(0, 12)} in a response`);
    }
  });
});
