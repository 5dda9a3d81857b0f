/**
 * Unit tests of the inspection routes on the fake runtime (no port, no engine): how many
 * engine execs parallel requests cost, and the cgroup panel's CPU figure.
 *   node --test server/src/routes/inspect.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { FakeRuntime } from '../../../tests/unit-support/fake-runtime.ts';
import { testApp } from '../../../tests/unit-support/test-app.ts';
import { testLab } from '../../../tests/unit-support/test-lab.ts';
import type { Runtime } from '../runtime/runtime.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('inspection routes (fake runtime)', () => {
  let app: FastifyInstance;
  let runtime: FakeRuntime;
  /** Engine execs by script: "processes" or "cgroup". */
  const execs = { processes: 0, cgroup: 0 };
  /** CPU time the fake cgroup reports, in ns; each exec takes 20 ms of it. */
  let usageNs = 0;

  before(async () => {
    const lab = testLab({
      checks: [
        { id: 'httpd-inside', kind: 'process', title: 't', command: '^httpd', where: 'container', hint: 'h' },
        { id: 'memory', kind: 'cgroup-limit', title: 't', resource: 'memory', hint: 'h' },
      ],
    });
    ({ app, runtime } = await testApp({ labs: [lab] }));
    const exec: Runtime['exec'] = async (_id, cmd) => {
      const script = cmd.at(-1) ?? '';
      // A real exec takes a while; parallel requests arrive meanwhile.
      await sleep(20);
      if (script.includes('cgroup')) {
        execs.cgroup++;
        usageNs += 20e6;
        return {
          code: 0,
          stdout: `version 1\nmemory.max 134217728\ncpuacct.usage ${usageNs}\ncpu.quota 50000\ncpu.period 100000\n`,
          stderr: '',
        };
      }
      execs.processes++;
      return { code: 0, stdout: 'SELF 40\nPASSWD 1000 reader\n', stderr: '' };
    };
    Object.assign(runtime, { exec });
  });
  after(() => app.close());

  const start = async () => {
    const r = await app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { lab: 'processes' } });
    assert.equal(r.statusCode, 201);
    const s = r.json() as { id: string; token: string };
    const get = (what: string) =>
      app.inject({
        url: `/api/v1/sessions/${s.id}/${what}`,
        headers: { authorization: `Bearer ${s.token}` },
      });
    const check = (id: string, answer?: string) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/sessions/${s.id}/checks/${id}`,
        headers: { authorization: `Bearer ${s.token}` },
        payload: answer === undefined ? {} : { answer },
      });
    return { get, check };
  };

  test('50 parallel requests of each kind: one exec per kind, every answer 200', async () => {
    const s = await start();
    execs.processes = execs.cgroup = 0;
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 3 === 0 ? s.get('processes') : i % 3 === 1 ? s.get('cgroup') : s.check('httpd-inside'),
      ),
    );
    for (const r of replies) assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(execs, { processes: 1, cgroup: 1 });
    // Within the second, more requests (and checks) reuse the same snapshots.
    await s.get('processes');
    await s.check('memory', '128');
    assert.deepEqual(execs, { processes: 1, cgroup: 1 });
  });

  test('a snapshot is reused for about a second, then taken again', async () => {
    const s = await start();
    execs.processes = 0;
    await s.get('processes');
    await sleep(300);
    await s.get('processes');
    assert.equal(execs.processes, 1);
    await sleep(1100);
    await s.get('processes');
    assert.equal(execs.processes, 2, 'a check or panel never sees a snapshot much older than a second');
  });

  test('two sessions do not share snapshots', async () => {
    const [a, b] = [await start(), await start()];
    execs.processes = 0;
    await Promise.all([a.get('processes'), b.get('processes'), a.get('processes')]);
    assert.equal(execs.processes, 2);
  });

  test('cgroup CPU percent: CPU used between two snapshots, the same for everyone who reads one', async () => {
    const s = await start();
    const first = (await s.get('cgroup')).json();
    assert.equal(first.cpu.percent, null, 'the first reading has nothing to compare with');
    await sleep(1100);
    const readers = await Promise.all(Array.from({ length: 10 }, () => s.get('cgroup')));
    const bodies = readers.map((r) => r.json());
    const second = bodies[0];
    const seconds = (Date.parse(second.takenAt) - Date.parse(first.takenAt)) / 1000;
    const expected = ((second.cpu.usageSeconds - first.cpu.usageSeconds) / seconds) * 100;
    assert.ok(seconds > 1, `${seconds} s between the readings`);
    for (const b of bodies) {
      assert.equal(b.takenAt, second.takenAt, 'one snapshot for all');
      assert.ok(typeof b.cpu.percent === 'number', JSON.stringify(b.cpu));
      assert.ok(Math.abs(b.cpu.percent - expected) < 1e-9, `${b.cpu.percent} vs ${expected}`);
    }
  });
});
