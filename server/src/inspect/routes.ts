/**
 * The inspection API: what the kernel says about a session (process map, cgroup figures)
 * and step checks. Every route needs the session's Bearer token.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { Session, SessionManager } from '../sessions/session-manager.ts';
import { needsAnswer, runCheck } from './checks.ts';
import { readCgroup, readProcesses } from './snapshot.ts';

const Params = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{10,64}$/) });
const CheckParams = Params.extend({ check: z.string().regex(/^[a-z][a-z0-9-]{1,40}$/) });
const CheckBody = z.object({ answer: z.string().max(200).optional() }).strict();

export interface InspectDeps {
  runtime: Runtime;
  sessions: SessionManager;
  bearer(req: FastifyRequest): string | undefined;
}

export async function inspectRoutes(app: FastifyInstance, deps: InspectDeps): Promise<void> {
  const { runtime, sessions, bearer } = deps;

  const session = (req: FastifyRequest): Session => {
    const p = Params.safeParse(req.params);
    if (!p.success) throw new AppError('bad_request', 'Invalid session id.');
    const s = sessions.authorize(p.data.id, bearer(req));
    if (!s.hostId) throw new AppError('not_found', 'The session is not ready.');
    return s;
  };

  app.get('/api/v1/sessions/:id/processes', async (req) => {
    const s = session(req);
    return readProcesses(runtime, s.hostId!);
  });

  app.get('/api/v1/sessions/:id/cgroup', async (req) => {
    const s = session(req);
    const snap = await readCgroup(runtime, s.hostId!);
    // CPU use since the previous reading of this session, as a share of one core.
    const now = Date.parse(snap.takenAt);
    const prev = s.lastCpu;
    let cpuPercent: number | null = null;
    if (prev && snap.cpu.usageSeconds !== null && now > prev.at) {
      cpuPercent = Math.max(0, ((snap.cpu.usageSeconds - prev.usage) / ((now - prev.at) / 1000)) * 100);
    }
    if (snap.cpu.usageSeconds !== null) s.lastCpu = { at: now, usage: snap.cpu.usageSeconds };
    return { ...snap, cpu: { ...snap.cpu, percent: cpuPercent } };
  });

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
    };
  });

  app.post('/api/v1/sessions/:id/checks/:check', async (req) => {
    const s = session(req);
    const p = CheckParams.safeParse(req.params);
    if (!p.success) throw new AppError('bad_request', 'Invalid check id.');
    const def = s.lab.checks.find((c) => c.id === p.data.check);
    if (!def) throw new AppError('not_found', `Lab "${s.lab.id}" has no check "${p.data.check}".`);
    const body = CheckBody.safeParse(req.body ?? {});
    if (!body.success)
      throw new AppError('bad_request', 'Send {"answer": "..."} (a string of at most 200 characters).');
    const hostId = s.hostId!;
    return runCheck(
      def,
      { processes: () => readProcesses(runtime, hostId), cgroup: () => readCgroup(runtime, hostId) },
      body.data.answer,
    );
  });
}
