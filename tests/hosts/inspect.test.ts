/**
 * The inspection endpoints and step checks on the test host, and the limits meeting a
 * memory hog and a fork bomb: the process map (a `sleep` started inside, with its PID at
 * both levels), the cgroup figures (cgroup v2 here, under the systemd driver's paths, which
 * the lab host sees as `/` of its own cgroup namespace) including an OOM kill and refused
 * forks, and the checks that judge them. Each check fails first and passes after the step.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createSession,
  deleteSession,
  type RunningServer,
  runCheck,
  type SessionInfo,
  startServer,
  TermClient,
} from '../support/server.ts';
import { SLOWNESS, scaled } from '../support/slowness.ts';
import { hostKind } from './support.ts';

const kind = hostKind();
const MiB = 1024 * 1024;

interface Cgroup {
  version: string;
  memory: { current: number; limit: number; peak: number | null; oomKills: number };
  pids: { current: number; limit: number; refused: number };
  cpu: { usageSeconds: number; percent: number | null; limitCores: number };
}

describe(`inspection, checks and limits on the ${kind} host`, () => {
  let srv: RunningServer;
  const sessions: SessionInfo[] = [];
  before(async () => {
    srv = await startServer({ CL_INSTANCE: `hosts-inspect-${process.pid}`, CL_POOL_SIZE: '0' });
  });
  after(async () => {
    for (const s of sessions) await deleteSession(srv.base, s);
    await srv?.stop();
  });

  const get = async <T>(s: SessionInfo, path: string): Promise<T> => {
    const r = await fetch(`${srv.base}/api/v1/sessions/${s.id}/${path}`, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(r.status, 200, `${path}: ${r.status} ${await r.clone().text()}`);
    return (await r.json()) as T;
  };
  const check = (s: SessionInfo, id: string, answer?: string) => runCheck(srv.base, s, id, answer);

  test('processes: the map shows a sleep started inside, with both of its PIDs', async () => {
    const s = await createSession(srv.base, 'processes');
    sessions.push(s);
    const inside = await TermClient.open(srv.base, s, 'container');
    await inside.waitFor(/# $/m);
    assert.equal((await check(s, 'sleep-host-pid', '1')).passed, false);
    const innerPid = Number(/pid=(\d+)/.exec(await inside.exec('sleep 1000 & echo "pid=$!"'))?.[1]);
    const snap = await get<{
      processes: { pid: number; nspid: number[]; users: string[]; cmd: string; sharedWithHost: string[] }[];
    }>(s, 'processes');
    const sleep = snap.processes.find((p) => p.cmd === 'sleep 1000');
    assert.ok(sleep, JSON.stringify(snap.processes.map((p) => p.cmd)));
    assert.deepEqual(sleep.nspid, [sleep.pid, innerPid]);
    assert.deepEqual(sleep.users, ['reader', 'root']);
    // Time namespaces exist since Linux 5.6 (6.12 here); the seccomp profile refuses new ones.
    const time = (await inside.exec('test -e /proc/self/ns/time && echo time')).trim() === 'time';
    assert.deepEqual([...sleep.sharedWithHost].sort(), ['cgroup', 'net', ...(time ? ['time'] : [])]);
    const ok = await check(s, 'sleep-host-pid', String(sleep.pid));
    assert.equal(ok.passed, true, ok.message);
    await inside.close();
  });

  test('namespaces: the shared-namespaces check', async () => {
    const s = await createSession(srv.base, 'namespaces');
    sessions.push(s);
    assert.equal((await check(s, 'shared-namespaces', 'pid, uts')).passed, false);
    const snap = await get<{ host: { namespaces: Record<string, string> } }>(s, 'processes');
    const ok = await check(
      s,
      'shared-namespaces',
      snap.host.namespaces.time ? 'net, cgroup, time' : 'net, cgroup',
    );
    assert.equal(ok.passed, true, ok.message);
  });

  describe('cgroups', () => {
    let s: SessionInfo;
    let host: TermClient;
    before(async () => {
      s = await createSession(srv.base, 'cgroups');
      sessions.push(s);
      host = await TermClient.open(srv.base, s, 'host');
      await host.waitFor(/\$ $/m);
    });
    after(async () => {
      await host?.close();
    });

    test('the figures are the lab\u2019s limits, read from cgroup v2', async () => {
      const cg = await get<Cgroup>(s, 'cgroup');
      assert.equal(cg.version, '2');
      assert.equal(cg.memory.limit, 128 * MiB);
      assert.equal(cg.pids.limit, 100);
      assert.equal(cg.cpu.limitCores, 0.5);
      assert.ok(cg.memory.current > 0 && cg.pids.current > 0, JSON.stringify(cg));
      assert.equal(cg.memory.oomKills, 0);
      assert.equal(cg.pids.refused, 0);
      assert.equal((await check(s, 'memory-limit', '256')).passed, false);
      assert.equal((await check(s, 'memory-limit', '128')).passed, true);
      // What cgroup-info shows the reader: the same files.
      assert.match(await host.exec('cgroup-info'), /limit +128\.0 MiB/);
    });

    test('a memory hog is OOM-killed at the limit; the figures and the check say so', async () => {
      assert.equal((await check(s, 'oom-kill')).passed, false);
      assert.match(await host.exec('mem-hog 300', scaled(60_000)), /killed by SIGKILL/);
      assert.equal((await host.exec('echo alive-$((6*7))')).trim(), 'alive-42');
      const cg = await get<Cgroup>(s, 'cgroup');
      assert.ok(cg.memory.oomKills >= 1, JSON.stringify(cg.memory));
      if (cg.memory.peak !== null) {
        assert.ok(cg.memory.peak <= cg.memory.limit, `peak ${cg.memory.peak} over the limit`);
        assert.ok(cg.memory.peak > 64 * MiB, `peak ${cg.memory.peak}: the hog never got near the limit`);
      }
      const ok = await check(s, 'oom-kill');
      assert.equal(ok.passed, true, ok.message);
    });

    test('a fork bomb meets the pids limit; refused forks are counted and the host recovers', async () => {
      assert.equal((await check(s, 'pids-limit')).passed, false);
      // The bomb must fork faster than it is killed: on an emulated CPU give it longer.
      const seconds = Math.min(30, Math.ceil(3 * Math.sqrt(SLOWNESS)));
      const out = await host.exec(`fork-bomb ${seconds}`, scaled(60_000));
      assert.match(out, /pids limit: 100/);
      const refused = Number(/refused (\d+) forks/.exec(out)?.[1]);
      assert.ok(refused > 0, out);
      assert.equal((await host.exec('echo alive-$((6*7))')).trim(), 'alive-42');
      const cg = await get<Cgroup>(s, 'cgroup');
      assert.ok(cg.pids.refused > 0, JSON.stringify(cg.pids));
      assert.ok(cg.pids.current < 20, `pids still in use: ${cg.pids.current}`);
      const ok = await check(s, 'pids-limit');
      assert.equal(ok.passed, true, ok.message);
    });
  });
});
