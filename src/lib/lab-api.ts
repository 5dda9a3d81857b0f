/**
 * The lab server's HTTP API, as the browser uses it (same origin as the site).
 * Every failure becomes a {@link LabApiError} with a code the UI can switch on.
 */
import type {
  CgroupReply,
  CheckResult,
  CreatedSessionReply,
  ProcessSnapshot,
  SessionReply,
  TicketReply,
} from '../../server/src/contract/rest.ts';

// The server's contract (server/src/contract/rest.ts), as types only: nothing of zod ships.
export type { CheckResult, NsKind, ProcessInfo, ProcessSnapshot } from '../../server/src/contract/rest.ts';

/** `GET …/cgroup`: the snapshot plus CPU use since the session's previous reading. */
export type CgroupReading = CgroupReply;

/** A terminal of a session; `ticket` only in the answer to createSession. */
export type SessionTerminal = SessionReply['terminals'][number] & { ticket?: string };

/** A session as the page keeps it: what createSession answered. */
export type LabSession = Omit<CreatedSessionReply, 'terminals'> & { terminals: SessionTerminal[] };

/**
 * `no_server`: nothing answers the API (static hosting) - show the recording.
 * `network`: the request failed on the way - retry may help.
 * Everything else is the server's own `error.code` (`engine_unavailable`,
 * `out_of_capacity`, `rate_limited`, `unknown_lab`, …).
 */
export class LabApiError extends Error {
  readonly code: string;
  readonly status: number;
  /** Seconds, from Retry-After. */
  readonly retryAfter: number | undefined;
  constructor(code: string, message: string, status = 0, retryAfter?: number) {
    super(message);
    this.name = 'LabApiError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

const API = '/api/v1';

async function call(
  method: string,
  path: string,
  init: { body?: unknown; token?: string; keepalive?: boolean; signal?: AbortSignal } = {},
): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let res: Response;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      keepalive: init.keepalive,
      signal: init.signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw new LabApiError('network', 'Could not reach the lab server. Check your connection and try again.');
  }
  if (res.ok) return res;
  throw await toError(res);
}

async function toError(res: Response): Promise<LabApiError> {
  const retry = Number(res.headers.get('retry-after'));
  const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  const isJson = (res.headers.get('content-type') ?? '').includes('application/json');
  if (isJson) {
    try {
      const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
      if (body.error && typeof body.error.code === 'string') {
        const message =
          typeof body.error.message === 'string'
            ? body.error.message
            : `The lab server refused (${res.status}).`;
        return new LabApiError(body.error.code, message, res.status, retryAfter);
      }
    } catch {
      // fall through
    }
  }
  if (!isJson) void res.body?.cancel().catch(() => {});
  // A static host answers /api/* with its 404 page (or 405 for POST): there is no server.
  if (!isJson && (res.status === 404 || res.status === 405 || res.status === 501)) {
    return new LabApiError('no_server', 'There is no lab server behind this site.', res.status);
  }
  return new LabApiError(
    `http_${res.status}`,
    `The lab server answered ${res.status}. Try again in a moment.`,
    res.status,
    retryAfter,
  );
}

export async function createSession(lab: string): Promise<LabSession> {
  const res = await call('POST', '/sessions', { body: { lab } });
  return (await res.json()) as CreatedSessionReply;
}

/** Asks for more time; returns the new expiry. */
export async function extendSession(s: LabSession): Promise<string> {
  const res = await call('POST', `/sessions/${encodeURIComponent(s.id)}/extend`, { token: s.token });
  const body = (await res.json()) as SessionReply;
  return body.expiresAt;
}

/** Whether the session still exists: 'gone' on 404/401, 'unknown' when the server is unreachable. */
export async function probeSession(s: LabSession): Promise<'alive' | 'gone' | 'unknown'> {
  try {
    await call('GET', `/sessions/${encodeURIComponent(s.id)}`, { token: s.token });
    return 'alive';
  } catch (err) {
    const status = (err as LabApiError).status;
    return status === 404 || status === 401 || status === 410 ? 'gone' : 'unknown';
  }
}

/** Ends the session. `keepalive` lets the request outlive the page (pagehide). */
export async function deleteSession(s: LabSession, keepalive = false): Promise<void> {
  try {
    await call('DELETE', `/sessions/${encodeURIComponent(s.id)}`, { token: s.token, keepalive });
  } catch (err) {
    if ((err as LabApiError).status !== 404) throw err;
  }
}

/** A fresh single-use ticket for one terminal's socket (valid about 30 s). */
export async function terminalTicket(s: LabSession, t: SessionTerminal): Promise<string> {
  const res = await call(
    'POST',
    `/sessions/${encodeURIComponent(s.id)}/terminals/${encodeURIComponent(t.name)}/tickets`,
    {
      token: s.token,
    },
  );
  return ((await res.json()) as TicketReply).ticket;
}

/** `ws(s)://<host><url>?ticket=…` for one terminal of a session. */
export function terminalSocketUrl(t: SessionTerminal, ticket: string, loc: Location = location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const sep = t.url.includes('?') ? '&' : '?';
  return `${scheme}//${loc.host}${t.url}${sep}ticket=${encodeURIComponent(ticket)}`;
}

const sessionPath = (s: LabSession, rest: string) => `/sessions/${encodeURIComponent(s.id)}${rest}`;

/** Every process of the session as the kernel reports it (the process map). */
export async function getProcesses(s: LabSession, signal?: AbortSignal): Promise<ProcessSnapshot> {
  const res = await call('GET', sessionPath(s, '/processes'), { token: s.token, signal });
  return (await res.json()) as ProcessSnapshot;
}

/** The lab host's cgroup figures (limits, use, OOM kills, refused forks, throttling). */
export async function getCgroup(s: LabSession, signal?: AbortSignal): Promise<CgroupReading> {
  const res = await call('GET', sessionPath(s, '/cgroup'), { token: s.token, signal });
  return (await res.json()) as CgroupReply;
}

/** Runs one step check of the session's lab; `answer` for the kinds that take one. */
export async function runCheck(s: LabSession, check: string, answer?: string): Promise<CheckResult> {
  const res = await call('POST', sessionPath(s, `/checks/${encodeURIComponent(check)}`), {
    token: s.token,
    body: answer === undefined ? {} : { answer },
  });
  return (await res.json()) as CheckResult;
}
