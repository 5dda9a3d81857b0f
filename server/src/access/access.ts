/**
 * Who may use the labs. Reading the course is always open; the lab endpoints (sessions
 * and their terminal WebSockets) may need a shared secret:
 *
 *   open   nothing to check (per-client quotas still apply)
 *   code   the shared CL_ACCESS_CODE; an invite link `/?access=<code>` stores it in a cookie
 *   local  the token main.ts generates and prints at start (a real shell is behind it)
 *
 * `code` and `local` are one mechanism with different wording. Status codes, decided
 * once for both: no credential → 401 `bad_token`, a wrong one → 401 `bad_token` too, with
 * a message that says which it was. (403 is kept for "not from here", e.g. a foreign
 * origin or the loopback-only admin API.)
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';

export type AccessMode = 'open' | 'code' | 'local';

export interface AccessPolicy {
  mode: AccessMode;
  /** The secret of `code` and `local`; undefined in `open`. */
  secret: string | undefined;
  /** Who to ask for a code (`code` mode), e.g. "your teacher, ana@example.org". */
  contact?: string | undefined;
}

/** Cookie holding the access secret (HttpOnly: page scripts never see it). */
export const ACCESS_COOKIE = 'cl_access';
/** Header an API client may send instead of the cookie. */
export const ACCESS_HEADER = 'x-access-token';
/** Query parameter of an invite link (page GETs only). */
export const ACCESS_PARAM = 'access';
/** How long an invite's cookie lasts in `code` mode (local mode: the browser session). */
const CODE_COOKIE_MAX_AGE_S = 30 * 24 * 3600;

/** Constant-time comparison of two secrets (digests, so length leaks nothing). */
export function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

/** A cookie's value from a Cookie header (first match), undefined if absent or malformed. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Paths whose requests need the credential: the session API and terminal sockets. */
export function isLabPath(pathname: string): boolean {
  return pathname === '/api/v1/sessions' || pathname.startsWith('/api/v1/sessions/');
}

export type AccessVerdict = { ok: true } | { ok: false; reason: 'missing' | 'wrong'; message: string };

/** The decision for one lab request, given the credential it carries (pure). */
export function checkAccess(policy: AccessPolicy, given: string | undefined): AccessVerdict {
  if (policy.mode === 'open' || policy.secret === undefined) return { ok: true };
  if (sameSecret(given, policy.secret)) return { ok: true };
  const reason = given === undefined || given === '' ? 'missing' : 'wrong';
  return { ok: false, reason, message: refusalMessage(policy, reason) };
}

/** What a reader is told (the lab UI shows it as is; `backticks` become code). */
export function refusalMessage(policy: AccessPolicy, reason: 'missing' | 'wrong'): string {
  if (policy.mode === 'local') {
    return 'This server runs in local mode: open the link with ?access=… that it printed at start.';
  }
  const ask = `ask ${policy.contact?.trim() || 'the person who runs this site'} for one`;
  return reason === 'missing'
    ? `This course's labs need an access code: open the invite link you were given, or ${ask}. Reading the lessons needs no code.`
    : `That access code is not accepted (it may have been changed): open the newest invite link, or ${ask}.`;
}

/** The `Set-Cookie` value that stores the secret after a valid invite link. */
export function accessCookie(policy: AccessPolicy, secure: boolean): string {
  const parts = [
    `${ACCESS_COOKIE}=${encodeURIComponent(policy.secret ?? '')}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
  ];
  if (policy.mode === 'code') parts.push(`Max-Age=${CODE_COOKIE_MAX_AGE_S}`);
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

/** The credential a request carries: the cookie, else the header. */
export function credentialOf(req: FastifyRequest): string | undefined {
  const header = req.headers[ACCESS_HEADER];
  return readCookie(req.headers.cookie, ACCESS_COOKIE) ?? (typeof header === 'string' ? header : undefined);
}

export interface AccessPluginOptions {
  policy: AccessPolicy;
  /** Told about each refused lab request (metrics). */
  onRefused?: (reason: 'missing' | 'wrong') => void;
}

/**
 * Registers the access check as a root-level hook (not encapsulated): invite links on
 * page GETs set the cookie and redirect to the same page without the code; lab paths
 * without the right credential are refused before any route (or WebSocket upgrade) runs.
 */
export async function accessPlugin(app: FastifyInstance, opts: AccessPluginOptions): Promise<void> {
  const { policy, onRefused } = opts;
  if (policy.mode === 'open' || policy.secret === undefined) return;
  app.addHook('onRequest', async (req, reply) => {
    const url = new URL(req.url, 'http://x');
    const offered = url.searchParams.get(ACCESS_PARAM);
    if (offered !== null && req.method === 'GET' && !url.pathname.startsWith('/api/')) {
      const v = checkAccess(policy, offered);
      if (!v.ok) throw new AppError('bad_token', v.message);
      url.searchParams.delete(ACCESS_PARAM);
      reply.header('Set-Cookie', accessCookie(policy, req.protocol === 'https'));
      return reply.redirect(url.pathname + url.search, 303);
    }
    if (isLabPath(url.pathname)) {
      const v = checkAccess(policy, credentialOf(req));
      if (!v.ok) {
        onRefused?.(v.reason);
        req.log.info({ reason: v.reason, path: url.pathname }, 'lab request refused: access');
        throw new AppError('bad_token', v.message);
      }
    }
  });
}
// Hooks must reach the app's own routes: opt out of Fastify's plugin encapsulation (what
// the fastify-plugin package does).
Object.assign(accessPlugin, { [Symbol.for('skip-override')]: true });

/** The policy for a server: local mode's generated token, else the configured code. */
export function accessPolicy(
  config: { mode: AccessMode; accessCode?: string | undefined; accessContact?: string | undefined },
  localToken: string | undefined,
): AccessPolicy {
  if (localToken !== undefined) return { mode: 'local', secret: localToken };
  if (config.mode === 'code')
    return { mode: 'code', secret: config.accessCode, contact: config.accessContact };
  return { mode: config.mode, secret: undefined };
}
