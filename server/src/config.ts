/**
 * Server configuration: read from the environment once, validated, typed and frozen.
 * Nothing else in the server reads `process.env`.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';

const durationRe = /^(\d+)(ms|s|m|h)?$/;

/** "90s", "30m", "2h", "1500ms" or a bare number of seconds → milliseconds. */
export function parseDuration(text: string): number {
  const m = durationRe.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration (use e.g. 90s, 30m, 2h)`);
  const n = Number(m[1]);
  switch (m[2]) {
    case 'ms':
      return n;
    case 'm':
      return n * 60_000;
    case 'h':
      return n * 3_600_000;
    default:
      return n * 1000;
  }
}

const Duration = z
  .string()
  .refine((s) => durationRe.test(s.trim()), 'a duration such as 90s, 30m or 2h')
  .transform(parseDuration);

const Int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** The largest uid the kernel takes ((uid_t)-1 means "unchanged"). */
const MAX_UID = 4_294_967_294;
const uidRangeRe = /^(\d{1,10})-(\d{1,10})$/;

/** "100000-199999" → { first, last }; throws with the reason. Never includes root. */
export function parseUidRange(text: string): { first: number; last: number } {
  const m = uidRangeRe.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a uid range (use e.g. 100000-199999, or auto)`);
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (first < 1) throw new Error('a uid range must not include 0 (root)');
  if (last > MAX_UID) throw new Error(`uids end at ${MAX_UID}`);
  if (last < first) throw new Error(`"${text}" ends before it starts`);
  return { first, last };
}

/** A comma-separated list; blanks around items and empty items are dropped. */
const CommaList = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );

const EnvSchema = z.object({
  /** Address to listen on. Loopback by default: put a reverse proxy in front to publish. */
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: Int(0, 65535).default(4321),
  /** Built site to serve (output of `npm run build`). */
  CL_SITE_DIR: z.string().default('dist'),
  /** Where the server keeps its sessions across restarts (`sessions.db`, SQLite): a
   *  directory it may create and write, the owner's only. Relative to the working
   *  directory (the checkout, for `npm start`); compose: a volume; systemd: StateDirectory. */
  CL_DATA_DIR: z.string().min(1).default('data'),
  /** The access mode. `open`: labs for anyone who reaches the server (rate limited).
   *  `code`: reading stays open; labs need the shared CL_ACCESS_CODE (an invite link
   *  `/?access=<code>` sets a cookie). `local`: single-user mode on loopback only;
   *  terminals of target `host` are the learner's own shell (node-pty); every API call
   *  needs the token printed at start. */
  CL_MODE: z.enum(['open', 'code', 'local']).default('open'),
  /** `code` mode: the shared access code (8-128 letters, digits, `-`, `_`, `.`, `~`, so it
   *  fits in a link unescaped). */
  CL_ACCESS_CODE: z
    .string()
    .regex(/^[A-Za-z0-9._~-]{8,128}$/, '8 to 128 letters, digits, "-", "_", "." or "~"')
    .optional(),
  /** `code` mode: who readers should ask for a code, shown in the 401 message
   *  (e.g. "your teacher, ana@example.org"). */
  CL_ACCESS_CONTACT: z.string().max(200).optional(),
  /** Labs offered (comma separated ids, e.g. `processes,namespaces`); empty: every lab. */
  CL_LABS: CommaList,
  /** Replace every lab's memory limit from lab.yaml (e.g. `256m`). */
  CL_LAB_MEMORY: z
    .string()
    .regex(/^\d+[kmg]$/i, 'a size such as 256m')
    .optional(),
  /** Replace every lab's CPU share from lab.yaml (cores, e.g. `0.25`). */
  CL_LAB_CPUS: z.coerce.number().positive().max(4).optional(),
  /** Replace every lab's pids limit from lab.yaml. */
  CL_LAB_PIDS: Int(16, 4096).optional(),
  /** Replace every lab's /tmp size from lab.yaml (e.g. `32m`). */
  CL_LAB_TMP: z
    .string()
    .regex(/^\d+[kmg]$/i, 'a size such as 32m')
    .optional(),
  /** The uids lab hosts run as, one per lab host, so per-user kernel limits (user
   *  namespaces, inotify instances, processes, ...) are per sandbox. `auto`: 2000000000-
   *  2000099999 on a rootful engine, 20000-59999 where container uids are mapped
   *  (rootless engine, userns-remap). Or a range such as `100000-199999`: it must not
   *  overlap the engine host's own users or their /etc/subuid ranges, and must be mapped
   *  by the engine's user namespace if it has one. Its size caps the lab hosts at once. */
  CL_LAB_UIDS: z
    .string()
    .default('auto')
    .superRefine((s, ctx) => {
      if (s.trim() === 'auto') return;
      try {
        parseUidRange(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .transform((s) => (s.trim() === 'auto' ? ('auto' as const) : parseUidRange(s))),
  /** What SIGTERM means. `restart` (an upgrade, systemd's or compose's stop): refuse new
   *  sessions, close terminal sockets with 4013 (the pages reconnect), remove the warm pool
   *  and exit, leaving the sessions' lab hosts running for the next server to take back.
   *  `end`: a final shutdown, every session ends (after CL_DRAIN_GRACE). SIGINT (Ctrl-C)
   *  and `npm run admin -- shutdown` always end everything. */
  CL_ON_SIGTERM: z.enum(['restart', 'end']).default('restart'),
  /** On a final shutdown: refuse new sessions, tell live ones, and wait this long before
   *  ending them (0: at once). */
  CL_DRAIN_GRACE: Duration.default(parseDuration('10s')),
  /** Bearer token for GET /metrics; unset: /metrics answers loopback only. */
  CL_METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  /** Bearer token for the admin API (/api/v1/admin, `npm run admin`); unset: loopback only. */
  CL_ADMIN_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  /** Lifetime of a new session; the reader may extend it up to CL_SESSION_MAX_LIFETIME. */
  CL_SESSION_TTL: Duration.default(parseDuration('30m')),
  /** Hard cap on a session's life, extensions included; the lab host itself exits then
   *  even if the server is gone. */
  CL_SESSION_MAX_LIFETIME: Duration.default(parseDuration('2h')),
  /** A session with no terminal attached and no input for this long is reaped. */
  CL_IDLE_TIMEOUT: Duration.default(parseDuration('10m')),
  /** How often the reaper looks for expired, idle and leftover lab hosts. */
  CL_REAP_INTERVAL: Duration.default(parseDuration('15s')),
  /** Sessions at once; `auto`: from the engine's memory and CPUs at start (autoMaxSessions
   *  in sessions/limits.ts), 20 if the engine does not answer then. */
  CL_MAX_SESSIONS: z.union([z.literal('auto'), Int(0, 10_000)]).default('auto'),
  CL_MAX_SESSIONS_PER_CLIENT: Int(1, 1000).default(3),
  /** Sessions one client may create per minute (token bucket). */
  CL_CREATE_PER_MINUTE: Int(1, 10_000).default(10),
  /** Lab hosts being created at once; further Starts wait their turn. */
  CL_ENGINE_CONCURRENCY: Int(1, 64).default(4),
  /** Ready lab hosts kept per lab so a Start does not wait for the engine (0: off). */
  CL_POOL_SIZE: Int(0, 50).default(1),
  /** A pooled lab host older than this is replaced instead of handed out. */
  CL_POOL_MAX_AGE: Duration.default(parseDuration('15m')),
  /** Spares of all labs together at most, counting those made for lesson pages' hints
   *  (a page with a lab in view asks for one); spares for hints also stay within
   *  CL_MAX_SESSIONS together with the sessions. 40: a class of 30 and the base spare of
   *  every other lab (at 32, 6 of a class of 30 found none: the other labs held 6). */
  CL_POOL_MAX: Int(0, 1000).default(40),
  /** How long a hint counts (a reader reading the lesson before pressing Start). */
  CL_POOL_HINT_TTL: Duration.default(parseDuration('10m')),
  /** Spares the pool makes at once (a reader's Start still goes first). */
  CL_POOL_FILL_CONCURRENCY: Int(1, 16).default(2),
  /** AppArmor profile of lab hosts: `auto` = ours, `containerlabs-labhost`
   *  (labs/apparmor/; Docker's docker-default denies the mount(2) nested containers need),
   *  where the engine applies AppArmor, none elsewhere; or the name of a profile loaded on
   *  the engine's host. The server checks at start that the engine can use it and refuses
   *  to start in open and code modes if not. `unconfined`: local mode only. */
  CL_APPARMOR_PROFILE: z
    .string()
    .regex(/^[\w.-]+$/, 'a profile name, `auto` or `unconfined`')
    .default('auto'),
  /** Extra origins allowed to open terminals (comma separated); the server's own origin
   *  is always allowed. */
  CL_ALLOWED_ORIGINS: CommaList,
  /** Names this server's lab hosts (label `containerlabs.instance`); leftovers of the same
   *  instance are removed at start. Default: HOST:PORT. */
  CL_INSTANCE: z.string().optional(),
  /** Trust X-Forwarded-* headers (set when behind a reverse proxy): `true` (from any peer),
   *  `false`, or the proxies' addresses (comma separated addresses, CIDRs or `loopback`),
   *  which also stops clients from spoofing the address a proxy appends. */
  CL_TRUST_PROXY: z
    .string()
    .default('false')
    .refine(
      (s) => /^(true|false|1|0)$/.test(s.trim()) || s.split(',').every((p) => isProxyAddress(p.trim())),
      {
        message: 'true, false, or proxy addresses such as loopback or 10.0.0.0/8,::1',
      },
    )
    .transform((s): boolean | string => {
      const t = s.trim();
      if (t === 'true' || t === '1') return true;
      if (t === 'false' || t === '0') return false;
      return t
        .split(',')
        .map((p) => p.trim())
        .join(',');
    }),
  /** How long a quick engine call may take: the engine probe, an inspection snapshot or
   *  check, the admin's resource figures. Raise it for slow or emulated engines (the host
   *  suite runs its VMs under QEMU's TCG with it scaled). */
  CL_ENGINE_TIMEOUT: Duration.default(parseDuration('5s')).refine((ms) => ms >= 500, 'at least 500ms'),
  /** Docker engine address; dockerode's own DOCKER_HOST handling applies (unix, tcp, ssh). */
  DOCKER_HOST: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly siteDir: string;
  /** The data directory (absolute): the session store lives there. */
  readonly dataDir: string;
  readonly mode: 'open' | 'code' | 'local';
  /** `code` mode only. */
  readonly accessCode: string | undefined;
  readonly accessContact: string | undefined;
  /** Enabled lab ids (empty: all). */
  readonly labs: readonly string[];
  /** Overrides of every lab's limits (lab.yaml `limits`). */
  readonly labLimits: Readonly<{ memory?: string; cpus?: number; pids?: number; tmp?: string }>;
  /** uids for lab hosts (CL_LAB_UIDS): `auto` (the runtime decides) or an inclusive range. */
  readonly labUids: 'auto' | Readonly<{ first: number; last: number }>;
  readonly drainGraceMs: number;
  readonly onSigterm: 'restart' | 'end';
  readonly metricsToken: string | undefined;
  readonly adminToken: string | undefined;
  readonly sessionTtlMs: number;
  readonly sessionMaxLifetimeMs: number;
  readonly idleTimeoutMs: number;
  readonly reapIntervalMs: number;
  readonly maxSessions: number | 'auto';
  readonly maxSessionsPerClient: number;
  readonly createPerMinute: number;
  readonly engineConcurrency: number;
  readonly poolSize: number;
  readonly poolMaxAgeMs: number;
  readonly poolMax: number;
  readonly poolHintTtlMs: number;
  readonly poolFillParallel: number;
  readonly apparmorProfile: string;
  readonly allowedOrigins: readonly string[];
  readonly instance: string;
  /** Fastify's trustProxy: true, false, or comma-separated proxy addresses. */
  readonly trustProxy: boolean | string;
  readonly dockerHost: string | undefined;
  readonly engineTimeoutMs: number;
  readonly logLevel: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parse the environment (or any record) into a frozen Config; throws ConfigError with a
 *  line per bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const r = EnvSchema.safeParse(env);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = r.data;
  if (e.CL_MODE === 'local' && !isLoopback(e.HOST)) {
    throw new ConfigError(
      `invalid configuration:\n  HOST: local mode gives a real shell and listens on loopback only (got ${e.HOST})`,
    );
  }
  if (e.CL_MODE === 'code' && !e.CL_ACCESS_CODE) {
    throw new ConfigError(
      'invalid configuration:\n  CL_ACCESS_CODE: code mode needs a shared code (e.g. CL_ACCESS_CODE=$(openssl rand -hex 12))',
    );
  }
  if (e.CL_APPARMOR_PROFILE === 'unconfined' && e.CL_MODE !== 'local') {
    // Readers the operator does not control get lab hosts: where the engine applies
    // AppArmor they run under an enforcing profile (ours by default) or not at all.
    throw new ConfigError(
      `invalid configuration:\n  CL_APPARMOR_PROFILE: unconfined is refused in ${e.CL_MODE} mode (only local mode may run lab hosts without AppArmor); leave it unset (auto) to use labs/apparmor/containerlabs-labhost`,
    );
  }
  if (e.CL_SESSION_TTL > e.CL_SESSION_MAX_LIFETIME) {
    throw new ConfigError('invalid configuration:\n  CL_SESSION_TTL: longer than CL_SESSION_MAX_LIFETIME');
  }
  return Object.freeze({
    host: e.HOST,
    port: e.PORT,
    siteDir: resolve(e.CL_SITE_DIR),
    dataDir: resolve(e.CL_DATA_DIR),
    mode: e.CL_MODE,
    accessCode: e.CL_MODE === 'code' ? e.CL_ACCESS_CODE : undefined,
    accessContact: e.CL_ACCESS_CONTACT,
    labs: Object.freeze([...e.CL_LABS]),
    labLimits: Object.freeze({
      ...(e.CL_LAB_MEMORY ? { memory: e.CL_LAB_MEMORY.toLowerCase() } : {}),
      ...(e.CL_LAB_CPUS !== undefined ? { cpus: e.CL_LAB_CPUS } : {}),
      ...(e.CL_LAB_PIDS !== undefined ? { pids: e.CL_LAB_PIDS } : {}),
      ...(e.CL_LAB_TMP ? { tmp: e.CL_LAB_TMP.toLowerCase() } : {}),
    }),
    labUids: e.CL_LAB_UIDS === 'auto' ? 'auto' : Object.freeze({ ...e.CL_LAB_UIDS }),
    drainGraceMs: e.CL_DRAIN_GRACE,
    onSigterm: e.CL_ON_SIGTERM,
    metricsToken: e.CL_METRICS_TOKEN,
    adminToken: e.CL_ADMIN_TOKEN,
    sessionTtlMs: e.CL_SESSION_TTL,
    sessionMaxLifetimeMs: e.CL_SESSION_MAX_LIFETIME,
    idleTimeoutMs: e.CL_IDLE_TIMEOUT,
    reapIntervalMs: e.CL_REAP_INTERVAL,
    maxSessions: e.CL_MAX_SESSIONS,
    maxSessionsPerClient: e.CL_MAX_SESSIONS_PER_CLIENT,
    createPerMinute: e.CL_CREATE_PER_MINUTE,
    engineConcurrency: e.CL_ENGINE_CONCURRENCY,
    poolSize: e.CL_POOL_SIZE,
    poolMaxAgeMs: e.CL_POOL_MAX_AGE,
    poolMax: e.CL_POOL_MAX,
    poolHintTtlMs: e.CL_POOL_HINT_TTL,
    poolFillParallel: e.CL_POOL_FILL_CONCURRENCY,
    apparmorProfile: e.CL_APPARMOR_PROFILE,
    allowedOrigins: Object.freeze([...e.CL_ALLOWED_ORIGINS]),
    instance: e.CL_INSTANCE ?? `${e.HOST}:${e.PORT}`,
    trustProxy: e.CL_TRUST_PROXY,
    dockerHost: e.DOCKER_HOST,
    engineTimeoutMs: e.CL_ENGINE_TIMEOUT,
    logLevel: e.LOG_LEVEL,
  });
}

/** An address, a CIDR, or one of proxy-addr's names (what Fastify's trustProxy takes). */
function isProxyAddress(s: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(s)) return true;
  const [addr, bits, more] = s.split('/');
  if (more !== undefined || !addr || isIP(addr) === 0) return false;
  if (bits === undefined) return true;
  const max = isIP(addr) === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
