/**
 * Restarts lose nothing (issue 15), against the real server and engine: a reader's shells
 * (and what they hold: a variable, a process in the nested container) outlive the server,
 * whether it is killed (SIGKILL) or upgraded (SIGTERM with CL_ON_SIGTERM=restart). The next
 * server on the same port, instance and data directory takes the session back: its token
 * still gets tickets, the terminals reconnect by themselves (the browser's client, on `ws`)
 * to the same shells, step checks and the expiry work as before. A final shutdown
 * (`npm run admin -- shutdown`) ends everything, as SIGTERM did before.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stopServersAfterTests } from '../support/auto-stop.ts';
import { PROMPT } from '../support/fixtures.ts';
import { runScript } from '../support/run-script.ts';
import {
  createSession,
  labContainers,
  type RunningServer,
  removeInstanceContainers,
  type SessionInfo,
  startServer,
  TermClient,
  terminalTicket,
} from '../support/server.ts';

stopServersAfterTests();

const LAB = 'processes';

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const attachedCount = (t: TermClient) => t.controls.filter((c) => c.type === 'attached').length;

/** A reader at work: both terminals open (reconnecting like a page), state in each shell. */
async function readerAtWork(
  srv: RunningServer,
): Promise<{ s: SessionInfo; host: TermClient; box: TermClient }> {
  const s = await createSession(srv.base, LAB);
  const host = await TermClient.open(srv.base, s, 'host', { reconnect: true });
  const box = await TermClient.open(srv.base, s, 'container', { reconnect: true });
  await host.waitFor(PROMPT, 15_000);
  await box.waitFor(PROMPT, 15_000);
  await host.exec('export X=42');
  await box.exec('export Y=7; sleep 1000 & :');
  return { s, host, box };
}

/** After the restart: the same shells, the same session, checks and expiry as before. */
async function sameAsBefore(
  srv: RunningServer,
  r: { s: SessionInfo; host: TermClient; box: TermClient },
  attachedBefore: number,
): Promise<void> {
  await until('the terminals to reattach by themselves', () => {
    return attachedCount(r.host) > attachedBefore && attachedCount(r.box) > attachedBefore;
  });
  assert.equal((await r.host.exec('echo "X=$X"')).trim(), 'X=42', 'the host shell is the same one');
  assert.equal((await r.box.exec('echo "Y=$Y"')).trim(), 'Y=7', 'the container shell is the same one');
  const got = await fetch(`${srv.base}/api/v1/sessions/${r.s.id}`, {
    headers: { authorization: `Bearer ${r.s.token}` },
  });
  assert.equal(got.status, 200, 'the token from before is still good');
  assert.equal((await got.json()).expiresAt, r.s.expiresAt, 'the countdown runs to the same end');
  assert.ok(await terminalTicket(srv.base, r.s, 'host'), 'and it still gets tickets');
  // The step check: the sleep started in the nested container before the restart, its PID on the host.
  const pid = (await r.host.exec("pgrep -f '^sleep 1000$'")).trim();
  assert.match(pid, /^\d+$/, 'the nested container kept its process');
  const check = await fetch(`${srv.base}/api/v1/sessions/${r.s.id}/checks/sleep-host-pid`, {
    method: 'POST',
    headers: { authorization: `Bearer ${r.s.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ answer: pid }),
  });
  assert.equal(check.status, 200);
  assert.equal((await check.json()).passed, true, 'the step check passes as before');
}

describe('restarts lose nothing (real engine)', () => {
  test('SIGKILL: the next server takes the session back; the shells were never gone', async () => {
    const instance = `it-restart-kill-${process.pid}`;
    const env = { CL_INSTANCE: instance, CL_LABS: LAB, CL_POOL_SIZE: '1' };
    try {
      const first = await startServer(env);
      const r = await readerAtWork(first);
      const before = attachedCount(r.host);
      await first.stop('SIGKILL');
      const second = await startServer({ ...env, PORT: String(first.port) });
      await sameAsBefore(second, r, before);
      await Promise.all([r.host.close(), r.box.close()]);
      assert.equal(await second.stop('SIGTERM'), 0);
    } finally {
      await removeInstanceContainers(instance);
    }
  });

  test('SIGTERM with CL_ON_SIGTERM=restart: sockets hear 4013, lab hosts stay, the next server takes over', async () => {
    const instance = `it-restart-term-${process.pid}`;
    const env = { CL_INSTANCE: instance, CL_LABS: LAB, CL_POOL_SIZE: '1', CL_ON_SIGTERM: 'restart' };
    try {
      const first = await startServer(env);
      const r = await readerAtWork(first);
      const before = attachedCount(r.host);
      await until('the pool to refill', async () => (await labContainers(instance)).length === 2);
      const t0 = performance.now();
      assert.equal(await first.stop('SIGTERM'), 0, 'exit 0');
      const seconds = (performance.now() - t0) / 1000;
      assert.ok(seconds < 10, `it exits promptly, waiting for no grace (${seconds.toFixed(1)} s)`);
      assert.ok(
        r.host.controls.some((c) => c.type === 'notice' && /restarting/i.test(String(c.message))),
        `the terminal was told: ${JSON.stringify(r.host.controls.slice(-3))}`,
      );
      assert.match(first.logs(), /"code":4013|closed terminals for a restart/);
      const left = await labContainers(instance);
      assert.deepEqual(
        left.map((c) => c.Labels['containerlabs.session']),
        [r.s.id],
        "the session's lab host stays; the spare is gone",
      );
      const second = await startServer({ ...env, PORT: String(first.port) });
      await sameAsBefore(second, r, before);
      await Promise.all([r.host.close(), r.box.close()]);
      // The final shutdown, from the admin CLI: everything ends (4012), nothing stays stored.
      const host = await TermClient.open(second.base, r.s, 'host');
      const out = await runScript('scripts/admin.ts', ['shutdown', '--url', second.base]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(await host.closed(15_000), 4012, 'the final shutdown says so');
      await until('the server to exit', () => second.proc.exitCode !== null);
      assert.equal(second.proc.exitCode, 0);
      assert.deepEqual(await labContainers(instance), [], 'a final shutdown removes every lab host');
      const third = await startServer({ ...env, PORT: String(first.port) });
      const gone = await fetch(`${third.base}/api/v1/sessions/${r.s.id}`, {
        headers: { authorization: `Bearer ${r.s.token}` },
      });
      assert.equal(gone.status, 404, 'and nothing is taken back after it');
      await third.stop('SIGTERM');
    } finally {
      await removeInstanceContainers(instance);
    }
  });
});
