/**
 * Step checks: compare what the reader did or answered with what the kernel reports
 * inside the sandbox. Answers are parsed here and never passed to a shell.
 */
import type { CheckDef } from '../../../labs/schema.ts';
import type { CheckResult } from '../contract/rest.ts';
import { AppError } from '../errors.ts';
import {
  type CgroupSnapshot,
  type MountSnapshot,
  NS_KINDS,
  type NsKind,
  overlayLowerDirs,
  type ProcessInfo,
  type ProcessSnapshot,
} from './snapshot.ts';

export interface CheckContext {
  processes(): Promise<ProcessSnapshot>;
  cgroup(): Promise<CgroupSnapshot>;
  mounts(): Promise<MountSnapshot>;
}

export type { CheckResult };

/** Whether the check wants an answer typed by the reader: exactly the kinds with a `prompt`. */
export function needsAnswer(c: CheckDef): boolean {
  return 'prompt' in c;
}

const NO_CAPS = '0000000000000000';

/**
 * The lab's own nested container's PID 1: PID 1 of a PID namespace one level down whose
 * parent (`unshare`) was started by the lab host's init. A container the reader makes on
 * the lab host is one level down too, but its `unshare` is a child of their shell.
 */
function labContainer(snap: ProcessSnapshot): ProcessInfo | undefined {
  const byPid = new Map(snap.processes.map((p) => [p.pid, p]));
  const inits = snap.processes.filter((p) => p.nspid.length === 2 && p.nspid[1] === 1);
  return inits.find((p) => byPid.get(p.ppid)?.ppid === 1) ?? inits[0];
}

const runsWhere = (p: ProcessInfo, where: 'container' | 'host') =>
  where === 'container' ? p.inContainer : !p.inContainer;
const whereText = (where: 'container' | 'host') =>
  where === 'container' ? 'in the container' : 'on the host';

export async function runCheck(
  c: CheckDef,
  ctx: CheckContext,
  answer: string | undefined,
): Promise<CheckResult> {
  if (needsAnswer(c) && (answer === undefined || answer.trim() === '')) {
    throw new AppError('bad_request', 'This check needs an answer.');
  }
  const r = await evaluate(c, ctx, answer?.trim() ?? '');
  return r.passed ? { id: c.id, ...r } : { id: c.id, ...r, hint: c.hint };
}

/**
 * A kind as a reader may spell it: the names of `ls -l /proc/<pid>/ns` (where
 * `pid_for_children` and `time_for_children` are links to the same kinds of namespace as
 * `pid` and `time`, and read the same inodes in a container that made none of its own),
 * `mount` and `network` for `mnt` and `net`.
 */
function nsKindOf(word: string): string {
  const w = word.replace(/_for_children$/, '');
  return w === 'mount' ? 'mnt' : w === 'network' ? 'net' : w;
}

async function evaluate(
  c: CheckDef,
  ctx: CheckContext,
  answer: string,
): Promise<{ passed: boolean; message: string }> {
  switch (c.kind) {
    case 'process': {
      const re = new RegExp(c.command);
      const matching = (await ctx.processes()).processes.filter(
        (p) => re.test(p.cmd) && runsWhere(p, c.where),
      );
      const found = matching.find((p) => !c.init || (p.nspid.length > 1 && p.nspid.at(-1) === 1));
      if (found)
        return {
          passed: true,
          message: c.init
            ? `Found it: PID ${found.pid} on the host is PID 1 of a PID namespace of its own.`
            : `Found it: PID ${found.nspid.at(-1)} ${c.where === 'container' ? 'inside' : 'on the host'}.`,
        };
      if (matching.length > 0)
        return {
          passed: false,
          message: `It runs (PID ${matching[0]!.pid} on the host), but as PID ${matching[0]!.nspid.at(-1)} of its namespace, not as PID 1.`,
        };
      return { passed: false, message: `No matching process runs ${whereText(c.where)} yet.` };
    }
    case 'host-pid': {
      const re = new RegExp(c.command);
      const matches = (await ctx.processes()).processes.filter((p) => p.inContainer && re.test(p.cmd));
      if (matches.length === 0)
        return { passed: false, message: 'That process is not running in the container yet.' };
      const n = Number(answer);
      if (!Number.isInteger(n) || n <= 0)
        return { passed: false, message: `"${answer.slice(0, 20)}" is not a PID.` };
      const hit = matches.find((p) => p.pid === n);
      if (hit)
        return {
          passed: true,
          message: `Right: PID ${hit.pid} on the host is PID ${hit.nspid.at(-1)} in the container.`,
        };
      if (matches.some((p) => p.nspid.at(-1) === n)) {
        return {
          passed: false,
          message: `${n} is its PID inside the container; the host numbers it differently.`,
        };
      }
      return { passed: false, message: `No process with PID ${n} on the host matches.` };
    }
    case 'shared-namespaces': {
      const snap = await ctx.processes();
      const app = labContainer(snap);
      if (!app) return { passed: false, message: "The container's PID 1 is not running right now." };
      const given = new Set(
        answer
          .toLowerCase()
          .split(/[\s,;]+/)
          .filter(Boolean)
          .map(nsKindOf),
      );
      const unknown = [...given].filter((w) => !(NS_KINDS as readonly string[]).includes(w) && w !== 'none');
      if (unknown.length) return { passed: false, message: `Not a namespace kind: ${unknown.join(', ')}.` };
      given.delete('none');
      const want = new Set<NsKind>(app.sharedWithHost);
      const same = given.size === want.size && [...want].every((k) => given.has(k));
      return same
        ? {
            passed: true,
            message: `Right: it shares ${[...want].join(' and ') || 'none'} with the host; the rest are its own.`,
          }
        : { passed: false, message: "Not quite: compare each kind's inode inside and on the host." };
    }
    case 'oom-kill': {
      const n = (await ctx.cgroup()).memory.oomKills;
      if (n === null)
        return { passed: false, message: 'This kernel does not report OOM kills for the cgroup.' };
      return n > 0
        ? {
            passed: true,
            message: `The kernel OOM-killed ${n} process${n === 1 ? '' : 'es'} in this lab host.`,
          }
        : { passed: false, message: 'No OOM kill yet.' };
    }
    case 'pids-limit': {
      const n = (await ctx.cgroup()).pids.refused;
      if (n === null) return { passed: false, message: 'This kernel does not report refused forks.' };
      return n > 0
        ? { passed: true, message: `The pids cgroup refused ${n} fork${n === 1 ? '' : 's'}.` }
        : { passed: false, message: 'No fork has been refused yet.' };
    }
    case 'cgroup-limit': {
      const cg = await ctx.cgroup();
      const n = Number(answer.replace(/\s*(mib|mb|m|cores?|cpus?)$/i, ''));
      if (!Number.isFinite(n)) return { passed: false, message: `"${answer.slice(0, 20)}" is not a number.` };
      const actual =
        c.resource === 'memory'
          ? cg.memory.limit === null
            ? null
            : cg.memory.limit / 1024 / 1024
          : c.resource === 'pids'
            ? cg.pids.limit
            : cg.cpu.limitCores;
      if (actual === null) return { passed: false, message: 'This lab host has no such limit.' };
      return Math.abs(actual - n) < 1e-6
        ? {
            passed: true,
            message: `Right: ${actual}${c.resource === 'memory' ? ' MiB' : c.resource === 'cpu' ? ' cores' : ''}.`,
          }
        : { passed: false, message: `${n} is not it.` };
    }
    case 'mount': {
      const [snap, mounts] = await Promise.all([ctx.processes(), ctx.mounts()]);
      const namespaces = new Set(
        c.where === 'host'
          ? [snap.host.namespaces.mnt]
          : snap.processes.filter((p) => p.inContainer).map((p) => p.namespaces.mnt),
      );
      const target = c.target === undefined ? undefined : new RegExp(c.target);
      for (const ns of namespaces) {
        const hit = (mounts.tables[ns] ?? []).find(
          (m) => m.fstype === c.fstype && (target ? target.test(m.mountPoint) : m.mountPoint !== '/'),
        );
        if (hit)
          return {
            passed: true,
            message: `Found it: ${c.fstype} on ${hit.mountPoint} (source ${hit.source}).`,
          };
      }
      return { passed: false, message: `No ${c.fstype} mount ${whereText(c.where)} yet.` };
    }
    case 'root-layers': {
      const [snap, mounts] = await Promise.all([ctx.processes(), ctx.mounts()]);
      const root = (mounts.tables[snap.host.namespaces.mnt] ?? []).find((m) => m.mountPoint === '/');
      if (root?.fstype !== 'overlay')
        return {
          passed: false,
          message: `The lab host's root is not an overlay here (${root?.fstype ?? 'unknown'}).`,
        };
      const layers = overlayLowerDirs(root.superOptions).length;
      const n = Number(answer.replace(/\s*(read-only\s+|lower\s+)?layers?$/i, ''));
      if (!Number.isInteger(n) || n < 0)
        return { passed: false, message: `"${answer.slice(0, 20)}" is not a count.` };
      if (n === layers)
        return {
          passed: true,
          message: `Right: ${layers} lower layers, read-only, with one writable layer on top.`,
        };
      return {
        passed: false,
        message:
          n === layers - 1
            ? `${n} is how many layers the image has. Count the lowerdir= entries of the mount itself.`
            : `${n} is not it.`,
      };
    }
    case 'zombie': {
      const snap = await ctx.processes();
      const zombies = snap.processes.filter((p) => p.state === 'Z' && runsWhere(p, c.where));
      if (zombies.length === 0)
        return { passed: false, message: `No zombie ${whereText(c.where)} right now.` };
      const z = zombies[0]!;
      const parent = snap.processes.find((p) => p.pid === z.ppid);
      return {
        passed: true,
        message: `${zombies.length} zombie${zombies.length === 1 ? '' : 's'} ${whereText(c.where)}, e.g. PID ${z.nspid.at(-1)} there, waiting for its parent${parent ? ` (PID ${parent.nspid.at(-1)}, ${parent.cmd.slice(0, 40)})` : ''} to collect it.`,
      };
    }
    case 'own-root': {
      const snap = await ctx.processes();
      const host = snap.processes.find((p) => p.pid === 1);
      const box = labContainer(snap);
      const hostRoot = host?.root;
      if (!hostRoot) return { passed: false, message: "Could not read the lab host's root." };
      // PID 1 of a PID namespace below the lab host that is neither the lab host's nor the lab's container's.
      const inits = snap.processes.filter(
        (p) =>
          p.nspid.length > 1 &&
          p.nspid.at(-1) === 1 &&
          p !== box &&
          p.namespaces.pid !== host?.namespaces.pid &&
          p.namespaces.pid !== box?.namespaces.pid,
      );
      const own = inits.find(
        (p) =>
          p.root !== undefined &&
          p.root !== hostRoot &&
          p.namespaces.mnt !== host?.namespaces.mnt &&
          p.namespaces.mnt !== box?.namespaces.mnt,
      );
      if (own)
        return {
          passed: true,
          message: `Your container: PID ${own.pid} on the host is PID 1 of its own PID namespace, its root (${own.root}) is not the lab host's (${hostRoot}), and its mount table is its own.`,
        };
      if (inits.length > 0)
        return {
          passed: false,
          message: `A container of yours runs (PID ${inits[0]!.pid} on the host, PID 1 inside), but its root is still the lab host's: no pivot_root yet.`,
        };
      const rooted = snap.processes.find(
        (p) => p.root !== undefined && p.root !== hostRoot && p.namespaces.mnt !== host?.namespaces.mnt,
      );
      if (rooted)
        return {
          passed: false,
          message: `PID ${rooted.pid} has a root of its own, but it is not PID 1 of a PID namespace of its own.`,
        };
      return { passed: false, message: 'No process has a root of its own yet.' };
    }
    case 'no-capabilities': {
      const re = new RegExp(c.command);
      const matching = (await ctx.processes()).processes.filter(
        (p) => re.test(p.cmd) && runsWhere(p, c.where),
      );
      if (matching.length === 0)
        return { passed: false, message: `No matching process runs ${whereText(c.where)} yet.` };
      const root = matching.filter((p) => p.uids.at(-1) === 0);
      const powerless = root.find((p) => p.capEff === NO_CAPS);
      if (powerless)
        return {
          passed: true,
          message: `Right: PID ${powerless.nspid.at(-1)} runs as root with CapEff ${NO_CAPS}, no capabilities at all.`,
        };
      if (root.length === 0)
        return { passed: false, message: 'It runs, but not as root (uid 0) of its user namespace.' };
      return {
        passed: false,
        message: `It runs as root, but still holds capabilities (CapEff ${root[0]!.capEff ?? 'unknown'}).`,
      };
    }
    case 'mapped-uid': {
      const box = labContainer(await ctx.processes());
      if (!box) return { passed: false, message: "The container's PID 1 is not running right now." };
      const n = Number(answer.replace(/^uid\s*[=:]?\s*/i, ''));
      if (!Number.isInteger(n) || n < 0)
        return { passed: false, message: `"${answer.slice(0, 20)}" is not a uid.` };
      if (n === box.uid)
        return { passed: true, message: `Right: root in the container is uid ${box.uid} on the lab host.` };
      if (n === box.uids.at(-1))
        return {
          passed: false,
          message: `${n} is its uid inside the container; the lab host knows it by another.`,
        };
      return { passed: false, message: `${n} is not it.` };
    }
  }
}
