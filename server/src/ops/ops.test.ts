import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import parsePrometheus from 'parse-prometheus-text-format';
import type { LabDef } from '../../../labs/schema.ts';
import { FakeRuntime } from '../../../tests/unit-support/fake-runtime.ts';
import { testApp } from '../../../tests/unit-support/test-app.ts';
import { AppError } from '../errors.ts';
import type { ServerMessage } from '../terminal/protocol.ts';
import { parseResources, RESOURCE_SCRIPT } from './admin.ts';
import { Drain, drainNotice } from './drain.ts';
import { selectLabs } from './lab-selection.ts';
import { countingRuntime, Metrics } from './metrics.ts';

const lab = (id: string): LabDef => ({
  id,
  title: id,
  description: '',
  app: { command: 'sleep 1000', hostname: 'box' },
  terminals: [{ name: 'host', title: 'On the host', target: 'host' }],
  limits: { memory: '128m', cpus: 0.5, pids: 100, tmp: '16m' },
  checks: [],
  modes: ['server', 'browser'],
  vm: { user: 'reader', cpuLimit: false },
});

describe('metrics', () => {
  const value = async (m: Metrics, name: string, labels: Record<string, string> = {}) => {
    const fam = parsePrometheus(await m.text()).find((f) => f.name === name);
    const s = fam?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
    return s ? Number(s.value ?? s.buckets?.['+Inf']) : undefined;
  };

  test('events move the counters; series exist at 0 from the start', async () => {
    const m = new Metrics({ labs: ['a', 'b'], mode: 'code', defaultMetrics: false });
    assert.equal(await value(m, 'containerlabs_sessions_ended_total', { reason: 'idle' }), 0);
    assert.equal(await value(m, 'containerlabs_sessions_started_total', { lab: 'b', pooled: 'true' }), 0);
    m.onEvent('session.started', { lab: 'a', pooled: true, ms: 12 });
    m.onEvent('session.refused', { lab: 'a', reason: 'rate_limited' });
    m.onEvent('session.stopped', { lab: 'a', reason: 'idle' });
    m.onEvent('pool.refill_failed', { lab: 'a' });
    m.accessRefused('wrong');
    m.refused('draining');
    assert.equal(await value(m, 'containerlabs_sessions_started_total', { lab: 'a', pooled: 'true' }), 1);
    assert.equal(await value(m, 'containerlabs_session_start_seconds'), 1);
    assert.equal(await value(m, 'containerlabs_sessions_refused_total', { reason: 'rate_limited' }), 1);
    assert.equal(await value(m, 'containerlabs_sessions_refused_total', { reason: 'access' }), 1);
    assert.equal(await value(m, 'containerlabs_sessions_refused_total', { reason: 'draining' }), 1);
    assert.equal(await value(m, 'containerlabs_access_refused_total', { reason: 'wrong' }), 1);
    assert.equal(await value(m, 'containerlabs_sessions_ended_total', { reason: 'idle' }), 1);
    assert.equal(await value(m, 'containerlabs_info', { mode: 'code' }), 1);
  });

  test('gauges read their sources at scrape time', async () => {
    const m = new Metrics({ labs: ['a', 'b'], mode: 'open', defaultMetrics: false });
    let n = 2;
    m.bind({
      sessionCount: () => n,
      poolReady: () => ({ a: 1 }),
      engineUp: async () => false,
      draining: () => true,
    });
    assert.equal(await value(m, 'containerlabs_sessions_active'), 2);
    n = 0;
    assert.equal(await value(m, 'containerlabs_sessions_active'), 0);
    assert.equal(await value(m, 'containerlabs_pool_ready', { lab: 'a' }), 1);
    assert.equal(await value(m, 'containerlabs_pool_ready', { lab: 'b' }), 0);
    assert.equal(await value(m, 'containerlabs_engine_up'), 0);
    assert.equal(await value(m, 'containerlabs_draining'), 1);
  });

  test('the counting runtime counts engine failures but not hosts that ended', async () => {
    const m = new Metrics({ labs: ['a'], mode: 'open', defaultMetrics: false });
    const fake = new FakeRuntime();
    const failing = Object.assign(Object.create(fake), {
      removeLabHost: async () => {
        throw new AppError('engine_unavailable', 'down');
      },
      exec: async () => {
        throw new AppError('session_ended', 'gone');
      },
    });
    const rt = countingRuntime(failing, m);
    await assert.rejects(rt.removeLabHost('x'), { code: 'engine_unavailable' });
    await assert.rejects(rt.exec('x', ['true']), { code: 'session_ended' });
    assert.equal(
      await value(m, 'containerlabs_engine_errors_total', {
        operation: 'removeLabHost',
        code: 'engine_unavailable',
      }),
      1,
    );
    assert.equal(await value(m, 'containerlabs_engine_errors_total', { operation: 'exec' }), undefined);
  });

  test('the counting runtime counts every engine call, terminal resizes included', async () => {
    const m = new Metrics({ labs: ['a'], mode: 'open', defaultMetrics: false });
    const calls = (operation: string) => value(m, 'containerlabs_engine_calls_total', { operation });
    // Every operation is a series from the start, so a scrape can tell 0 from "not counted".
    for (const op of ['info', 'createLabHost', 'openTerminal', 'exec', 'resize'])
      assert.equal(await calls(op), 0);
    const fake = new FakeRuntime();
    const rt = countingRuntime(fake, m);
    await rt.info();
    const host = await rt.createLabHost({
      lab: lab('a'),
      sessionId: 's1',
      instance: 'unit',
      expiresAt: new Date(),
      deadline: new Date(Date.now() + 60_000),
      pooled: false,
    });
    await rt.exec(host.id, ['true']);
    await rt.exec(host.id, ['true']);
    const term = await rt.openTerminal(host.id, lab('a').terminals[0]!, { cols: 80, rows: 24 });
    await term.resize(100, 30);
    await term.resize(101, 30);
    await term.resize(102, 30);
    // The wrapped terminal is the same shell: its resizes and stream reach the real one.
    assert.deepEqual(fake.terminals[0]!.size, { cols: 102, rows: 30 });
    assert.equal(term.stream, fake.terminals[0]!.stream);
    await rt.removeLabHost('gone');
    assert.equal(await calls('info'), 1);
    assert.equal(await calls('createLabHost'), 1);
    assert.equal(await calls('exec'), 2);
    assert.equal(await calls('removeLabHost'), 1);
    assert.equal(await calls('openTerminal'), 1);
    assert.equal(await calls('resize'), 3);
    term.close();
    assert.equal(await term.exited, 129);
  });
});

describe('drain', () => {
  const target = (n: number) => {
    const got: ServerMessage[] = [];
    const sessions = Array.from({ length: n }, () => ({
      attachedCount: 1,
      terminals: new Map([['host', { broadcast: (msg: ServerMessage) => got.push(msg) }]]),
    }));
    return { got, list: () => sessions };
  };

  test('notifies terminals, waits the grace, refuses with a Retry-After', async () => {
    let now = 1000;
    const d = new Drain({ now: () => now });
    assert.equal(d.active, false);
    const t = target(2);
    const t0 = performance.now();
    const wait = d.start(t, 50);
    assert.equal(d.active, true);
    assert.equal(t.got.length, 2);
    assert.deepEqual(t.got[0], { type: 'notice', message: drainNotice(50) });
    assert.ok(d.retryAfterSeconds() >= 5);
    now += 60_000;
    assert.equal(d.retryAfterSeconds(), 5, 'never below 5 s');
    await wait;
    assert.ok(performance.now() - t0 >= 45);
  });

  test('no open terminal or no grace: resolves at once; hurry ends the wait', async () => {
    await new Drain().start(target(0), 60_000);
    const unwatched = target(2);
    for (const s of unwatched.list()) s.attachedCount = 0;
    await new Drain().start(unwatched, 60_000);
    await new Drain().start(target(1), 0);
    const d = new Drain();
    const p = d.start(target(1), 60_000);
    d.hurry();
    await p;
    assert.match(drainNotice(10_000), /ends in 10 s/);
  });
});

describe('admin resources', () => {
  test('cgroup v1 and v2 readings; unlimited and missing become null', () => {
    assert.deepEqual(
      parseResources('memory 3104768\nmemory_limit 134217728\npids 6\npids_limit 100\ncpu 46167202ns\n'),
      {
        memoryBytes: 3104768,
        memoryLimitBytes: 134217728,
        pids: 6,
        pidsLimit: 100,
        cpuSeconds: 0.046167202,
      },
    );
    assert.deepEqual(parseResources('memory 1024\nmemory_limit max\npids 3\npids_limit max\ncpu 1500000us'), {
      memoryBytes: 1024,
      memoryLimitBytes: null,
      pids: 3,
      pidsLimit: null,
      cpuSeconds: 1.5,
    });
    assert.equal(parseResources('memory_limit 9223372036854771712').memoryLimitBytes, null);
    assert.deepEqual(parseResources('memory -\ncpu -'), {
      memoryBytes: null,
      memoryLimitBytes: null,
      pids: null,
      pidsLimit: null,
      cpuSeconds: null,
    });
    assert.match(RESOURCE_SCRIPT, /memory\.current/);
    assert.match(RESOURCE_SCRIPT, /memory\.usage_in_bytes/);
  });
});

describe('lab selection', () => {
  const all = [lab('cgroups'), lab('namespaces'), lab('processes')];

  test('CL_LABS picks labs; empty means all', () => {
    assert.deepEqual(
      selectLabs(all, { labs: ['processes', 'namespaces'], labLimits: {} }).map((l) => l.id),
      ['namespaces', 'processes'],
    );
    assert.equal(selectLabs(all, { labs: [], labLimits: {} }).length, 3);
  });

  test('an unknown lab is a configuration error naming the known ones', () => {
    assert.throws(() => selectLabs(all, { labs: ['procesess'], labLimits: {} }), {
      name: 'ConfigError',
      message: /CL_LABS: no lab "procesess" \(labs: cgroups, namespaces, processes\)/,
    });
  });

  test('limit overrides replace lab.yaml values and are validated by the lab schema', () => {
    const [l] = selectLabs(all, { labs: ['processes'], labLimits: { memory: '256m', pids: 200 } });
    assert.deepEqual(l!.limits, { memory: '256m', cpus: 0.5, pids: 200, tmp: '16m' });
    assert.equal(all[2]!.limits.memory, '128m', 'the loaded definitions are not changed');
    assert.throws(() => selectLabs(all, { labs: [], labLimits: { cpus: 8 } }), {
      name: 'ConfigError',
      message: /cpus/,
    });
  });
});

describe('the final shutdown (POST /api/v1/admin/shutdown)', () => {
  test('from loopback: 202, then the shutdown runs once; from elsewhere: refused, nothing runs', async () => {
    const { app, shutdowns } = await testApp();
    const far = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/shutdown',
      remoteAddress: '192.0.2.7',
    });
    assert.ok(far.statusCode === 401 || far.statusCode === 403, `refused: ${far.statusCode}`);
    const r = await app.inject({ method: 'POST', url: '/api/v1/admin/shutdown' });
    assert.equal(r.statusCode, 202);
    assert.deepEqual(r.json(), { sessions: 0, draining: true });
    await new Promise((res) => setImmediate(res));
    assert.equal(shutdowns(), 1);
    await app.close();
  });

  test('with CL_ADMIN_TOKEN: only with it', async () => {
    const token = 'admin-token-0123456789';
    const { app, shutdowns } = await testApp({ env: { CL_ADMIN_TOKEN: token } });
    const none = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/shutdown',
      remoteAddress: '192.0.2.7',
    });
    assert.equal(none.statusCode, 401);
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/shutdown',
      remoteAddress: '192.0.2.7',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(ok.statusCode, 202);
    await new Promise((res) => setImmediate(res));
    assert.equal(shutdowns(), 1);
    await app.close();
  });
});
