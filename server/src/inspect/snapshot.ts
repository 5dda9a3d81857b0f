/**
 * Snapshots of what the kernel says about a session, read inside its lab host by fixed
 * scripts (no reader input ever reaches them): every process with its PID at each
 * namespace level, its user at each level and its namespaces; and the lab host's
 * cgroup figures on cgroup v1 or v2. The scripts fork only a few times (grep, find), so
 * they still work near the pids limit most of the time.
 */
import type { Runtime } from '../runtime/runtime.ts';

export const NS_KINDS = ['pid', 'mnt', 'uts', 'ipc', 'user', 'net', 'cgroup'] as const;
export type NsKind = (typeof NS_KINDS)[number];

export interface ProcessInfo {
  /** PID on the lab host. */
  pid: number;
  ppid: number;
  /** PID at every namespace level, outermost (the lab host) first (`NSpid`). */
  nspid: number[];
  /** uid on the lab host. */
  uid: number;
  user: string;
  /** uid at every user-namespace level, outermost first. */
  uids: number[];
  users: string[];
  cmd: string;
  namespaces: Record<NsKind, string>;
  /** Namespace kinds it shares with the lab host's init. */
  sharedWithHost: NsKind[];
  /** In a nested PID namespace (i.e. inside the container). */
  inContainer: boolean;
}

export interface ProcessSnapshot {
  takenAt: string;
  host: { namespaces: Record<NsKind, string> };
  processes: ProcessInfo[];
}

// One record per process: "P <pid>" then "<key> <value>" lines; namespaces as
// "/proc/<pid>/ns/<kind> <kind>:[inode]"; uid_map as "/proc/<pid>/uid_map:<line>".
const PROCESS_SCRIPT = [
  'echo "SELF $$"',
  'while IFS=: read -r name _ uid _; do echo "PASSWD $uid $name"; done < /etc/passwd',
  "grep -H -E '^(PPid|Uid|NSpid):' /proc/[0-9]*/status 2>/dev/null",
  'grep -H . /proc/[0-9]*/uid_map 2>/dev/null',
  "find /proc/[0-9]*/ns -maxdepth 1 -type l -printf 'NS %p %l\\n' 2>/dev/null",
  'for f in /proc/[0-9]*/cmdline; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '  p=${f#/proc/}; p=${p%/cmdline}',
  '  mapfile -d \'\' args < "$f" 2>/dev/null || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  '  printf \'CMD %s %s\\n\' "$p" "${args[*]}"',
  'done',
].join('\n');

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
  const rules: [RegExp, (m: RegExpExecArray) => void][] = [
    [
      /^SELF (\d+)$/,
      (m) => {
        self = Number(m[1]);
      },
    ],
    [/^PASSWD (\d+) (\S+)$/, (m) => names.set(Number(m[1]), m[2]!)],
    [
      /^\/proc\/(\d+)\/status:(PPid|Uid|NSpid):\s+(.*)$/,
      (m) => {
        const r = get(Number(m[1]));
        const nums = m[3]!.trim().split(/\s+/).map(Number);
        if (m[2] === 'PPid') r.ppid = nums[0];
        else if (m[2] === 'Uid') r.uid = nums[0];
        else r.nspid = nums;
      },
    ],
    [
      /^\/proc\/(\d+)\/uid_map:\s*(\d+)\s+(\d+)\s+(\d+)\s*$/,
      (m) => {
        get(Number(m[1])).maps.push([Number(m[2]), Number(m[3]), Number(m[4])]);
      },
    ],
    [
      /^NS \/proc\/(\d+)\/ns\/(\w+) (\w+):\[(\d+)\]$/,
      (m) => {
        const kind = m[2] as NsKind;
        if ((NS_KINDS as readonly string[]).includes(kind)) get(Number(m[1])).ns[kind] = m[4]!;
      },
    ],
    [
      /^CMD (\d+) (.*)$/,
      (m) => {
        get(Number(m[1])).cmd = m[2]!.trim();
      },
    ],
  ];
  for (const line of text.split('\n')) {
    for (const [re, apply] of rules) {
      const m = re.exec(line);
      if (m) {
        apply(m);
        break;
      }
    }
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
    });
  }
  return { takenAt: now.toISOString(), host, processes };
}

function fillNs(ns: Partial<Record<NsKind, string>>): Record<NsKind, string> {
  const out = {} as Record<NsKind, string>;
  for (const k of NS_KINDS) out[k] = ns[k] ?? '';
  return out;
}

export interface CgroupSnapshot {
  takenAt: string;
  version: '1' | '2';
  memory: { current: number | null; limit: number | null; peak: number | null; oomKills: number | null };
  pids: { current: number | null; limit: number | null; refused: number | null };
  cpu: {
    /** CPU time used since the lab host started, seconds. */
    usageSeconds: number | null;
    /** The CPU limit in cores (quota / period), null when unlimited. */
    limitCores: number | null;
    periods: number | null;
    throttledPeriods: number | null;
    throttledSeconds: number | null;
  };
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
  if (version === '2') {
    const [quota, period] = (kv.get('cpu.max') ?? 'max 100000').split(/\s+/);
    return {
      takenAt: now.toISOString(),
      version,
      memory: {
        current: num('memory.current'),
        limit,
        peak: num('memory.peak'),
        oomKills: num('memory.events.oom_kill'),
      },
      pids: { current: num('pids.current'), limit: num('pids.max'), refused: num('pids.events.max') },
      cpu: {
        usageSeconds: usec(num('cpu.stat.usage_usec')),
        limitCores: quota && quota !== 'max' && period ? Number(quota) / Number(period) : null,
        periods: num('cpu.stat.nr_periods'),
        throttledPeriods: num('cpu.stat.nr_throttled'),
        throttledSeconds: usec(num('cpu.stat.throttled_usec')),
      },
    };
  }
  const quota = Number(kv.get('cpu.quota') ?? -1);
  const period = num('cpu.period');
  const ns = (v: number | null) => (v === null ? null : v / 1e9);
  return {
    takenAt: now.toISOString(),
    version,
    memory: {
      current: num('memory.current'),
      limit,
      peak: num('memory.peak'),
      oomKills: num('memory.oom_control.oom_kill'),
    },
    pids: { current: num('pids.current'), limit: num('pids.max'), refused: num('pids.events.max') },
    cpu: {
      usageSeconds: ns(num('cpuacct.usage')),
      limitCores: quota > 0 && period ? quota / period : null,
      periods: num('cpu.stat.nr_periods'),
      throttledPeriods: num('cpu.stat.nr_throttled'),
      throttledSeconds: ns(num('cpu.stat.throttled_time')),
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

export async function readCgroup(runtime: Runtime, hostId: string): Promise<CgroupSnapshot> {
  const r = await runtime.exec(hostId, ['/bin/bash', '-c', CGROUP_SCRIPT]);
  return parseCgroup(r.stdout);
}
