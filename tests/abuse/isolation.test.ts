/**
 * Isolation, read from inside a lab through the real server: in the lab host ("On the
 * host") and in the nested container ("Inside the container") terminals. What a reader
 * sees of privileges, network, the machine's files and devices, and which system calls
 * the sandbox refuses, exercised with perl's syscall() (perl is in the image; no compiler
 * or python is).
 *
 * How each syscall refusal is checked: the call is made from inside (host and container
 * terminals) and must fail with EPERM (ENOSYS for clone3); the same one-liner runs on the
 * test machine as a baseline and is printed, to show which calls the kernel itself would
 * grant. labs/seccomp/profile.test.ts checks the same list statically in the profile JSON.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { before, describe, test } from 'node:test';
import { useLab } from '../support/fixtures.ts';
import { sessionContainers, type TermClient } from '../support/server.ts';

/** Docker's default /dev of a container without devices (runc's default set). */
const DOCKER_DEFAULT_DEV = new Set([
  'console',
  'core',
  'fd',
  'full',
  'mqueue',
  'null',
  'ptmx',
  'pts',
  'random',
  'shm',
  'stderr',
  'stdin',
  'stdout',
  'tty',
  'urandom',
  'zero',
]);

const EPERM = 1;
const ENOSYS = 38;

/** Syscall numbers (asm-generic numbers for the newer calls are shared). */
const NR: Record<string, Record<string, number>> = {
  x86_64: {
    keyctl: 250,
    add_key: 248,
    bpf: 321,
    io_uring_setup: 425,
    fsopen: 430,
    open_tree: 428,
    perf_event_open: 298,
    userfaultfd: 323,
    clone3: 435,
    unshare: 272,
  },
  aarch64: {
    keyctl: 219,
    add_key: 217,
    bpf: 280,
    io_uring_setup: 425,
    fsopen: 430,
    open_tree: 428,
    perf_event_open: 241,
    userfaultfd: 282,
    clone3: 435,
    unshare: 97,
  },
};

/**
 * Each call with arguments that an unprivileged caller could use on a stock kernel, where the
 * kernel allows it at all, and that leave nothing behind when run as the baseline on this
 * machine (process keyring, fds closed at exit; clone3 with size 0, which the kernel answers
 * EINVAL, so the ENOSYS inside is the filter's). Perl passes numbers as integers and
 * variables holding strings as pointers (string literals are read-only to syscall()).
 */
const CALLS: [name: string, perl: string, expect: number][] = [
  ['keyctl', 'syscall($n{keyctl}, 0, -2, 1)', EPERM], // KEYCTL_GET_KEYRING_ID of the process keyring
  ['add_key', 'my ($t, $d, $v) = ("user", "cl", "v"); syscall($n{add_key}, $t, $d, $v, 1, -2)', EPERM],
  ['bpf', 'my $a = pack("LLLL", 2, 4, 4, 1) . ("\\0" x 56); syscall($n{bpf}, 0, $a, length $a)', EPERM], // BPF_MAP_CREATE array
  ['io_uring_setup', 'my $p = "\\0" x 120; syscall($n{io_uring_setup}, 1, $p)', EPERM],
  ['fsopen', 'my $f = "tmpfs"; syscall($n{fsopen}, $f, 0)', EPERM],
  ['open_tree', 'my $d = "/tmp"; syscall($n{open_tree}, -100, $d, 1)', EPERM], // AT_FDCWD, OPEN_TREE_CLONE
  [
    'perf_event_open',
    'my $a = pack("LL", 1, 128) . ("\\0" x 120); syscall($n{perf_event_open}, $a, 0, -1, -1, 0)',
    EPERM,
  ],
  ['userfaultfd', 'syscall($n{userfaultfd}, 1)', EPERM], // UFFD_USER_MODE_ONLY
  ['clone3', 'my $a = "\\0" x 88; syscall($n{clone3}, $a, 0)', ENOSYS],
  ['unshare(NEWNET)', 'syscall($n{unshare}, 0x40000000)', EPERM],
  ['unshare(NEWCGROUP)', 'syscall($n{unshare}, 0x02000000)', EPERM],
  // CLONE_NEWTIME (0x80): the kernel alone grants it to root of the nested user namespace,
  // and to anyone together with a new user namespace; no lab needs it, so seccomp refuses.
  ['unshare(NEWTIME)', 'syscall($n{unshare}, 0x80)', EPERM],
  ['unshare(NEWUSER|NEWTIME)', 'syscall($n{unshare}, 0x10000080)', EPERM],
  // Control: the same tool, a namespace the nesting needs: allowed.
  ['unshare(NEWUSER)', 'syscall($n{unshare}, 0x10000000)', 0],
];

function perlScript(arch: string): string {
  const nr = NR[arch];
  if (!nr) throw new Error(`no syscall numbers for ${arch}`);
  const table = Object.entries(nr)
    .map(([k, v]) => `${k}=>${v}`)
    .join(',');
  const calls = CALLS.map(([name, code]) => `["${name}", sub { ${code} }]`).join(',');
  // No single quotes inside: the script travels in '...' through the shell. Each call runs
  // in a child of its own: a call that succeeds (an unshare of a user namespace) must not
  // change what the next one meets.
  return (
    `$| = 1; my %n = (${table}); ` +
    `for my $c (${calls}) { my $pid = fork(); die "fork: $!" unless defined $pid; ` +
    `if ($pid == 0) { $! = 0; my $r = $c->[1]->(); printf "SC %s %d\\n", $c->[0], $r < 0 ? $!+0 : 0; exit 0; } ` +
    `waitpid($pid, 0); }`
  );
}

function parseSyscalls(out: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const [, name, errno] of out.matchAll(/^SC (\S+) (\d+)$/gm)) m.set(name!, Number(errno));
  return m;
}

const errnoName = (e: number) =>
  e === 0 ? 'ok' : e === EPERM ? 'EPERM' : e === ENOSYS ? 'ENOSYS' : `errno ${e}`;

describe('isolation seen from inside a lab (real server, real engine)', () => {
  const lab = useLab('abuse-isolation', 'processes', {
    env: { CL_POOL_SIZE: '0' },
    terminals: ['host', 'container'],
    report: 'isolation: what was seen',
  });
  const report = lab.report;
  let host: TermClient;
  let box: TermClient;
  /** The lab host's uid on the machine, as the engine was told (label and Config.User). */
  let uid: string;

  before(async () => {
    const [c] = await sessionContainers(lab.s.id);
    uid = c?.Labels['containerlabs.uid'] ?? '';
    host = lab.term('host');
    box = lab.term('container');
  });

  const status = async (t: TermClient) => {
    const out = await t.exec('grep -E "^(Cap(Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status');
    return Object.fromEntries(out.split('\n').map((l) => l.split(/:\s+/) as [string, string]));
  };

  test('lab host: no capabilities, NoNewPrivs, seccomp filter, never uid 0', async () => {
    const st = await status(host);
    assert.equal(st.CapEff, '0000000000000000');
    assert.equal(st.CapPrm, '0000000000000000');
    assert.equal(st.CapBnd, '0000000000000000');
    assert.equal(st.CapAmb, '0000000000000000');
    assert.equal(st.NoNewPrivs, '1');
    assert.equal(st.Seccomp, '2');
    assert.match(uid, /^[1-9]\d*$/, 'the lab host carries its uid label');
    assert.equal((await host.exec('id -u; id -g')).trim(), `${uid}\n${uid}`);
    assert.equal((await host.exec('id -un; id -gn')).trim(), 'reader\nreader');
    // Every process of the lab host, the nested container included, is its uid outside.
    const uids = (await host.exec('cat /proc/[0-9]*/status 2>/dev/null | grep "^Uid:" | sort -u')).trim();
    for (const line of uids.split('\n')) {
      assert.match(line, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`));
    }
    report.push(
      `lab host: CapEff/CapPrm/CapBnd 0, NoNewPrivs 1, Seccomp 2; every process uid ${uid}, named reader (${uids.split('\n').length} distinct Uid lines)`,
    );
  });

  test('nested container: root only inside its user namespace, same filter', async () => {
    const st = await status(box);
    assert.equal(st.NoNewPrivs, '1');
    assert.equal(st.Seccomp, '2');
    assert.equal((await box.exec('id -u')).trim(), '0');
    // uid 0 inside is the lab host's uid outside, and nothing else is mapped.
    assert.match((await box.exec('cat /proc/self/uid_map')).trim(), new RegExp(`^0\\s+${uid}\\s+1$`));
    assert.match((await box.exec('cat /proc/self/gid_map')).trim(), new RegExp(`^0\\s+${uid}\\s+1$`));
    report.push(
      `nested container: uid 0 inside = ${uid} outside (uid_map "0 ${uid} 1"), CapEff ${st.CapEff} (in its own user namespace only), NoNewPrivs 1, Seccomp 2`,
    );
  });

  test('network: only lo, no route, in the lab host and the nested container', async () => {
    for (const t of [host, box]) {
      const links = (await t.exec('ip -o link show')).trim().split('\n');
      assert.equal(links.length, 1, links.join('\n'));
      assert.match(links[0]!, /^1: lo:/);
      const route = (await t.exec('cat /proc/net/route')).trim().split('\n');
      assert.equal(route.length, 1, `route table has entries:\n${route.join('\n')}`);
      assert.match(route[0]!, /^Iface\s+Destination\s+Gateway/);
      assert.equal(
        (await t.exec('ip route show; ip -6 route show | grep -v "^::1 \\|^fe80::/64 \\|^local "')).trim(),
        '',
      );
      const v6 = (await t.exec('cat /proc/net/ipv6_route 2>/dev/null | grep -v " lo$" | wc -l')).trim();
      assert.equal(v6, '0');
    }
    report.push(
      'network: `ip link` shows only lo, /proc/net/route has no entries, no IPv6 route off lo (both terminals)',
    );
  });

  test("the machine's files are not visible: the image's root, our init, no engine socket", async () => {
    assert.equal((await host.exec('cat /etc/hostname')).trim(), 'labhost');
    assert.equal((await host.exec('hostname')).trim(), 'labhost');
    const machine = hostname();
    if (machine !== 'labhost') {
      const hits = (await host.exec(`cat /etc/hostname /etc/hosts | grep -cwF -- "${machine}"`)).trim();
      assert.equal(hits, '0', `the machine's hostname ${machine} appears in /etc/hosts or /etc/hostname`);
    }
    assert.match(await host.exec('cat /etc/os-release'), /Debian GNU\/Linux 12/);
    assert.equal(
      (await host.exec("tr '\\0' ' ' </proc/1/cmdline; echo")).trim(),
      '/bin/bash /usr/local/sbin/lab-init',
    );
    for (const p of [
      '/var/run/docker.sock',
      '/run/docker.sock',
      '/run/containerd/containerd.sock',
      '/var/lib/docker',
    ]) {
      assert.equal((await host.exec(`test -e ${p} && echo present || echo absent`)).trim(), 'absent', p);
    }
    assert.equal(
      (await host.exec('find / -xdev -type s 2>/dev/null | wc -l')).trim(),
      '0',
      'a unix socket on /',
    );
    // Docker's marker file: present and empty, nothing more.
    assert.equal((await host.exec('stat -c %s /.dockerenv')).trim(), '0');
    // The root file system is the read-only image.
    assert.match(
      await host.exec('touch /usr/x 2>&1; touch /etc/x 2>&1'),
      /Read-only file system[\s\S]*Read-only file system/,
    );
    // The machine's /proc/sys, /sys and /proc files that Docker would mask are guarded by
    // ownership and by missing capabilities (the lab host unmasks /proc: lab-host-spec.ts).
    // (Which of these exist depends on the kernel's configuration; none may be readable.)
    const secret =
      '/proc/kcore /proc/timer_list /proc/sched_debug /proc/slabinfo /proc/kmsg /proc/latency_stats /proc/kpagecount /proc/vmallocinfo';
    for (const t of [host, box]) {
      const out = await t.exec(
        `for f in ${secret}; do head -c 1 $f >/dev/null 2>&1 && echo "READABLE $f"; done; echo checked`,
      );
      assert.equal(out.trim(), 'checked', out);
      assert.match(
        await t.exec('echo c > /proc/sysrq-trigger 2>&1; echo status=$?'),
        /(Permission denied|Read-only file system|No such file)[\s\S]*status=1/,
      );
      // Kernel addresses are hidden from the reader (kptr_restrict).
      assert.equal((await t.exec("grep -cv '^0000000000000000 ' /proc/kallsyms")).trim(), '0');
    }
    report.push(
      'files: /etc/hostname = labhost, os-release Debian 12 (the image), PID 1 = lab-init, no docker/containerd socket, ' +
        `no unix socket on /, /.dockerenv empty, / read-only; none of ${secret} readable, /proc/sysrq-trigger refused, /proc/kallsyms addresses all zero`,
    );
  });

  test('readers against each other: another session is invisible', async () => {
    const other = await lab.session('cgroups');
    const t = await lab.terminal(other, 'host');
    try {
      // The other lab host's app (box-idle) and shells are not among our processes.
      assert.match(await t.exec('ps -eo comm'), /box-idle/);
      assert.doesNotMatch(await host.exec('ps -eo comm'), /box-idle/);
      assert.equal((await t.exec('echo other-$((1+1)) > /tmp/mine; cat /tmp/mine')).trim(), 'other-2');
      assert.equal((await host.exec('cat /tmp/mine 2>&1 || true')).includes('other-2'), false);
      // Kernel keyrings: only the session keyring runc made for this container is visible.
      // (runc makes one per container; none where the engine is told not to.)
      for (const term of [host, t]) {
        assert.ok(
          Number((await term.exec('grep -c "_ses\\." /proc/keys')).trim()) <= 1,
          'more than one session keyring visible',
        );
      }
      // Another uid on the machine and no shared PID namespace: nothing to signal.
      const otherUid = (await t.exec('id -u')).trim();
      assert.notEqual(otherUid, uid, 'two sessions share a uid');
      assert.equal((await t.exec('whoami')).trim(), 'reader');
      assert.match(await host.exec('pkill -0 box-idle; echo status=$?'), /status=1/);
    } finally {
      await t.close();
      await lab.end(other);
    }
    report.push(
      "two sessions: different uids, both named reader; neither sees the other's processes, /tmp or keyrings (/proc/keys shows only its own _ses keyring)",
    );
  });

  test('devices: nothing beyond Docker’s default set', async () => {
    for (const t of [host, box]) {
      const dev = (await t.exec('ls -A /dev')).trim().split(/\s+/);
      const extra = dev.filter((d) => !DOCKER_DEFAULT_DEV.has(d));
      assert.deepEqual(extra, [], `unexpected /dev entries: ${extra.join(' ')}`);
      assert.equal(
        (await t.exec('find /dev -xdev -type b 2>/dev/null | wc -l')).trim(),
        '0',
        'a block device',
      );
    }
    report.push(`devices: /dev = ${(await host.exec('ls -A /dev')).trim().split(/\s+/).join(' ')}`);
  });

  test('no setuid or setgid file; writable mounts are nosuid', async () => {
    assert.equal((await host.exec('find / -xdev -perm /6000 2>/dev/null | wc -l', 30_000)).trim(), '0');
    const mounts = await host.exec('grep -E " (/tmp|/home/reader|/run/lab|/dev/shm) " /proc/mounts');
    for (const line of mounts.trim().split('\n')) assert.match(line, /nosuid/, line);
    report.push(
      'setuid/setgid: `find / -xdev -perm /6000` finds nothing; /tmp, /home/reader, /run/lab, /dev/shm are nosuid',
    );
  });

  test('writing /proc/sys/kernel/core_pattern is refused (lab host and nested root)', async () => {
    for (const t of [host, box]) {
      const out = await t.exec('echo "|/tmp/x" > /proc/sys/kernel/core_pattern 2>&1; echo status=$?');
      assert.match(out, /(Permission denied|Read-only file system)[\s\S]*status=1/);
    }
    assert.doesNotMatch(await host.exec('cat /proc/sys/kernel/core_pattern'), /\/tmp\/x/);
  });

  test('unshare -n, -C and -T are refused; -U and the nested container (what the lessons need) work', async () => {
    for (const t of [host, box]) {
      for (const flags of ['-T', '-UrT', '-n', '-C', '-Urn']) {
        assert.match(
          await t.exec(`unshare ${flags} true 2>&1; echo status=$?`),
          /Operation not permitted[\s\S]*status=1/,
          `unshare ${flags} in the ${t.label} terminal`,
        );
      }
    }
    assert.equal((await host.exec('unshare -Ur id -u; echo status=$?')).trim(), '0\nstatus=0');
    // What lab-init runs to make the nested container: its shell is PID 1 of a new PID namespace.
    assert.equal(
      (
        await host.exec(
          'unshare -U -r -p -f -m -u -i --mount-proc --kill-child sh -c "echo pid=\\$\\$"; echo status=$?',
        )
      ).trim(),
      'pid=1\nstatus=0',
    );
    // Root of the nested user namespace holds CAP_SYS_ADMIN there, so the kernel alone
    // would grant it a network namespace: the refusal is the seccomp filter's.
    report.push(
      "unshare -n / -C / -Urn / -T / -UrT: EPERM in both terminals; unshare -Ur and the nested container's unshare -Urpfmui work (the filter is selective)",
    );
  });

  test('keyctl, bpf, io_uring, the new mount API, perf, userfaultfd: refused from inside', async () => {
    const arch = (await host.exec('uname -m')).trim();
    const script = perlScript(arch);
    const run = async (t: TermClient) => parseSyscalls(await t.exec(`perl -e '${script}'`, 20_000));
    const inHost = await run(host);
    const inBox = await run(box);
    const base = spawnSync('perl', ['-e', script], { encoding: 'utf8' });
    const baseline = parseSyscalls(base.stdout ?? '');
    const seccomp = JSON.parse(
      readFileSync(new URL('../../labs/seccomp/profile.json', import.meta.url), 'utf8'),
    ) as {
      syscalls: { names: string[]; action: string }[];
    };
    const allowed = (name: string) =>
      seccomp.syscalls.some(
        (r) => r.action === 'SCMP_ACT_ALLOW' && r.names.includes(name.replace(/\(.*/, '')),
      );
    report.push(
      `syscalls (${arch}): call → lab host / nested container / this machine without the sandbox (as root) — profile`,
    );
    for (const [name, , expect] of CALLS) {
      const h = inHost.get(name);
      const b = inBox.get(name);
      report.push(
        `  ${name.padEnd(25)} ${errnoName(h ?? -1).padEnd(7)} / ${errnoName(b ?? -1).padEnd(7)} / ${baseline.has(name) ? errnoName(baseline.get(name)!) : 'n/a'}` +
          ` — ${allowed(name) ? 'allowed (with argument rules)' : 'not in the allow-list'}`,
      );
      assert.equal(h, expect, `${name} in the lab host: ${errnoName(h ?? -1)}, want ${errnoName(expect)}`);
      assert.equal(
        b,
        expect,
        `${name} in the nested container: ${errnoName(b ?? -1)}, want ${errnoName(expect)}`,
      );
    }
  });
});
