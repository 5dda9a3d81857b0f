/**
 * Per-user kernel limits between readers, through the real server and a real engine.
 *
 * The kernel counts some resources per uid, whatever the container: user namespaces
 * (`/proc/sys/user/max_user_namespaces`, and the other `/proc/sys/user/*` counts) and
 * inotify instances (`/proc/sys/fs/inotify/max_user_instances`), among others. If two
 * readers' lab hosts ran as the same uid, one reader holding the whole allowance would stop
 * every other reader's nested container from starting (`unshare -U` fails with ENOSPC).
 *
 * One session (the hoarder) holds user namespaces up to the per-user limit and every
 * inotify instance it may have; then a NEW session must still start its nested container
 * and create a user namespace and an inotify instance of its own. The hoard is cheap:
 * a child process nests 32 user namespaces (the kernel's depth limit), its parent keeps
 * one fd to the deepest (which holds the 31 above it), and the child exits; a few holder
 * processes share the fds, since nofile (1024) applies per process.
 *
 * The kernel memory of ~96k user namespaces is charged to the hoarder's memory cgroup, so
 * this file gives its lab hosts more memory (CL_LAB_MEMORY), sized from this machine's
 * limit, and refuses to run where that limit is too large to hoard.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { useLab } from '../support/fixtures.ts';
import { type SessionInfo, sessionContainers, type TermClient } from '../support/server.ts';

const ENOSPC = 28;
const EMFILE = 24;
const MiB = 1024 * 1024;

/** Nested user namespaces one child makes (the kernel allows 32 levels below the root). */
const DEPTH = 32;
/** fds one holder keeps: below nofile (1024), leaving room for stdio and pipes. */
const FDS_PER_HOLDER = 900;
/** Kernel memory per user namespace, generous (about 1.3 KiB was seen on kernel 6.x). */
const BYTES_PER_USERNS = 2048;
/** The most memory this test will give a lab host to hoard in. */
const MAX_LAB_MEMORY_MIB = 2048;

const SYSCALLS: Record<string, { unshare: number; inotify_init1: number }> = {
  x64: { unshare: 272, inotify_init1: 294 },
  arm64: { unshare: 97, inotify_init1: 26 },
};
const nr = SYSCALLS[process.arch];
if (!nr) throw new Error(`user-limits: no syscall numbers for ${process.arch}`);

// The engine is local (the abuse suite reads /proc of the lab hosts' processes), so this
// machine's limit is the lab hosts' limit; the test checks that from inside too.
const maxUserNs = Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim());
const maxInotify = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8').trim());
const labMemoryMiB = Math.max(256, Math.ceil((maxUserNs * BYTES_PER_USERNS) / MiB) + 96);
if (labMemoryMiB > MAX_LAB_MEMORY_MIB) {
  throw new Error(
    `user-limits: max_user_namespaces is ${maxUserNs} here; hoarding that many needs about ` +
      `${labMemoryMiB} MiB of kernel memory in one lab host, more than the ${MAX_LAB_MEMORY_MIB} MiB ` +
      'this test gives one (lower /proc/sys/user/max_user_namespaces for the run, or raise MAX_LAB_MEMORY_MIB)',
  );
}

/**
 * A holder: makes nested user namespaces in children until the kernel says no or it holds
 * FDS_PER_HOLDER fds, prints "HELD <namespaces> <fds> <errno>", then keeps them. Each level
 * maps the creator's uid to 0 (like `unshare -r`): a user namespace can only be made by a
 * uid that is mapped in the current one.
 */
const HOLDER = `
$| = 1;
use POSIX ();
my ($out) = @ARGV;
my @fds; my $held = 0; my $err = 0;
sub wr { my ($f, $t) = @_; open(my $h, ">", $f) or return 0; my $ok = syswrite($h, $t); close $h; return $ok }
while (@fds < ${FDS_PER_HOLDER}) {
  pipe(my $r, my $w) or die "pipe: $!"; pipe(my $r2, my $w2) or die "pipe: $!";
  my $pid = fork(); die "fork: $!" unless defined $pid;
  if ($pid == 0) {
    close $r; close $w2; my ($n, $e) = (0, 0);
    while ($n < ${DEPTH}) {
      my ($u, $g) = ($<, $( + 0);
      if (syscall(${nr.unshare}, 0x10000000) < 0) { $e = $! + 0; last }
      $n++;
      wr("/proc/self/setgroups", "deny") && wr("/proc/self/uid_map", "0 $u 1") && wr("/proc/self/gid_map", "0 $g 1") or do { $e = $! + 0; last };
    }
    syswrite $w, "$n $e\\n"; sysread $r2, my $x, 1; POSIX::_exit(0);
  }
  close $w; close $r2;
  my ($n, $e) = split " ", scalar <$r>;
  if ($n > 0) { open(my $fd, "<", "/proc/$pid/ns/user") or die "open ns: $!"; push @fds, $fd; $held += $n }
  close $w2; close $r; waitpid($pid, 0);
  if ($e) { $err = $e; last }
}
open(my $o, ">", $out) or die; print $o "HELD $held " . scalar(@fds) . " $err\\n"; close $o;
sleep 3600 while 1;
`;

/** Opens inotify instances until refused; prints "INOTIFY <count> <errno>" and keeps them. */
const INOTIFY_HOLDER = `
$| = 1;
my ($out) = @ARGV; my @fds; my $e = 0;
while (@fds < 4096) { my $fd = syscall(${nr.inotify_init1}, 0); if ($fd < 0) { $e = $! + 0; last } push @fds, $fd }
open(my $o, ">", $out) or die; print $o "INOTIFY " . scalar(@fds) . " $e\\n"; close $o;
sleep 3600 while 1;
`;

/** One command: creates one user namespace (mapped like unshare -r) and one inotify instance. */
const TRY_BOTH =
  `perl -e '$u = syscall(${nr.unshare}, 0x10000000) < 0 ? $! + 0 : 0; ` +
  `$i = syscall(${nr.inotify_init1}, 0) < 0 ? $! + 0 : 0; print "USERNS $u INOTIFY $i\\n"'`;

/** Ship a script into the lab host through the terminal without any shell quoting. */
const writeFile = (t: TermClient, path: string, text: string) =>
  t.exec(`echo ${Buffer.from(text).toString('base64')} | base64 -d > ${path}`);

describe('per-user kernel limits: one reader cannot use up another’s (real server, real engine)', () => {
  const lab = useLab('abuse-user-limits', 'processes', {
    env: {
      // The new session must be made after the hoard, not taken ready-made from a pool.
      CL_POOL_SIZE: '0',
      CL_LAB_MEMORY: `${labMemoryMiB}m`,
    },
    terminals: ['host'],
    report: 'per-user limits: what was seen',
  });
  const report = lab.report;
  let hoarder: SessionInfo;
  let fresh: SessionInfo | undefined;
  let hoarderHost: TermClient;

  before(() => {
    hoarder = lab.s;
    hoarderHost = lab.term('host');
    report.push(
      `machine: max_user_namespaces ${maxUserNs}, max_user_instances (inotify) ${maxInotify}; lab hosts get ${labMemoryMiB} MiB`,
    );
  });

  test('one session hoards user namespaces and inotify instances up to the per-user limit', async () => {
    const t = hoarderHost;
    assert.equal(
      (await t.exec('cat /proc/sys/user/max_user_namespaces /proc/sys/fs/inotify/max_user_instances')).trim(),
      `${maxUserNs}\n${maxInotify}`,
      'the lab host sees the limits this machine has (the engine must be local)',
    );
    await writeFile(t, '/tmp/holder.pl', HOLDER);
    await writeFile(t, '/tmp/inotify.pl', INOTIFY_HOLDER);
    const holders = Math.ceil(maxUserNs / (DEPTH * FDS_PER_HOLDER)) + 1;
    const t0 = performance.now();
    await t.exec(
      `for i in $(seq ${holders}); do perl /tmp/holder.pl /tmp/held.$i & done; perl /tmp/inotify.pl /tmp/inotify.out & true`,
    );
    let lines: string[] = [];
    const deadline = Date.now() + 180_000;
    for (;;) {
      lines = (await t.exec('cat /tmp/held.* /tmp/inotify.out 2>/dev/null')).trim().split('\n');
      if (lines.filter((l) => /^(HELD|INOTIFY) /.test(l)).length === holders + 1) break;
      assert.ok(Date.now() < deadline, `the hoard did not finish within 180 s:\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const hoardMs = performance.now() - t0;
    const held = lines.filter((l) => l.startsWith('HELD ')).map((l) => l.split(' ').slice(1).map(Number));
    const total = held.reduce((sum, [n]) => sum + n!, 0);
    const fds = held.reduce((sum, [, f]) => sum + f!, 0);
    const [inotifyCount, inotifyErrno] = lines
      .find((l) => l.startsWith('INOTIFY '))!
      .split(' ')
      .slice(1)
      .map(Number);
    report.push(
      `hoard: ${total} user namespaces held through ${fds} fds in ${holders} processes, in ${(hoardMs / 1000).toFixed(1)} s; ` +
        `${inotifyCount} inotify instances (then errno ${inotifyErrno})`,
    );
    // The kernel itself said no: the per-user limit is reached, not some other bound.
    assert.ok(
      held.some(([, , e]) => e === ENOSPC),
      `no holder was refused with ENOSPC: ${lines.join(' | ')}`,
    );
    assert.ok(
      held.every(([, , e]) => e === 0 || e === ENOSPC),
      `a holder failed otherwise: ${lines.join(' | ')}`,
    );
    assert.ok(total <= maxUserNs, `held ${total} > limit ${maxUserNs}`);
    assert.equal(inotifyErrno, EMFILE, `inotify_init1 was refused with errno ${inotifyErrno}, not EMFILE`);
    assert.ok(inotifyCount! <= maxInotify);
    // The hoarder itself is out of both.
    assert.match(
      await t.exec('unshare -U true 2>&1; echo status=$?'),
      /No space left on device[\s\S]*status=1/,
      'the hoarding session can still make a user namespace: the hoard is not complete',
    );
    assert.match(await t.exec(TRY_BOTH), new RegExp(`^USERNS ${ENOSPC} INOTIFY ${EMFILE}$`, 'm'));
    const mem = (
      await t.exec(
        'cat /sys/fs/cgroup/memory/memory.usage_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.current',
      )
    ).trim();
    report.push(`hoarder's memory cgroup holds ${(Number(mem) / MiB).toFixed(0)} MiB`);
  });

  test('a NEW session still starts its nested container and makes its own namespace and inotify instance', async () => {
    const t0 = performance.now();
    fresh = await lab.session('processes');
    const box = await lab.terminal(fresh, 'container', { promptMs: 30_000 });
    const readyMs = performance.now() - t0;
    // The app is PID 1 of the new session's nested container.
    assert.match(await box.exec('ps -o pid=,args= -p 1'), /^\s*1 busybox httpd -f -p 8080 -h \/srv\/www$/m);
    const host = await lab.terminal(fresh, 'host');
    assert.match(await host.exec('test -e /run/lab/box-ready && echo ready'), /^ready$/m);
    assert.equal((await host.exec('unshare -U -r id -u; echo status=$?')).trim(), '0\nstatus=0');
    assert.match(await host.exec(TRY_BOTH), /^USERNS 0 INOTIFY 0$/m);
    report.push(
      `new session during the hoard: container shell ready ${(readyMs / 1000).toFixed(1)} s after Start; ` +
        'app is PID 1 inside; unshare -U -r and inotify_init1 work',
    );
  });

  test('the two sessions run as different uids on the machine (Engine API and /proc)', async () => {
    const docker = new Docker();
    const seen: { user: string; uid: string; session: string }[] = [];
    for (const s of [hoarder, fresh!]) {
      const [c] = await sessionContainers(s.id);
      assert.ok(c, `no container for session ${s.id}`);
      const info = await docker.getContainer(c.Id).inspect();
      // The lab host's init, seen from this machine: its real, effective, saved and fs uids.
      const status = readFileSync(`/proc/${info.State.Pid}/status`, 'utf8');
      const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status);
      assert.ok(uids, status);
      assert.equal(new Set(uids.slice(1)).size, 1, `mixed uids: ${uids[0]}`);
      assert.equal(info.Config.User, `${uids[1]}:${uids[1]}`, 'the engine ran the user it was given');
      seen.push({ user: info.Config.User, uid: uids[1]!, session: s.id });
    }
    assert.notEqual(seen[0]!.uid, seen[1]!.uid, `both lab hosts run as uid ${seen[0]!.uid}`);
    assert.ok(seen.every((x) => Number(x.uid) !== 0 && Number(x.uid) !== 1000));
    report.push(`host uids: ${seen.map((x) => `${x.uid} (Config.User ${x.user})`).join(' and ')}`);
  });

  test('removing the hoarding session ends its lab host and everything it held', async () => {
    const id = hoarder.id;
    const t0 = performance.now();
    await hoarderHost.close();
    assert.equal(await lab.end(hoarder), 204);
    for (;;) {
      if ((await sessionContainers(id)).length === 0) break;
      assert.ok(performance.now() - t0 < 30_000, 'the hoarding lab host is still there after 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    report.push(`hoarding session removed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
});
