/**
 * What the machine is and what its processes use, read from /proc (Linux only): memory
 * (MemAvailable, a process's RSS and PSS) and CPU time (utime + stime).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  date: string;
  hostname: string;
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  docker: string;
  cgroup: string;
  loadavgAtStart: number[];
}

export function machineInfo(docker: string, cgroup: string): MachineInfo {
  let osName = `${os.type()} ${os.release()}`;
  try {
    const rel = readFileSync('/etc/os-release', 'utf8');
    osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(rel)?.[1] ?? osName;
  } catch {}
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    os: osName,
    node: process.version,
    docker,
    cgroup,
    loadavgAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** /proc/meminfo in bytes: total, available, and used = total − available. */
export function meminfo(): { total: number; available: number; used: number } {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const kib = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  const total = kib('MemTotal');
  const available = kib('MemAvailable');
  return { total, available, used: total - available };
}

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

/** Resident set size in bytes (VmRSS), or NaN when the process is gone. */
export function rssBytes(pid: number): number {
  const s = readProc(pid, 'status');
  const m = s && /^VmRSS:\s+(\d+) kB/m.exec(s);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Proportional set size in bytes (shared pages split between their users). */
export function pssBytes(pid: number): number {
  const s = readProc(pid, 'smaps_rollup');
  const m = s && /^Pss:\s+(\d+) kB/m.exec(s);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {}

/** CPU seconds (user + system) used by a process so far; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  const s = readProc(pid, 'stat');
  if (!s) return Number.NaN;
  const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) → indexes 11, 12.
  return (Number(fields[11]) + Number(fields[12])) / clkTck;
}

/** Processes whose command line matches; each with its argv. */
export function findProcesses(match: (argv: string[]) => boolean): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const raw = readProc(pid, 'cmdline');
    if (!raw) continue;
    const argv = raw.split('\0').filter(Boolean);
    if (argv.length && match(argv)) out.push({ pid, argv });
  }
  return out;
}

/** The first process whose executable's base name is `name` (e.g. dockerd). */
export function pidOf(name: string): number | undefined {
  return findProcesses((a) => (a[0] ?? '').split('/').pop() === name)[0]?.pid;
}

export const MB = 1e6;
export const MiB = 2 ** 20;
