/**
 * Test support (unit tests only): the app built on the fake runtime, no port, no engine.
 * `env` goes through the real config loader, so tests exercise its parsing too.
 */
import type { FastifyInstance } from 'fastify';
import type { LabDef } from '../../labs/schema.ts';
import { buildApp } from '../../server/src/app.ts';
import { loadConfig } from '../../server/src/config.ts';
import { Drain } from '../../server/src/ops/drain.ts';
import { Metrics } from '../../server/src/ops/metrics.ts';
import { EngineStatus } from '../../server/src/runtime/engine-status.ts';
import { FALLBACK_MAX_SESSIONS } from '../../server/src/sessions/limits.ts';
import { SessionManager, sessionLimits } from '../../server/src/sessions/session-manager.ts';
import { FakeRuntime } from './fake-runtime.ts';
import { testLab } from './test-lab.ts';

export async function testApp(
  opts: { env?: Record<string, string>; accessToken?: string; labs?: LabDef[] } = {},
): Promise<{
  app: FastifyInstance;
  runtime: FakeRuntime;
  sessions: SessionManager;
  shutdowns: () => number;
}> {
  const config = loadConfig({
    PORT: '0',
    CL_SITE_DIR: '/nonexistent',
    LOG_LEVEL: 'silent',
    CL_MAX_SESSIONS: '50',
    CL_MAX_SESSIONS_PER_CLIENT: '50',
    CL_CREATE_PER_MINUTE: '100',
    CL_POOL_SIZE: '0',
    ...opts.env,
  });
  const runtime = new FakeRuntime();
  const sessions = new SessionManager({
    runtime,
    labs: opts.labs ?? [testLab()],
    instance: 't',
    limits: sessionLimits(config, config.maxSessions === 'auto' ? FALLBACK_MAX_SESSIONS : config.maxSessions),
  });
  let shutdowns = 0;
  const ops = {
    metrics: new Metrics({ labs: [], mode: config.mode, defaultMetrics: false }),
    drain: new Drain(),
    // The admin API's final shutdown: counted, nothing exits.
    shutdown: () => {
      shutdowns++;
    },
  };
  // No cache: the tests switch the fake engine on and off between requests.
  const engine = new EngineStatus(runtime, { ttlMs: 0 });
  const app = await buildApp({ config, runtime, sessions, accessToken: opts.accessToken, ops, engine });
  return { app, runtime, sessions, shutdowns: () => shutdowns };
}
