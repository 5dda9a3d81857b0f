/**
 * The lab host's limits under attack, through the real server: commands typed over the
 * terminal WebSocket of one session (the attacker) hit the pids, memory, tmpfs and CPU
 * limits, while ANOTHER session (the honest reader) keeps typing. Its echo latency during
 * each attack is printed (p50/p99/max); the assertions are only that every keystroke
 * comes back within a generous bound and that new sessions still start meanwhile.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { useServer } from '../support/fixtures.ts';
import type { TermClient } from '../support/server.ts';
import { formatSummary, summarize } from '../support/stats.ts';
import { EchoProbe, sleep } from './support.ts';

/** Every echo of the honest reader must come back within this (generous; 2 shared cores). */
const ECHO_BOUND_MS = 5_000;
const MiB = 1024 * 1024;

/** The cgroup files of a lab host, seen from inside it (cgroup v1 or v2). */
function cgroupFiles(v2: boolean) {
  const r = '/sys/fs/cgroup';
  return v2
    ? {
        pidsMax: `${r}/pids.max`,
        pidsCurrent: `${r}/pids.current`,
        pidsEvents: `${r}/pids.events`,
        memLimit: `${r}/memory.max`,
        memEvents: `${r}/memory.events`,
        cpuStat: `${r}/cpu.stat`,
      }
    : {
        pidsMax: `${r}/pids/pids.max`,
        pidsCurrent: `${r}/pids/pids.current`,
        pidsEvents: `${r}/pids/pids.events`,
        memLimit: `${r}/memory/memory.limit_in_bytes`,
        // Since Linux 4.13 memory.oom_control has an oom_kill counter.
        memEvents: `${r}/memory/memory.oom_control`,
        cpuStat: `${r}/cpu/cpu.stat`,
      };
}

/** "key value" lines → number of `key`. */
function field(text: string, key: string): number {
  const m = new RegExp(`^${key}\\s+(\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`no "${key}" in:\n${text}`);
  return Number(m[1]);
}

describe('limits under attack (real server, real engine)', () => {
  const srv = useServer(
    'abuse-limits',
    {
      // New sessions during an attack are created by the engine then, not taken ready-made.
      CL_POOL_SIZE: '0',
      // Room for the attacker, the honest reader and one new session per attack.
      CL_MAX_SESSIONS_PER_CLIENT: '5',
      CL_CREATE_PER_MINUTE: '60',
    },
    { engine: true, report: 'limits: figures' },
  );
  const report = srv.report;
  let attacker: TermClient;
  let reader: TermClient;
  let probe: EchoProbe;
  let cg: ReturnType<typeof cgroupFiles>;

  before(async () => {
    attacker = await srv.terminal(await srv.session('cgroups'), 'host');
    reader = await srv.terminal(await srv.session('processes'), 'host');
    const v2 = (
      await attacker.exec('test -f /sys/fs/cgroup/cgroup.controllers && echo v2 || echo v1')
    ).trim();
    cg = cgroupFiles(v2 === 'v2');
    report.push(`cgroup ${v2}`);
    probe = await EchoProbe.start(reader);
    srv.defer(() => probe.stop());
    const idle = await probe.during(sleep(2000));
    report.push(formatSummary('honest echo, no attack      ', summarize(idle)));
  });

  /**
   * Runs `attack` while the honest reader types and a new session is started after
   * `startAfterMs`; prints and checks the echo latency and the start.
   */
  async function underAttack<T>(label: string, attack: () => Promise<T>, startAfterMs = 1000): Promise<T> {
    let startMs = Number.NaN;
    const running = attack();
    const newcomer = (async () => {
      await sleep(startAfterMs);
      const t0 = performance.now();
      const s = await srv.session('processes');
      startMs = performance.now() - t0;
      const t = await srv.terminal(s, 'host');
      assert.equal((await t.exec('echo up-$((40+2))', 15_000)).trim(), 'up-42');
      await t.close();
      await srv.end(s);
    })();
    // The echo samples span the attack and the newcomer's start.
    const both = Promise.allSettled([running, newcomer]);
    const samples = await probe.during(both, 100, ECHO_BOUND_MS);
    const [a, n] = await both;
    const st = summarize(samples);
    report.push(
      `${formatSummary(`honest echo, ${label.padEnd(15)}`, st)}; new session started in ${startMs.toFixed(0)}ms`,
    );
    if (a.status === 'rejected') throw a.reason;
    if (n.status === 'rejected') throw n.reason;
    assert.ok(st.n >= 3, `too few echo samples (${st.n})`);
    assert.ok(st.max < ECHO_BOUND_MS, `an echo took ${st.max} ms`);
    return a.value;
  }

  test('fork bomb (the lab’s fork-bomb): the pids limit holds, the bomb is killed', async () => {
    const out = await underAttack('fork-bomb 4', () => attacker.exec('fork-bomb 4', 60_000), 1500);
    const peak = /held (\d+) of (\d+) pids/.exec(out);
    const refused = /refused (\d+) forks/.exec(out);
    assert.ok(peak && refused, out);
    assert.equal(peak[2], '100');
    assert.ok(Number(peak[1]) <= 100, out);
    assert.ok(Number(refused[1]) > 0, `the kernel refused no fork:\n${out}`);
    report.push(`fork-bomb: peak ${peak[1]}/${peak[2]} pids, ${refused[1]} forks refused`);
    assert.equal((await attacker.exec('echo alive-$((6*7))', 20_000)).trim(), 'alive-42');
  });

  test('raw fork bomb :(){ :|:& };: under timeout: refused forks, then all of it is gone', async () => {
    const before = field(await attacker.exec(`cat ${cg.pidsEvents}`), 'max');
    const base = Number((await attacker.exec(`cat ${cg.pidsCurrent}`)).trim());
    // GNU timeout runs the command in its own process group and, at the deadline, signals
    // the whole group: every process of the bomb, however many it has become.
    // WARNING: the bomb backgrounds itself, so `bash -c` would return at once and timeout
    // with it, leaving the bomb running. The child must outlive the bomb without forking:
    // `read` on a FIFO opened read-write blocks forever, in a bash builtin.
    await attacker.exec('rm -f /tmp/hold; mkfifo /tmp/hold');
    const out = await underAttack(
      'raw fork bomb',
      () =>
        attacker.exec(
          `timeout -s KILL 5 bash -c ':(){ :|:& };:; exec 3<>/tmp/hold; read -u 3' 2>/dev/null; echo "status=$?"`,
          60_000,
        ),
      1500,
    );
    assert.match(out, /status=137/);
    await attacker.exec('rm -f /tmp/hold', 20_000);
    const refused = field(await attacker.exec(`cat ${cg.pidsEvents}`, 20_000), 'max') - before;
    assert.ok(refused > 0, 'the pids limit refused no fork');
    let now = Number.NaN;
    for (let i = 0; i < 20; i++) {
      now = Number((await attacker.exec(`cat ${cg.pidsCurrent}`, 20_000)).trim());
      if (now <= base + 2) break;
      await sleep(500);
    }
    report.push(`raw fork bomb: ${refused} forks refused; pids in use ${base} before, ${now} after`);
    assert.ok(now <= base + 2, `bomb processes left: ${now} pids in use (was ${base})`);
  });

  test('memory hog: OOM-killed inside its own limit, the shell lives on', async () => {
    const limit = Number((await attacker.exec(`cat ${cg.memLimit}`)).trim());
    assert.equal(limit, 128 * MiB);
    const before = field(await attacker.exec(`cat ${cg.memEvents}`), 'oom_kill');
    // tail keeps a newline-free stream in memory: it grows until the kernel kills it.
    const out = await underAttack(
      'memory hog',
      () =>
        attacker.exec(
          'end=$((SECONDS+4)); while ((SECONDS < end)); do { head -c 400M /dev/zero | tail >/dev/null; } 2>/dev/null; echo "tail=$?"; done',
          60_000,
        ),
      800,
    );
    assert.match(out, /tail=137/, out);
    const kills = field(await attacker.exec(`cat ${cg.memEvents}`), 'oom_kill') - before;
    report.push(`memory hog: ${kills} OOM kill(s) at the ${limit / MiB} MiB limit`);
    assert.ok(kills >= 1, 'no OOM kill counted');
    assert.equal((await attacker.exec('echo alive-$((6*7))')).trim(), 'alive-42');
  });

  test('filling /tmp: ENOSPC at the tmpfs size, then space again', async () => {
    const out = await underAttack(
      'filling /tmp',
      async () => {
        const r = await attacker.exec(
          'dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; stat -c %s /tmp/fill; df -k /tmp',
        );
        // Keep it full while the newcomer starts.
        await sleep(2500);
        return r;
      },
      500,
    );
    assert.match(out, /No space left on device/);
    const size = Number(/^(\d+)$/m.exec(out)?.[1]);
    report.push(`/tmp fill: dd stopped at ${(size / MiB).toFixed(1)} MiB with "No space left on device"`);
    assert.ok(size <= 16 * MiB, `wrote ${size} bytes into a 16 MiB tmpfs`);
    assert.match(out, /100%/);
    assert.equal((await attacker.exec('rm -f /tmp/fill && echo x > /tmp/ok && cat /tmp/ok')).trim(), 'x');
  });

  test('CPU spin: throttled at the quota, usage at most the lab’s 0.5 CPU', async () => {
    const v2 = cg.cpuStat === '/sys/fs/cgroup/cpu.stat';
    // Usage counters: cpu.stat usage_usec (v2), cpuacct.usage in ns (v1).
    const usageCmd = v2 ? `cat ${cg.cpuStat}` : 'cat /sys/fs/cgroup/cpuacct/cpuacct.usage';
    const usage = (text: string) => (v2 ? field(text, 'usage_usec') * 1000 : Number(text.trim()));
    const quota = (
      await attacker.exec(
        v2
          ? 'cat /sys/fs/cgroup/cpu.max'
          : 'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us',
      )
    )
      .trim()
      .split(/\s+/)
      .map(Number);
    assert.equal(quota[0]! / quota[1]!, 0.5, `quota ${quota.join('/')}`);
    const thr0 = field(await attacker.exec(`cat ${cg.cpuStat}`), 'nr_throttled');
    const use0 = usage(await attacker.exec(usageCmd));
    const t0 = performance.now();
    await underAttack('CPU spin x4', () => attacker.exec('cpu-spin 5 4 >/dev/null', 60_000), 1500);
    const wall = (performance.now() - t0) / 1000;
    const thr = field(await attacker.exec(`cat ${cg.cpuStat}`), 'nr_throttled') - thr0;
    const cpus = (usage(await attacker.exec(usageCmd)) - use0) / 1e9 / wall;
    report.push(
      `CPU spin: throttled ${thr} times, ${cpus.toFixed(2)} CPUs used on average over ${wall.toFixed(1)} s (quota 0.5)`,
    );
    assert.ok(thr > 0, 'never throttled');
    // A hard quota cannot be exceeded on average (no burst configured); generous margin.
    assert.ok(cpus <= 0.65, `used ${cpus.toFixed(2)} CPUs`);
  });
});
