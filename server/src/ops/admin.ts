/**
 * The admin API behind `npm run admin` (scripts/admin.ts): list live sessions with their
 * resource use, end one. Never shows a session token or a container id.
 *
 *   GET    /api/v1/admin/sessions       {"sessions":[…],"pool":{…},"draining":bool}
 *   DELETE /api/v1/admin/sessions/:id   204 once its lab host is removed; 404 if unknown
 */
import type { AdminSession, LabHostResources } from '../contract/rest.ts';
import type { Runtime } from '../runtime/runtime.ts';

export type { AdminSession, LabHostResources };

/**
 * Reads the lab host's own cgroup (v2 or v1 paths; Docker mounts the container's cgroup at
 * /sys/fs/cgroup). Runs as the reader, who may read these files. The exec itself adds a
 * process or two to `pids` while it runs.
 */
export const RESOURCE_SCRIPT = [
  'first() { for f in "$@"; do if [ -r "$f" ]; then head -n 1 "$f"; return; fi; done; echo -; }',
  'cpu=-',
  'if [ -r /sys/fs/cgroup/cpu.stat ]; then cpu=$(sed -n "s/^usage_usec //p" /sys/fs/cgroup/cpu.stat)us;',
  'else for f in /sys/fs/cgroup/cpuacct/cpuacct.usage /sys/fs/cgroup/cpu,cpuacct/cpuacct.usage; do',
  '  if [ -r "$f" ]; then cpu=$(cat "$f")ns; break; fi; done; fi',
  'echo "memory $(first /sys/fs/cgroup/memory.current /sys/fs/cgroup/memory/memory.usage_in_bytes)"',
  'echo "memory_limit $(first /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes)"',
  'echo "pids $(first /sys/fs/cgroup/pids.current /sys/fs/cgroup/pids/pids.current)"',
  'echo "pids_limit $(first /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max)"',
  'echo "cpu $cpu"',
].join('\n');

/** Parse RESOURCE_SCRIPT's output (pure; unknown or missing values become null). */
export function parseResources(text: string): LabHostResources {
  const v = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [k, val] = line.trim().split(/\s+/, 2);
    if (k && val) v.set(k, val);
  }
  const num = (k: string): number | null => {
    const s = v.get(k);
    if (!s || !/^\d+$/.test(s)) return null; // "-", "max"
    const n = Number(s);
    // cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages).
    return n >= 2 ** 60 ? null : n;
  };
  const cpu = v.get('cpu');
  let cpuSeconds: number | null = null;
  const m = cpu ? /^(\d+)(us|ns)$/.exec(cpu) : null;
  if (m) cpuSeconds = Number(m[1]) / (m[2] === 'us' ? 1e6 : 1e9);
  return {
    memoryBytes: num('memory'),
    memoryLimitBytes: num('memory_limit'),
    pids: num('pids'),
    pidsLimit: num('pids_limit'),
    cpuSeconds,
  };
}

export async function labHostResources(
  runtime: Runtime,
  hostId: string,
): Promise<LabHostResources | { error: string }> {
  try {
    const r = await runtime.exec(hostId, ['sh', '-c', RESOURCE_SCRIPT]);
    if (r.code !== 0) return { error: `exit ${r.code}: ${r.stderr.trim().slice(0, 200)}` };
    return parseResources(r.stdout);
  } catch (err) {
    return { error: (err as Error).message.slice(0, 200) };
  }
}
