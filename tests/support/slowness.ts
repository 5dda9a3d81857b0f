/**
 * How much slower the engine under test is than the CI machine's own (a 2-core VM with
 * Docker 20.10, where every test's timeouts were chosen): `CL_TEST_SLOWNESS`, 1 by default.
 * hosts/run.ts sets it from a measured container start on each test host (about 10-40
 * under QEMU's TCG, 1-2 under KVM), so the same tests pass on an emulated CPU and stay
 * quick to fail on a fast one. Every timeout of the shared helpers goes through `scaled`.
 */
function parseSlowness(text: string | undefined): number {
  if (text === undefined || text === '') return 1;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 1 || n > 1000) {
    throw new Error(`CL_TEST_SLOWNESS must be a number from 1 to 1000, not ${JSON.stringify(text)}`);
  }
  return n;
}

export const SLOWNESS: number = parseSlowness(process.env.CL_TEST_SLOWNESS);

/** A timeout (or wait) in ms for the engine under test. */
export function scaled(ms: number): number {
  return Math.round(ms * SLOWNESS);
}
