/**
 * What a lab host create body and a terminal exec body may look like, as zod schemas: the
 * engine filter (server/src/engine-filter/) forwards to the real engine only bodies that
 * pass these. They sit beside lab-host-spec.ts so the two change together; the unit test
 * builds bodies with the real labHostSpec()/execSpec() and checks they pass, and that a
 * body differing from ours in one dangerous field does not.
 *
 * Strict objects where it matters: the engine decodes JSON with Go's encoding/json, which
 * matches field names case-insensitively, so any key not listed here (`privileged`,
 * `Binds`, `hostconfig`, ...) is refused rather than ignored. The filter forwards the body
 * it parsed and checked (re-serialised), never the raw bytes, so duplicate keys cannot
 * mean one thing here and another to the engine.
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import seccompProfile from '../../../../labs/seccomp/profile.json' with { type: 'json' };
import { LAB_HOME, SECCOMP_PROFILE_JSON } from './lab-host-spec.ts';
import { LABELS } from './labels.ts';

/** Lowest uid (and gid) a lab host or an exec may run as: never root, never a system user. */
export const MIN_LAB_UID = 1000;
const MAX_ID = 2 ** 31 - 1;

/** Where lab hosts may have tmpfs mounts: exactly the paths labHostSpec() uses. */
export const LAB_TMPFS_PATHS: readonly string[] = ['/tmp', LAB_HOME, '/run/lab'];

/** `containerlabs/lab-<id>:<hash>`, the tags labs/images.ts gives lab images. */
export const LAB_IMAGE_RE = /^containerlabs\/lab-[a-z][a-z0-9-]{1,40}:[0-9a-f]{12,64}$/;

/** AppArmor profile names as CL_APPARMOR_PROFILE accepts them (server/src/config.ts). */
export const APPARMOR_NAME_RE = /^[\w.-]+$/;

/** `uid:gid`, both numeric and >= MIN_LAB_UID. Without a gid Docker would take the
 *  user's group from the image's /etc/passwd, or gid 0 for an unknown uid. */
export function parseLabUser(user: string): { uid: number; gid: number } | null {
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(user);
  if (!m) return null;
  const uid = Number(m[1]);
  const gid = Number(m[2]);
  if (uid < MIN_LAB_UID || gid < MIN_LAB_UID || uid > MAX_ID || gid > MAX_ID) return null;
  return { uid, gid };
}

const LabUser = z
  .string()
  .refine((u) => parseLabUser(u) !== null, `must be "uid:gid", both numeric and at least ${MIN_LAB_UID}`);

const TMPFS_OPTION_RES = [
  /^(rw|exec|noexec|nosuid|nodev)$/,
  /^size=\d{1,12}$/,
  /^mode=[0-7]{3,4}$/,
  /^(uid|gid)=\d{1,10}$/,
];

/** tmpfs options: nosuid and nodev required, a size required, owner never below MIN_LAB_UID. */
function tmpfsOptionsProblem(options: string): string | null {
  const opts = options.split(',');
  for (const o of opts) {
    if (!TMPFS_OPTION_RES.some((re) => re.test(o))) return `option "${o}" is not allowed`;
    const id = /^(uid|gid)=(\d+)$/.exec(o);
    if (id && (Number(id[2]) < MIN_LAB_UID || Number(id[2]) > MAX_ID)) return `${o} is below ${MIN_LAB_UID}`;
  }
  for (const need of ['nosuid', 'nodev']) if (!opts.includes(need)) return `"${need}" is required`;
  if (!opts.some((o) => o.startsWith('size='))) return 'a size= is required';
  return null;
}

const Tmpfs = z.record(z.string(), z.string()).superRefine((t, ctx) => {
  for (const [path, options] of Object.entries(t)) {
    if (!LAB_TMPFS_PATHS.includes(path)) {
      ctx.addIssue({
        code: 'custom',
        message: `tmpfs at ${path} is not one of ${LAB_TMPFS_PATHS.join(', ')}`,
      });
      continue;
    }
    const problem = tmpfsOptionsProblem(options);
    if (problem) ctx.addIssue({ code: 'custom', path: [path], message: problem });
  }
});

export interface LabHostPolicyOptions {
  /**
   * AppArmor profiles a lab host may name besides `unconfined` (which the Docker runtime
   * uses on AppArmor engines by default): the operator's CL_APPARMOR_PROFILE, if any.
   */
  apparmorProfiles?: readonly string[];
}

/** SecurityOpt: exactly no-new-privileges and our seccomp profile, at most one AppArmor profile. */
function securityOptProblem(opts: readonly string[], allowedApparmor: readonly string[]): string | null {
  let nnp = 0;
  let seccomp = 0;
  let apparmor = 0;
  for (const o of opts) {
    if (o === 'no-new-privileges:true') nnp++;
    else if (o.startsWith('seccomp=')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(o.slice('seccomp='.length));
      } catch {
        return 'seccomp= is not JSON (an inline profile is required; unconfined and file names are refused)';
      }
      if (!isDeepStrictEqual(parsed, seccompProfile))
        return 'seccomp= is not our profile (labs/seccomp/profile.json)';
      seccomp++;
    } else if (o.startsWith('apparmor=')) {
      const name = o.slice('apparmor='.length);
      if (!allowedApparmor.includes(name))
        return `apparmor=${name} is not allowed (${allowedApparmor.join(', ')})`;
      apparmor++;
    } else {
      return `security option "${o.slice(0, 60)}" is not allowed`;
    }
  }
  if (nnp !== 1) return 'no-new-privileges:true is required, once';
  if (seccomp !== 1) return 'our seccomp profile is required, once';
  if (apparmor > 1) return 'at most one apparmor= option';
  return null;
}

const EmptyArray = z.array(z.unknown()).max(0, 'must be empty');

function hostConfigSchema(allowedApparmor: readonly string[]) {
  return z
    .strictObject({
      AutoRemove: z.boolean(),
      RestartPolicy: z.strictObject({ Name: z.literal('no'), MaximumRetryCount: z.literal(0).optional() }),
      Init: z.literal(false).optional(),

      NetworkMode: z.literal('none'),
      PortBindings: z.strictObject({}).nullable().optional(),
      PublishAllPorts: z.literal(false).optional(),
      Devices: EmptyArray.nullable().optional(),
      Privileged: z.literal(false).optional(),
      IpcMode: z.enum(['private', 'none']).optional(),
      CgroupnsMode: z.literal('private'),

      CapDrop: z.tuple([z.literal('ALL')]),
      CapAdd: EmptyArray.nullable().optional(),
      SecurityOpt: z.array(z.string()).superRefine((opts, ctx) => {
        const problem = securityOptProblem(opts, allowedApparmor);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
      // Masking and read-only remounts only hide things inside the container.
      MaskedPaths: z.array(z.string().startsWith('/')).max(64),
      ReadonlyPaths: z.array(z.string().startsWith('/')).max(64),

      ReadonlyRootfs: z.literal(true),
      Tmpfs: Tmpfs,
      ShmSize: z
        .number()
        .int()
        .positive()
        .max(256 * 1024 * 1024),

      Memory: z.number().int().positive(),
      MemorySwap: z.number().int().positive(),
      NanoCpus: z.number().int().positive(),
      PidsLimit: z.number().int().positive(),
      // Negative values would shield lab hosts from the OOM killer at the machine's expense.
      OomScoreAdj: z.number().int().min(0).max(1000),
      Ulimits: z
        .array(
          z.strictObject({
            Name: z.enum(['nofile', 'core', 'nproc']),
            Soft: z.number().int().min(0),
            Hard: z.number().int().min(0),
          }),
        )
        .max(8),
      // Other log drivers (syslog, gelf, fluentd, ...) send to addresses of their own.
      LogConfig: z.strictObject({
        Type: z.literal('json-file'),
        Config: z.strictObject({
          'max-size': z.string().regex(/^\d+[kmg]?$/),
          'max-file': z.string().regex(/^\d+$/),
        }),
      }),
    })
    .refine((h) => h.MemorySwap === h.Memory, { message: 'MemorySwap must equal Memory (no swap)' });
}

/** The `POST /containers/create` body of a lab host (labHostSpec()). */
export function labHostCreateSchema(opts: LabHostPolicyOptions = {}) {
  const allowedApparmor = ['unconfined', ...(opts.apparmorProfiles ?? [])];
  return z.strictObject({
    Image: z.string().regex(LAB_IMAGE_RE, 'must be a lab image, containerlabs/lab-<id>:<hash>'),
    Hostname: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
    User: LabUser,
    WorkingDir: z.string().startsWith('/').max(200),
    Entrypoint: z.tuple([z.literal('/usr/local/sbin/lab-init')]),
    Cmd: EmptyArray,
    Env: z.array(z.string().max(16 * 1024)).max(64),
    Labels: z
      .record(z.string().max(200), z.string().max(1000))
      .refine((l) => l[LABELS.managed] === 'true', { message: `label ${LABELS.managed}=true is required` }),
    AttachStdin: z.boolean(),
    AttachStdout: z.boolean(),
    AttachStderr: z.boolean(),
    OpenStdin: z.boolean(),
    Tty: z.boolean(),
    NetworkDisabled: z.boolean(),
    StopSignal: z.string().regex(/^SIG[A-Z0-9]{1,10}$/),
    StopTimeout: z.number().int().min(0).max(300),
    HostConfig: hostConfigSchema(allowedApparmor),
  });
}

/** `POST /containers/{id}/exec` body: the terminal's (execSpec()) or the adapter's exec(). */
export const ExecCreateBody = z.strictObject({
  Cmd: z.array(z.string()).min(1),
  User: LabUser,
  WorkingDir: z.string().startsWith('/').max(200).optional(),
  Env: z.array(z.string().max(4096)).max(32).optional(),
  Tty: z.boolean(),
  AttachStdin: z.boolean().optional(),
  AttachStdout: z.boolean().optional(),
  AttachStderr: z.boolean().optional(),
  DetachKeys: z.string().max(64).optional(),
  Privileged: z.literal(false).optional(),
  ConsoleSize: z.tuple([z.number().int().min(0), z.number().int().min(0)]).optional(),
});
export type ExecCreateBody = z.infer<typeof ExecCreateBody>;

/** `POST /exec/{id}/start` body. dockerode also sends its own `hijack`/`stdin` options,
 *  which the engine ignores. A detached exec would need no stream; ours always attach. */
export const ExecStartBody = z.strictObject({
  Detach: z.literal(false).optional(),
  Tty: z.boolean().optional(),
  ConsoleSize: z
    .tuple([z.number().int().min(0), z.number().int().min(0)])
    .nullable()
    .optional(),
  hijack: z.boolean().optional(),
  stdin: z.boolean().optional(),
});

export type PolicyResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** The first problem zod found, as one line: `HostConfig.Privileged: Invalid input: ...`. */
export function firstIssue(error: z.ZodError): string {
  const i = error.issues[0];
  if (!i) return 'invalid body';
  const path = i.path.map(String).join('.');
  return path ? `${path}: ${i.message}` : i.message;
}

/**
 * Checks a parsed create body. On success returns the body to forward: the same value,
 * with the seccomp option rewritten to our profile's own text (it already equals it as
 * parsed JSON, so only formatting and duplicate keys could differ).
 */
export function checkLabHostCreate(body: unknown, opts: LabHostPolicyOptions = {}): PolicyResult<unknown> {
  const r = labHostCreateSchema(opts).safeParse(body);
  if (!r.success) return { ok: false, reason: firstIssue(r.error) };
  const b = r.data;
  const SecurityOpt = b.HostConfig.SecurityOpt.map((o) =>
    o.startsWith('seccomp=') ? `seccomp=${SECCOMP_PROFILE_JSON}` : o,
  );
  return { ok: true, value: { ...b, HostConfig: { ...b.HostConfig, SecurityOpt } } };
}

/** Checks a parsed exec create body against the commands the server runs. */
export function checkExecCreate(
  body: unknown,
  commands: readonly (readonly string[])[],
): PolicyResult<ExecCreateBody> {
  const r = ExecCreateBody.safeParse(body);
  if (!r.success) return { ok: false, reason: firstIssue(r.error) };
  if (!commands.some((c) => isDeepStrictEqual([...c], r.data.Cmd))) {
    return {
      ok: false,
      reason: `Cmd is not a command the server runs: ${JSON.stringify(r.data.Cmd).slice(0, 80)}`,
    };
  }
  return { ok: true, value: r.data };
}
