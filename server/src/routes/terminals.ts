/**
 * Terminals. Registered inside the lab context (routes/lab.ts), whose hooks have already
 * checked the access code.
 *
 *   POST /api/v1/sessions/:id/terminals/:name/tickets   Bearer → 201 {ticket, expiresAt}
 *   GET  /api/v1/sessions/:id/terminals/:name?ticket=…  WebSocket, bridged to the shell
 *
 * A socket authenticates with a single-use ticket valid for 30 s, never with the session
 * token (a URL ends up in logs and histories). Refusals after the access check happen after
 * the upgrade, as an `error` message and a close code (errors.ts closeCodeOf): a browser
 * cannot read the status of a refused upgrade, only a close code, and each refusal has its
 * own message on the page (server/src/terminal/protocol.ts lists the codes).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { TicketReply } from '../contract/rest.ts';
import { AppError, closeCodeOf } from '../errors.ts';
import type { SessionManager } from '../sessions/session-manager.ts';
import { bridge } from '../terminal/ws-bridge.ts';
import { bearer, parse, SessionId, TerminalName } from './common.ts';

const TerminalParams = z.object({ id: SessionId, name: TerminalName });
const TerminalQuery = z.object({
  ticket: z.string().max(128).optional(),
  cols: z.coerce.number().int().min(1).max(1000).default(80),
  rows: z.coerce.number().int().min(1).max(1000).default(24),
});

export interface TerminalRoutesOptions {
  sessions: SessionManager;
  config: Pick<Config, 'trustProxy' | 'allowedOrigins'>;
}

export async function terminalRoutes(app: FastifyInstance, opts: TerminalRoutesOptions): Promise<void> {
  const { sessions, config } = opts;

  const ownOrigins = (req: FastifyRequest): string[] => {
    const host = req.headers.host;
    const own = host ? [`http://${host}`, `https://${host}`] : [];
    // Behind a trusted proxy the public origin is in X-Forwarded-Proto/-Host.
    if (config.trustProxy) own.push(`${req.protocol}://${req.host}`);
    return own;
  };

  app.post('/api/v1/sessions/:id/terminals/:name/tickets', async (req, reply) => {
    const { id, name } = parse(TerminalParams, req.params, 'terminal');
    const s = sessions.authorize(id, bearer(req));
    const t = sessions.ticket(s, name);
    return reply
      .code(201)
      .send({ ticket: t.ticket, expiresAt: new Date(t.expiresAt).toISOString() } satisfies TicketReply);
  });

  const refuse = (socket: WebSocket, req: FastifyRequest, e: AppError) => {
    req.log.warn(
      { code: e.code, cause: e.cause ? String(e.cause) : undefined },
      `terminal refused: ${e.message}`,
    );
    if (socket.readyState !== socket.OPEN) return;
    socket.send(JSON.stringify({ type: 'error', code: e.code, message: e.message }));
    socket.close(closeCodeOf(e.code), e.message.slice(0, 120));
  };

  app.get('/api/v1/sessions/:id/terminals/:name', { websocket: true }, async (socket, req) => {
    try {
      const origin = req.headers.origin;
      if (origin && !ownOrigins(req).includes(origin) && !config.allowedOrigins.includes(origin)) {
        req.log.warn({ origin: origin.slice(0, 200) }, 'terminal refused: foreign origin');
        throw new AppError(
          'forbidden',
          'Terminals open only from this course site, not from another origin.',
        );
      }
      const { id, name } = parse(TerminalParams, req.params, 'terminal');
      const q = parse(TerminalQuery, req.query, 'query');
      // The one authorisation of this socket: the ticket is used up here.
      const s = sessions.redeem(id, name, q.ticket);
      const term = await sessions.terminal(s, name, { cols: q.cols, rows: q.rows });
      if (socket.readyState !== socket.OPEN) return;
      bridge(socket, term, req.log);
    } catch (err) {
      refuse(
        socket,
        req,
        err instanceof AppError
          ? err
          : new AppError('internal', 'Could not open the terminal.', { cause: err }),
      );
    }
  });
}
