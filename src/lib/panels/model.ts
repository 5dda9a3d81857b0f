/**
 * What the kernel-view panels show, computed from the inspection API's snapshots
 * (`GET …/processes`, `GET …/cgroup`). Pure functions, no DOM: the panels render these
 * rows, and the unit tests (model.test.ts) check them on recorded snapshots.
 */
import type { CgroupReading, NsKind, ProcessInfo, ProcessSnapshot } from '../lab-api.ts';

// ---- process map ------------------------------------------------------------------------

export interface ProcessRow {
  proc: ProcessInfo;
  /** Depth in the tree by parent (0 = a root: its parent is not in the snapshot). */
  depth: number;
  /** This is the nested container's PID 1 (its first process). */
  containerInit: boolean;
  /** The row's parent is outside the lab host's PID namespace (started by `docker exec`). */
  parentOutside: boolean;
}

/**
 * The container's PID 1: the process that is PID 1 one level below the lab host (a
 * reader's own `unshare -p` inside the container makes deeper PID 1s; those are not it).
 */
export function containerInit(snap: ProcessSnapshot): ProcessInfo | undefined {
  return snap.processes
    .filter((p) => p.inContainer && p.nspid.length === 2 && p.nspid[1] === 1)
    .sort((a, b) => a.pid - b.pid)[0];
}

/** Every process as a depth-first tree by ppid (children by PID), roots first by PID. */
export function processTree(snap: ProcessSnapshot): ProcessRow[] {
  const byPid = new Map(snap.processes.map((p) => [p.pid, p]));
  const children = new Map<number, ProcessInfo[]>();
  const roots: ProcessInfo[] = [];
  for (const p of snap.processes) {
    if (p.ppid !== p.pid && byPid.has(p.ppid)) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    } else {
      roots.push(p);
    }
  }
  const init = containerInit(snap);
  const rows: ProcessRow[] = [];
  const seen = new Set<number>();
  const walk = (p: ProcessInfo, depth: number) => {
    if (seen.has(p.pid)) return; // a PID reused mid-snapshot could make a loop
    seen.add(p.pid);
    rows.push({ proc: p, depth, containerInit: p === init, parentOutside: p.ppid === 0 });
    for (const c of (children.get(p.pid) ?? []).sort((a, b) => a.pid - b.pid)) walk(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.pid - b.pid)) walk(r, 0);
  // Processes in a parent loop (never reached from a root) still belong on the map.
  for (const p of snap.processes) if (!seen.has(p.pid)) walk(p, 0);
  return rows;
}

/** PIDs below the lab host's level, outermost first: "1", or "5 → 1" for a deeper namespace. */
export function insidePids(p: ProcessInfo): string {
  return p.nspid.length > 1 ? p.nspid.slice(1).join(' → ') : '';
}

/** The user at each user-namespace level: "reader → root". */
export function usersText(p: ProcessInfo): string {
  return (p.users.length ? p.users : [p.user]).join(' → ');
}

/** Which namespaces it shares with the lab host, in words. */
export function sharedText(p: ProcessInfo): string {
  if (p.sharedWithHost.length === NS_KINDS.filter((k) => p.namespaces[k]).length) return 'all';
  if (p.sharedWithHost.length === 0) return 'none';
  return p.sharedWithHost.join(', ');
}

// ---- namespace diff ---------------------------------------------------------------------

/** The namespace kinds, in the order of /proc/<pid>/ns listings in the lessons. */
export const NS_KINDS: readonly NsKind[] = ['pid', 'mnt', 'uts', 'ipc', 'user', 'net', 'cgroup', 'time'];

/** One line on what each kind isolates. */
export const NS_ISOLATES: Record<NsKind, string> = {
  pid: 'process IDs: which processes it can see, and their numbers',
  mnt: 'the mount table: which filesystems are mounted where',
  uts: 'the hostname (and NIS domain name)',
  ipc: 'System V IPC objects and POSIX message queues',
  user: 'user and group IDs, and what root may do',
  net: 'network interfaces, addresses, routes and ports',
  cgroup: 'which part of the cgroup tree it sees as its root',
  time: 'offsets of the monotonic and boot-time clocks',
};

export interface NsRow {
  kind: NsKind;
  isolates: string;
  host: string;
  container: string;
  shared: boolean;
}

/** The lab host's namespaces against the container's PID 1; undefined while it is not running. */
export function namespaceDiff(snap: ProcessSnapshot): NsRow[] | undefined {
  const init = containerInit(snap);
  if (!init) return undefined;
  return NS_KINDS.flatMap((kind) => {
    const host = snap.host.namespaces[kind] ?? '';
    const container = init.namespaces[kind] ?? '';
    // A kind the kernel does not have (time before Linux 5.6) is no row.
    if (host === '' && container === '') return [];
    return [
      { kind, isolates: NS_ISOLATES[kind], host, container, shared: host !== '' && host === container },
    ];
  });
}

// ---- cgroup -----------------------------------------------------------------------------

export interface CgroupEvent {
  kind: 'oom' | 'pids';
  /** How many happened between the two readings (or before the first one). */
  count: number;
  /** The reading that saw it. */
  at: Date;
  /** live: seen within a few seconds; late: the panel was not watching when it happened; before: already there at the first reading. */
  seen: 'live' | 'late' | 'before';
}

/** A gap between readings longer than this means the panel was closed or hidden meanwhile. */
const LIVE_GAP_MS = 3500;

/** OOM kills and refused forks that happened between two readings (or before the first one). */
export function cgroupEvents(prev: CgroupReading | undefined, next: CgroupReading): CgroupEvent[] {
  const at = new Date(next.takenAt);
  const events: CgroupEvent[] = [];
  const gap = prev ? at.getTime() - Date.parse(prev.takenAt) : Number.POSITIVE_INFINITY;
  const seen = !prev ? 'before' : gap > LIVE_GAP_MS ? 'late' : 'live';
  const add = (kind: CgroupEvent['kind'], before: number | null | undefined, now: number | null) => {
    if (now === null) return;
    const count = now - (before ?? 0);
    if (count > 0) events.push({ kind, count, at, seen });
  };
  add('oom', prev ? prev.memory.oomKills : 0, next.memory.oomKills);
  add('pids', prev ? prev.pids.refused : 0, next.pids.refused);
  return events;
}

/** What the panel says about an event: "OOM kill at 12:03:41". */
export function eventText(e: CgroupEvent): string {
  const what =
    e.kind === 'oom'
      ? e.count === 1
        ? 'OOM kill'
        : `${e.count} OOM kills`
      : e.count === 1
        ? 'Fork refused at the pids limit'
        : `${e.count} forks refused at the pids limit`;
  const time = clock(e.at);
  if (e.seen === 'live') return `${what} at ${time}`;
  if (e.seen === 'late') return `${what}, seen at ${time} (while this panel was closed)`;
  return `${what} before ${time} (before this panel was opened)`;
}

export interface Gauge {
  value: number;
  max: number | null;
  /** What a screen reader and the page say: "12.3 MiB of 128 MiB (10%)". */
  text: string;
  /** 0..1 of the limit, for the bar; null without a limit. */
  fraction: number | null;
}

export function memoryGauge(r: CgroupReading): Gauge | null {
  const { current, limit } = r.memory;
  if (current === null) return null;
  if (limit === null)
    return { value: current, max: null, text: `${mib(current)} (no limit)`, fraction: null };
  const f = current / limit;
  return {
    value: current,
    max: limit,
    text: `${mib(current)} of ${mib(limit)} (${percent(f)})`,
    fraction: f,
  };
}

export function pidsGauge(r: CgroupReading): Gauge | null {
  const { current, limit } = r.pids;
  if (current === null) return null;
  if (limit === null)
    return { value: current, max: null, text: `${current} tasks (no limit)`, fraction: null };
  const f = current / limit;
  return { value: current, max: limit, text: `${current} of ${limit} tasks (${percent(f)})`, fraction: f };
}

/** CPU use in cores against the limit in cores; null until the server has two readings. */
export function cpuGauge(r: CgroupReading): Gauge | null {
  if (r.cpu.percent === null) return null;
  const used = r.cpu.percent / 100;
  const limit = r.cpu.limitCores;
  if (limit === null) return { value: used, max: null, text: `${cores(used)} (no limit)`, fraction: null };
  const f = used / limit;
  return {
    value: used,
    max: limit,
    text: `${cores(used)} of ${cores(limit)} (${percent(f)} of the limit)`,
    fraction: Math.min(1, f),
  };
}

/** "throttled in 8 of the last 10 periods" (between two readings) and the totals. */
export function throttleText(prev: CgroupReading | undefined, r: CgroupReading): string {
  const { periods, throttledPeriods } = r.cpu;
  if (periods === null || throttledPeriods === null) return 'Throttling: not reported by this kernel.';
  const total = `${throttledPeriods} of ${periods} periods since the start (${percent(periods ? throttledPeriods / periods : 0)})`;
  const dp = prev?.cpu.periods != null ? periods - prev.cpu.periods : null;
  const dt = prev?.cpu.throttledPeriods != null ? throttledPeriods - prev.cpu.throttledPeriods : null;
  if (dp !== null && dt !== null && dp > 0) return `Throttled in ${dt} of the last ${dp} periods; ${total}.`;
  return `Throttled in ${total}.`;
}

// ---- formatting -------------------------------------------------------------------------

/** Bytes as MiB: "128 MiB", "12.3 MiB", "512 KiB". */
export function mib(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  const m = bytes / 1024 / 1024;
  return `${m >= 100 || Number.isInteger(m) ? Math.round(m) : m.toFixed(1)} MiB`;
}

/** Cores: "0.5 cores", "0.12 cores", "1 core". */
export function cores(n: number): string {
  const v = n >= 10 ? n.toFixed(0) : String(Number(n.toFixed(2)));
  return `${v} ${Number(v) === 1 ? 'core' : 'cores'}`;
}

export function percent(f: number): string {
  const p = f * 100;
  return `${p > 0 && p < 1 ? '<1' : Math.round(p)}%`;
}

/** Wall-clock time of the reader's browser, 24 h: "12:03:41". */
export function clock(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
