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
