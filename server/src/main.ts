/**
 * Composition root: config → labs → runtime → session manager → app → listen. Also the
 * scheduler (reaper) and graceful shutdown. Everything is wired here and passed in.
 */

import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { loadLabs } from '../../labs/load.ts';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { Drain, RESTART_NOTICE } from './ops/drain.ts';
import { selectLabs } from './ops/lab-selection.ts';
import { countingRuntime, Metrics } from './ops/metrics.ts';
import { type ApparmorCheck, decideApparmor } from './runtime/docker/apparmor.ts';
import { DockerRuntime } from './runtime/docker/docker-runtime.ts';
import { EngineStatus } from './runtime/engine-status.ts';
import { localRuntime } from './runtime/local/local-runtime.ts';
import type { Runtime } from './runtime/runtime.ts';
import { autoMaxSessions } from './sessions/limits.ts';
import { SessionManager, sessionLimits } from './sessions/session-manager.ts';
import type { SessionStore } from './store/session-store.ts';
import { SqliteSessionStore } from './store/sqlite-store.ts';
import { CloseCode } from './terminal/protocol.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let labs: Awaited<ReturnType<typeof loadLabs>>;
  try {
    config = loadConfig();
    labs = selectLabs(await loadLabs(), config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }

  const metrics = new Metrics({ labs: labs.map((l) => l.id), mode: config.mode });
  const drain = new Drain();
  // Set once everything is wired (below); the admin API's final shutdown calls it.
  let stop: (signal: string, how: 'restart' | 'end') => Promise<void> = async () => {};
  const docker = new DockerRuntime({
    apparmorProfile: config.apparmorProfile,
    labUids: config.labUids,
    callTimeoutMs: config.engineTimeoutMs,
  });
  const counted = countingRuntime(docker, metrics);
  // Local mode (a runtime chosen here, once): the `host` terminal is the learner's own
  // shell, behind a token printed at start.
  let runtime: Runtime = counted;
  let accessToken: string | undefined;
  if (config.mode === 'local') {
    const { openHostShell } = await import('./runtime/local/host-shell.ts');
    const shell = { shell: process.env.SHELL || '/bin/bash', cwd: homedir(), env: { ...process.env } };
    runtime = localRuntime(counted, (size) => openHostShell(shell, size));
    accessToken = randomBytes(16).toString('base64url');
  }
  const engineStatus = new EngineStatus(runtime);
  let store: SessionStore;
  try {
    store = new SqliteSessionStore(config.dataDir);
  } catch (err) {
    console.error(
      `cannot open the session store in CL_DATA_DIR=${config.dataDir}: ${(err as Error).message}`,
    );
    process.exit(2);
  }
  let log: { info: (o: object, m: string) => void } = { info: () => {} };
  // Asked once before anything else: CL_MAX_SESSIONS=auto sizes itself by the engine's machine.
  const engine = await engineStatus.refresh();
  const maxSessions = config.maxSessions === 'auto' ? autoMaxSessions(engine, labs) : config.maxSessions;
  const sessions = new SessionManager({
    runtime,
    labs,
    instance: config.instance,
    store,
    limits: sessionLimits(config, maxSessions),
    events: {
      event: (name, fields) => {
        metrics.onEvent(name, fields);
        log.info({ event: name, ...fields }, name);
      },
    },
  });
  const app = await buildApp({
    config,
    runtime,
    sessions,
    accessToken,
    ops: { metrics, drain, shutdown: () => void stop('admin', 'end') },
    engine: engineStatus,
  });
  log = app.log;
  metrics.bind({
    sessionCount: () => sessions.count,
    poolReady: () => sessions.poolStats().ready,
    engineUp: async () => (await engineStatus.current()).reachable,
    draining: () => drain.active,
  });

  app.log.info(
    { maxSessions, setting: config.maxSessions, engineMemory: engine.memoryBytes, engineCpus: engine.cpus },
    'sessions at once (CL_MAX_SESSIONS)',
  );
  if (engine.reachable) {
    app.log.info({ engine: engine.version, cgroup: engine.cgroupVersion }, 'docker engine reachable');
    // AppArmor (issue 11): where the engine applies it, lab hosts run under an enforcing
    // profile, or in open and code modes the server does not start at all.
    const lab = labs[0];
    const check: ApparmorCheck = lab
      ? await docker
          .checkApparmor(lab, config.instance)
          .catch((err: Error) => ({ engineApparmor: Boolean(engine.apparmor), detail: err.message }))
      : { engineApparmor: Boolean(engine.apparmor), detail: 'no lab enabled' };
    const apparmor = decideApparmor(config.mode, check);
    if (apparmor.action === 'refuse') {
      app.log.error({ apparmor: check }, 'refusing to start: AppArmor');
      console.error(apparmor.message);
      process.exit(2);
    }
    docker.pinApparmorProfile(apparmor.profile);
    if (apparmor.warn) app.log.warn({ apparmor: check }, apparmor.note);
    else app.log.info({ apparmor: check }, apparmor.note);
    // Local mode is the user's own machine: tell them on the console too.
    if (config.mode === 'local' && apparmor.warn) console.log(`AppArmor: ${apparmor.note}`);
    // Before listening: a reader whose page reconnects first thing finds the session back.
    const r = await sessions.restore();
    if (r && (r.adopted > 0 || r.removed > 0 || r.dropped > 0))
      app.log.info(
        r,
        `took back ${r.adopted} session(s) of an earlier run, removed ${r.removed} leftover lab host(s)`,
      );
    sessions.watchHosts();
    sessions.startPool();
  } else {
    app.log.warn(
      { error: engine.error },
      'no docker engine: the site works, labs answer 503 until one is reachable (its AppArmor is not checked then: a lab host that the engine cannot confine fails to start)',
    );
  }

  const reaper = setInterval(() => {
    sessions.reap().catch((err) => app.log.warn({ err: String(err) }, 'reaper pass failed'));
  }, config.reapIntervalMs);
  reaper.unref();

  let stopping = 0;
  stop = async (signal: string, how: 'restart' | 'end') => {
    // A second signal ends the grace period; one within a second is the same signal
    // delivered twice (npm and its child both get it from a terminal or systemd).
    if (stopping) {
      if (Date.now() - stopping > 1000) drain.hurry();
      return;
    }
    stopping = Date.now();
    clearInterval(reaper);
    const hardExit = setTimeout(() => process.exit(1), 20_000 + (how === 'end' ? config.drainGraceMs : 0));
    hardExit.unref();
    if (how === 'restart') {
      // An upgrade: no grace to wait (nothing ends); the pages reconnect to the next server.
      await drain.start(sessions, 0);
      const n = await sessions.detachAll(RESTART_NOTICE);
      app.log.info(
        { signal, sessions: n, code: CloseCode.serverRestarting },
        'restarting: closed terminals for a restart, lab hosts left running for the next server',
      );
      await app.close();
      await store.close();
      process.exit(0);
    }
    // Drain: refuse new sessions, tell live ones, wait CL_DRAIN_GRACE (none if idle).
    app.log.info({ signal, sessions: sessions.count, graceMs: config.drainGraceMs }, 'draining');
    await drain.start(sessions, config.drainGraceMs);
    app.log.info({ signal, sessions: sessions.count }, 'shutting down: ending every session');
    await sessions.shutdown();
    await app.close();
    await store.close();
    process.exit(0);
  };
  // SIGTERM is what an upgrade sends (systemd, compose): CL_ON_SIGTERM says what it means.
  // Ctrl-C in a terminal is someone stopping their own server: it ends everything.
  process.on('SIGTERM', () => void stop('SIGTERM', config.onSigterm));
  process.on('SIGINT', () => void stop('SIGINT', 'end'));

  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const shown = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${shown}:${port}/${accessToken ? `?access=${accessToken}` : ''}`;
  console.log(`Container Labs at ${url} (labs: ${engine.reachable ? 'live' : 'recordings only, no engine'})`);
  if (accessToken)
    console.log('Local mode: the "host" terminals are YOUR shell on this machine. Keep the link private.');
  if (config.mode === 'code')
    console.log('Code mode: readers need an invite link, the site with ?access=<CL_ACCESS_CODE> added.');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
