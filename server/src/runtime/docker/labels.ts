/**
 * The labels on every lab host: the one place where the runtime's own terms (session, lab,
 * server instance, expiry, hard deadline, pooled, uid) become Docker label strings, and
 * back. The session layer never sees these strings; any server's reaper finds leftovers by
 * them (`containerlabs.managed=true`), whichever instance made them.
 */

export const LABELS = {
  managed: 'containerlabs.managed',
  session: 'containerlabs.session',
  lab: 'containerlabs.lab',
  /** The server instance that made it (CL_INSTANCE): its leftovers are removed at start. */
  instance: 'containerlabs.instance',
  /** When the session expires (informational: the server enforces it, and may extend it). */
  expiresAt: 'containerlabs.expires-at',
  /** The host's own hard deadline: past it, any server's reaper removes it. */
  deadline: 'containerlabs.deadline',
  /** Made for the warm pool, not handed out yet (a label cannot change later, so it stays). */
  pool: 'containerlabs.pool',
  /** The host's uid (and gid): which uids are taken, for every server on the engine. */
  uid: 'containerlabs.uid',
} as const;

/** What the labels of one lab host say, in our terms. */
export interface LabHostLabels {
  sessionId: string;
  lab: string;
  instance: string;
  expiresAt: Date;
  deadline: Date;
  pooled: boolean;
  uid: number;
}

/** The labels a lab host carries. */
export function toLabels(l: LabHostLabels): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.session]: l.sessionId,
    [LABELS.lab]: l.lab,
    [LABELS.instance]: l.instance,
    [LABELS.expiresAt]: l.expiresAt.toISOString(),
    [LABELS.deadline]: l.deadline.toISOString(),
    ...(l.pooled ? { [LABELS.pool]: 'true' } : {}),
    [LABELS.uid]: String(l.uid),
  };
}

/**
 * What a listed container's labels say. Fields a label does not give (a host of an older
 * version, a hand-made container) are empty or undefined, never guessed.
 */
export function fromLabels(
  labels: Record<string, string> | undefined,
): Omit<LabHostLabels, 'expiresAt' | 'deadline' | 'uid'> & { deadline?: Date; uid?: number } {
  const l = labels ?? {};
  const d = l[LABELS.deadline];
  const deadline = d ? new Date(d) : undefined;
  const uid = l[LABELS.uid];
  return {
    sessionId: l[LABELS.session] ?? '',
    lab: l[LABELS.lab] ?? '',
    instance: l[LABELS.instance] ?? '',
    pooled: l[LABELS.pool] === 'true',
    ...(deadline && !Number.isNaN(deadline.getTime()) ? { deadline } : {}),
    ...(uid !== undefined && /^\d+$/.test(uid) ? { uid: Number(uid) } : {}),
  };
}
