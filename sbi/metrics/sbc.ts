// Simulation-based calibration (Talts et al. 2018; sbi's run_sbc / check_sbc): for N pairs
// (theta_i, x_i) from the joint, draw L samples of q(.|x_i) and count, per theta dimension, how many
// fall below theta_i. For a calibrated posterior each dimension's rank is uniform on 0..L. The
// uniformity test here is Pearson's chi-square on the ranks binned into B bins (expected counts
// from the number of rank values per bin, so L + 1 need not divide by B), with B - 1 degrees of
// freedom; a tiny p-value says the posterior is miscalibrated (too narrow, too wide or biased).
// Pure numbers: the caller draws the samples.

export interface SbcDimension {
  /** Chi-square statistic of the binned ranks against uniform. */
  chi2: number;
  /** P(chi2_{B-1} >= chi2): the uniformity test's p-value. */
  pValue: number;
  /** Rank counts per bin (the histogram), B entries summing to N. */
  histogram: number[];
}

export interface SbcResult {
  /** Test pairs. */
  pairs: number;
  /** Posterior samples per pair: ranks run over 0..samples. */
  samples: number;
  bins: number;
  dimensions: SbcDimension[];
  /** The smallest p-value over dimensions (a single number to sort trials by). */
  minPValue: number;
}

/**
 * Ranks of theta (N rows of D) among the posterior samples drawn for each row: `samples` holds
 * L draws per row laid out [L, N, D] (sample m of row i at (m * N + i) * D), as
 * DensityEstimator.sample returns them. Returns N * D ranks in 0..L, row-major.
 */
export function sbcRanks(
  theta: ArrayLike<number>,
  samples: ArrayLike<number>,
  N: number,
  L: number,
  D: number,
): Int32Array {
  if (theta.length < N * D)
    throw new RangeError(`sbcRanks: theta holds fewer than ${N} rows of ${D}`);
  if (samples.length !== L * N * D)
    throw new RangeError(
      `sbcRanks: samples must hold ${L} x ${N} x ${D} values (got ${samples.length})`,
    );
  const ranks = new Int32Array(N * D);
  for (let m = 0; m < L; m++) {
    const base = m * N * D;
    for (let k = 0; k < N * D; k++) if (samples[base + k]! < theta[k]!) ranks[k]!++;
  }
  return ranks;
}

/** Bin of rank r in 0..L among `bins` bins of (nearly) equal numbers of rank values. */
function binOf(r: number, L: number, bins: number): number {
  return Math.min(bins - 1, Math.floor((r * bins) / (L + 1)));
}

/** The chi-square uniformity test of each dimension's ranks (N rows of D, values in 0..L). */
export function sbcTest(
  ranks: Int32Array,
  N: number,
  L: number,
  D: number,
  bins: number,
): SbcResult {
  if (!(Number.isInteger(bins) && bins >= 2 && bins <= L + 1))
    throw new RangeError(`sbcTest: bins must be an integer in 2..${L + 1} (got ${bins})`);
  // Rank values per bin: the expected share of each bin under uniform ranks.
  const width = new Float64Array(bins);
  for (let r = 0; r <= L; r++) width[binOf(r, L, bins)]!++;
  const dimensions: SbcDimension[] = [];
  for (let d = 0; d < D; d++) {
    const histogram = new Array<number>(bins).fill(0);
    for (let i = 0; i < N; i++) histogram[binOf(ranks[i * D + d]!, L, bins)]!++;
    let chi2 = 0;
    for (let b = 0; b < bins; b++) {
      const expected = (N * width[b]!) / (L + 1);
      chi2 += (histogram[b]! - expected) ** 2 / expected;
    }
    dimensions.push({ chi2, pValue: chiSquareSurvival(chi2, bins - 1), histogram });
  }
  return {
    pairs: N,
    samples: L,
    bins,
    dimensions,
    minPValue: Math.min(...dimensions.map((x) => x.pValue)),
  };
}

/** Default bins: about N / 10 expected ranks per bin (Pearson's rule of thumb wants >= 5), 2..20. */
export function defaultSbcBins(N: number, L: number): number {
  return Math.max(2, Math.min(20, L + 1, Math.floor(N / 10)));
}

// ---- the chi-square distribution's upper tail: Q(k/2, x/2), the regularized upper incomplete gamma ----

function logGamma(z: number): number {
  // Lanczos (g = 7, n = 9), |error| < 1e-13 for z > 0.
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  z -= 1;
  let x = c[0]!;
  for (let i = 1; i < 9; i++) x += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

/** Regularized upper incomplete gamma Q(a, x): series below a + 1, continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0)) throw new RangeError(`gammaQ: a must be > 0 (got ${a})`);
  if (!(x > 0)) return 1;
  const lead = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return Math.max(0, 1 - sum * Math.exp(lead));
  }
  // Lentz's method for the continued fraction of Q.
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(lead) * h;
}

/** P(X >= x) for X ~ chi-square with k degrees of freedom. */
export function chiSquareSurvival(x: number, k: number): number {
  return gammaQ(k / 2, x / 2);
}
