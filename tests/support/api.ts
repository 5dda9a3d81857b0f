/**
 * The lab API as a reader's page uses it, from Node: create and delete a session, fetch a
 * terminal's single-use ticket, and the WebSocket URL it opens. Any base URL (the server
 * itself, or a proxy in front of it).
 */

export interface SessionInfo {
  id: string;
  token: string;
  lab: string;
  expiresAt: string;
  /** `ticket`: a first single-use ticket per terminal, in the answer to POST /sessions only. */
  terminals: { name: string; title: string; url: string; ticket?: string }[];
}

export async function createSession(
  base: string,
  lab: string,
  headers: Record<string, string> = {},
): Promise<SessionInfo> {
  const r = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ lab }),
  });
  const body = await r.json();
  if (r.status !== 201) throw new Error(`create ${lab}: ${r.status} ${JSON.stringify(body)}`);
  return body as SessionInfo;
}

export async function deleteSession(base: string, s: SessionInfo): Promise<number> {
  const r = await fetch(`${base}/api/v1/sessions/${s.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${s.token}` },
  });
  return r.status;
}

/** What a step check answers (POST …/checks/:id). */
export interface CheckResult {
  passed: boolean;
  message: string;
  hint?: string;
}

/** Runs one step check of the session (with the reader's answer, if the check asks one); throws unless 200. */
export async function runCheck(
  base: string,
  s: SessionInfo,
  id: string,
  answer?: string,
): Promise<CheckResult> {
  const r = await fetch(`${base}/api/v1/sessions/${s.id}/checks/${id}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(answer === undefined ? {} : { answer }),
  });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`check ${id}: ${r.status} ${JSON.stringify(body)}`);
  return body as CheckResult;
}

/** Thrown when the server will not hand out a ticket (its HTTP status and answer). */
export class TicketRefused extends Error {
  readonly status: number;
  constructor(name: string, status: number, body: unknown) {
    super(`ticket for ${name}: ${status} ${JSON.stringify(body)}`);
    this.name = 'TicketRefused';
    this.status = status;
  }
}

/** A fresh single-use ticket for one terminal's socket (POST …/terminals/:name/tickets). */
export async function terminalTicket(
  base: string,
  s: SessionInfo,
  name: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const r = await fetch(`${base}/api/v1/sessions/${s.id}/terminals/${name}/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.token}`, ...headers },
  });
  const body = (await r.json()) as { ticket?: string };
  if (r.status !== 201 || !body.ticket) throw new TicketRefused(name, r.status, body);
  return body.ticket;
}

export interface SocketUrlOptions {
  cols?: number;
  rows?: number;
  /** Sent with the ticket request (and, by the terminal client, with the upgrade). */
  headers?: Record<string, string>;
  /**
   * Use the ticket that came with the session, once, before fetching fresh ones: a reader's
   * Start is one POST and one socket (the benchmark times exactly that). Off by default.
   */
  sessionTicket?: boolean;
}

/** The WebSocket URL of a terminal with a ticket (a fresh one unless `sessionTicket`) and a size. */
export async function terminalSocketUrl(
  base: string,
  s: SessionInfo,
  name: string,
  opts: SocketUrlOptions = {},
): Promise<string> {
  const t = s.terminals.find((x) => x.name === name);
  if (!t) throw new Error(`no terminal ${name}`);
  let ticket = opts.sessionTicket ? t.ticket : undefined;
  if (ticket) t.ticket = undefined; // used up by this socket
  ticket ??= await terminalTicket(base, s, name, opts.headers);
  return `${base.replace(/^http/, 'ws')}${t.url}?ticket=${encodeURIComponent(ticket)}&cols=${opts.cols ?? 160}&rows=${opts.rows ?? 50}`;
}
