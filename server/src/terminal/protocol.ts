/**
 * The terminal protocol, shared by the browser (`src/lib/terminal-client.ts`) and the
 * server (`server/src/terminal/`). One WebSocket per terminal:
 *
 *   ws(s)://<origin>/api/v1/sessions/<sessionId>/terminals/<name>?ticket=<ticket>[&cols=&rows=]
 *
 * A ticket opens one socket, within 30 s; the answer to POST /api/v1/sessions carries one
 * per terminal, and POST …/terminals/<name>/tickets (with the session's Bearer token) gives
 * a fresh one for each reconnect. A socket the server refuses after the upgrade gets an
 * `error` message and then one of the close codes below.
 *
 * - Binary frames carry raw terminal bytes, both ways (keystrokes in, output out). No JSON
 *   per keystroke.
 * - Text frames carry one JSON control message each (below). Unknown or malformed control
 *   messages are answered with an `error` message and otherwise ignored, up to a limit
 *   (MAX_MALFORMED, then 1008); pings and such draw on a budget (see below).
 *
 * Flow control (ttyd-style): the client counts output bytes handed to xterm.js whose write
 * callback has not fired yet; above HIGH_WATER it sends `pause`, below LOW_WATER `resume`.
 * The server also stops reading the shell while the socket's own send buffer is above
 * HIGH_WATER. Together they keep at most about 1 MB in flight.
 */

/** Largest frame either side may send; bigger frames close the socket with 1009. */
export const MAX_FRAME_BYTES = 64 * 1024;
export const HIGH_WATER = 512 * 1024;
export const LOW_WATER = 128 * 1024;

/**
 * What one socket's control messages may cost the server (ws-bridge.ts, terminal.ts).
 *
 * - A resize becomes an Engine API call: only the latest size is applied, unchanged sizes
 *   are skipped, at most one call per RESIZE_INTERVAL_MS and never two at once.
 * - Messages that get an answer (`ping`, WebSocket-level pings, malformed ones) draw on a
 *   token bucket of CONTROL_RATE per second, CONTROL_BURST deep. Beyond it they are
 *   ignored and count as debt; a debt over CONTROL_FLOOD_LIMIT closes the socket (1008).
 *   `resize`, `pause` and `resume` only set state (the latest wins), so they are never
 *   dropped: ignoring one would leave a wrong size or a stalled terminal.
 * - MAX_MALFORMED malformed messages close the socket (1008); the browser never sends one.
 * - No reply is queued while the socket holds more than REPLY_BUFFER_LIMIT unsent bytes
 *   (above what output flow control ever lets in flight); a socket still that full
 *   REPLY_STALL_MS after it first had to drop a reply is dropped.
 */
export const RESIZE_INTERVAL_MS = 100;
export const CONTROL_RATE = 20;
export const CONTROL_BURST = 40;
export const CONTROL_FLOOD_LIMIT = 100;
export const MAX_MALFORMED = 20;
export const REPLY_BUFFER_LIMIT = 2 * HIGH_WATER;
export const REPLY_STALL_MS = 10_000;
/** A socket closed for abuse that does not finish the closing handshake is cut after this. */
export const POLICY_CLOSE_GRACE_MS = 2_000;

/** WebSocket close codes we use (4000-4999 are ours). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** A request or socket the server will not serve: a malformed terminal name or query, too
   *  many malformed or control messages. Do not reconnect. */
  policy: 1008,
  tooBig: 1009,
  /** The server failed (the engine did not answer); a reconnect may work. */
  internal: 1011,
  /** The session ended (stopped, expired, reaped); do not reconnect. */
  sessionEnded: 4000,
  /** Missing, wrong, used or expired ticket (a fresh ticket may work; the session may be gone). */
  badToken: 4001,
  /** No such session or terminal. */
  notFound: 4004,
  /** Origin not allowed. */
  forbiddenOrigin: 4003,
  /** The shell exited; a reconnect starts a new shell. */
  shellExited: 4010,
  /** Another socket took over this terminal (same session opened in another tab). */
  replaced: 4011,
  /** The server is shutting down for good (its sessions end). */
  serverShutdown: 4012,
  /** The server is restarting (an upgrade): the session and its shells are kept. Reconnect,
   *  with the usual backoff, until it answers again; the same shells are there. */
  serverRestarting: 4013,
} as const;

export type ClientMessage =
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'ping'; t?: number };

export type ServerMessage =
  /** Sent first on every (re)attach; if `replay` is true, the binary frames that follow
   *  up to `replayed` repeat the recent output so a reconnecting client can reset its
   *  screen and redraw it. */
  | { type: 'attached'; terminal: string; replay: boolean; expiresAt: string }
  | { type: 'replayed' }
  | { type: 'exit'; code: number | null }
  | { type: 'expiring'; expiresAt: string }
  | { type: 'notice'; message: string }
  | { type: 'pong'; t?: number }
  | { type: 'error'; code: string; message: string };

/** Parse a client control message; returns null for anything that is not one. */
export function parseClientMessage(text: string): ClientMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const m = v as Record<string, unknown>;
  switch (m.type) {
    case 'resize': {
      const { cols, rows } = m;
      if (!isDim(cols) || !isDim(rows)) return null;
      return { type: 'resize', cols, rows };
    }
    case 'pause':
    case 'resume':
      return { type: m.type };
    case 'ping':
      return typeof m.t === 'number' ? { type: 'ping', t: m.t } : { type: 'ping' };
    default:
      return null;
  }
}

function isDim(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 1000;
}

/** Path of a terminal's WebSocket, relative to the site's origin. */
export function terminalPath(sessionId: string, name: string): string {
  return `/api/v1/sessions/${encodeURIComponent(sessionId)}/terminals/${encodeURIComponent(name)}`;
}
