/**
 * The statistics of the tests and the benchmark (one definition, so a p99 printed by an
 * abuse test and one in the benchmark's table mean the same): percentiles by linear
 * interpolation between the closest ranks, and a summary of a sample.
 */

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** n, p50, p95, p99, max and mean; NaN figures for an empty sample. */
export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  return {
    n,
    p50: percentile(samples, 50),
    p95: percentile(samples, 95),
    p99: percentile(samples, 99),
    // (not Math.max(...samples): a long sample would overflow the call stack)
    max: n ? samples.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY) : Number.NaN,
    mean: n ? samples.reduce((a, b) => a + b, 0) / n : Number.NaN,
  };
}

/** `label: n=… p50=… p99=… max=…` for a test's printed figures (ms: one decimal). */
export function formatSummary(label: string, s: Summary, unit = 'ms'): string {
  const f = (v: number) => (unit === 'ms' ? v.toFixed(1) : String(v));
  return `${label}: n=${s.n} p50=${f(s.p50)}${unit} p99=${f(s.p99)}${unit} max=${f(s.max)}${unit}`;
}
