/**
 * Step checks: compare what the reader did or answered with what the kernel reports
 * inside the sandbox. Answers are parsed here and never passed to a shell.
 */
import type { CheckDef } from '../../../labs/schema.ts';
import type { CheckResult } from '../contract/rest.ts';
import { AppError } from '../errors.ts';
import { type CgroupSnapshot, NS_KINDS, type NsKind, type ProcessSnapshot } from './snapshot.ts';

export interface CheckContext {
  processes(): Promise<ProcessSnapshot>;
  cgroup(): Promise<CgroupSnapshot>;
}

export type { CheckResult };

/** Whether the check wants an answer typed by the reader. */
export function needsAnswer(c: CheckDef): boolean {
  return c.kind === 'host-pid' || c.kind === 'shared-namespaces' || c.kind === 'cgroup-limit';
}

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
      const found = (await ctx.processes()).processes.find(
        (p) => re.test(p.cmd) && (c.where === 'container' ? p.inContainer : !p.inContainer),
      );
      return found
        ? {
            passed: true,
            message: `Found it: PID ${found.nspid.at(-1)} ${c.where === 'container' ? 'inside' : 'on the host'}.`,
          }
        : {
            passed: false,
            message: `No matching process runs ${c.where === 'container' ? 'in the container' : 'on the host'} yet.`,
          };
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
      const app = snap.processes.find((p) => p.inContainer && p.nspid.at(-1) === 1);
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
  }
}
