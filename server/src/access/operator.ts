/**
 * Access to the operator's endpoints (/metrics, /api/v1/admin/*): a bearer token when
 * one is configured, else only direct loopback requests.
 *
 * WARNING: "loopback" is the socket's peer address, never req.ip, and a request carrying
 * any forwarding header is not local: behind a reverse proxy on the same machine every
 * request arrives from 127.0.0.1, and those requests come from the internet.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { bearer } from '../routes/common.ts';
import { sameSecret } from './access.ts';

const FORWARDING_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-host'];

export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a);
}

/** A request straight from this machine, not relayed by a proxy. */
export function isDirectLocal(
  req: Pick<FastifyRequest, 'headers'> & { socket: { remoteAddress?: string } },
): boolean {
  if (!isLoopbackAddress(req.socket.remoteAddress)) return false;
  return !FORWARDING_HEADERS.some((h) => req.headers[h] !== undefined);
}

/**
 * Throws unless the request may use an operator endpoint. `what` names it in the refusal;
 * `envName` is the variable that configures its token.
 */
export function assertOperator(
  req: Pick<FastifyRequest, 'headers'> & { socket: { remoteAddress?: string } },
  token: string | undefined,
  what: string,
  envName: string,
): void {
  if (token !== undefined) {
    if (!sameSecret(bearer(req), token)) {
      throw new AppError('bad_token', `${what} needs \`Authorization: Bearer <${envName}>\`.`);
    }
    return;
  }
  if (!isDirectLocal(req)) {
    throw new AppError(
      'forbidden',
      `${what} answers only direct requests from this machine; set ${envName} to allow others with a token.`,
    );
  }
}
