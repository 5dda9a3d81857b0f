/**
 * The Docker engine seen from the bench (dockerode): our containers by label, their memory
 * (the cgroup v1 files, else the stats API), their containerd shims, and leftover removal.
 */
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { findProcesses, pssBytes } from './machine.ts';

export const docker = new Docker();

export interface ManagedContainer {
  id: string;
  instance: string;
  session: string;
  state: string;
}

/** Every container with `containerlabs.managed=true` (any instance). */
export async function managedContainers(): Promise<ManagedContainer[]> {
  const list = await docker.listContainers({ all: true, filters: { label: ['containerlabs.managed=true'] } });
  return list.map((c) => ({
    id: c.Id,
    instance: c.Labels?.['containerlabs.instance'] ?? '',
    session: c.Labels?.['containerlabs.session'] ?? '',
    state: c.State,
  }));
}

/** Our containers: managed ones whose instance label starts with `prefix`. */
export async function ourContainers(prefix: string): Promise<ManagedContainer[]> {
  return (await managedContainers()).filter((c) => c.instance.startsWith(prefix));
}

export async function removeContainers(ids: readonly string[]): Promise<void> {
  await Promise.allSettled(ids.map((id) => docker.getContainer(id).remove({ force: true })));
}

export async function engineVersion(): Promise<{ docker: string; cgroup: string }> {
  const [v, info] = await Promise.all([docker.version(), docker.info() as Promise<Record<string, unknown>>]);
  return {
    docker: `${v.Version} (API ${v.ApiVersion})`,
    cgroup: `v${String(info.CgroupVersion ?? '1')} (${String(info.CgroupDriver ?? '?')} driver)`,
  };
}

export interface ContainerMemory {
  /** memory.usage_in_bytes: everything charged to the cgroup, page cache included. */
  usage: number;
  /** usage − inactive file cache: what `docker stats` shows as MEM USAGE. */
  workingSet: number;
  /** Anonymous memory of the container's processes (total_rss). */
  rss: number;
  /** Page cache (total_cache), tmpfs contents included. */
  cache: number;
  source: 'cgroup-v1' | 'stats-api';
}

function readNumber(path: string): number {
  return Number(readFileSync(path, 'utf8').trim());
}

/** Memory of one container: the cgroup v1 files if they are there, else the stats API. */
export async function containerMemory(id: string): Promise<ContainerMemory | null> {
  const dir = `/sys/fs/cgroup/memory/docker/${id}`;
  try {
    const usage = readNumber(`${dir}/memory.usage_in_bytes`);
    const stat = readFileSync(`${dir}/memory.stat`, 'utf8');
    const field = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(stat)?.[1] ?? 0);
    return {
      usage,
      workingSet: usage - field('total_inactive_file'),
      rss: field('total_rss'),
      cache: field('total_cache'),
      source: 'cgroup-v1',
    };
  } catch {}
  try {
    const s = (await docker.getContainer(id).stats({ stream: false })) as unknown as {
      memory_stats?: { usage?: number; stats?: Record<string, number> };
    };
    const m = s.memory_stats;
    if (!m?.usage) return null;
    const st = m.stats ?? {};
    const inactive = st.total_inactive_file ?? st.inactive_file ?? 0;
    return {
      usage: m.usage,
      workingSet: m.usage - inactive,
      rss: st.total_rss ?? st.anon ?? 0,
      cache: st.total_cache ?? st.file ?? 0,
      source: 'stats-api',
    };
  } catch {
    return null;
  }
}

/** containerd-shim processes of these containers (`-id <container id>`), with their PSS. */
export function shimMemory(ids: readonly string[]): { count: number; pss: number } {
  const want = new Set(ids);
  const shims = findProcesses((argv) => {
    if (!/containerd-shim/.test(argv[0] ?? '')) return false;
    const i = argv.indexOf('-id');
    return i >= 0 && want.has(argv[i + 1] ?? '');
  });
  let pss = 0;
  for (const s of shims) {
    const v = pssBytes(s.pid);
    if (Number.isFinite(v)) pss += v;
  }
  return { count: shims.length, pss };
}

/** The shim of one container (for CPU sampling). */
export function shimPid(id: string): number | undefined {
  return findProcesses((argv) => /containerd-shim/.test(argv[0] ?? '') && argv.includes(id))[0]?.pid;
}

/** CPU seconds used by a container's cgroup so far, and seconds it was CFS-throttled (v1). */
export function containerCpu(id: string): { cpu: number; throttled: number } | null {
  try {
    const cpu = readNumber(`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`) / 1e9;
    const stat = readFileSync(`/sys/fs/cgroup/cpu/docker/${id}/cpu.stat`, 'utf8');
    const throttled = Number(/^throttled_time (\d+)$/m.exec(stat)?.[1] ?? 0) / 1e9;
    return { cpu, throttled };
  } catch {
    return null;
  }
}
