/**
 * Terminal WebSockets: `GET /api/v1/sessions/:id/terminals/:name` upgraded, bridged to the
 * session's shell (terminal/ws-bridge.ts). Registered inside the lab context (routes/lab.ts),
 * whose hooks have already checked the access code.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { Session, SessionManager } from '../sessions/session-manager.ts';
import { CloseCode } from '../terminal/protocol.ts';
import { bridge } from '../terminal/ws-bridge.ts';
import { parse, SessionId, TerminalName } from './common.ts';

const TerminalParams = z.object({ id: SessionId, name: TerminalName });
const TerminalQuery = z.object({
  token: z.string().max(128).optional(),
  cols: z.coerce.number().int().min(1).max(1000).default(80),
  rows: z.coerce.number().int().min(1).max(1000).default(24),
});

export interface TerminalRoutesOptions {
  sessions: SessionManager;
  config: Pick<Config, 'trustProxy' | 'allowedOrigins'>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the terminal route's checks before the upgrade: the session it opens. */
    terminalSession?: Session;
  }
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

  app.get(
    '/api/v1/sessions/:id/terminals/:name',
    {
      websocket: true,
      preValidation: async (req) => {
        const origin = req.headers.origin;
        if (origin && !ownOrigins(req).includes(origin) && !config.allowedOrigins.includes(origin)) {
          req.log.warn({ origin }, 'terminal refused: foreign origin');
          throw new AppError('forbidden', 'This origin may not open terminals.');
        }
        const { id, name } = parse(TerminalParams, req.params, 'terminal');
        const q = parse(TerminalQuery, req.query, 'query');
        const s = sessions.authorize(id, q.token);
        if (!s.lab.terminals.some((t) => t.name === name)) {
          throw new AppError('not_found', `Lab "${s.lab.id}" has no terminal "${name}".`);
        }
        req.terminalSession = s;
      },
    },
    async (socket, req) => {
      const { name } = TerminalParams.parse(req.params);
      const q = TerminalQuery.parse(req.query);
      const s = req.terminalSession!;
      try {
        const term = await sessions.terminal(s, name, { cols: q.cols, rows: q.rows });
        if (socket.readyState !== socket.OPEN) return;
        bridge(socket, term, req.log);
      } catch (err) {
        const e =
          err instanceof AppError
            ? err
            : new AppError('internal', 'Could not open the terminal.', { cause: err });
        req.log.warn({ code: e.code, cause: String(e.cause ?? '') }, `terminal refused: ${e.message}`);
        if (socket.readyState === socket.OPEN) {
          socket.send(JSON.stringify({ type: 'error', code: e.code, message: e.message }));
          const code = e.code === 'session_ended' || e.code === 'not_found' ? CloseCode.sessionEnded : 1011;
          socket.close(code, e.message.slice(0, 120));
        }
      }
    },
  );
}
