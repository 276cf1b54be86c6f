// Reductions of a per-x metric over the test set, in the shape RABI's mean_summary reports
// (paper.md 3.4). Keys have no '.' so the record can be stored in MongoDB as is.

/** The quantile levels of paper.md 3.4 and the key each is stored under. */
export const SUMMARY_QUANTILES = [
  [0.005, 'q0_5'],
  [0.025, 'q2_5'],
  [0.05, 'q5'],
  [0.15, 'q15'],
  [0.2, 'q20'],
  [0.3, 'q30'],
  [0.5, 'q50'],
  [0.7, 'q70'],
  [0.8, 'q80'],
  [0.85, 'q85'],
  [0.95, 'q95'],
  [0.975, 'q97_5'],
  [0.995, 'q99_5'],
] as const;

export type QuantileKey = (typeof SUMMARY_QUANTILES)[number][1];

export type Summary = {
  n: number;
  mean: number;
  median: number;
  /** Bessel-corrected, as torch.std. */
  std: number;
  min: number;
  max: number;
} & Record<QuantileKey, number>;

/** Quantile of sorted values with linear interpolation between order statistics (torch.quantile). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

export function summarize(values: ArrayLike<number>): Summary {
  const n = values.length;
  if (n === 0) throw new Error('summarize: no values.');
  const sorted = Float64Array.from(values).sort();
  let mean = 0;
  for (const v of sorted) mean += v;
  mean /= n;
  let ss = 0;
  for (const v of sorted) ss += (v - mean) * (v - mean);
  const quantiles = Object.fromEntries(
    SUMMARY_QUANTILES.map(([q, key]) => [key, quantileSorted(sorted, q)]),
  ) as Record<QuantileKey, number>;
  return {
    n,
    mean,
    median: quantileSorted(sorted, 0.5),
    std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0,
    min: sorted[0]!,
    max: sorted[n - 1]!,
    ...quantiles,
  };
}
