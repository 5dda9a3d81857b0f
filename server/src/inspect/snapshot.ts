/**
 * Snapshots of what the kernel says about a session, read inside its lab host by fixed
 * scripts (no reader input ever reaches them): every process with its PID at each
 * namespace level, its user at each level, its namespaces, state, capabilities and root;
 * the mount table of every mount namespace; and the lab host's cgroup figures on cgroup
 * v1 or v2. The scripts fork only a few times (grep, find), so they still work near the
 * pids limit most of the time.
 */
import {
  type CgroupSnapshot,
  NS_KINDS,
  type NsKind,
  type ProcessInfo,
  type ProcessSnapshot,
} from '../contract/rest.ts';
import type { Runtime } from '../runtime/runtime.ts';

export type { CgroupSnapshot, NsKind, ProcessInfo, ProcessSnapshot };
export { NS_KINDS };

// WARNING: a reader controls command lines (argv may hold any byte but NUL, newlines
// included) and, if a lab lets them, what /etc/passwd says. So the script prints
// NUL-terminated fields, never lines: a record is a tag and a fixed number of fields
// (ARITY), and no field can hold a NUL, so text shaped like a record stays inside its own
// field. Only builtins run per process (read, mapfile, printf); `find` is the one fork.
// The kernel's records come first and /etc/passwd last, and each command line is cut to
// CMD_MAX characters, so long command lines or a long passwd cannot push the kernel's
// records past the exec output cap.
const CMD_MAX = 2048;
const PROCESS_SCRIPT = [
  'exec 2>/dev/null',
  'printf \'SELF\\0%s\\0\' "$$"',
  'for d in /proc/[0-9]*; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '  p=${d#/proc/}',
  '  while read -r k v; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '    case $k in PPid:|Uid:|NSpid:|State:|CapEff:) printf \'STATUS\\0%s\\0%s\\0%s\\0\' "$p" "${k%:}" "$v" ;; esac',
  '  done < "$d/status"',
  '  while read -r a b c; do printf \'UIDMAP\\0%s\\0%s\\0%s\\0%s\\0\' "$p" "$a" "$b" "$c"; done < "$d/uid_map"',
  'done',
  "find /proc/[0-9]*/ns -maxdepth 1 -type l -printf 'NS\\0%p\\0%l\\0'",
  // -L: the device and inode of the directory each root link leads to.
  "find -L /proc/[0-9]*/root -maxdepth 0 -printf 'ROOT\\0%p\\0%D:%i\\0'",
  'for d in /proc/[0-9]*; do',
  '  mapfile -d \'\' args < "$d/cmdline" || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '  c=${args[*]}',
  `  printf 'CMD\\0%s\\0%s\\0' "\${d#/proc/}" "\${c:0:${CMD_MAX}}"`,
  'done',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  'mapfile -t pw < /etc/passwd && printf \'PASSWD\\0%s\\0\' "${pw[@]}"',
].join('\n');

/** Fields after the tag, per record kind of PROCESS_SCRIPT. */
const ARITY: Record<string, number> = { SELF: 1, STATUS: 3, UIDMAP: 4, NS: 2, ROOT: 2, CMD: 2, PASSWD: 1 };
const DIGITS = /^\d+$/;
// A user name as /etc/passwd may hold it: no separators, blanks or control characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const USER_NAME = /^[^:\s\x00-\x1f\x7f-\x9f]{1,64}$/;

export function parseProcesses(text: string, now = new Date()): ProcessSnapshot {
  let self = -1;
  const names = new Map<number, string>();
  type Raw = {
    ppid?: number;
    uid?: number;
    nspid?: number[];
    maps: [number, number, number][];
    ns: Partial<Record<NsKind, string>>;
    cmd?: string;
    state?: string;
    capEff?: string;
    root?: string;
  };
  const raw = new Map<number, Raw>();
  const get = (pid: number): Raw => {
    let r = raw.get(pid);
    if (!r) {
      r = { maps: [], ns: {} };
      raw.set(pid, r);
    }
    return r;
  };
  const apply = (tag: string, f: string[]): void => {
    switch (tag) {
      case 'SELF':
        if (DIGITS.test(f[0]!)) self = Number(f[0]);
        return;
      case 'STATUS': {
        if (f[1] === 'State' || f[1] === 'CapEff') {
          if (!DIGITS.test(f[0]!)) return;
          const v = f[2]!.trim();
          // "Z (zombie)" → Z; CapEff: 16 hex digits.
          if (f[1] === 'State' && /^[A-Z]\b/.test(v)) get(Number(f[0])).state = v[0];
          if (f[1] === 'CapEff' && /^[0-9a-f]{16}$/.test(v)) get(Number(f[0])).capEff = v;
          return;
        }
        const nums = f[2]!.trim().split(/\s+/);
        if (!DIGITS.test(f[0]!) || !nums.every((n) => DIGITS.test(n))) return;
        const r = get(Number(f[0]));
        if (f[1] === 'PPid') r.ppid = Number(nums[0]);
        else if (f[1] === 'Uid') r.uid = Number(nums[0]);
        else if (f[1] === 'NSpid') r.nspid = nums.map(Number);
        return;
      }
      case 'UIDMAP':
        if (f.every((n) => DIGITS.test(n)))
          get(Number(f[0])).maps.push([Number(f[1]), Number(f[2]), Number(f[3])]);
        return;
      case 'NS': {
        const path = /^\/proc\/(\d+)\/ns\/(\w+)$/.exec(f[0]!);
        const link = /^\w+:\[(\d+)\]$/.exec(f[1]!);
        const kind = path?.[2] as NsKind;
        if (path && link && (NS_KINDS as readonly string[]).includes(kind))
          get(Number(path[1])).ns[kind] = link[1]!;
        return;
      }
      case 'ROOT': {
        const path = /^\/proc\/(\d+)\/root$/.exec(f[0]!);
        if (path && /^\d+:\d+$/.test(f[1]!)) get(Number(path[1])).root = f[1];
        return;
      }
      case 'CMD':
        if (DIGITS.test(f[0]!)) get(Number(f[0])).cmd = f[1]!.trim();
        return;
      case 'PASSWD': {
        // name:password:uid:...; the first entry of a uid names it, as getpwuid(3) does.
        const [name = '', , uid = ''] = f[0]!.split(':');
        if (USER_NAME.test(name) && DIGITS.test(uid) && !names.has(Number(uid))) names.set(Number(uid), name);
        return;
      }
    }
  };
  const fields = text.split('\0');
  // The last piece follows the last NUL: empty, or a field the output cap cut short.
  fields.pop();
  for (let i = 0; i < fields.length; ) {
    const tag = fields[i]!;
    const n = ARITY[tag];
    // An unknown tag or a record cut short by the output cap: stop rather than read a
    // field in the wrong place (cannot happen while the script keeps to ARITY).
    if (n === undefined || i + 1 + n > fields.length) break;
    apply(tag, fields.slice(i + 1, i + 1 + n));
    i += 1 + n;
  }
  const hostNs = raw.get(1)?.ns ?? {};
  const host = { namespaces: fillNs(hostNs) };
  const processes: ProcessInfo[] = [];
  const inspector = new Set<number>([self]);
  for (const [pid, r] of raw) if (r.ppid !== undefined && inspector.has(r.ppid)) inspector.add(pid);
  for (const [pid, r] of [...raw].sort((a, b) => a[0] - b[0])) {
    if (inspector.has(pid) || r.ppid === undefined || r.uid === undefined) continue;
    const nspid = r.nspid ?? [pid];
    // Map the uid down through the user namespace, if the process is in a nested one:
    // uid_map lines read "inside outside count" relative to the reader's namespace.
    const uids = [r.uid];
    const map = r.maps.find(([, outside, count]) => r.uid! >= outside && r.uid! < outside + count);
    if (map && !(map[0] === 0 && map[1] === 0)) uids.push(r.uid - map[1] + map[0]);
    const namespaces = fillNs(r.ns);
    processes.push({
      pid,
      ppid: r.ppid,
      nspid,
      uid: r.uid,
      user: names.get(r.uid) ?? String(r.uid),
      uids,
      users: uids.map((u) => names.get(u) ?? String(u)),
      cmd: r.cmd || '?',
      namespaces,
      sharedWithHost: NS_KINDS.filter((k) => namespaces[k] !== '' && namespaces[k] === host.namespaces[k]),
      inContainer: nspid.length > 1,
      ...(r.state ? { state: r.state } : {}),
      ...(r.capEff ? { capEff: r.capEff } : {}),
      ...(r.root ? { root: r.root } : {}),
    });
  }
  return { takenAt: now.toISOString(), host, processes };
}

function fillNs(ns: Partial<Record<NsKind, string>>): Record<NsKind, string> {
  const out = {} as Record<NsKind, string>;
  for (const k of NS_KINDS) out[k] = ns[k] ?? '';
  return out;
}

// The mount table of each mount namespace, read once per namespace from the first process
// found in it: NUL-terminated MNT records (namespace inode, one mountinfo line). The
// kernel escapes blanks, newlines and backslashes in mountinfo fields, so a line is one
// record. A reader may make many mounts: the caps keep the output far below the exec cap.
const MOUNTS_PER_NS = 300;
const MOUNTS_TOTAL = 1500;
const MOUNTS_SCRIPT = [
  'exec 2>/dev/null',
  'declare -A seen; total=0',
  'while read -r path link; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '  [[ $link =~ ^mnt:\\[([0-9]+)\\]$ ]] || continue; ns=${BASH_REMATCH[1]}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '  [[ -n ${seen[$ns]} ]] && continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '  p=${path#/proc/}; p=${p%%/*}; n=0',
  '  while IFS= read -r line; do',
  `    ((n < ${MOUNTS_PER_NS} && total < ${MOUNTS_TOTAL})) || break`,
  '    printf \'MNT\\0%s\\0%s\\0\' "$ns" "$line"; ((n++, total++))',
  '  done < "/proc/$p/mountinfo"',
  '  ((n > 0)) && seen[$ns]=1',
  "done < <(find /proc/[0-9]*/ns/mnt -maxdepth 0 -printf '%p %l\\n')",
].join('\n');

/** One mount of a mount table: a line of `/proc/<pid>/mountinfo`, unescaped. */
export interface MountEntry {
  /** Where it is mounted, as the namespace's processes see it (relative to their root). */
  mountPoint: string;
  fstype: string;
  source: string;
  /** The filesystem's own options, e.g. an overlay's `lowerdir=…,upperdir=…,workdir=…`. */
  superOptions: string;
}

/** The mount table of every mount namespace in the lab host, by namespace inode. */
export interface MountSnapshot {
  takenAt: string;
  tables: Record<string, MountEntry[]>;
}

// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
const MOUNTINFO = /^\d+ \d+ \d+:\d+ \S+ (\S+) \S+(?: \S+)*? - (\S+) (\S+) (\S+)$/;
const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseMounts(text: string, now = new Date()): MountSnapshot {
  const tables: Record<string, MountEntry[]> = {};
  const fields = text.split('\0');
  fields.pop();
  // Records of three fields; a record cut short by the output cap is dropped.
  for (let i = 0; i + 2 < fields.length; i += 3) {
    if (fields[i] !== 'MNT' || !DIGITS.test(fields[i + 1]!)) break;
    const m = MOUNTINFO.exec(fields[i + 2]!);
    if (!m) continue;
    const ns = fields[i + 1]!;
    if (!tables[ns]) tables[ns] = [];
    tables[ns].push({
      mountPoint: unescapeOctal(m[1]!),
      fstype: m[2]!,
      source: unescapeOctal(m[3]!),
      superOptions: m[4]!,
    });
  }
  return { takenAt: now.toISOString(), tables };
}

/**
 * The lower layers of an overlay mount, in its `lowerdir=` order (top first). Paths are
 * separated by `:`; a `:` inside a path is escaped as `\:`.
 */
export function overlayLowerDirs(superOptions: string): string[] {
  const m = /(?:^|,)lowerdir=((?:[^,\\]|\\.)*)/.exec(superOptions);
  if (!m) return [];
  return m[1]!.split(/(?<!\\):/).filter(Boolean);
}

// Prints "key value" lines; `read` is a builtin, so this script forks nothing.
const CGROUP_SCRIPT = `
r() { local v; if read -r v < "$2" 2>/dev/null; then echo "$1 $v"; fi; }
kv() { local k v; while read -r k v; do echo "$1.$k $v"; done < "$2" 2>/dev/null; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo "version 2"; c=/sys/fs/cgroup
  r memory.current $c/memory.current; r memory.max $c/memory.max; r memory.peak $c/memory.peak
  kv memory.events $c/memory.events
  r pids.current $c/pids.current; r pids.max $c/pids.max; kv pids.events $c/pids.events
  kv cpu.stat $c/cpu.stat; r cpu.max $c/cpu.max
else
  echo "version 1"; m=/sys/fs/cgroup/memory; p=/sys/fs/cgroup/pids
  for d in /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/cpu; do [ -f $d/cpu.stat ] && { c=$d; break; }; done
  for d in /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/cpuacct; do [ -f $d/cpuacct.usage ] && { a=$d; break; }; done
  r memory.current $m/memory.usage_in_bytes; r memory.max $m/memory.limit_in_bytes
  r memory.peak $m/memory.max_usage_in_bytes; kv memory.oom_control $m/memory.oom_control
  r pids.current $p/pids.current; r pids.max $p/pids.max; kv pids.events $p/pids.events
  kv cpu.stat $c/cpu.stat; r cpu.quota $c/cpu.cfs_quota_us; r cpu.period $c/cpu.cfs_period_us
  r cpuacct.usage $a/cpuacct.usage
fi
`;

export function parseCgroup(text: string, now = new Date()): CgroupSnapshot {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const num = (k: string): number | null => {
    const v = kv.get(k);
    if (v === undefined || v === 'max' || !/^\d+$/.test(v)) return null;
    return Number(v);
  };
  const version = kv.get('version') === '2' ? '2' : '1';
  // v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages); treat it as none.
  const memLimit = num('memory.max');
  const limit = memLimit !== null && memLimit < 2 ** 60 ? memLimit : null;
  // The figures that v1 and v2 name (and count) differently: time in ns (v1) or µs (v2),
  // the CPU limit as quota/period files (v1) or one cpu.max line (v2).
  const ns = (v: number | null) => (v === null ? null : v / 1e9);
  let cpuLimit: number | null;
  if (version === '2') {
    const [quota, period] = (kv.get('cpu.max') ?? 'max 100000').split(/\s+/);
    cpuLimit = quota && quota !== 'max' && period ? Number(quota) / Number(period) : null;
  } else {
    const quota = Number(kv.get('cpu.quota') ?? -1);
    const period = num('cpu.period');
    cpuLimit = quota > 0 && period ? quota / period : null;
  }
  const v2 = version === '2';
  return {
    takenAt: now.toISOString(),
    version,
    memory: {
      current: num('memory.current'),
      limit,
      peak: num('memory.peak'),
      oomKills: num(v2 ? 'memory.events.oom_kill' : 'memory.oom_control.oom_kill'),
    },
    pids: { current: num('pids.current'), limit: num('pids.max'), refused: num('pids.events.max') },
    cpu: {
      usageSeconds: v2 ? usec(num('cpu.stat.usage_usec')) : ns(num('cpuacct.usage')),
      limitCores: cpuLimit,
      periods: num('cpu.stat.nr_periods'),
      throttledPeriods: num('cpu.stat.nr_throttled'),
      throttledSeconds: v2 ? usec(num('cpu.stat.throttled_usec')) : ns(num('cpu.stat.throttled_time')),
    },
  };
}

function usec(v: number | null): number | null {
  return v === null ? null : v / 1e6;
}

export async function readProcesses(runtime: Runtime, hostId: string): Promise<ProcessSnapshot> {
  // The runtime's own timeout for quick calls applies (CL_ENGINE_TIMEOUT).
  const r = await runtime.exec(hostId, ['/bin/bash', '-c', PROCESS_SCRIPT]);
  return parseProcesses(r.stdout);
}

export async function readMounts(runtime: Runtime, hostId: string): Promise<MountSnapshot> {
  const r = await runtime.exec(hostId, ['/bin/bash', '-c', MOUNTS_SCRIPT], { timeoutMs: 5000 });
  return parseMounts(r.stdout);
}

export async function readCgroup(runtime: Runtime, hostId: string): Promise<CgroupSnapshot> {
  const r = await runtime.exec(hostId, ['/bin/bash', '-c', CGROUP_SCRIPT]);
  return parseCgroup(r.stdout);
}
