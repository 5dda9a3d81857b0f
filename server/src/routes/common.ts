/**
 * What every route module shares: the one id schema, the one bearer-token reader, input
 * parsing that turns a zod failure into our 400, and the public view of a session.
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LabId, SessionId, type SessionReply, TerminalName } from '../contract/rest.ts';
import { AppError } from '../errors.ts';
import type { Session } from '../sessions/session-manager.ts';
import { terminalPath } from '../terminal/protocol.ts';

export { SessionId, TerminalName };
export const SessionParams = z.object({ id: SessionId });
export const LabParams = z.object({ id: LabId });

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearer(req: Pick<FastifyRequest, 'headers'>): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

/** `schema.parse`, with the first problem as our 400 (`what` names the input). */
export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first?.path.length ? `${first.path.join('.')}: ` : '';
    throw new AppError('bad_request', `Invalid ${what}: ${where}${first?.message ?? 'malformed'}`);
  }
  return r.data;
}

/** A session as its reader sees it (never the token: that is sent once, at creation). */
export function sessionView(s: Session): SessionReply {
  return {
    id: s.id,
    lab: s.lab.id,
    createdAt: new Date(s.createdAt).toISOString(),
    expiresAt: new Date(s.expiresAt).toISOString(),
    terminals: s.lab.terminals.map((t) => ({
      name: t.name,
      title: t.title,
      url: terminalPath(s.id, t.name),
    })),
  };
}
