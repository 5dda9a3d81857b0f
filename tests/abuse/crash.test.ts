/**
 * Crash safety with the server gone for good: after SIGKILL (no restart, so no start-up
 * cleanup and no reaper of ours), every lab host of that server (its session's and any
 * warm-pool spares) ends by itself when its lease runs out (/run/lab/lease, read through
 * the engine; never later than its deadline label): lab-init exits 0, and AutoRemove deletes
 * the container (on an engine with live-restore, where lab hosts have no AutoRemove, the
 * stopped container waits for any server's reaper: what counts here is that nothing runs).
 * A spare's lease is the pool's maximum age (and a grace), a session's its
 * lifetime. Watched through the Engine API only (events and the container list). That
 * a restart removes leftovers at once is tests/integration/lifecycle.test.ts.
 *
 * WARNING: other servers on the same engine (other engineers' tests, benchmarks) run
 * reapers that remove ANY lab host past its `containerlabs.deadline` label, and lab-init's
 * own deadline falls a fraction of a second after that label. Such a removal shows as a
 * `kill` event and is reported, not counted as a self-exit; at least one host must end by
 * itself, and none may be killed before its deadline.
 */
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import Docker from 'dockerode';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import {
  createSession,
  labContainers,
  removeInstanceContainers,
  runningLabContainers,
  startServer,
} from '../support/server.ts';
import { sleep } from './support.ts';

stopServersAfterTests();

/** A lab host's lease (ms since the epoch): /run/lab/lease, read by an exec through the engine. */
async function leaseOf(docker: Docker, id: string): Promise<number> {
  const exec = await docker.getContainer(id).exec({ Cmd: ['cat', '/run/lab/lease'], AttachStdout: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((r) => stream.once('end', r));
  // The multiplexed stream: 8-byte frame headers before the text.
  const text = Buffer.concat(chunks).subarray(8).toString().trim();
  assert.match(text, /^\d+$/, `${id.slice(0, 12)}: /run/lab/lease holds ${JSON.stringify(text)}`);
  return Number(text) * 1000;
}

const instance = `abuse-crash-${process.pid}`;
const LIFETIME_S = 12;
const POOL_MAX_AGE_S = 6;

interface EngineEvent {
  Type: string;
  Action: string;
  id?: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  timeNano: number;
}

describe('crash safety (real engine)', () => {
  after(async () => {
    await removeInstanceContainers(instance);
  });

  test('SIGKILLed server, never restarted: its lab hosts end by themselves when their lease runs out', async () => {
    const docker = new Docker();
    // Engine events of this instance's containers, from before anything is created.
    const events: EngineEvent[] = [];
    const stream = (await docker.getEvents({
      filters: { type: ['container'], label: [`containerlabs.instance=${instance}`] },
    })) as NodeJS.ReadableStream & { destroy(): void };
    stream.on('error', () => {});
    // One JSON event per line.
    createInterface({ input: stream }).on('line', (line) => {
      if (line.trim()) events.push(JSON.parse(line) as EngineEvent);
    });
    try {
      const srv = await startServer({
        CL_INSTANCE: instance,
        CL_SESSION_TTL: `${LIFETIME_S - 2}s`,
        CL_SESSION_MAX_LIFETIME: `${LIFETIME_S}s`,
        // Warm-pool spares (where the server has a pool) carry lifetime + max age.
        CL_POOL_SIZE: '1',
        CL_POOL_MAX_AGE: `${POOL_MAX_AGE_S}s`,
      });
      const t0 = Date.now();
      const session = await createSession(srv.base, 'processes');
      // Kill it when no container is half made (created, not started: such a one never
      // runs, so it cannot end by itself). The pool, if there is one, is full again then.
      for (let i = 0; i < 50; i++) {
        const h = (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()) as {
          pool?: { size: number; ready: Record<string, number> };
        };
        if (!h.pool || Object.values(h.pool.ready).every((n) => n >= h.pool!.size)) break;
        await sleep(200);
      }
      await srv.stop('SIGKILL');
      const killedAt = Date.now();

      const left = await labContainers(instance);
      assert.ok(left.length >= 1, 'no container outlived the killed server');
      const labelOf = (c: (typeof left)[number]) => Date.parse(c.Labels['containerlabs.deadline'] ?? '');
      for (const c of left) assert.ok(Number.isFinite(labelOf(c)), 'a container without a deadline label');
      const leases = new Map<string, number>();
      for (const c of left) {
        const lease = await leaseOf(docker, c.Id);
        // lab-init counts its lease in whole seconds from its own start, which comes a moment
        // after the create that set the label: a few seconds past it at most (the reapers
        // remove the host at the label anyway). A spare's lease is minutes before it.
        const past = lease - labelOf(c);
        assert.ok(past <= 5000, `${c.Id.slice(0, 12)}: its lease runs ${past} ms past its deadline label`);
        leases.set(c.Id, lease);
      }
      const deadlineOf = (c: (typeof left)[number]) => leases.get(c.Id)!;
      // Generous: the lease, plus lab-init's 1 s tick, plus removal, on a busy machine.
      const giveUp = Math.max(...left.map(deadlineOf)) + 30_000;
      const gone = new Map<string, number>();
      while (gone.size < left.length && Date.now() < giveUp) {
        const now = new Set((await runningLabContainers(instance)).map((c) => c.Id));
        for (const c of left) if (!now.has(c.Id) && !gone.has(c.Id)) gone.set(c.Id, Date.now());
        await sleep(500);
      }
      await sleep(1000); // the last events

      const lines: string[] = [];
      let selfExits = 0;
      for (const c of left) {
        const mine = events.filter((e) => (e.Actor?.ID ?? e.id) === c.Id);
        const kill = mine.find((e) => e.Action === 'kill');
        const die = mine.find((e) => e.Action === 'die');
        const exit = die?.Actor.Attributes.exitCode;
        const self = die !== undefined && exit === '0' && kill === undefined;
        if (self) selfExits++;
        const at = gone.get(c.Id);
        const kind =
          c.Labels['containerlabs.session'] === session.id
            ? 'session   '
            : c.Labels['containerlabs.pool'] === 'true'
              ? 'pool spare'
              : 'other     ';
        lines.push(
          `  ${kind} ${c.Labels['containerlabs.lab']}: lease ${((deadlineOf(c) - t0) / 1000).toFixed(1)} s, deadline label ${((labelOf(c) - t0) / 1000).toFixed(1)} s after start, ` +
            (at
              ? `gone ${((at - t0) / 1000).toFixed(1)} s after start (${((at - killedAt) / 1000).toFixed(1)} s after the kill), `
              : 'STILL THERE, ') +
            (self
              ? 'ended by itself (exit 0)'
              : kill
                ? `killed (signal ${kill.Actor.Attributes.signal}) by another server's reaper`
                : `exit ${exit ?? '?'}`),
        );
        if (kill) {
          assert.ok(
            kill.timeNano / 1e6 >= deadlineOf(c) - 500,
            `${c.Id.slice(0, 12)} was killed before its deadline`,
          );
        } else {
          assert.ok(self, `${c.Id.slice(0, 12)} did not end by itself with status 0 (exit ${exit})`);
        }
        // (lab-init looks once a second, in whole seconds: it may end up to 1 s early.)
        if (at) assert.ok(at >= deadlineOf(c) - 1500, `${c.Id.slice(0, 12)} ended before its lease ran out`);
      }
      console.log(
        `\n--- crash safety: ${left.length} lab host(s) left by the killed server ---\n${lines.join('\n')}\n`,
      );
      assert.equal(gone.size, left.length, 'a lab host outlived its deadline by 30 s');
      assert.ok(selfExits >= 1, 'no lab host ended by itself');
    } finally {
      stream.destroy();
    }
  });
});

describe('crash safety of the warm pool (real engine)', () => {
  const poolInstance = `abuse-crash-pool-${process.pid}`;
  const MAX_AGE_S = 5;

  after(async () => {
    await removeInstanceContainers(poolInstance);
  });

  test("SIGKILLed server: an unused pool host ends at the pool's maximum age, a taken one lives on", async () => {
    const srv = await startServer({
      CL_INSTANCE: poolInstance,
      CL_LABS: 'processes',
      CL_POOL_SIZE: '1',
      CL_POOL_MAX_AGE: `${MAX_AGE_S}s`,
      // The hard deadline (label) of a pool host: 10 min + 5 s. Far beyond what the test waits.
      CL_SESSION_MAX_LIFETIME: '10m',
      CL_SESSION_TTL: '10m',
    });
    const ready = async () => {
      const h = (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()) as {
        pool: { ready: Record<string, number> };
      };
      return h.pool.ready.processes ?? 0;
    };
    const poolFull = async () => {
      for (let i = 0; i < 100 && (await ready()) < 1; i++) await sleep(100);
      assert.equal(await ready(), 1, 'the pool filled');
    };
    await poolFull();
    const s = await createSession(srv.base, 'processes');
    await poolFull(); // a fresh spare behind the reader
    const spare = (await labContainers(poolInstance)).find((c) => c.Labels['containerlabs.session'] !== s.id);
    assert.ok(spare, 'a spare besides the session');
    await srv.stop('SIGKILL');
    const killedAt = Date.now();

    // lab-init ticks every second; the engine removes an exited container a moment later.
    const giveUp = killedAt + (2 * MAX_AGE_S + 20) * 1000;
    let spareGoneAt: number | undefined;
    while (Date.now() < giveUp && spareGoneAt === undefined) {
      const live = new Set((await runningLabContainers(poolInstance)).map((c) => c.Id));
      if (!live.has(spare.Id)) spareGoneAt = Date.now();
      else await sleep(500);
    }
    const left = await runningLabContainers(poolInstance);
    console.log(
      `\n--- crash safety of the pool: spare ${spareGoneAt ? `gone ${((spareGoneAt - killedAt) / 1000).toFixed(1)} s after the kill` : 'STILL THERE'}, ` +
        `the session's host ${left.some((c) => c.Labels['containerlabs.session'] === s.id) ? 'still running' : 'GONE'} ---\n`,
    );
    assert.ok(spareGoneAt, `the unused pool host outlived the pool's maximum age (${MAX_AGE_S} s) by 20 s`);
    assert.ok(
      left.some((c) => c.Labels['containerlabs.session'] === s.id),
      "the taken pool host ended with the pool's maximum age instead of living on with its session",
    );
  });
});
