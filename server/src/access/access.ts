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
import type { CookieSerializeOptions, FastifyCookieOptions } from '@fastify/cookie';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { AppError } from '../errors.ts';
import type { RateLimiter } from '../sessions/limits.ts';

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

/**
 * How @fastify/cookie reads Cookie headers here: the first cookie of a name wins, and a
 * value whose %-escapes are malformed is no credential at all (no secret has a `%`), so the
 * X-Access-Token header still counts beside it. The package's own rule would keep such a
 * value as sent, and so refuse it as a wrong code.
 */
export const COOKIE_PLUGIN_OPTIONS: FastifyCookieOptions = {
  // WARNING: the plugin's types list encode but not decode under parseOptions, though it
  // passes them to cookie's parseCookie, whose documented decode may return undefined.
  parseOptions: {
    decode: (value: string): string | undefined => {
      try {
        return decodeURIComponent(value);
      } catch {
        return undefined;
      }
    },
  } as FastifyCookieOptions['parseOptions'],
};

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

/** The attributes of the cookie that stores the secret after a valid invite link. */
export function accessCookieOptions(policy: AccessPolicy, secure: boolean): CookieSerializeOptions {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure,
    // Local mode: for the browser session only.
    ...(policy.mode === 'code' ? { maxAge: CODE_COOKIE_MAX_AGE_S } : {}),
  };
}

/** The credential a request carries: the cookie, else the header. */
export function credentialOf(req: FastifyRequest): string | undefined {
  const header = req.headers[ACCESS_HEADER];
  return req.cookies[ACCESS_COOKIE] ?? (typeof header === 'string' ? header : undefined);
}

/** Wrong codes a client may send per minute before every attempt is refused for a while. */
export const GUESSES_PER_MINUTE = 10;

/** What the access hooks need besides the policy. */
export interface AccessHookOptions {
  policy: AccessPolicy;
  /** Wrong credentials per client (a token bucket): guessing stops when it is empty. */
  guesses: RateLimiter;
  /** The per-client key of a request (its address, IPv6 by /64). */
  clientKey(req: FastifyRequest): string;
  /** Told about each refused request (metrics). */
  onRefused?: (reason: 'missing' | 'wrong' | 'guessing') => void;
}

/**
 * Checks a credential: refused at once (429) while the client has used up its wrong
 * guesses, else compared; a wrong one costs a guess. A missing one costs nothing.
 */
function verify(opts: AccessHookOptions, req: FastifyRequest, given: string | undefined): void {
  const { policy, guesses } = opts;
  const key = opts.clientKey(req);
  const wait = guesses.peek(key);
  if (wait > 0) {
    opts.onRefused?.('guessing');
    req.log.info({ reason: 'guessing' }, 'lab request refused: access');
    throw new AppError(
      'rate_limited',
      `Too many wrong access codes from your address; try again in ${wait} s.`,
      {
        retryAfter: wait,
      },
    );
  }
  const v = checkAccess(policy, given);
  if (v.ok) return;
  if (v.reason === 'wrong') guesses.take(key);
  opts.onRefused?.(v.reason);
  req.log.info({ reason: v.reason }, 'lab request refused: access');
  throw new AppError('bad_token', v.message);
}

/**
 * The access check of the lab routes (sessions, terminals, inspection). WARNING: register it
 * as a hook of the encapsulated context that holds those routes, never as a root hook that
 * looks at the URL: the router decodes escapes (`/api/v1/%73essions` is `/api/v1/sessions`)
 * and only the route it matched says what a request is.
 */
export function accessGuard(opts: AccessHookOptions): onRequestAsyncHookHandler {
  return async (req) => {
    if (opts.policy.mode === 'open' || opts.policy.secret === undefined) return;
    verify(opts, req, credentialOf(req));
  };
}

/**
 * Invite links on the site's pages (`/any/page?access=<code>`): a valid code becomes the
 * cookie and the reader is sent to the same page without it. Registered on the site's
 * routes only. The redirect stays on this site: the path is reduced to one leading slash,
 * since `//host` or `/\host` in a Location header would leave it.
 */
export function inviteLinkHook(opts: AccessHookOptions): onRequestAsyncHookHandler {
  return async (req, reply) => {
    if (opts.policy.mode === 'open' || opts.policy.secret === undefined) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') return;
    const url = new URL(req.url, 'http://x');
    const offered = url.searchParams.get(ACCESS_PARAM);
    if (offered === null) return;
    verify(opts, req, offered);
    url.searchParams.delete(ACCESS_PARAM);
    reply.setCookie(
      ACCESS_COOKIE,
      opts.policy.secret,
      accessCookieOptions(opts.policy, req.protocol === 'https'),
    );
    reply.header('cache-control', 'no-store');
    return reply.redirect(sameSitePath(url.pathname) + url.search, 303);
  };
}

/**
 * A request path (already resolved by URL: no `.`/`..` segments) reduced to something a
 * Location header cannot turn into another host.
 */
export function sameSitePath(path: string): string {
  return `/${path.replace(/^[/\\]+/, '')}`;
}

/** Host header values that name this machine: `localhost`, 127.0.0.0/8, `[::1]`, with a port or not. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(host.trim().toLowerCase());
  if (!m) return false;
  const name = m[1] ?? m[2]!;
  if (m[1] !== undefined) return name === '::1';
  return name === 'localhost' || /^127\.(?:\d{1,3})\.(?:\d{1,3})\.(?:\d{1,3})$/.test(name);
}

/**
 * Local mode only: a real shell is behind this server, so it answers only requests
 * addressed to this machine. A page on another site that re-points its own name at
 * 127.0.0.1 (DNS rebinding) sends its own name as Host: refused, on every route.
 */
export function loopbackHostGuard(): onRequestAsyncHookHandler {
  return async (req) => {
    if (isLoopbackHost(req.headers.host)) return;
    const host = String(req.headers.host ?? '').slice(0, 100);
    req.log.warn({ host }, 'refused: not a loopback Host in local mode');
    throw new AppError(
      'forbidden',
      'This server runs in local mode and answers only requests for 127.0.0.1 or localhost.',
    );
  };
}

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
