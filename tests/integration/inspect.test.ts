/**
 * The inspection API and step checks against a real engine: the process map shows a
 * `sleep` started in the container with both of its PIDs; the cgroup figures match the
 * lab's limits and count an OOM kill; three checks each fail first and pass after the
 * reader does the step.
 *
 * Snapshots are shared and reused for up to SNAPSHOT_MAX_AGE_MS (one exec per session and
 * kind at a time): after a step, the tests wait that long before reading its effect, as a
 * reader's next look at a panel or press of Check would come.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SNAPSHOT_MAX_AGE_MS } from '../../server/src/inspect/snapshot-cache.ts';
import { useServer } from '../support/fixtures.ts';
import { runCheck, type SessionInfo } from '../support/server.ts';

/** Lets the snapshots taken before a step expire. */
const afterSnapshotAge = () => new Promise((r) => setTimeout(r, SNAPSHOT_MAX_AGE_MS + 100));

describe('inspection API and step checks (real engine)', () => {
  const srv = useServer('it-inspect', { CL_POOL_SIZE: '0' }, { engine: true });

  const get = async (s: SessionInfo, path: string, token = s.token) =>
    fetch(`${srv.base}/api/v1/sessions/${s.id}/${path}`, { headers: { authorization: `Bearer ${token}` } });
  const check = (s: SessionInfo, id: string, answer?: string) => runCheck(srv.base, s, id, answer);

  test('processes: the map shows a sleep started inside with its PID at both levels', async () => {
    const s = await srv.session('processes');
    assert.equal((await get(s, 'processes', 'wrong')).status, 401);
    const inside = await srv.terminal(s, 'container');
    const before = await check(s, 'sleep-host-pid', '1');
    assert.equal(before.passed, false);
    assert.ok(before.hint);
    // (An interactive bash also prints a job notice such as "[1] 10".)
    const innerPid = Number(/pid=(\d+)/.exec(await inside.exec('sleep 1000 & echo "pid=$!"'))?.[1]);
    await afterSnapshotAge();
    const r = await get(s, 'processes');
    assert.equal(r.status, 200);
    const snap = (await r.json()) as {
      processes: {
        pid: number;
        ppid: number;
        nspid: number[];
        user: string;
        users: string[];
        cmd: string;
        namespaces: Record<string, string>;
        sharedWithHost: string[];
      }[];
    };
    const sleep = snap.processes.find((p) => p.cmd === 'sleep 1000');
    assert.ok(sleep, JSON.stringify(snap.processes.map((p) => p.cmd)));
    assert.equal(sleep.nspid.length, 2);
    assert.equal(sleep.nspid[1], innerPid);
    assert.equal(sleep.pid, sleep.nspid[0]);
    assert.notEqual(sleep.pid, innerPid);
    assert.deepEqual(sleep.users, ['reader', 'root']);
    assert.ok(sleep.namespaces.pid && sleep.namespaces.mnt);
    // Time namespaces exist since Linux 5.6; the lab hosts' seccomp profile refuses new ones.
    const time = (await inside.exec('test -e /proc/self/ns/time && echo time')).trim() === 'time';
    assert.deepEqual(sleep.sharedWithHost.sort(), ['cgroup', 'net', ...(time ? ['time'] : [])]);
    const app = snap.processes.find((p) => p.nspid.length === 2 && p.nspid[1] === 1);
    assert.match(app!.cmd, /httpd/);

    assert.equal(
      (await check(s, 'sleep-host-pid', String(innerPid))).passed,
      false,
      'the inside PID is not the answer',
    );
    const ok = await check(s, 'sleep-host-pid', String(sleep.pid));
    assert.equal(ok.passed, true, ok.message);
    await inside.close();
  });

  test('processes: a command line shaped like records cannot forge the snapshot or a check', async () => {
    const s = await srv.session('processes');
    type Snap = {
      host: { namespaces: Record<string, string> };
      processes: { pid: number; uid: number; user: string; nspid: number[]; cmd: string }[];
    };
    const snapshot = async (): Promise<Snap> => {
      const r = await get(s, 'processes');
      assert.equal(r.status, 200);
      return (await r.json()) as Snap;
    };
    const host = await srv.terminal(s, 'host');
    // The truth, read on the lab host itself.
    const [uid, user, pidNs] = (await host.exec('id -u; id -un; readlink /proc/1/ns/pid'))
      .trim()
      .split(/\s+/);
    const honest = await snapshot();
    const app = honest.processes.find((p) => p.nspid.length === 2 && p.nspid[1] === 1);
    assert.ok(app, JSON.stringify(honest.processes.map((p) => p.cmd)));
    // Every kind of record, each claiming something about another process: names, the
    // inspector's own PID (which hides its children), uids, the host's namespaces, and a
    // `sleep 1000` in the container under the app's PID (what the step check looks for).
    const forged = [
      'x',
      'SELF 1',
      `PASSWD ${uid} root`,
      '/proc/1/status:Uid:\t0\t0\t0\t0',
      'NS /proc/1/ns/pid pid:[1]',
      'CMD 1 forged',
      `CMD ${app.pid} sleep 1000`,
      // (not a newline last: command substitution would drop it)
      'end',
    ].join('\n');
    const printfArg = forged.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
    const started = await host.exec(`bash -c 'exec -a "$(printf "${printfArg}")" sleep 300' & echo "pid=$!"`);
    const hostilePid = Number(/pid=(\d+)/.exec(started)?.[1]);
    assert.ok(hostilePid > 0, started);
    // Wait until bash has exec'd sleep with the new argv[0].
    let snap = await snapshot();
    for (
      let i = 0;
      i < 50 && !snap.processes.some((p) => p.pid === hostilePid && p.cmd.endsWith(' 300'));
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
      snap = await snapshot();
    }
    const hostile = snap.processes.find((p) => p.pid === hostilePid);
    assert.equal(hostile?.cmd, `${forged} 300`, 'the hostile process shows its own whole command line');
    const init = snap.processes.find((p) => p.pid === 1);
    assert.ok(init, `PID 1 is listed: ${JSON.stringify(snap.processes.map((p) => p.pid))}`);
    assert.match(init.cmd, /lab-init/);
    assert.equal(init.uid, Number(uid));
    assert.equal(init.user, user);
    assert.equal(`pid:[${snap.host.namespaces.pid}]`, pidNs, 'the host PID namespace is the real one');
    assert.deepEqual(
      snap.processes.find((p) => p.pid === app.pid),
      honest.processes.find((p) => p.pid === app.pid),
      'the app reads as before',
    );
    assert.ok(!snap.processes.some((p) => p.cmd === 'forged' || p.cmd === 'sleep 1000'));
    const c = await check(s, 'sleep-host-pid', String(app.pid));
    assert.equal(c.passed, false, c.message);
    await host.close();
    // (A client may hold 3 live sessions; the cgroups test needs one more.)
    assert.equal(await srv.end(s), 204);
  });

  test('namespaces: the shared-namespaces check', async () => {
    const s = await srv.session('namespaces');
    assert.equal((await check(s, 'shared-namespaces', 'pid, uts')).passed, false);
    const snap = (await (await get(s, 'processes')).json()) as {
      host: { namespaces: Record<string, string> };
    };
    const answer = snap.host.namespaces.time ? 'net, cgroup, time' : 'net, cgroup';
    const ok = await check(s, 'shared-namespaces', answer);
    assert.equal(ok.passed, true, ok.message);
  });

  test('cgroups: figures match the limits; the OOM check fails, then passes after mem-hog', async () => {
    const s = await srv.session('cgroups');
    const cg = await (await get(s, 'cgroup')).json();
    assert.equal(cg.memory.limit, 128 * 1024 * 1024);
    assert.equal(cg.pids.limit, 100);
    assert.equal(cg.cpu.limitCores, 0.5);
    assert.ok(cg.memory.current > 0 && cg.pids.current > 0);
    assert.equal(cg.memory.oomKills, 0);
    assert.equal((await check(s, 'memory-limit', '256')).passed, false);
    assert.equal((await check(s, 'memory-limit', '128')).passed, true);
    const before = await check(s, 'oom-kill');
    assert.equal(before.passed, false);
    const host = await srv.terminal(s, 'host');
    assert.match(await host.exec('mem-hog 200', 60_000), /killed/);
    await afterSnapshotAge();
    const after = await (await get(s, 'cgroup')).json();
    assert.ok(after.memory.oomKills >= 1, 'the OOM kill shows up in the figures');
    assert.equal(typeof after.cpu.percent, 'number');
    const ok = await check(s, 'oom-kill');
    assert.equal(ok.passed, true, ok.message);
    await host.close();
  });
});
