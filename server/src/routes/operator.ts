/**
 * The operator's routes, registered by app.ts in one line (each checks the operator's
 * token, or a direct loopback request, on the route the router matched):
 *   GET /metrics                          Prometheus text (CL_METRICS_TOKEN, else loopback)
 *   GET /api/v1/admin/status              mode, engine, sessions, pool (CL_ADMIN_TOKEN, else loopback)
 *   GET/DELETE /api/v1/admin/sessions…    the admin API (CL_ADMIN_TOKEN, else loopback)
 *   POST /api/v1/admin/shutdown           a final shutdown: every session ends (4012), then exit
 * and the drain's guard, which the session routes put on their create route.
 */
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import { assertOperator } from '../access/operator.ts';
import { AppError } from '../errors.ts';
import { type AdminSession, labHostResources } from '../ops/admin.ts';
import type { Drain } from '../ops/drain.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { SessionManager } from '../sessions/session-manager.ts';
import { parse, SessionParams } from './common.ts';

export interface OpsDeps {
  metrics: Metrics;
  drain: Drain;
  /** A final shutdown (POST /api/v1/admin/shutdown): every session ends, then the process exits. */
  shutdown?: () => void;
}

export interface OperatorRoutesOptions extends OpsDeps {
  sessions: SessionManager;
  runtime: Runtime;
  metricsToken: string | undefined;
  adminToken: string | undefined;
  /** What GET /api/v1/admin/status answers (mode, engine, sessions, pool). */
  status(): Promise<Record<string, unknown>>;
  now?: () => number;
}

export async function operatorRoutes(app: FastifyInstance, opts: OperatorRoutesOptions): Promise<void> {
  const { metrics, drain, sessions, runtime } = opts;
  const now = opts.now ?? Date.now;

  app.get('/metrics', async (req, reply) => {
    assertOperator(req, opts.metricsToken, '/metrics', 'CL_METRICS_TOKEN');
    const text = await metrics.text();
    return reply.header('cache-control', 'no-store').type(metrics.contentType).send(text);
  });

  app.get('/api/v1/admin/status', async (req, reply) => {
    assertOperator(req, opts.adminToken, 'The admin API', 'CL_ADMIN_TOKEN');
    reply.header('cache-control', 'no-store');
    return { ...(await opts.status()), draining: drain.active };
  });

  app.get('/api/v1/admin/sessions', async (req) => {
    assertOperator(req, opts.adminToken, 'The admin API', 'CL_ADMIN_TOKEN');
    const t = now();
    const list: AdminSession[] = await Promise.all(
      sessions.list().map(async (s) => ({
        id: s.id,
        lab: s.lab.id,
        client: s.clientKey,
        createdAt: new Date(s.createdAt).toISOString(),
        expiresAt: new Date(s.expiresAt).toISOString(),
        ageSeconds: Math.round((t - s.createdAt) / 1000),
        idleSeconds: Math.round((t - s.lastActivityAt) / 1000),
        terminals: { attached: s.attachedCount, open: s.terminals.size },
        resources: s.hostId ? await labHostResources(runtime, s.hostId) : { error: 'starting' },
      })),
    );
    return { sessions: list, pool: sessions.poolStats(), draining: drain.active };
  });

  app.post('/api/v1/admin/shutdown', async (req, reply) => {
    assertOperator(req, opts.adminToken, 'The admin API', 'CL_ADMIN_TOKEN');
    if (!opts.shutdown)
      throw new AppError('not_found', 'This server cannot be shut down from the admin API.');
    req.log.warn({ sessions: sessions.count }, 'final shutdown asked for by the admin');
    // Answered first: the shutdown closes the server, this connection too.
    reply.code(202).send({ sessions: sessions.count, draining: true });
    setImmediate(() => opts.shutdown?.());
    return reply;
  });

  app.delete('/api/v1/admin/sessions/:id', async (req, reply) => {
    assertOperator(req, opts.adminToken, 'The admin API', 'CL_ADMIN_TOKEN');
    const { id } = parse(SessionParams, req.params, 'session id');
    const s = sessions.list().find((x) => x.id === id);
    if (!s) throw new AppError('not_found', 'No such session (it may have ended).');
    req.log.info({ session: s.id, lab: s.lab.id }, 'session ended by the admin');
    await sessions.remove(s, 'admin');
    return reply.code(204).send();
  });
}
/** Refuses a new session while the server drains (503 + Retry-After); a route hook. */
export function drainGuard(deps: OpsDeps): onRequestAsyncHookHandler {
  return async () => {
    if (!deps.drain.active) return;
    deps.metrics.refused('draining');
    throw new AppError('out_of_capacity', 'This lab server is shutting down; try again in a minute.', {
      retryAfter: deps.drain.retryAfterSeconds(),
    });
  };
}
