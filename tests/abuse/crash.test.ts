/**
 * Crash safety with the server gone for good: after SIGKILL (no restart, so no start-up
 * cleanup and no reaper of ours), every lab host of that server (its session's and any
 * warm-pool spares) ends by itself at its own deadline: lab-init exits 0, AutoRemove deletes
 * the container. Watched through the Engine API only (events and the container list). That
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
import { createSession, labContainers, removeInstanceContainers, startServer } from '../support/server.ts';
import { sleep } from './support.ts';

stopServersAfterTests();

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

  test('SIGKILLed server, never restarted: its lab hosts end by themselves at their deadline', async () => {
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
      await createSession(srv.base, 'processes');
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
      const deadlineOf = (c: (typeof left)[number]) => Date.parse(c.Labels['containerlabs.deadline'] ?? '');
      for (const c of left) assert.ok(Number.isFinite(deadlineOf(c)), 'a container without a deadline label');
      // Generous: the deadline, plus lab-init's 1 s tick, plus removal, on a busy machine.
      const giveUp = Math.max(...left.map(deadlineOf)) + 30_000;
      const gone = new Map<string, number>();
      while (gone.size < left.length && Date.now() < giveUp) {
        const now = new Set((await labContainers(instance)).map((c) => c.Id));
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
        const kind = c.Labels['containerlabs.pool'] === 'true' ? 'pool spare' : 'session   ';
        lines.push(
          `  ${kind} ${c.Labels['containerlabs.lab']}: deadline ${((deadlineOf(c) - t0) / 1000).toFixed(1)} s after start, ` +
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
        // (lab-init counts whole seconds from its own start: it may end up to 1 s before the label.)
        if (at) assert.ok(at >= deadlineOf(c) - 1500, `${c.Id.slice(0, 12)} ended before its deadline`);
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
