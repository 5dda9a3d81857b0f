/**
 * The lab definition schema. Every `labs/<id>/lab.yaml` is validated against it when the
 * server starts and by the tests; the doc comments below are the lab authoring guide
 * (see labs/README.md for a walk-through).
 */
import { z } from 'zod';

const sizeRe = /^\d+(k|m|g)$/i;

/** A size like `128m` or `16m` (k, m, g; powers of 1024). */
export const Size = z.string().regex(sizeRe, 'a size such as "128m" (a number followed by k, m or g)');

/** One terminal the reader sees. */
export const TerminalDef = z.object({
  /** Name used in URLs and in `run=` code blocks. Lower case, e.g. `host`, `container`. */
  name: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'lower-case letters, digits and dashes'),
  /** Label shown above the terminal, e.g. "On the host". */
  title: z.string().min(1).max(60),
  /**
   * Where the shell runs: `host` = in the lab host (the sandbox container, "outside"),
   * `container` = inside the nested container (its PID, mount, UTS, IPC and user
   * namespaces). In local mode, `host` may be the learner's real shell instead.
   */
  target: z.enum(['host', 'container']),
});

const checkBase = {
  /** Unique within the lab; used in URLs (`POST /api/v1/sessions/:id/checks/:check`). */
  id: z.string().regex(/^[a-z][a-z0-9-]{1,40}$/),
  /** The task, as the reader sees it, e.g. "Start `sleep 1000` in the container". */
  title: z.string().min(1).max(200),
  /** Shown when the check fails: a nudge, not the answer. */
  hint: z.string().min(1).max(400),
};

/** A regular expression matched against a process's full command line. */
const CommandPattern = z
  .string()
  .min(1)
  .refine((s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  }, 'a valid regular expression');

/**
 * A step check, run by the server inside the sandbox when the reader asks (never on
 * reader-supplied shell text: answers are compared with what the kernel reports).
 * Kinds and the kernel fact each one checks:
 * - `process`: a process whose command line matches `command` runs `where` (container:
 *   in the nested PID namespace; host: in the lab host's own).
 * - `host-pid`: the reader enters the lab-host PID of the process matching `command`
 *   that runs in the container (the PID mapping, from NSpid).
 * - `shared-namespaces`: the reader lists the namespace kinds the container's PID 1
 *   shares with the lab host (from /proc/<pid>/ns inodes), e.g. "net, cgroup".
 * - `oom-kill`: the memory cgroup has OOM-killed at least one process.
 * - `pids-limit`: the pids cgroup has refused at least one fork.
 * - `cgroup-limit`: the reader enters the lab host's `resource` limit (memory in MiB,
 *   pids as a count, cpu in cores).
 * - `mount`: a filesystem of type `fstype` is mounted `where` (container: in a mount
 *   namespace of a process in the container; host: in the lab host's own), on a mount
 *   point matching `target` (any but `/` when not given). From /proc/<pid>/mountinfo.
 * - `root-layers`: the reader enters how many lower layers the lab host's root overlay
 *   has (the `lowerdir=` entries of its `/` mount).
 * - `zombie`: a zombie process (state Z: ended, but its parent has not collected its exit
 *   status) exists `where`.
 * - `own-root`: a process is PID 1 of a PID namespace of its own (not the lab's container,
 *   not the lab host), with a root directory that is not the lab host's (device and inode
 *   of /proc/<pid>/root) and a mount namespace of its own: a container built by hand.
 * - `no-capabilities`: a process whose command line matches `command` runs `where` as
 *   root (uid 0 in its user namespace) with no effective capabilities (CapEff 0).
 * - `mapped-uid`: the reader enters the uid on the lab host that root of the container
 *   (its PID 1) really runs as (from uid_map).
 */
export const CheckDef = z.discriminatedUnion('kind', [
  z
    .object({
      ...checkBase,
      kind: z.literal('process'),
      command: CommandPattern,
      where: z.enum(['container', 'host']),
      /** Also require it to be PID 1 of its PID namespace (a container's first process). */
      init: z.boolean().default(false),
    })
    .strict(),
  z
    .object({
      ...checkBase,
      kind: z.literal('host-pid'),
      command: CommandPattern,
      prompt: z.string().default('PID on the host'),
    })
    .strict(),
  z
    .object({
      ...checkBase,
      kind: z.literal('shared-namespaces'),
      prompt: z.string().default('Namespace kinds, comma separated'),
    })
    .strict(),
  z.object({ ...checkBase, kind: z.literal('oom-kill') }).strict(),
  z.object({ ...checkBase, kind: z.literal('pids-limit') }).strict(),
  z
    .object({
      ...checkBase,
      kind: z.literal('cgroup-limit'),
      resource: z.enum(['memory', 'pids', 'cpu']),
      prompt: z.string().default('Limit'),
    })
    .strict(),
  z
    .object({
      ...checkBase,
      kind: z.literal('mount'),
      /** Filesystem type as mountinfo names it, e.g. `overlay`, `tmpfs`. */
      fstype: z.string().regex(/^[a-z0-9._-]{1,40}$/),
      where: z.enum(['container', 'host']),
      /** The mount point (regex); default: any mount point except `/`. */
      target: CommandPattern.optional(),
    })
    .strict(),
  z
    .object({
      ...checkBase,
      kind: z.literal('root-layers'),
      prompt: z.string().default('Number of lower layers'),
    })
    .strict(),
  z.object({ ...checkBase, kind: z.literal('zombie'), where: z.enum(['container', 'host']) }).strict(),
  z.object({ ...checkBase, kind: z.literal('own-root') }).strict(),
  z
    .object({
      ...checkBase,
      kind: z.literal('no-capabilities'),
      command: CommandPattern,
      where: z.enum(['container', 'host']),
    })
    .strict(),
  z
    .object({
      ...checkBase,
      kind: z.literal('mapped-uid'),
      prompt: z.string().default('uid on the lab host'),
    })
    .strict(),
]);
export type CheckDef = z.infer<typeof CheckDef>;

/** Resource limits of the lab host; every process of the session counts against them. */
export const Limits = z
  .object({
    /** Memory limit (swap is set equal, so there is no swap). Default 128m. */
    memory: Size.default('128m'),
    /** CPU share in cores, e.g. 0.5. Default 0.5. */
    cpus: z.number().positive().max(4).default(0.5),
    /** Most processes and threads at once (fork-bomb guard). Default 100. */
    pids: z.number().int().min(16).max(4096).default(100),
    /** Size of the writable /tmp (tmpfs). Default 16m. */
    tmp: Size.default('16m'),
  })
  .strict();

export const LabDef = z
  .object({
    /** Must equal the folder name: `labs/<id>/lab.yaml`. */
    id: z.string().regex(/^[a-z][a-z0-9-]{1,40}$/),
    /** Human title, shown on the lab block and in `GET /api/v1/labs`. */
    title: z.string().min(1).max(80),
    /** One or two sentences on what the reader will see. */
    description: z.string().max(400).default(''),
    /**
     * The nested container's main process: a shell command run as PID 1 of the nested
     * container (after its hostname is set). Example: `busybox httpd -f -p 8080 -h /srv/www`.
     * It is the lab author's text, never the reader's.
     */
    app: z
      .object({
        command: z.string().min(1),
        /** Hostname inside the nested container (UTS namespace). Default `box`. */
        hostname: z
          .string()
          .regex(/^[a-z][a-z0-9-]{0,62}$/)
          .default('box'),
      })
      .strict(),
    /** Terminals shown side by side, in this order. At least one. */
    terminals: z.array(TerminalDef).min(1).max(4),
    limits: Limits.default({ memory: '128m', cpus: 0.5, pids: 100, tmp: '16m' }),
    /** Step checks the lessons refer to (see CheckDef). */
    checks: z.array(CheckDef).max(20).default([]),
  })
  .strict()
  .superRefine((lab, ctx) => {
    const names = new Set<string>();
    for (const t of lab.terminals) {
      if (names.has(t.name)) {
        ctx.addIssue({
          code: 'custom',
          message: `terminal name "${t.name}" is used twice`,
          path: ['terminals'],
        });
      }
      names.add(t.name);
    }
    const ids = new Set<string>();
    for (const c of lab.checks) {
      if (ids.has(c.id))
        ctx.addIssue({ code: 'custom', message: `check id "${c.id}" is used twice`, path: ['checks'] });
      ids.add(c.id);
    }
  });

export type LabDef = z.infer<typeof LabDef>;
export type TerminalDef = z.infer<typeof TerminalDef>;

/** Parse a size like "128m" into bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([kmg])$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}
