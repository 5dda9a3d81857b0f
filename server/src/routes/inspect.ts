/**
 * The inspection API: what the kernel says about a session (process map, cgroup figures)
 * and step checks. Every route needs the session's Bearer token.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CheckBody, type ChecksReply } from '../contract/rest.ts';
import { AppError } from '../errors.ts';
import { needsAnswer, runCheck } from '../inspect/checks.ts';
import { type CgroupSnapshot, readCgroup, readMounts, readProcesses } from '../inspect/snapshot.ts';
import { SnapshotCache } from '../inspect/snapshot-cache.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { Session, SessionManager } from '../sessions/session-manager.ts';
import { bearer, parse, SessionParams } from './common.ts';

const CheckParams = SessionParams.extend({ check: z.string().regex(/^[a-z][a-z0-9-]{1,40}$/) });

export interface InspectDeps {
  runtime: Runtime;
  sessions: SessionManager;
  /** Snapshots shared by the panels and checks; one is made if none is passed. */
  snapshots?: SnapshotCache;
}

export async function inspectRoutes(app: FastifyInstance, deps: InspectDeps): Promise<void> {
  const { runtime, sessions } = deps;
  // Each snapshot is an exec in the lab host: one at a time per session and kind, reused
  // for about a second, by every request and check (snapshot-cache.ts).
  const snapshots = deps.snapshots ?? new SnapshotCache();
  const processes = (s: Session) => snapshots.get(s, 'processes', () => readProcesses(runtime, s.hostId!));
  const cgroup = (s: Session) =>
    snapshots.get(s, 'cgroup', async () => withCpuPercent(s, await readCgroup(runtime, s.hostId!)));
  // Only checks read mount tables (no panel polls them).
  const mounts = (s: Session) => snapshots.get(s, 'mounts', () => readMounts(runtime, s.hostId!));

  const session = (req: FastifyRequest): Session => {
    const { id } = parse(SessionParams, req.params, 'session id');
    const s = sessions.authorize(id, bearer(req));
    if (!s.hostId) throw new AppError('not_found', 'The session is not ready.');
    return s;
  };

  app.get('/api/v1/sessions/:id/processes', async (req) => processes(session(req)));

  app.get('/api/v1/sessions/:id/cgroup', async (req) => cgroup(session(req)));

  app.get('/api/v1/sessions/:id/checks', async (req) => {
    const s = session(req);
    return {
      checks: s.lab.checks.map((c) => ({
        id: c.id,
        kind: c.kind,
        title: c.title,
        answer: needsAnswer(c),
        prompt: 'prompt' in c ? c.prompt : undefined,
      })),
    } satisfies ChecksReply;
  });

  app.post('/api/v1/sessions/:id/checks/:check', async (req) => {
    const s = session(req);
    const { check } = parse(CheckParams, req.params, 'check id');
    const def = s.lab.checks.find((c) => c.id === check);
    if (!def) throw new AppError('not_found', `Lab "${s.lab.id}" has no check "${check}".`);
    const body = CheckBody.safeParse(req.body ?? {});
    if (!body.success)
      throw new AppError('bad_request', 'Send {"answer": "..."} (a string of at most 200 characters).');
    return runCheck(
      def,
      { processes: () => processes(s), cgroup: () => cgroup(s), mounts: () => mounts(s) },
      body.data.answer,
    );
  });
}

/**
 * CPU use since the session's previous snapshot, as a share of one core. Computed once per
 * snapshot, when it is taken, so everyone who is served that snapshot sees the same figure.
 */
function withCpuPercent(s: Session, snap: CgroupSnapshot) {
  const now = Date.parse(snap.takenAt);
  const prev = s.lastCpu;
  let percent: number | null = null;
  if (prev && snap.cpu.usageSeconds !== null && now > prev.at) {
    percent = Math.max(0, ((snap.cpu.usageSeconds - prev.usage) / ((now - prev.at) / 1000)) * 100);
  }
  if (snap.cpu.usageSeconds !== null) s.lastCpu = { at: now, usage: snap.cpu.usageSeconds };
  return { ...snap, cpu: { ...snap.cpu, percent } };
}
