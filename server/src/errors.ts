/**
 * Typed errors with a code. The HTTP status and WebSocket close code of each code are
 * decided here and nowhere else.
 */
import { CloseCode } from './terminal/protocol.ts';

export type ErrorCode =
  | 'bad_request'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'bad_token'
  | 'forbidden'
  | 'unknown_lab'
  | 'not_found'
  | 'engine_unavailable'
  | 'image_missing'
  | 'out_of_capacity'
  | 'rate_limited'
  | 'session_ended'
  | 'internal';

const httpStatus: Record<ErrorCode, number> = {
  bad_request: 400,
  body_too_large: 413,
  unsupported_media_type: 415,
  bad_token: 401,
  forbidden: 403,
  unknown_lab: 404,
  not_found: 404,
  session_ended: 410,
  engine_unavailable: 503,
  image_missing: 503,
  out_of_capacity: 503,
  rate_limited: 429,
  internal: 500,
};

export class AppError extends Error {
  readonly code: ErrorCode;
  /** Seconds after which a retry may succeed (sent as Retry-After). */
  readonly retryAfter: number | undefined;
  constructor(code: ErrorCode, message: string, opts: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.retryAfter = opts.retryAfter;
  }
  get status(): number {
    return httpStatus[this.code];
  }
}

export function statusOf(code: ErrorCode): number {
  return httpStatus[code];
}

/**
 * The close code a terminal socket gets when the error ends it after the upgrade (a browser
 * cannot read the HTTP status of a refused upgrade, so refusals that a page must explain
 * are sent this way: server/src/terminal/protocol.ts lists the codes).
 */
export function closeCodeOf(code: ErrorCode): number {
  switch (code) {
    case 'bad_token':
      return CloseCode.badToken;
    case 'forbidden':
      return CloseCode.forbiddenOrigin;
    case 'not_found':
    case 'unknown_lab':
      return CloseCode.notFound;
    case 'session_ended':
      return CloseCode.sessionEnded;
    case 'bad_request':
    case 'body_too_large':
    case 'unsupported_media_type':
      return CloseCode.policy;
    default:
      return CloseCode.internal;
  }
}

export const ENGINE_HELP =
  'Live labs need a Docker engine. On Debian/Ubuntu as root: `./run.sh start` installs and starts one; ' +
  'elsewhere install Docker, make sure `docker info` works for this user (or set DOCKER_HOST), then ' +
  'run `npm run images` and restart the server. Until then each lab plays a recording.';
