/**
 * The engine filter's own configuration, read from the environment once (zod), typed and
 * frozen. Only main.ts and healthcheck.ts call it; nothing else reads `process.env`.
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import type { UpstreamAddress } from './proxy.ts';

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface FilterConfig {
  readonly listen: ListenAddress;
  /** Mode of the unix socket, e.g. 0o660. */
  readonly socketMode: number;
  /** Group given to the unix socket (name or gid), if any. */
  readonly socketGroup: string | undefined;
  readonly upstream: UpstreamAddress;
  /** The text of the upstream address, for logs. */
  readonly upstreamText: string;
  /** AppArmor profiles lab hosts may name besides `unconfined`. */
  readonly apparmorProfiles: readonly string[];
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export class FilterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterConfigError';
  }
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/;

/** A unix socket path (`/run/x.sock`, `unix:///run/x.sock`) or a loopback `host:port`. */
export function parseListen(text: string): ListenAddress | string {
  const t = text.trim();
  const path = t.startsWith('unix://') ? t.slice('unix://'.length) : t;
  if (path.startsWith('/')) {
    if (!isAbsolute(path) || path.length > 100)
      return 'a unix socket path must be absolute and at most 100 characters';
    return { kind: 'unix', path };
  }
  const m = /^(?:tcp:\/\/)?(.+):(\d{1,5})$/.exec(t);
  if (!m || Number(m[2]) > 65535) return 'a unix socket path, or 127.0.0.1:<port>';
  // WARNING: the filter grants lab-host creation to whoever reaches it: never a public address.
  if (!LOOPBACK.test(m[1]!))
    return `only loopback addresses (127.0.0.1, [::1]) may be listened on, not ${m[1]}`;
  return {
    kind: 'tcp',
    host: m[1] === 'localhost' ? '127.0.0.1' : m[1]!.replace(/^\[|\]$/g, ''),
    port: Number(m[2]),
  };
}

/** DOCKER_HOST as the engine address: `unix://<path>` or `tcp://<host>:<port>` (no TLS). */
export function parseUpstream(text: string): UpstreamAddress | string {
  const t = text.trim();
  if (t.startsWith('unix://')) {
    const path = t.slice('unix://'.length);
    return path.startsWith('/') ? { socketPath: path } : 'unix:// needs an absolute path';
  }
  const m = /^tcp:\/\/([^/:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\/?$/.exec(t);
  if (m && Number(m[2]) <= 65535) return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  return 'unix:///path/to/docker.sock or tcp://host:port (TLS and ssh:// are not supported by the filter)';
}

const EnvSchema = z.object({
  /** Where the filter listens: a unix socket path (default), or 127.0.0.1:<port>. */
  CL_FILTER_LISTEN: z.string().default('/run/engine-filter/docker.sock'),
  /** Mode of the unix socket (octal); connecting needs write permission on it. */
  CL_FILTER_SOCKET_MODE: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'an octal mode such as 0660')
    .default('0660'),
  /** Group of the unix socket (name or gid): the server's user must be in it. */
  CL_FILTER_SOCKET_GROUP: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/, 'a group name or gid')
    .optional(),
  /** The real engine; the Docker CLI's variable, read the same way. */
  DOCKER_HOST: z.string().default('unix:///var/run/docker.sock'),
  /** TLS to the engine is not implemented; refuse rather than talk in clear. */
  DOCKER_TLS_VERIFY: z.string().optional(),
  /** The server's setting: a profile named here may be given to lab hosts. */
  CL_APPARMOR_PROFILE: z
    .string()
    .regex(/^[\w.-]+$/, 'a profile name, `auto` or `unconfined`')
    .default('auto'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export function loadFilterConfig(env: Record<string, string | undefined>): FilterConfig {
  const r = EnvSchema.safeParse(env);
  const problems: string[] = r.success
    ? []
    : r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  if (!r.success) throw new FilterConfigError(`invalid engine filter configuration:\n${problems.join('\n')}`);
  const e = r.data;
  const listen = parseListen(e.CL_FILTER_LISTEN);
  if (typeof listen === 'string') problems.push(`  CL_FILTER_LISTEN: ${listen}`);
  const upstream = parseUpstream(e.DOCKER_HOST);
  if (typeof upstream === 'string') problems.push(`  DOCKER_HOST: ${upstream}`);
  if (e.DOCKER_TLS_VERIFY)
    problems.push('  DOCKER_TLS_VERIFY: TLS to the engine is not supported; use its unix socket');
  if (typeof listen !== 'string' && typeof upstream !== 'string') {
    if (listen.kind === 'unix' && 'socketPath' in upstream && listen.path === upstream.socketPath) {
      problems.push('  CL_FILTER_LISTEN: is the engine socket itself (DOCKER_HOST)');
    }
  }
  if (problems.length > 0)
    throw new FilterConfigError(`invalid engine filter configuration:\n${problems.join('\n')}`);
  const apparmor = e.CL_APPARMOR_PROFILE;
  return Object.freeze({
    listen: listen as ListenAddress,
    socketMode: Number.parseInt(e.CL_FILTER_SOCKET_MODE, 8),
    socketGroup: e.CL_FILTER_SOCKET_GROUP,
    upstream: upstream as UpstreamAddress,
    upstreamText: e.DOCKER_HOST,
    apparmorProfiles: Object.freeze(apparmor === 'auto' || apparmor === 'unconfined' ? [] : [apparmor]),
    logLevel: e.LOG_LEVEL,
  });
}
