/**
 * The session API: start a lab, read, extend and end a session. Registered inside the lab
 * context (routes/lab.ts), whose hooks have already checked the access code.
 *
 *   POST   /api/v1/sessions               {"lab"} → 201 the session, its token, a first
 *                                          ticket per terminal
 *   GET    /api/v1/sessions/:id           Bearer → the session
 *   POST   /api/v1/sessions/:id/extend    Bearer → the session with a later expiry
 *   DELETE /api/v1/sessions/:id           Bearer → 204 once its lab host is gone
 *   POST   /api/v1/labs/:id/hint          no body → 202 {"counted"}: a lesson page shows
 *                                          the lab, so a Start may follow (warm-pool.ts)
 */
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import { type CreatedSessionReply, CreateSessionBody, type HintReply } from '../contract/rest.ts';
import { AppError } from '../errors.ts';
import type { SessionManager } from '../sessions/session-manager.ts';
import { bearer, LabParams, parse, SessionParams, sessionView } from './common.ts';

export interface SessionRoutesOptions {
  sessions: SessionManager;
  /** Refuses new sessions while the server drains (a hook on the create route only). */
  drainGuard?: onRequestAsyncHookHandler;
  /** The per-client key of a request (quotas and rates). */
  clientKey(ip: string): string;
}

export async function sessionRoutes(app: FastifyInstance, opts: SessionRoutesOptions): Promise<void> {
  const { sessions } = opts;

  app.post(
    '/api/v1/sessions',
    { onRequest: opts.drainGuard ? [opts.drainGuard] : [] },
    async (req, reply) => {
      if (!req.body || typeof req.body !== 'object') {
        throw new AppError('bad_request', 'Send a JSON body like {"lab":"processes"}.');
      }
      const body = parse(CreateSessionBody, req.body, 'request body');
      const { session, token } = await sessions.create(body.lab, opts.clientKey(req.ip));
      const view = sessionView(session);
      // Each terminal comes with a first ticket, so a Start is one POST and one socket.
      const terminals = view.terminals.map((t) => ({
        ...t,
        ticket: sessions.ticket(session, t.name).ticket,
      }));
      return reply.code(201).send({ ...view, terminals, token } satisfies CreatedSessionReply);
    },
  );

  // Behind the drain guard too: a server going away makes no spares.
  app.post(
    '/api/v1/labs/:id/hint',
    { onRequest: opts.drainGuard ? [opts.drainGuard] : [] },
    async (req, reply) => {
      const { id } = parse(LabParams, req.params, 'lab id');
      const counted = sessions.hint(id, opts.clientKey(req.ip));
      return reply.code(202).send({ counted } satisfies HintReply);
    },
  );

  app.get('/api/v1/sessions/:id', async (req) => {
    const { id } = parse(SessionParams, req.params, 'session id');
    return sessionView(sessions.authorize(id, bearer(req)));
  });

  app.post('/api/v1/sessions/:id/extend', async (req) => {
    const { id } = parse(SessionParams, req.params, 'session id');
    const s = sessions.authorize(id, bearer(req));
    await sessions.extend(s);
    return sessionView(s);
  });

  app.delete('/api/v1/sessions/:id', async (req, reply) => {
    const { id } = parse(SessionParams, req.params, 'session id');
    const s = sessions.authorize(id, bearer(req));
    await sessions.remove(s, 'stopped');
    return reply.code(204).send();
  });
}
