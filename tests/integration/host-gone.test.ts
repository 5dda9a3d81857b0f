/**
 * A lab host that vanishes under a live session (the engine restarted without
 * live-restore, someone removed the container), against the real engine: the server
 * hears it from the engine's events at once, not at its reaper's next pass (set to 10
 * minutes here), ends the session and tells the reader why; a vanished spare is made
 * again. Only this test's own containers are removed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Docker from 'dockerode';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import { PROMPT } from '../support/fixtures.ts';
import {
  createSession,
  labContainers,
  removeInstanceContainers,
  startServer,
  TermClient,
  terminalTicket,
} from '../support/server.ts';

stopServersAfterTests();

const GONE = /The lab machine restarted: press Start for a fresh sandbox/;

async function until(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a lab host that vanishes (real engine)', () => {
  test('its session ends within seconds, saying why; a vanished spare is made again', async () => {
    const instance = `it-gone-${process.pid}`;
    const docker = new Docker();
    try {
      const srv = await startServer({
        CL_INSTANCE: instance,
        CL_LABS: 'processes',
        CL_POOL_SIZE: '1',
        CL_REAP_INTERVAL: '10m',
      });
      const s = await createSession(srv.base, 'processes');
      // Reconnecting, as a page does: its socket may drop before the server hears why.
      const term = await TermClient.open(srv.base, s, 'host', { reconnect: true });
      await term.waitFor(PROMPT, 15_000);
      await until('the pool to refill', async () => (await labContainers(instance)).length === 2);
      const mine = (await labContainers(instance)).find((c) => c.Labels['containerlabs.session'] === s.id)!;
      const t0 = performance.now();
      await docker.getContainer(mine.Id).remove({ force: true });
      await until('the terminal to end', async () => term.endReason !== null, 10_000);
      const seconds = (performance.now() - t0) / 1000;
      console.log(`\n--- the terminal ended ${seconds.toFixed(2)} s after its lab host was removed ---\n`);
      assert.ok(
        !term.controls.some((c) => c.type === 'exit'),
        `not told as a shell that exited: ${JSON.stringify(term.controls.slice(-3))}`,
      );
      assert.equal(term.endReason, 'session-ended');
      await assert.rejects(terminalTicket(srv.base, s, 'host'), (e: Error & { status?: number }) => {
        assert.equal(e.status, 410, 'a reconnecting page hears the session ended');
        assert.match(e.message, GONE);
        return true;
      });
      const spare = (await labContainers(instance)).find((c) => c.Labels['containerlabs.session'] !== s.id)!;
      await docker.getContainer(spare.Id).remove({ force: true });
      await until('a new spare', async () => {
        const left = await labContainers(instance);
        return left.length === 1 && left[0]!.Id !== spare.Id;
      });
      await until('the new spare to be ready', async () => {
        const status = (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()) as {
          pool: { ready: Record<string, number> };
        };
        return status.pool.ready.processes === 1;
      });
      assert.equal(await srv.stop('SIGTERM'), 0);
    } finally {
      await removeInstanceContainers(instance);
    }
  });
});
