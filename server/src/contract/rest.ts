/**
 * The REST contract between the lab server and its clients (the browser's lab code, the
 * tests, the benchmark, the admin CLI): one zod schema per request and reply, and the types
 * inferred from them. The server parses requests and types its replies with these; clients
 * import the types (the browser: types only, nothing ships) or parse replies with the
 * schemas (tests, scripts), so a drift on either side fails a test. The terminal protocol
 * and its close codes are the other half: server/src/terminal/protocol.ts.
 */
import { z } from 'zod';

// ---- shared -------------------------------------------------------------------------

/** A session id as the server makes them (base64url, 128 bits), with room to spare. */
export const SessionId = z.string().regex(/^[A-Za-z0-9_-]{10,64}$/);
/** A terminal's name as lab.yaml allows it (labs/schema.ts). */
export const TerminalName = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/);
const IsoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO date');

/** Every refusal: `{"error":{"code","message"}}` (codes and statuses: server/src/errors.ts). */
export const ErrorReply = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
export type ErrorReply = z.infer<typeof ErrorReply>;

// ---- public -------------------------------------------------------------------------

/** `GET /api/v1/health`: only whether labs can start here (operators: AdminStatus). */
export const HealthReply = z.object({
  status: z.literal('ok'),
  labs: z.object({ available: z.boolean(), help: z.string().optional() }),
});
export type HealthReply = z.infer<typeof HealthReply>;

/** A step check as a lab lists it (labs/schema.ts CheckDef, without what it compares). */
const CheckInfo = z.object({
  id: z.string(),
  kind: z.string(),
  title: z.string(),
  prompt: z.string().optional(),
});

/** `GET /api/v1/labs`. */
export const LabsReply = z.object({
  labs: z.array(
    z.object({
      id: z.string(),
      title: z.string(),
      description: z.string(),
      terminals: z.array(
        z.object({ name: TerminalName, title: z.string(), target: z.enum(['host', 'container']) }),
      ),
      checks: z.array(CheckInfo),
    }),
  ),
});
export type LabsReply = z.infer<typeof LabsReply>;

// ---- sessions -----------------------------------------------------------------------

/** `POST /api/v1/labs/:id/hint` (a lesson page shows the lab; no body): 202 and whether the
 *  hint counted toward a spare lab host (a client's hints count up to its session quota). */
export const HintReply = z.object({ counted: z.boolean() });
export type HintReply = z.infer<typeof HintReply>;

/** `POST /api/v1/sessions` body. */
/** A lab id as a request names it (lab.yaml's ids are shorter; unknown ones are a 404). */
export const LabId = z.string().min(1).max(64);
export const CreateSessionBody = z.object({ lab: LabId }).strict();
export type CreateSessionBody = z.infer<typeof CreateSessionBody>;

const SessionTerminal = z.object({
  name: TerminalName,
  title: z.string(),
  /** Path of the terminal's WebSocket. */
  url: z.string().startsWith('/api/v1/sessions/'),
});

/** A session as its reader sees it (`GET /api/v1/sessions/:id`, `…/extend`). */
export const SessionReply = z.object({
  id: SessionId,
  lab: z.string(),
  createdAt: IsoDate,
  expiresAt: IsoDate,
  terminals: z.array(SessionTerminal),
});
export type SessionReply = z.infer<typeof SessionReply>;

/** `POST /api/v1/sessions` → 201: the session, its token (sent this once) and a first ticket per terminal. */
export const CreatedSessionReply = SessionReply.extend({
  token: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  terminals: z.array(SessionTerminal.extend({ ticket: z.string() })),
});
export type CreatedSessionReply = z.infer<typeof CreatedSessionReply>;

/** `POST /api/v1/sessions/:id/terminals/:name/tickets` → 201. */
export const TicketReply = z.object({ ticket: z.string(), expiresAt: IsoDate });
export type TicketReply = z.infer<typeof TicketReply>;

// ---- inspection ---------------------------------------------------------------------

// `time` exists since Linux 5.6; on older kernels its inode reads '' (no /proc/<pid>/ns/time).
export const NS_KINDS = ['pid', 'mnt', 'uts', 'ipc', 'user', 'net', 'cgroup', 'time'] as const;
export type NsKind = (typeof NS_KINDS)[number];
const Namespaces = z.object(
  Object.fromEntries(NS_KINDS.map((k) => [k, z.string()])) as Record<NsKind, z.ZodString>,
);

/** One process as the kernel reports it (`/proc`), PID on the lab host. */
export const ProcessInfo = z.object({
  pid: z.number().int(),
  ppid: z.number().int(),
  /** PID at every namespace level, outermost (the lab host) first (`NSpid`). */
  nspid: z.array(z.number().int()),
  /** uid on the lab host. */
  uid: z.number().int(),
  user: z.string(),
  /** uid at every user-namespace level, outermost first. */
  uids: z.array(z.number().int()),
  users: z.array(z.string()),
  cmd: z.string(),
  namespaces: Namespaces,
  /** Namespace kinds it shares with the lab host's init. */
  sharedWithHost: z.array(z.enum(NS_KINDS)),
  /** In a nested PID namespace (i.e. inside the container). */
  inContainer: z.boolean(),
  /** Its state letter from `/proc/<pid>/status` (`R`, `S`, `Z` for a zombie, …), if read. */
  state: z.string().optional(),
  /** Its effective capabilities, the hex mask of `CapEff:` (16 digits), if read. */
  capEff: z.string().optional(),
  /**
   * Its root directory as `device:inode` (`stat -L /proc/<pid>/root`), if readable: two
   * processes with the same value have the same root. (The link text cannot tell: it
   * reads `/` for a root the reader's mount namespace does not reach.)
   */
  root: z.string().optional(),
});
export type ProcessInfo = z.infer<typeof ProcessInfo>;

/** `GET /api/v1/sessions/:id/processes`. */
export const ProcessSnapshot = z.object({
  takenAt: IsoDate,
  host: z.object({ namespaces: Namespaces }),
  processes: z.array(ProcessInfo),
});
export type ProcessSnapshot = z.infer<typeof ProcessSnapshot>;

const n = z.number().nullable();
/** An object of figures that are numbers, or null where the kernel did not say. */
const numbersOrNull = <K extends string>(...keys: K[]) =>
  z.object(Object.fromEntries(keys.map((k) => [k, n])) as Record<K, typeof n>);
/** The lab host's cgroup figures (v1 or v2), as read. */
export const CgroupSnapshot = z.object({
  takenAt: IsoDate,
  version: z.enum(['1', '2']),
  memory: z.object({ current: n, limit: n, peak: n, oomKills: n }),
  pids: z.object({ current: n, limit: n, refused: n }),
  cpu: z.object({
    /** CPU time used since the lab host started, seconds. */
    usageSeconds: n,
    /** The CPU limit in cores (quota / period), null when unlimited. */
    limitCores: n,
    periods: n,
    throttledPeriods: n,
    throttledSeconds: n,
  }),
});
export type CgroupSnapshot = z.infer<typeof CgroupSnapshot>;

/** `GET /api/v1/sessions/:id/cgroup`: the snapshot and CPU use since the previous one. */
export const CgroupReply = CgroupSnapshot.extend({
  cpu: CgroupSnapshot.shape.cpu.extend({
    /** Percent of one core since the session's previous snapshot; null on the first. */
    percent: n,
  }),
});
export type CgroupReply = z.infer<typeof CgroupReply>;

/** `GET /api/v1/sessions/:id/checks`: the lab's checks, and which want a typed answer. */
export const ChecksReply = z.object({ checks: z.array(CheckInfo.extend({ answer: z.boolean() })) });
export type ChecksReply = z.infer<typeof ChecksReply>;

/** `POST /api/v1/sessions/:id/checks/:check` body. */
export const CheckBody = z.object({ answer: z.string().max(200).optional() }).strict();
export type CheckBody = z.infer<typeof CheckBody>;

/** `POST /api/v1/sessions/:id/checks/:check` → the verdict. */
export const CheckResult = z.object({
  id: z.string(),
  passed: z.boolean(),
  /** What the server saw, in a sentence; on failure the lab's hint follows. */
  message: z.string(),
  hint: z.string().optional(),
});
export type CheckResult = z.infer<typeof CheckResult>;

// ---- operator -----------------------------------------------------------------------

/** The warm pool: spares kept per lab without hints, ready per lab, and each lab's target
 *  (that size plus the lesson pages' live hints; optional: servers before hints had none). */
const Pool = z.object({
  size: z.number(),
  ready: z.record(z.string(), z.number()),
  targets: z.record(z.string(), z.number()).optional(),
});

/** `GET /api/v1/admin/status`. */
export const AdminStatusReply = z.object({
  mode: z.enum(['open', 'code', 'local']),
  access: z.enum(['open', 'code', 'local']),
  engine: z
    .object({
      reachable: z.boolean(),
      version: z.string().optional(),
      cgroupVersion: z.enum(['1', '2']).optional(),
      apparmor: z.boolean().optional(),
      error: z.string().optional(),
      help: z.string().optional(),
      checkedAt: IsoDate,
    })
    .passthrough(),
  sessions: z.number(),
  pool: Pool,
  labs: z.number(),
  draining: z.boolean(),
});
export type AdminStatusReply = z.infer<typeof AdminStatusReply>;

/** A lab host's resources as the admin API reads them from its cgroup. */
export const LabHostResources = numbersOrNull(
  'memoryBytes',
  'memoryLimitBytes',
  'pids',
  'pidsLimit',
  'cpuSeconds',
);
export type LabHostResources = z.infer<typeof LabHostResources>;

/** One live session as the operator sees it (never its token or container id). */
export const AdminSession = z.object({
  // Plain text to its readers (the admin CLI prints it through safeText), not a pattern.
  id: z.string(),
  lab: z.string(),
  /** The key its client counts under (its address; IPv6 by /64). */
  client: z.string(),
  createdAt: IsoDate,
  expiresAt: IsoDate,
  ageSeconds: z.number(),
  idleSeconds: z.number(),
  /** Terminals with a browser attached / started. */
  terminals: z.object({ attached: z.number(), open: z.number() }),
  resources: z.union([LabHostResources, z.object({ error: z.string() })]),
});
export type AdminSession = z.infer<typeof AdminSession>;

/** `GET /api/v1/admin/sessions`. */
export const AdminSessionsReply = z.object({
  sessions: z.array(AdminSession),
  pool: Pool,
  draining: z.boolean(),
});
export type AdminSessionsReply = z.infer<typeof AdminSessionsReply>;
