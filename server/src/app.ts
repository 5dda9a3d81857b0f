/**
 * Builds the HTTP app (API, terminal WebSockets, the built site) without listening, so
 * tests can drive it with `app.inject()` or on an ephemeral port. Routes are thin: they
 * validate input and call the session manager; errors map to responses in one handler.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyCompress from '@fastify/compress';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import {
  accessGuard,
  accessPolicy,
  COOKIE_PLUGIN_OPTIONS,
  GUESSES_PER_MINUTE,
  inviteLinkHook,
  loopbackHostGuard,
} from './access/access.ts';
import type { Config } from './config.ts';
import { AppError, ENGINE_HELP, type ErrorCode, statusOf } from './errors.ts';
import { inlineScriptHashes, securityHeaders } from './http/security-headers.ts';
import { labRoutes } from './routes/lab.ts';
import { drainGuard, type OpsDeps, operatorRoutes } from './routes/operator.ts';
import { EngineStatus } from './runtime/engine-status.ts';
import type { Runtime } from './runtime/runtime.ts';
import { clientKey } from './sessions/client-key.ts';
import { RateLimiter } from './sessions/limits.ts';
import type { SessionManager } from './sessions/session-manager.ts';
import { MAX_FRAME_BYTES } from './terminal/protocol.ts';

export interface AppDeps {
  config: Config;
  runtime: Runtime;
  sessions: SessionManager;
  /** Local mode: the token printed at start; every lab endpoint requires it. */
  accessToken?: string;
  /** Metrics, admin API and drain (server/src/ops/); main.ts passes them. */
  ops?: OpsDeps;
  /** The engine's cached state (main.ts shares it with the metrics); default: a new one. */
  engine?: EngineStatus;
}

/** Our code and message for a 4xx that Fastify or a plugin raised (by its error code). */
export function frameworkRefusal(
  code: string | undefined,
  status: number,
): { code: ErrorCode; message: string } {
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'body_too_large', message: 'The request body is too large (at most 16 KiB).' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        code: 'unsupported_media_type',
        message: 'Send a JSON body (Content-Type: application/json).',
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'bad_request', message: 'The JSON body is empty; send e.g. {"lab":"processes"}.' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code: 'bad_request', message: 'The body is not valid JSON.' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'bad_request', message: 'The Content-Length does not match the body.' };
    default:
      if (status === 413) return { code: 'body_too_large', message: 'The request is too large.' };
      if (status === 415) return { code: 'unsupported_media_type', message: 'Send a JSON body.' };
      return { code: 'bad_request', message: 'The server could not read this request.' };
  }
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, runtime, sessions, accessToken } = deps;
  const engine = deps.engine ?? new EngineStatus(runtime);
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
    const { statusCode: status, code } = err as { statusCode?: number; code?: string };
    if (status && status >= 400 && status < 500) {
      // The framework's own refusals, in our words (its messages name its internals).
      const ours = frameworkRefusal(code, status);
      req.log.info({ code, status }, 'request refused');
      return reply.code(ours.code === 'bad_request' ? status : statusOf(ours.code)).send({ error: ours });
    }
    req.log.error({ err }, 'unhandled error');
    return reply
      .code(500)
      .send({ error: { code: 'internal', message: 'Internal error; see the server log.' } });
  });

  // Security headers on every reply, first: refusals by any later hook carry them too. The
  // pages' CSP lists the build's inline scripts by hash, read once here (restart the server
  // after a new build).
  await app.register(securityHeaders, {
    scriptHashes: existsSync(config.siteDir) ? inlineScriptHashes(config.siteDir) : [],
  });
  // req.cookies and reply.setCookie, for the access cookie (access/access.ts).
  await app.register(fastifyCookie, COOKIE_PLUGIN_OPTIONS);

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

  // ---- Access, operations, the API ---------------------------------------------------
  // Every guard is a hook on the routes it guards (server/src/routes/lab.ts says why).

  const guesses = new RateLimiter(GUESSES_PER_MINUTE, Date.now);
  const accessOpts = {
    policy: access,
    guesses,
    clientKey: (req: FastifyRequest) => clientKey(req.ip),
    onRefused: (r: 'missing' | 'wrong' | 'guessing') => deps.ops?.metrics.accessRefused(r),
  };
  if (access.mode === 'local') app.addHook('onRequest', loopbackHostGuard());

  if (deps.ops) {
    const tokens = { metricsToken: config.metricsToken, adminToken: config.adminToken };
    const status = async () => {
      const state = await engine.current();
      return {
        mode: config.mode,
        access: access.mode,
        engine: {
          ...state,
          checkedAt: new Date(state.checkedAt).toISOString(),
          ...(state.reachable ? {} : { help: ENGINE_HELP }),
        },
        sessions: sessions.count,
        maxSessions: sessions.maxSessions,
        pool: sessions.poolStats(),
        labs: sessions.labs.size,
      };
    };
    await app.register(operatorRoutes, { ...deps.ops, sessions, runtime, status, ...tokens });
  }

  // Public: whether labs can start here, nothing about the engine (operators read that at
  // /api/v1/admin/status). The engine's state is cached (runtime/engine-status.ts).
  app.get('/api/v1/health', async (_req, reply) => {
    const state = await engine.current();
    const draining = deps.ops?.drain.active ?? false;
    const available = state.reachable && !draining;
    reply.header('cache-control', 'no-store');
    return {
      status: 'ok',
      labs: available
        ? { available }
        : {
            available,
            help: draining ? 'This lab server is shutting down; try again in a minute.' : ENGINE_HELP,
          },
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

  await app.register(labRoutes, {
    config,
    runtime,
    sessions,
    accessGuard: accessGuard(accessOpts),
    drainGuard: deps.ops ? drainGuard(deps.ops) : undefined,
    clientKey,
  });

  // Unknown API paths answer JSON, not the site's 404 page.
  app.all('/api/*', async (req) => {
    throw new AppError('not_found', `No API route ${req.method} ${req.url.split('?')[0]}.`);
  });

  // ---- The site ----------------------------------------------------------------------

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
    const notFound = join(config.siteDir, '404.html');
    app.setNotFoundHandler((_req, reply) => {
      if (existsSync(notFound)) return reply.code(404).type('text/html').sendFile('404.html');
      return reply.code(404).send({ error: { code: 'not_found', message: 'Not found.' } });
    });
  } else {
    app.log.warn({ siteDir: config.siteDir }, 'no built site: run `npm run build`; serving the API only');
  }
  // The site's pages in a context of their own, with the invite-link hook on them.
  await app.register(async (site) => {
    site.addHook('onRequest', inviteLinkHook(accessOpts));
    if (existsSync(config.siteDir)) {
      await site.register(fastifyStatic, {
        root: config.siteDir,
        redirect: true,
        index: ['index.html'],
        wildcard: true,
      });
    } else {
      site.get('/*', async (req, reply) => {
        if (req.url.split('?')[0] !== '/')
          throw new AppError('not_found', 'Not found (the site is not built).');
        return reply
          .type('text/plain')
          .send('Container Labs API. The site is not built: run `npm run build`.\n');
      });
    }
  });

  return app;
}
