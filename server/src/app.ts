/**
 * Builds the HTTP app (API, terminal WebSockets, the built site) without listening, so
 * tests can drive it with `app.inject()` or on an ephemeral port. Routes are thin: they
 * validate input and call the session manager; errors map to responses in one handler.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyCompress from '@fastify/compress';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { accessPlugin, accessPolicy } from './access/access.ts';
import type { Config } from './config.ts';
import { AppError, ENGINE_HELP } from './errors.ts';
import { COMMON_HEADERS, contentSecurityPolicy, inlineScriptHashes } from './http/security-headers.ts';
import { inspectRoutes } from './inspect/routes.ts';
import { type OpsDeps, opsPlugin } from './ops/plugin.ts';
import type { Runtime } from './runtime/runtime.ts';
import type { Session, SessionManager } from './sessions/session-manager.ts';
import { CloseCode, MAX_FRAME_BYTES, terminalPath } from './terminal/protocol.ts';
import { bridge } from './terminal/ws-bridge.ts';

export interface AppDeps {
  config: Config;
  runtime: Runtime;
  sessions: SessionManager;
  /** Local mode: the token printed at start; every lab endpoint requires it. */
  accessToken?: string;
  /** Metrics, admin API and drain (server/src/ops/); main.ts passes them. */
  ops?: OpsDeps;
}

const CreateBody = z.object({ lab: z.string().min(1).max(64) }).strict();
const IdParams = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{10,64}$/) });
const TerminalParams = IdParams.extend({ name: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/) });
const TerminalQuery = z.object({
  token: z.string().max(128).optional(),
  cols: z.coerce.number().int().min(1).max(1000).default(80),
  rows: z.coerce.number().int().min(1).max(1000).default(24),
});

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, runtime, sessions, accessToken } = deps;
  const access = accessPolicy(config, accessToken);
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Never log tokens: drop query strings and the Authorization header.
      serializers: {
        req: (req: { method: string; url: string; ip?: string }) => ({
          method: req.method,
          url: req.url.split('?')[0],
          ip: req.ip,
        }),
      },
    },
    trustProxy: config.trustProxy,
    bodyLimit: 16 * 1024,
    // Slow clients (slowloris) may not hold a socket open forever.
    connectionTimeout: 30_000,
    requestTimeout: 15_000,
    keepAliveTimeout: 5_000,
    return503OnClosing: true,
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof AppError) {
      if (err.status >= 500) req.log.warn({ code: err.code, cause: String(err.cause ?? '') }, err.message);
      if (err.retryAfter !== undefined) reply.header('Retry-After', String(err.retryAfter));
      return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
    }
    const { statusCode: status, message } = err as { statusCode?: number; message?: string };
    if (status && status >= 400 && status < 500) {
      return reply.code(status).send({ error: { code: 'bad_request', message: message ?? 'Bad request.' } });
    }
    req.log.error({ err }, 'unhandled error');
    return reply
      .code(500)
      .send({ error: { code: 'internal', message: 'Internal error; see the server log.' } });
  });

  await app.register(fastifyWebsocket, {
    options: { maxPayload: MAX_FRAME_BYTES },
    // A protocol error or reset is the client's doing (a frame over 64 KiB: 1009, text that
    // is not UTF-8: 1007): warn. The plugin's default logs every socket error at error level
    // with a stack trace, which any anonymous client could then produce at will.
    errorHandler: (err, socket, req) => {
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('WS_ERR_') || code === 'ECONNRESET' || code === 'EPIPE') {
        req.log.warn({ code, err: err.message }, 'terminal socket error');
      } else {
        req.log.error({ err }, 'terminal socket error');
      }
      socket.terminate();
    },
  });

  const bearer = (req: FastifyRequest): string | undefined => {
    const h = req.headers.authorization;
    if (!h) return undefined;
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    return m?.[1];
  };

  const parse = <T>(schema: z.ZodType<T>, value: unknown, what: string): T => {
    const r = schema.safeParse(value);
    if (!r.success) {
      const first = r.error.issues[0];
      const where = first?.path.length ? `${first.path.join('.')}: ` : '';
      throw new AppError('bad_request', `Invalid ${what}: ${where}${first?.message ?? 'malformed'}`);
    }
    return r.data;
  };

  const sessionView = (s: Session) => ({
    id: s.id,
    lab: s.lab.id,
    createdAt: new Date(s.createdAt).toISOString(),
    expiresAt: new Date(s.expiresAt).toISOString(),
    terminals: s.lab.terminals.map((t) => ({
      name: t.name,
      title: t.title,
      url: terminalPath(s.id, t.name),
    })),
  });

  // ---- Access (code and local modes) and operations: server/src/access/, server/src/ops/

  await app.register(accessPlugin, { policy: access, onRefused: (r) => deps.ops?.metrics.accessRefused(r) });
  if (deps.ops) {
    const tokens = { metricsToken: config.metricsToken, adminToken: config.adminToken };
    await app.register(opsPlugin, { ...deps.ops, sessions, runtime, ...tokens });
  }

  // ---- API ---------------------------------------------------------------------------

  app.get('/api/v1/health', async () => {
    const engine = await runtime.info();
    return {
      status: 'ok',
      mode: config.mode,
      access: access.mode,
      engine: engine.reachable ? engine : { ...engine, help: ENGINE_HELP },
      sessions: sessions.count,
      pool: sessions.poolStats(),
      labs: sessions.labs.size,
    };
  });

  app.get('/api/v1/labs', async () => ({
    labs: [...sessions.labs.values()].map((l) => ({
      id: l.id,
      title: l.title,
      description: l.description,
      terminals: l.terminals.map((t) => ({ name: t.name, title: t.title, target: t.target })),
      checks: l.checks.map((c) => ({
        id: c.id,
        kind: c.kind,
        title: c.title,
        prompt: 'prompt' in c ? c.prompt : undefined,
      })),
    })),
  }));

  app.post('/api/v1/sessions', async (req, reply) => {
    if (!req.body || typeof req.body !== 'object') {
      throw new AppError('bad_request', 'Send a JSON body like {"lab":"processes"}.');
    }
    const body = parse(CreateBody, req.body, 'request body');
    const { session, token } = await sessions.create(body.lab, req.ip);
    return reply.code(201).send({ ...sessionView(session), token });
  });

  app.get('/api/v1/sessions/:id', async (req) => {
    const { id } = parse(IdParams, req.params, 'session id');
    return sessionView(sessions.authorize(id, bearer(req)));
  });

  app.post('/api/v1/sessions/:id/extend', async (req) => {
    const { id } = parse(IdParams, req.params, 'session id');
    const s = sessions.authorize(id, bearer(req));
    sessions.extend(s);
    return sessionView(s);
  });

  app.delete('/api/v1/sessions/:id', async (req, reply) => {
    const { id } = parse(IdParams, req.params, 'session id');
    const s = sessions.authorize(id, bearer(req));
    await sessions.remove(s, 'stopped');
    return reply.code(204).send();
  });

  await app.register(inspectRoutes, { runtime, sessions, bearer });

  // ---- Terminals ---------------------------------------------------------------------

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
      },
    },
    async (socket, req) => {
      const { id, name } = TerminalParams.parse(req.params);
      const q = TerminalQuery.parse(req.query);
      let s: Session;
      try {
        s = sessions.authorize(id, q.token);
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

  // Unknown API paths answer JSON, not the site's 404 page.
  app.all('/api/*', async (req) => {
    throw new AppError('not_found', `No API route ${req.method} ${req.url.split('?')[0]}.`);
  });

  // ---- The site ----------------------------------------------------------------------

  // Security headers on every reply; the CSP on pages (it lists the build's inline scripts
  // by hash, read once here: restart the server after a new build).
  const csp = contentSecurityPolicy(existsSync(config.siteDir) ? inlineScriptHashes(config.siteDir) : []);
  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(COMMON_HEADERS)) reply.header(k, v);
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('text/html'))
      reply.header('content-security-policy', csp);
    return payload;
  });

  if (existsSync(config.siteDir)) {
    // Lesson pages are mostly text and CSS: gzip/brotli take a lesson from ~300 KiB to
    // ~80 KiB on the wire (Lighthouse mobile 95 → 100 in bench/). Terminal sockets are
    // untouched (compression applies to HTTP replies only).
    await app.register(fastifyCompress, { global: true, threshold: 1024 });
    // WARNING: Pagefind's index files (*.pagefind, *.pf_*) are gzip already and served as
    // application/octet-stream, which the plugin treats as compressible: it answered them
    // with `content-encoding: br` over the unchanged bytes, and search broke. Its documented
    // per-request opt-out is the x-no-compression request header.
    app.addHook('onRequest', async (req) => {
      if (/\.(pagefind|pf_[a-z]+)$/.test(req.url.split('?')[0]!)) req.headers['x-no-compression'] = '1';
    });
    await app.register(fastifyStatic, {
      root: config.siteDir,
      redirect: true,
      index: ['index.html'],
      wildcard: true,
    });
    const notFound = join(config.siteDir, '404.html');
    app.setNotFoundHandler((_req, reply) => {
      if (existsSync(notFound)) return reply.code(404).type('text/html').sendFile('404.html');
      return reply.code(404).send({ error: { code: 'not_found', message: 'Not found.' } });
    });
  } else {
    app.log.warn({ siteDir: config.siteDir }, 'no built site: run `npm run build`; serving the API only');
    app.get('/', async (_req, reply) =>
      reply.type('text/plain').send('Container Labs API. The site is not built: run `npm run build`.\n'),
    );
  }

  return app;
}
