/**
 * The lab context: every route that reaches a sandbox (sessions, terminals, inspection)
 * lives in this one encapsulated plugin, and the checks that guard them are hooks of this
 * context. Fastify runs a context's hooks for the routes the router matched in it, however
 * the request spelled its path (`/api/v1/%73essions` is matched as `/api/v1/sessions`, and
 * so meets the same guard): no guard here ever reads the URL text.
 */
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import type { Config } from '../config.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { SessionManager } from '../sessions/session-manager.ts';
import { inspectRoutes } from './inspect.ts';
import { sessionRoutes } from './sessions.ts';
import { terminalRoutes } from './terminals.ts';

export interface LabRoutesOptions {
  config: Config;
  runtime: Runtime;
  sessions: SessionManager;
  /** The access check (code and local modes): runs first on every lab route. */
  accessGuard: onRequestAsyncHookHandler;
  drainGuard?: onRequestAsyncHookHandler;
  clientKey(ip: string): string;
}

export async function labRoutes(app: FastifyInstance, opts: LabRoutesOptions): Promise<void> {
  app.addHook('onRequest', opts.accessGuard);
  // Replies carry session tokens and a reader's sandbox details: never cached, anywhere.
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('cache-control', 'no-store');
    return payload;
  });
  await app.register(sessionRoutes, {
    sessions: opts.sessions,
    drainGuard: opts.drainGuard,
    clientKey: opts.clientKey,
  });
  await app.register(terminalRoutes, { sessions: opts.sessions, config: opts.config });
  await app.register(inspectRoutes, { runtime: opts.runtime, sessions: opts.sessions });
}
