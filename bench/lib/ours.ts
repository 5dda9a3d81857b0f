/**
 * Our server, run for real (node server/src/main.ts via tests/support/server.ts) with the
 * bench's own instance name, and the client side of a reader's Start: POST the session,
 * open its terminal's WebSocket with the ticket that came with it (the tests' terminal
 * client: the browser's TerminalClient on `ws`), wait for the prompt.
 */
import {
  createSession,
  deleteSession,
  type RunningServer,
  type SessionInfo,
  startServer,
  TermClient,
} from '../../tests/support/server.ts';
import { waitForText } from './terms.ts';
import { sleep } from './util.ts';

export const LAB = 'processes';
export const HOST_PROMPT = /reader@labhost[^\n]*\$ $/;
export const SIZE = { cols: 160, rows: 50 };

/** Every instance this bench run starts is named `${INSTANCE_PREFIX}<tag>`. */
export const INSTANCE_PREFIX = `bench-${process.pid}-`;

export type Ours = RunningServer;

/** Limits a single loopback client (the bench) would otherwise hit. */
export function benchEnv(maxSessions: number): Record<string, string> {
  return {
    CL_MAX_SESSIONS: String(maxSessions),
    CL_MAX_SESSIONS_PER_CLIENT: String(Math.min(1000, maxSessions)),
    CL_CREATE_PER_MINUTE: '10000',
    CL_IDLE_TIMEOUT: '2h',
    CL_SESSION_TTL: '30m',
  };
}

export function startOurs(tag: string, env: Record<string, string>): Promise<Ours> {
  return startServer({ CL_INSTANCE: `${INSTANCE_PREFIX}${tag}`, LOG_LEVEL: 'info', ...env });
}

/** The operator's status (loopback: no token needed): engine, sessions, pool. */
export async function health(base: string): Promise<Record<string, unknown>> {
  const r = await fetch(`${base}/api/v1/admin/status`);
  return (await r.json()) as Record<string, unknown>;
}

/** The pool as /admin/status reports it ({size, ready:{lab:n}}), or null if it reports none. */
export function poolOf(h: Record<string, unknown>, lab = LAB): { size: number; ready: number } | null {
  const p = h.pool as Record<string, unknown> | undefined;
  if (!p || typeof p !== 'object') return null;
  const size = typeof p.size === 'number' ? p.size : Number.NaN;
  const r = p.ready as unknown;
  const ready =
    typeof r === 'number'
      ? r
      : r && typeof r === 'object'
        ? Number((r as Record<string, unknown>)[lab] ?? 0)
        : Number.NaN;
  return Number.isFinite(size) && Number.isFinite(ready) ? { size, ready } : null;
}

/** Wait until the pool holds `size` ready hosts of the lab; false after the timeout. */
export async function waitPoolFull(base: string, timeoutMs = 30_000, lab = LAB): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const p = poolOf(await health(base), lab);
    if (!p) return false;
    if (p.ready >= p.size) return true;
    if (Date.now() > end) return false;
    await sleep(50);
  }
}

/**
 * The `host` terminal of a session, at its prompt: opened with the ticket that came with the
 * session when there is one (a Start is one POST and one socket), else with a fresh one.
 * Output is counted, not kept (the measurements subscribe to it).
 */
export async function openHost(base: string, s: SessionInfo): Promise<TermClient> {
  const term = await TermClient.open(base, s, 'host', {
    label: 'ours',
    sessionTicket: true,
    collect: false,
    ...SIZE,
  });
  await waitForText(term, HOST_PROMPT, 20_000);
  return term;
}

/** Milliseconds of each step of one Start, POST to the prompt on the `host` terminal. */
export interface StartPhases {
  /** POST /api/v1/sessions → 201 (session and lab host ready). */
  post: number;
  /** 201 → the terminal's WebSocket is open (HTTP upgrade). */
  upgrade: number;
  /** open → `attached` (the server made and started the docker exec). */
  attach: number;
  /** attached → the first output byte (the shell started writing). */
  firstByte: number;
  /** first byte → the prompt is on screen (bash -l finished its start-up). */
  prompt: number;
  /** POST → prompt: the figure a reader waits for. */
  total: number;
}

export async function startToPrompt(
  base: string,
): Promise<{ phases: StartPhases; session: SessionInfo; term: TermClient }> {
  const t0 = performance.now();
  const session = await createSession(base, LAB);
  const t1 = performance.now();
  const term = await openHost(base, session);
  const t5 = performance.now();
  const { open, attached } = term.times;
  const first = term.times.firstByte || t5;
  return {
    session,
    term,
    phases: {
      post: t1 - t0,
      upgrade: open - t1,
      attach: attached - open,
      firstByte: first - attached,
      prompt: t5 - first,
      total: t5 - t0,
    },
  };
}

/** DELETE a session; its duration in ms (the server answers 204 once the host is gone). */
export async function stopSession(base: string, s: SessionInfo): Promise<number> {
  const t0 = performance.now();
  const status = await deleteSession(base, s);
  if (status !== 204) throw new Error(`DELETE ${s.id}: HTTP ${status}`);
  return performance.now() - t0;
}

/** Pool hits and misses, from the server's `session.started` log events. */
export function poolHits(logs: string): { pooled: number; cold: number } {
  let pooled = 0;
  let cold = 0;
  for (const line of logs.split('\n')) {
    if (!line.includes('"session.started"')) continue;
    if (line.includes('"pooled":true')) pooled++;
    else cold++;
  }
  return { pooled, cold };
}

/** The server's last warning or error (message and cause), to explain a failed request. */
export function lastServerProblem(logs: string): string {
  const lines = logs.split('\n').filter((l) => /"level":(40|50|60)/.test(l));
  const last = lines.at(-1);
  if (!last) return '';
  try {
    const j = JSON.parse(last) as { msg?: string; cause?: string; code?: string; err?: unknown };
    return [j.msg, j.code, j.cause ?? (j.err ? JSON.stringify(j.err) : '')]
      .filter(Boolean)
      .join(' — ')
      .slice(0, 400);
  } catch {
    return last.slice(0, 400);
  }
}
