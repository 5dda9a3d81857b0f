/**
 * Server configuration: read from the environment once, validated, typed and frozen.
 * Nothing else in the server reads `process.env`.
 */
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

const EnvSchema = z.object({
  /** Address to listen on. Loopback by default: put a reverse proxy in front to publish. */
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: Int(0, 65535).default(4321),
  /** Built site to serve (output of `npm run build`). */
  CL_SITE_DIR: z.string().default('dist'),
  /** `open`: labs for anyone who reaches the server (rate limited).
   *  `local`: single-user mode on loopback only; terminals of target `host` are the
   *  learner's own shell (node-pty); every API call needs the token printed at start. */
  CL_MODE: z.enum(['open', 'local']).default('open'),
  /** Lifetime of a new session; the reader may extend it up to CL_SESSION_MAX_LIFETIME. */
  CL_SESSION_TTL: Duration.default(parseDuration('30m')),
  /** Hard cap on a session's life, extensions included; the lab host itself exits then
   *  even if the server is gone. */
  CL_SESSION_MAX_LIFETIME: Duration.default(parseDuration('2h')),
  /** A session with no terminal attached and no input for this long is reaped. */
  CL_IDLE_TIMEOUT: Duration.default(parseDuration('10m')),
  /** How often the reaper looks for expired, idle and leftover lab hosts. */
  CL_REAP_INTERVAL: Duration.default(parseDuration('15s')),
  CL_MAX_SESSIONS: Int(0, 10_000).default(20),
  CL_MAX_SESSIONS_PER_CLIENT: Int(1, 1000).default(3),
  /** Sessions one client may create per minute (token bucket). */
  CL_CREATE_PER_MINUTE: Int(1, 10_000).default(10),
  /** Lab hosts being created at once; further Starts wait their turn. */
  CL_ENGINE_CONCURRENCY: Int(1, 64).default(4),
  /** Ready lab hosts kept per lab so a Start does not wait for the engine (0: off). */
  CL_POOL_SIZE: Int(0, 50).default(1),
  /** A pooled lab host older than this is replaced instead of handed out. */
  CL_POOL_MAX_AGE: Duration.default(parseDuration('15m')),
  /** Extra origins allowed to open terminals (comma separated); the server's own origin
   *  is always allowed. */
  CL_ALLOWED_ORIGINS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    ),
  /** Names this server's lab hosts (label `containerlabs.instance`); leftovers of the same
   *  instance are removed at start. Default: HOST:PORT. */
  CL_INSTANCE: z.string().optional(),
  /** Trust X-Forwarded-* headers (set when behind a reverse proxy). */
  CL_TRUST_PROXY: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((s) => s === 'true' || s === '1'),
  /** Docker engine address; dockerode's own DOCKER_HOST handling applies (unix, tcp, ssh). */
  DOCKER_HOST: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly siteDir: string;
  readonly mode: 'open' | 'local';
  readonly sessionTtlMs: number;
  readonly sessionMaxLifetimeMs: number;
  readonly idleTimeoutMs: number;
  readonly reapIntervalMs: number;
  readonly maxSessions: number;
  readonly maxSessionsPerClient: number;
  readonly createPerMinute: number;
  readonly engineConcurrency: number;
  readonly poolSize: number;
  readonly poolMaxAgeMs: number;
  readonly allowedOrigins: readonly string[];
  readonly instance: string;
  readonly trustProxy: boolean;
  readonly dockerHost: string | undefined;
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
  if (e.CL_SESSION_TTL > e.CL_SESSION_MAX_LIFETIME) {
    throw new ConfigError('invalid configuration:\n  CL_SESSION_TTL: longer than CL_SESSION_MAX_LIFETIME');
  }
  return Object.freeze({
    host: e.HOST,
    port: e.PORT,
    siteDir: resolve(e.CL_SITE_DIR),
    mode: e.CL_MODE,
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
    allowedOrigins: Object.freeze([...e.CL_ALLOWED_ORIGINS]),
    instance: e.CL_INSTANCE ?? `${e.HOST}:${e.PORT}`,
    trustProxy: e.CL_TRUST_PROXY,
    dockerHost: e.DOCKER_HOST,
    logLevel: e.LOG_LEVEL,
  });
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
