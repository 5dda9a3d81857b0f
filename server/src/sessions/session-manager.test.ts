import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { FakeRuntime } from '../../../tests/unit-support/fake-runtime.ts';
import { testLab } from '../../../tests/unit-support/test-lab.ts';
import { AppError } from '../errors.ts';
import { MemorySessionStore, type SessionStore } from '../store/session-store.ts';
import { CloseCode } from '../terminal/protocol.ts';
import type { TerminalSink } from '../terminal/terminal.ts';
import { HOST_GONE_MESSAGE, type SessionLimits, SessionManager, TICKET_TTL_MS } from './session-manager.ts';

const lab = testLab();

const MIN = 60_000;
const limits: SessionLimits = {
  ttlMs: 30 * MIN,
  maxLifetimeMs: 120 * MIN,
  idleTimeoutMs: 10 * MIN,
  maxSessions: 3,
  maxSessionsPerClient: 2,
  createPerMinute: 5,
  engineConcurrency: 2,
};

class TestClock {
  t = Date.parse('2026-01-01T00:00:00Z');
  now() {
    return this.t;
  }
  advance(ms: number) {
    this.t += ms;
  }
}

function sink(): TerminalSink & { out: string; msgs: unknown[]; closed: number | null } {
  const s = {
    out: '',
    msgs: [] as unknown[],
    closed: null as number | null,
    output(c: Buffer) {
      s.out += c.toString();
    },
    control(m: unknown) {
      s.msgs.push(m);
    },
    close(code: number) {
      s.closed = code;
    },
  };
  return s;
}

const flush = () => new Promise((r) => setImmediate(r));

async function rejectsWith(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: unknown) => e instanceof AppError && e.code === code);
}

describe('SessionManager', () => {
  let clock: TestClock;
  let rt: FakeRuntime;
  let mgr: SessionManager;
  const events: string[] = [];

  beforeEach(() => {
    clock = new TestClock();
    rt = new FakeRuntime();
    events.length = 0;
    mgr = new SessionManager({
      runtime: rt,
      labs: [lab],
      limits,
      clock,
      instance: 'test',
      events: { event: (n) => events.push(n) },
    });
  });

  /** A session of client `a` with its host terminal open and a sink attached to it. */
  const attached = async () => {
    const { session } = await mgr.create('processes', 'a');
    const term = await mgr.terminal(session, 'host', { cols: 80, rows: 24 });
    const s = sink();
    term.attach(s);
    return { session, term, sink: s };
  };

  test('terminal tickets: single use, for one terminal of one session, 30 s, a bounded number', async () => {
    const { session: s } = await mgr.create('processes', 'a');
    const { session: other } = await mgr.create('processes', 'b');
    const t = mgr.ticket(s, 'host');
    assert.equal(Buffer.from(t.ticket, 'base64url').length, 16);
    assert.equal(t.expiresAt, clock.now() + TICKET_TTL_MS);
    assert.throws(() => mgr.redeem(other.id, 'host', t.ticket), { code: 'bad_token' }, "another session's");
    assert.equal(mgr.redeem(s.id, 'host', t.ticket), s, 'its own session');
    assert.throws(() => mgr.redeem(s.id, 'host', t.ticket), { code: 'bad_token' }, 'used once already');
    const c = mgr.ticket(s, 'container');
    assert.throws(() => mgr.redeem(s.id, 'host', c.ticket), { code: 'bad_token' }, 'for another terminal');
    assert.throws(
      () => mgr.redeem(s.id, 'container', c.ticket),
      { code: 'bad_token' },
      'a failed try uses it up',
    );
    const late = mgr.ticket(s, 'host');
    clock.advance(TICKET_TTL_MS);
    assert.throws(() => mgr.redeem(s.id, 'host', late.ticket), { code: 'bad_token' }, 'expired');
    assert.throws(() => mgr.redeem(s.id, 'host', undefined), { code: 'bad_token' }, 'none');
    assert.throws(() => mgr.redeem('nope-nope-nope', 'host', 'x'), { code: 'not_found' }, 'unknown session');
    assert.throws(() => mgr.ticket(s, 'nope'), { code: 'not_found' }, 'unknown terminal');
    // At most 16 outstanding: the oldest go first.
    const many = Array.from({ length: 20 }, () => mgr.ticket(s, 'host').ticket);
    assert.throws(() => mgr.redeem(s.id, 'host', many[0]), { code: 'bad_token' }, 'the oldest was dropped');
    assert.equal(mgr.redeem(s.id, 'host', many[19]), s);
    await mgr.remove(s, 'stopped');
    assert.throws(() => mgr.redeem(s.id, 'host', many[18]), { code: 'not_found' }, 'an ended session');
    await mgr.shutdown();
  });

  test('creates a session with a lab host, a 128-bit token and an expiry', async () => {
    const { session, token } = await mgr.create('processes', 'a');
    assert.equal(rt.hosts.size, 1);
    assert.equal(Buffer.from(token, 'base64url').length, 16);
    assert.equal(session.expiresAt, clock.now() + limits.ttlMs);
    const host = [...rt.hosts.values()][0]!;
    assert.equal(host.sessionId, session.id);
    assert.equal(host.instance, 'test');
    assert.equal(host.deadline?.getTime(), clock.now() + limits.maxLifetimeMs);
    assert.deepEqual(events, ['session.started']);
  });

  test('unknown lab is refused without touching the engine', async () => {
    await rejectsWith(mgr.create('nope', 'a'), 'unknown_lab');
    assert.equal(rt.created, 0);
  });

  test('tokens are checked: unknown id → not_found, wrong token → bad_token', async () => {
    const { session, token } = await mgr.create('processes', 'a');
    assert.equal(mgr.authorize(session.id, token), session);
    assert.throws(
      () => mgr.authorize(session.id, `${token}x`),
      (e: AppError) => e.code === 'bad_token',
    );
    assert.throws(
      () => mgr.authorize(session.id, undefined),
      (e: AppError) => e.code === 'bad_token',
    );
    assert.throws(
      () => mgr.authorize('nosuchsession', token),
      (e: AppError) => e.code === 'not_found',
    );
  });

  test('per-client and total limits', async () => {
    await mgr.create('processes', 'a');
    await mgr.create('processes', 'a');
    await rejectsWith(mgr.create('processes', 'a'), 'rate_limited');
    await mgr.create('processes', 'b');
    await rejectsWith(mgr.create('processes', 'c'), 'out_of_capacity');
    assert.equal(rt.hosts.size, 3);
  });

  test('creation rate per client is limited and refills with time', async () => {
    const m = new SessionManager({
      runtime: rt,
      labs: [lab],
      limits: { ...limits, maxSessions: 100, maxSessionsPerClient: 100, createPerMinute: 2 },
      clock,
      instance: 'test',
    });
    await m.create('processes', 'a');
    await m.create('processes', 'a');
    const err = await m.create('processes', 'a').catch((e: AppError) => e);
    assert.ok(err instanceof AppError && err.code === 'rate_limited');
    assert.ok(err.retryAfter && err.retryAfter > 0 && err.retryAfter <= 30);
    clock.advance(30_000);
    await m.create('processes', 'a');
  });

  test('engine down → engine_unavailable, and the failed session does not count', async () => {
    rt.reachable = false;
    await rejectsWith(mgr.create('processes', 'a'), 'engine_unavailable');
    assert.equal(mgr.count, 0);
  });

  test('expiry: the reaper ends expired sessions and removes their hosts', async () => {
    const { sink: s1 } = await attached();
    clock.advance(limits.ttlMs - 1);
    assert.deepEqual((await mgr.reap()).expired, 0);
    clock.advance(1);
    assert.deepEqual((await mgr.reap()).expired, 1);
    assert.equal(rt.hosts.size, 0);
    assert.equal(s1.closed, 4000);
    assert.equal(mgr.count, 0);
  });

  test('extend moves expiry forward but never past the maximum lifetime', async () => {
    const { session } = await mgr.create('processes', 'a');
    clock.advance(20 * MIN);
    mgr.extend(session);
    assert.equal(session.expiresAt, clock.now() + limits.ttlMs);
    clock.advance(80 * MIN);
    mgr.extend(session);
    assert.equal(session.expiresAt, session.createdAt + limits.maxLifetimeMs);
  });

  test('idle reaping: only sessions with no attached terminal and no recent input', async () => {
    const a = await mgr.create('processes', 'a');
    const b = await mgr.create('processes', 'b');
    const term = await mgr.terminal(a.session, 'host', { cols: 80, rows: 24 });
    term.attach(sink());
    clock.advance(limits.idleTimeoutMs);
    const r = await mgr.reap();
    assert.equal(r.idle, 1);
    assert.equal(mgr.count, 1);
    assert.equal(mgr.list()[0]?.id, a.session.id);
    assert.throws(
      () => mgr.authorize(b.session.id, b.token),
      (e: AppError) => e.code === 'not_found',
    );
  });

  test('reconnect: the same shell comes back with its recent output replayed', async () => {
    const { session, term: t1, sink: first } = await attached();
    t1.input(Buffer.from('export X=42\r'));
    await flush();
    assert.equal(first.out, 'export X=42\r');
    t1.detach(first);
    const t2 = await mgr.terminal(session, 'host', { cols: 100, rows: 30 });
    assert.equal(t2, t1, 'same terminal object, same shell');
    assert.equal(rt.terminals.length, 1, 'no second shell was started');
    const second = sink();
    t2.attach(second);
    assert.deepEqual(second.msgs[0], {
      type: 'attached',
      terminal: 'host',
      replay: true,
      expiresAt: new Date(session.expiresAt).toISOString(),
    });
    assert.equal(second.out, 'export X=42\r');
    assert.deepEqual(second.msgs.at(-1), { type: 'replayed' });
  });

  test('a second socket on the same terminal replaces the first', async () => {
    const { session } = await mgr.create('processes', 'a');
    const t = await mgr.terminal(session, 'host', { cols: 80, rows: 24 });
    const a = sink();
    const b = sink();
    t.attach(a);
    t.attach(b);
    assert.equal(a.closed, 4011);
    t.input(Buffer.from('x'));
    await flush();
    assert.equal(b.out, 'x');
    assert.equal(a.out, '');
  });

  test('a shell that exits is replaced by a fresh one on the next attach', async () => {
    const { session, term: t1, sink: s } = await attached();
    t1.input(Buffer.from('exit\r'));
    await rt.terminals[0]!.exited;
    await new Promise((r) => setImmediate(r));
    assert.equal(s.closed, 4010);
    assert.deepEqual(s.msgs.at(-1), { type: 'exit', code: 0 });
    const t2 = await mgr.terminal(session, 'host', { cols: 80, rows: 24 });
    assert.notEqual(t2, t1);
    assert.equal(rt.terminals.length, 2);
  });

  test('unknown terminal name is not_found', async () => {
    const { session } = await mgr.create('processes', 'a');
    await rejectsWith(mgr.terminal(session, 'nope', { cols: 80, rows: 24 }), 'not_found');
  });

  test('leftovers: at start all hosts of this instance go; others only past their deadline', async () => {
    const past = new Date(clock.now() - 1000);
    const future = new Date(clock.now() + 60_000);
    rt.addLeftover({ id: 'old-mine', sessionId: 's1', lab: 'processes', instance: 'test', deadline: future });
    rt.addLeftover({
      id: 'other-live',
      sessionId: 's2',
      lab: 'processes',
      instance: 'other',
      deadline: future,
    });
    rt.addLeftover({
      id: 'other-dead',
      sessionId: 's3',
      lab: 'processes',
      instance: 'other',
      deadline: past,
    });
    // Another server's pool host, taken by its reader: its label deadline still covers the
    // session (pool max age + lifetime), whatever its own lease says.
    rt.addLeftover({
      id: 'other-taken',
      sessionId: 's4',
      lab: 'processes',
      instance: 'other',
      deadline: future,
      pooled: true,
    });
    const { session } = await mgr.create('processes', 'a');
    assert.equal(await mgr.removeLeftovers({ all: false }), 2);
    assert.deepEqual([...rt.hosts.keys()].sort(), ['other-live', 'other-taken', session.hostId].sort());
  });

  test('leftovers: a stopped host goes whoever made it (no AutoRemove on a live-restore engine)', async () => {
    const future = new Date(clock.now() + 60_000);
    rt.addLeftover({
      id: 'other-stopped',
      sessionId: 's5',
      lab: 'processes',
      instance: 'other',
      deadline: future,
      running: false,
      exited: true,
    });
    // Being created by another server (not started yet): not stopped for good, left alone.
    rt.addLeftover({
      id: 'other-creating',
      sessionId: 's6',
      lab: 'processes',
      instance: 'other',
      deadline: future,
      running: false,
      exited: false,
    });
    assert.equal(await mgr.removeLeftovers({ all: false }), 1);
    assert.deepEqual([...rt.hosts.keys()], ['other-creating']);
  });

  test('shutdown ends every session and refuses new ones; its sockets hear 4012, not 4000', async () => {
    const { session } = await mgr.create('processes', 'a');
    await mgr.create('processes', 'b');
    const t = await mgr.terminal(session, 'host', { cols: 80, rows: 24 });
    const s = sink();
    t.attach(s);
    await mgr.shutdown();
    assert.equal(s.closed, CloseCode.serverShutdown);
    assert.equal(rt.hosts.size, 0);
    await rejectsWith(mgr.create('processes', 'c'), 'out_of_capacity');
  });

  test('shutdown during a Start waits for the engine and removes the host it made', async () => {
    rt.createDelayMs = 30;
    const start = mgr.create('processes', 'a');
    await flush();
    assert.equal(rt.created, 0, 'the engine is still creating it');
    await mgr.shutdown();
    assert.equal(rt.created, 1, 'shutdown waited for the create');
    assert.equal(rt.hosts.size, 0, 'and the host it made is gone before shutdown resolves');
    await rejectsWith(start, 'out_of_capacity');
  });

  test('engine work is bounded: at most engineConcurrency creations at once', async () => {
    rt.createDelayMs = 20;
    const m = new SessionManager({
      runtime: rt,
      labs: [lab],
      limits: {
        ...limits,
        maxSessions: 10,
        maxSessionsPerClient: 10,
        createPerMinute: 100,
        engineConcurrency: 2,
      },
      clock,
      instance: 'test',
    });
    let max = 0;
    const orig = rt.createLabHost.bind(rt);
    let active = 0;
    rt.createLabHost = async (req) => {
      active++;
      max = Math.max(max, active);
      try {
        return await orig(req);
      } finally {
        active--;
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => m.create('processes', `c${i}`)));
    assert.equal(max, 2);
    assert.equal(m.count, 6);
  });
});

/** A manager over a fresh fake runtime and clock, with the pool settings given. */
function pooledManager(pool: Partial<SessionLimits>) {
  const clock = new TestClock();
  const rt = new FakeRuntime();
  const mgr = new SessionManager({
    runtime: rt,
    labs: [lab],
    limits: { ...limits, ...pool },
    clock,
    instance: 'test',
  });
  return { clock, rt, mgr };
}

describe('SessionManager with a warm pool', () => {
  const settle = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(cond(), 'condition reached');
  };

  test('a Start takes a ready host (no engine work on the path) and the pool refills behind it', async () => {
    const { rt, mgr } = pooledManager({ poolSize: 2, poolMaxAgeMs: 15 * MIN });
    mgr.startPool();
    await settle(() => mgr.poolStats().ready.processes === 2);
    assert.equal(rt.created, 2);
    const pooledHosts = new Set(rt.hosts.keys());
    rt.createDelayMs = 50; // a cold create would now be slow
    const t0 = performance.now();
    const { session } = await mgr.create('processes', 'a');
    assert.ok(performance.now() - t0 < 40, 'served from the pool, not the engine');
    assert.ok(pooledHosts.has(session.hostId!), 'the session runs on a pooled host');
    assert.equal([...rt.hosts.values()].find((h) => h.id === session.hostId)?.sessionId, session.id);
    await settle(() => mgr.poolStats().ready.processes === 2);
    assert.equal(rt.created, 3, 'one refill');
    // The reaper keeps pool members and pooled sessions.
    assert.equal(await mgr.removeLeftovers({ all: false }), 0);
    await mgr.remove(session, 'stopped');
    assert.ok(!rt.hosts.has(session.hostId!), 'a used host is removed, never returned to the pool');
    await mgr.shutdown();
    assert.equal(rt.hosts.size, 0, 'shutdown drains the pool');
  });

  test("a spare's shells are open before its reader comes: attaching needs no engine call", async () => {
    const { rt, mgr } = pooledManager({ poolSize: 1 });
    mgr.startPool();
    await settle(() => mgr.poolStats().ready.processes === 1 && rt.terminals.length === 2);
    assert.deepEqual(rt.terminals.map((t) => [t.name, t.size.cols]).sort(), [
      ['container', 80],
      ['host', 80],
    ]);
    const { session } = await mgr.create('processes', 'a');
    const opened = rt.terminals.length;
    const host = await mgr.terminal(session, 'host', { cols: 132, rows: 40 });
    assert.equal(rt.terminals.length, opened, "the spare's shell, not a new exec");
    const shell = rt.terminals.find((t) => t.hostId === session.hostId && t.name === 'host')!;
    const out = sink();
    host.attach(out);
    host.input(Buffer.from('echo hi\r'));
    await settle(() => out.out.includes('echo hi'));
    await settle(() => shell.size.cols === 132);
    assert.deepEqual(shell.size, { cols: 132, rows: 40 }, "the first attach brings the reader's size");
    // A reconnect asking another size does not resize by itself (the page sends its resizes).
    await mgr.terminal(session, 'host', { cols: 80, rows: 24 });
    await flush();
    assert.deepEqual(shell.size, { cols: 132, rows: 40 });
    await mgr.shutdown();
    assert.ok(
      rt.terminals.every((t) => !rt.hosts.has(t.hostId)),
      'all gone with their hosts',
    );
  });

  test("a hint raises its lab's spares by one, up to the client's session quota; a Start uses it up", async () => {
    const { rt, mgr } = pooledManager({ poolSize: 1, maxSessions: 10, maxSessionsPerClient: 2 });
    mgr.startPool();
    await settle(() => mgr.poolStats().ready.processes === 1);
    assert.equal(mgr.hint('processes', 'a'), true);
    assert.equal(mgr.hint('processes', 'a'), true);
    assert.equal(mgr.hint('processes', 'a'), false, 'a client cannot start more than its quota');
    assert.equal(mgr.hint('processes', 'b'), true, 'another client has a quota of its own');
    assert.equal(mgr.poolStats().targets.processes, 4);
    await settle(() => mgr.poolStats().ready.processes === 4);
    assert.equal(rt.created, 4);
    const { session } = await mgr.create('processes', 'a');
    assert.ok(session.hostId, 'served from a spare');
    assert.equal(mgr.poolStats().targets.processes, 3, "a's Start used up one of its hints");
    await flush();
    assert.equal(rt.created, 4, 'no refill: the spare it took was the one its hint asked for');
    assert.throws(
      () => mgr.hint('nope', 'a'),
      (e: unknown) => e instanceof AppError && e.code === 'unknown_lab',
    );
    await mgr.shutdown();
    assert.equal(mgr.hint('processes', 'c'), false, 'a server shutting down makes no spares');
    assert.equal(rt.hosts.size, 0);
  });

  test('spares for hints stay within CL_POOL_MAX and leave the sessions their room', async () => {
    const { rt, mgr } = pooledManager({ poolSize: 1, maxSessions: 4, maxSessionsPerClient: 5, poolMax: 3 });
    mgr.startPool();
    for (let i = 0; i < 5; i++) mgr.hint('processes', 'a');
    await settle(() => mgr.poolStats().ready.processes === 3);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rt.hosts.size, 3, 'CL_POOL_MAX: 3 spares, whatever the hints say');
    // Two readers start (one hint each): spares are taken, and refills may use only the room
    // left under CL_MAX_SESSIONS = 4 (2 sessions + 2 spares).
    await mgr.create('processes', 'a');
    await mgr.create('processes', 'a');
    await settle(() => rt.created >= 4);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(
      mgr.count + (mgr.poolStats().ready.processes ?? 0),
      4,
      'sessions + spares = CL_MAX_SESSIONS',
    );
    await mgr.shutdown();
  });

  test('spares above the target go once hints expire and they have waited; the base size stays', async () => {
    const { clock, rt, mgr } = pooledManager({
      poolSize: 1,
      maxSessions: 10,
      maxSessionsPerClient: 5,
      poolHintTtlMs: 5 * MIN,
      poolMaxAgeMs: 15 * MIN,
    });
    mgr.startPool();
    for (let i = 0; i < 3; i++) mgr.hint('processes', 'a');
    await settle(() => mgr.poolStats().ready.processes === 4);
    await mgr.reap();
    assert.equal(mgr.poolStats().ready.processes, 4, 'while the hints live, the spares stay');
    clock.advance(5 * MIN);
    assert.equal(mgr.poolStats().targets.processes, 1, 'hints expired');
    await mgr.reap();
    assert.equal(mgr.poolStats().ready.processes, 1, 'the three spares for hints are gone');
    await settle(() => rt.hosts.size === 1);
    await mgr.shutdown();
  });

  test('shutdown while a refill and a Start are at the engine waits for both and removes their hosts', async () => {
    const { rt, mgr } = pooledManager({ poolSize: 1, poolMaxAgeMs: 15 * MIN });
    rt.createDelayMs = 30;
    mgr.startPool();
    const start = mgr.create('processes', 'a');
    const refused = rejectsWith(start, 'out_of_capacity');
    await new Promise((r) => setTimeout(r, 5)); // both creates are at the engine now
    await mgr.shutdown();
    // Checked as shutdown resolves: main.ts exits right after it.
    assert.equal(rt.created, 2, 'shutdown waited for both creations at the engine to finish');
    assert.deepEqual([...rt.hosts.keys()], [], 'nothing is left once shutdown resolves');
    await refused;
  });

  test("a spare's own lease is the pool's max age (and a grace); a Start renews it to the session's lifetime", async () => {
    const { clock, rt, mgr } = pooledManager({ poolSize: 1, poolMaxAgeMs: 10 * MIN });
    const t0 = clock.now();
    mgr.startPool();
    await settle(() => mgr.poolStats().ready.processes === 1);
    const spare = [...rt.hosts.values()][0]!;
    assert.equal(rt.leases.get(spare.id)?.getTime(), t0 + 10 * MIN + 30_000, 'max age + 30 s');
    assert.equal(
      spare.deadline?.getTime(),
      t0 + 10 * MIN + limits.maxLifetimeMs,
      'the hard deadline covers both',
    );
    clock.advance(2 * MIN);
    const { session } = await mgr.create('processes', 'a');
    assert.equal(session.hostId, spare.id);
    await settle(() => rt.leases.get(spare.id)?.getTime() !== t0 + 10 * MIN + 30_000);
    assert.equal(rt.leases.get(spare.id)?.getTime(), session.createdAt + limits.maxLifetimeMs);
    await mgr.shutdown();
  });

  test('shutdown during a refill waits for it: no pool host outlives the server', async () => {
    const { rt, mgr } = pooledManager({ poolSize: 1, poolMaxAgeMs: 15 * MIN });
    rt.createDelayMs = 30;
    mgr.startPool();
    await flush();
    assert.equal(rt.created, 0, 'the refill is still with the engine');
    await mgr.shutdown();
    assert.equal(rt.created, 1, 'shutdown waited for the refill');
    assert.equal(rt.hosts.size, 0, 'and its host is removed');
  });

  test('old pool members are recycled, not handed out', async () => {
    const { clock, rt, mgr } = pooledManager({ poolSize: 1, poolMaxAgeMs: 5 * MIN });
    mgr.startPool();
    await settle(() => mgr.poolStats().ready.processes === 1);
    const first = [...rt.hosts.keys()][0]!;
    clock.advance(5 * MIN);
    const { session } = await mgr.create('processes', 'a');
    assert.notEqual(session.hostId, first);
    await settle(() => !rt.hosts.has(first));
    await mgr.shutdown();
  });

  test('an engine failure backs the refill off instead of spinning', async () => {
    const clock = new TestClock();
    const rt = new FakeRuntime();
    rt.reachable = false;
    const events: string[] = [];
    const mgr = new SessionManager({
      runtime: rt,
      labs: [lab],
      limits: { ...limits, poolSize: 1 },
      clock,
      instance: 'test',
      events: { event: (n) => events.push(n) },
    });
    mgr.startPool();
    await new Promise((r) => setTimeout(r, 30));
    mgr.startPool();
    mgr.startPool();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(events.filter((e) => e === 'pool.refill_failed').length, 1);
    await mgr.shutdown();
  });
});

describe('SessionManager across a restart (the session store)', () => {
  const make = (rt: FakeRuntime, store: SessionStore, clock = new TestClock()) => {
    const events: [string, Record<string, unknown>][] = [];
    const mgr = new SessionManager({
      runtime: rt,
      labs: [lab],
      limits,
      clock,
      instance: 'test',
      store,
      events: { event: (n, f) => events.push([n, f]) },
    });
    return { mgr, events, clock };
  };

  test('a new manager on the same store takes back live sessions: token, expiry, shells; removes the rest', async () => {
    const rt = new FakeRuntime();
    const store = new MemorySessionStore();
    const before = make(rt, store);
    const a = await before.mgr.create('processes', 'client-a');
    const b = await before.mgr.create('processes', 'client-b');
    await before.mgr.terminal(a.session, 'host', { cols: 80, rows: 24 });
    before.clock.advance(MIN);
    await before.mgr.extend(a.session);
    // b's host vanishes while no server runs; a host of ours nobody stored; another server's host.
    await rt.removeLabHost(b.session.hostId!);
    rt.addLeftover({
      id: 'unstored',
      sessionId: 'x'.repeat(22),
      lab: 'processes',
      instance: 'test',
      deadline: undefined,
    });
    rt.addLeftover({
      id: 'theirs',
      sessionId: 'y'.repeat(22),
      lab: 'processes',
      instance: 'other',
      deadline: undefined,
    });

    const after = make(rt, store, before.clock);
    assert.deepEqual(await after.mgr.restore(), { adopted: 1, removed: 1, dropped: 1 });
    const back = after.mgr.authorize(a.session.id, a.token);
    assert.equal(back.hostId, a.session.hostId);
    assert.equal(back.expiresAt, a.session.expiresAt, 'the extended expiry');
    assert.equal(back.createdAt, a.session.createdAt);
    assert.equal(back.clientKey, 'client-a');
    assert.deepEqual([...back.started], ['host']);
    assert.throws(
      () => after.mgr.authorize(a.session.id, 'wrong'),
      (e: AppError) => e.code === 'bad_token',
    );
    assert.throws(
      () => after.mgr.authorize(b.session.id, b.token),
      (e: AppError) => e.code === 'not_found',
    );
    assert.deepEqual([...rt.hosts.keys()].sort(), [a.session.hostId, 'theirs'].sort());
    assert.deepEqual(
      (await store.load('test')).sessions.map((r) => r.id),
      [a.session.id],
      'the session without its host is no longer stored',
    );
    // Ending it now removes its row too.
    await after.mgr.remove(back, 'stopped');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual((await store.load('test')).sessions, []);
  });

  test('engine down at start: stored sessions answer 503 until the reaper takes them back', async () => {
    const rt = new FakeRuntime();
    const store = new MemorySessionStore();
    const { session, token } = await make(rt, store).mgr.create('processes', 'a');
    rt.reachable = false;
    const { mgr } = make(rt, store);
    assert.equal(await mgr.restore(), null);
    assert.throws(
      () => mgr.authorize(session.id, token),
      (e: AppError) => e.code === 'engine_unavailable',
    );
    rt.reachable = true;
    await mgr.reap();
    assert.equal(mgr.authorize(session.id, token).hostId, session.hostId);
    await mgr.shutdown();
  });

  test('expired stored sessions are dropped and their hosts removed', async () => {
    const rt = new FakeRuntime();
    const store = new MemorySessionStore();
    const first = make(rt, store);
    await first.mgr.create('processes', 'a');
    first.clock.advance(limits.ttlMs);
    const { mgr } = make(rt, store, first.clock);
    assert.deepEqual(await mgr.restore(), { adopted: 0, removed: 1, dropped: 1 });
    assert.equal(rt.hosts.size, 0);
  });

  test('a store that fails to write does not fail the Start; it is reported', async () => {
    const store = new MemorySessionStore();
    store.save = async () => {
      throw new Error('disk full');
    };
    const { mgr, events } = make(new FakeRuntime(), store);
    const { session } = await mgr.create('processes', 'a');
    assert.ok(session.hostId);
    assert.ok(events.some(([n, f]) => n === 'store.failed' && String(f.error).includes('disk full')));
  });
});

describe('lab hosts that vanish (the engine restarted, or a host was removed under us)', () => {
  const settle = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(cond(), 'condition reached');
  };

  test('the runtime says a host is gone: its session ends at once, saying so; a gone spare is made again', async () => {
    const { rt, mgr } = pooledManager({ poolSize: 1, poolMaxAgeMs: 15 * MIN });
    mgr.startPool();
    mgr.watchHosts();
    await settle(() => mgr.poolStats().ready.processes === 1);
    const { session, token } = await mgr.create('processes', 'a');
    const term = await mgr.terminal(session, 'host', { cols: 80, rows: 24 });
    const s = sink();
    term.attach(s);
    await settle(() => mgr.poolStats().ready.processes === 1);
    const spare = [...rt.hosts.values()].find((h) => h.sessionId !== session.id)!;
    rt.vanish(session.hostId!);
    await flush();
    assert.deepEqual(s.msgs.at(-1), { type: 'error', code: 'session_ended', message: HOST_GONE_MESSAGE });
    assert.equal(s.closed, CloseCode.sessionEnded);
    // A page that reconnects (its socket may have dropped before the word came) hears why.
    assert.throws(() => mgr.authorize(session.id, token), {
      code: 'session_ended',
      message: HOST_GONE_MESSAGE,
    });
    assert.throws(() => mgr.redeem(session.id, 'host', 'x'), { code: 'session_ended' });
    assert.equal(mgr.count, 0);
    const created = rt.created;
    rt.vanish(spare.id);
    await settle(() => rt.created === created + 1 && mgr.poolStats().ready.processes === 1);
    await mgr.shutdown();
  });

  test('events lost while the watch was down: on its reconnect the listing decides', async () => {
    const { rt, mgr } = pooledManager({ poolSize: 0 });
    mgr.watchHosts();
    const { session } = await mgr.create('processes', 'a');
    const { session: other } = await mgr.create('processes', 'b');
    rt.vanish(session.hostId!, { quietly: true });
    await flush();
    assert.equal(mgr.count, 2, 'nothing was said yet');
    rt.resync();
    await settle(() => mgr.count === 1);
    assert.ok(
      mgr.list().some((s) => s.id === other.id),
      'the session whose host runs stays',
    );
    await mgr.shutdown();
  });
});
