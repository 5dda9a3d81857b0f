/**
 * The `docker-run` lab against a real engine (lesson 9): its container's PID 1 is
 * `sleep infinity`, which leaves zombies and ignores SIGTERM; a container made by hand on
 * the lab host waits on a FIFO until it is started. Each step check fails before its step
 * and passes after.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SNAPSHOT_MAX_AGE_MS } from '../../server/src/inspect/snapshot-cache.ts';
import { useLab } from '../support/fixtures.ts';
import { runCheck } from '../support/server.ts';

const afterSnapshotAge = () => new Promise((r) => setTimeout(r, SNAPSHOT_MAX_AGE_MS + 100));

describe('docker-run lab (real engine)', () => {
  const lab = useLab('it-docker-run', 'docker-run', {
    env: { CL_POOL_SIZE: '0' },
    terminals: ['host', 'container'],
  });
  const check = (id: string, answer?: string) => runCheck(lab.base, lab.s, id, answer);
  const inside = () => lab.term('container');
  const host = () => lab.term('host');

  test('zombie: none at first; an orphan that ends under sleep infinity stays one', async () => {
    assert.match(await inside().exec('ps -o pid=,args= -p 1'), /^\s*1 sleep infinity$/m);
    const before = await check('zombie');
    assert.equal(before.passed, false, before.message);
    await inside().exec('(sleep 1 &); sleep 2');
    assert.match(
      await inside().exec('ps -eo pid=,ppid=,stat=,args='),
      /^\s*\d+\s+1\s+Z\+?\s+\[sleep\] <defunct>$/m,
    );
    await afterSnapshotAge();
    const ok = await check('zombie');
    assert.equal(ok.passed, true, ok.message);
    assert.match(ok.message, /sleep infinity/);
  });

  test('started-by-hand: not for a sleep 2000 that is not PID 1, nor while created; passes once started', async () => {
    const before = await check('started-by-hand');
    assert.equal(before.passed, false, before.message);
    // A sleep 2000 in the lab's container, but not its PID 1.
    // (`& true`: exec appends `; echo …`, and `&;` is no valid shell.)
    await inside().exec('sleep 2000 & true');
    await afterSnapshotAge();
    const notInit = await check('started-by-hand');
    assert.equal(notInit.passed, false);
    assert.match(notInit.message, /not as PID 1/);
    await inside().exec('kill %1');
    // Created: namespaces made, the first process waits on the FIFO.
    await host().exec('mkfifo /tmp/exec.fifo');
    await host().exec(
      "unshare -U -r -p -f -m -u -i --mount-proc --kill-child sh -c 'hostname mine; read go < /tmp/exec.fifo; exec sleep 2000' & true",
    );
    const waiting = (await host().exec("sleep 0.5; pgrep -f '^sh -c hostname mine'")).trim();
    assert.match(waiting, /^\d+$/);
    assert.match(
      await host().exec(`grep NSpid /proc/${waiting}/status`),
      new RegExp(`^NSpid:\\s+${waiting}\\s+1$`, 'm'),
    );
    await afterSnapshotAge();
    assert.equal((await check('started-by-hand')).passed, false, 'created is not started');
    // Started: exec keeps the PID.
    await host().exec('echo go > /tmp/exec.fifo; sleep 0.5');
    assert.equal((await host().exec("pgrep -x -f 'sleep 2000'")).trim(), waiting);
    await afterSnapshotAge();
    const ok = await check('started-by-hand');
    assert.equal(ok.passed, true, ok.message);
  });

  test('SIGTERM does not stop sleep as PID 1; SIGKILL does', async () => {
    const p = (await host().exec("pgrep -x -f 'sleep 2000'")).trim();
    assert.match(p, /^\d+$/);
    await host().exec(`kill -TERM ${p}; sleep 1`);
    assert.equal((await host().exec(`kill -0 ${p} && echo alive`)).trim(), 'alive');
    await host().exec(`kill -KILL ${p}; sleep 0.5`);
    assert.match(await host().exec(`kill -0 ${p} 2>&1 || echo gone`), /gone/);
  });
});
