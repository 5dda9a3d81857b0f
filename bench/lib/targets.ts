/** The targets the figures are printed next to (never asserted: the bench does not fail). */
export const TARGETS = {
  warmP50: 150,
  warmP95: 250,
  coldP50: 600,
  /** A class of readers pressing Start within one second: p95 start → prompt (ms). */
  classP95: 1500,
  /** A warm start → prompt, as a multiple of the floor's connect → prompt (same run). */
  warmVsFloor: 2,
  echoP50: 1.5,
  echoP99: 10,
  throughputMBps: 18,
  throughputVsFloor: 0.6,
  idleMBPerSession: 8,
  idleEchoP99: 10,
  idleSessions: 200,
  /** Lighthouse performance score (0–100), every page and preset (issue 17: 100 on every lesson, mobile). */
  lighthousePerf: 100,
} as const;

/** ✅ / ❌ / – for a figure against a target. */
export function mark(ok: boolean | undefined): string {
  if (ok === undefined) return '–';
  return ok ? '✅' : '❌';
}

export function atMost(v: number | undefined, limit: number): boolean | undefined {
  return v === undefined || !Number.isFinite(v) ? undefined : v <= limit;
}

export function atLeast(v: number | undefined, limit: number): boolean | undefined {
  return v === undefined || !Number.isFinite(v) ? undefined : v >= limit;
}
