// Expected coverage of highest-density regions (RABI ExpectedCoverageMetric; paper.md 5). For each x
// and level alpha the HPD region of q(.|x) is estimated from N samples: its log-density threshold is
// the floor(N (1 - alpha))-th smallest sample log-density, and theta_true is covered when its
// log-density is strictly above it. Per x that takes one number, its rank among the samples, so
// coverage pools over any split of the test set. Under attack q(.|x~) is scored against the theta
// of the clean x.
import { tf } from '../backend.js';
import type { DensityEstimator, RandomStream } from '../types.js';
import { logProbOfSamples } from '../attacks/objectives.js';
import { rowsTensor, tileRows } from './row-batches.js';

export const COVERAGE_LEVELS = 100;
export const COVERAGE_SAMPLES = 2000;

/**
 * Sampled rows (x times samples) drawn at once. A flow's sampling keeps every pass's intermediates
 * until its tidy ends; at 50,000 rows a 3-transform MAF on gaussian_linear exhausted the wasm heap.
 */
export const SAMPLE_ROWS_PER_BATCH = 8192;

/** linspace(0, 1, levels), computed as torch does in float32. */
export function coverageLevels(levels: number = COVERAGE_LEVELS): number[] {
  return Array.from({ length: levels }, (_, i) => Math.fround(i / (levels - 1)));
}

/**
 * The sample index where the HPD threshold of level alpha sits: int(N * (1 - alpha)) in float32, as
 * RABI computes it from a float32 alpha grid (this fixes which sample wins at grid points where
 * N (1 - alpha) is an integer up to rounding).
 */
export function cutIndex(nSamples: number, alpha: number): number {
  return Math.floor(Math.fround(nSamples * Math.fround(1 - Math.fround(alpha))));
}

/**
 * Whether theta_true is covered at level alpha, given its rank: how many of the N sample
 * log-densities lie strictly below its own. The HPD threshold is the cutIndex-th smallest sample
 * log-density, which lies below theta_true's exactly when more than cutIndex samples do (so a
 * log-density equal to the threshold is not covered). alpha = 0 covers nothing and alpha = 1
 * everything, as RABI hard-codes.
 */
export function coveredAt(rank: number, nSamples: number, alpha: number): boolean {
  if (alpha === 0) return false;
  if (alpha === 1) return true;
  return rank > Math.min(cutIndex(nSamples, alpha), nSamples - 1);
}

/** How many of `sampleLogProbs` lie strictly below `trueLogProb` (NaN is below nothing). */
export function rankBelow(sampleLogProbs: ArrayLike<number>, trueLogProb: number): number {
  let below = 0;
  for (let j = 0; j < sampleLogProbs.length; j++) if (sampleLogProbs[j]! < trueLogProb) below++;
  return below;
}

/**
 * Adds one x's coverage indicators to `counts` (one per level): `sampleLogProbs` are the log q of the
 * N samples, `trueLogProb` the log q of theta_true.
 */
export function accumulateCoverage(
  sampleLogProbs: Float32Array | Float64Array,
  trueLogProb: number,
  alphas: number[],
  counts: Float64Array,
): void {
  const rank = rankBelow(sampleLogProbs, trueLogProb);
  for (let k = 0; k < alphas.length; k++)
    if (coveredAt(rank, sampleLogProbs.length, alphas[k]!)) counts[k]! += 1;
}

/** Trapezoid integral of |coverage(alpha) - alpha| over the alpha grid (RABI's "absAUC"). */
export function coverageAbsArea(alphas: number[], coverage: number[]): number {
  let area = 0;
  for (let k = 1; k < alphas.length; k++) {
    const f0 = Math.abs(coverage[k - 1]! - alphas[k - 1]!);
    const f1 = Math.abs(coverage[k]! - alphas[k]!);
    area += 0.5 * (f0 + f1) * (alphas[k]! - alphas[k - 1]!);
  }
  return area;
}

export interface CoverageResult {
  alphas: number[];
  /** Observed coverage per level, averaged over the x. */
  coverage: number[];
  absArea: number;
}

export interface CoverageOptions {
  levels?: number;
  samples?: number;
  /** Rows of x per batch; memory grows with samples * batch rows of logProb. */
  batchSize?: number;
}

/**
 * Per x, how many of q's N samples have a log-density below theta_true's: the one number per x
 * that expected coverage needs at every level (theta_true is covered at alpha exactly when this
 * count exceeds the threshold's sample index), so coverage can be pooled over any split of the x.
 */
export async function coverageRanks(
  est: DensityEstimator,
  x: Float32Array,
  theta: Float32Array,
  rng: RandomStream,
  opts: CoverageOptions = {},
): Promise<Int32Array> {
  const nSamples = opts.samples ?? COVERAGE_SAMPLES;
  const batch = opts.batchSize ?? Math.max(1, Math.floor(SAMPLE_ROWS_PER_BATCH / nSamples));
  const dx = est.xDim;
  const dt = est.thetaDim;
  const n = x.length / dx;
  const ranks = new Int32Array(n);
  const fused = est.fusedInference?.() ?? null;
  if (fused) {
    try {
      for (let start = 0; start < n; start += batch) {
        const b = Math.min(batch, n - start);
        const xb = x.subarray(start * dx, (start + b) * dx);
        const s = fused.sample(xb, b, nSamples, rng);
        const lp = fused.logProb(s, tileRows(xb, b, nSamples, dx), b * nSamples);
        const lt = fused.logProb(theta.subarray(start * dt, (start + b) * dt), xb, b);
        // Sample m of x_b is row m * b + b: gather each x's log-densities (as float32, as tfjs).
        const own = new Float32Array(nSamples);
        for (let i = 0; i < b; i++) {
          for (let m = 0; m < nSamples; m++) own[m] = lp[m * b + i]!;
          ranks[start + i] = rankBelow(own, Math.fround(lt[i]!));
        }
      }
      return ranks;
    } finally {
      fused.dispose();
    }
  }
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const [samplesLp, trueLp] = tf.tidy(() => {
      const xb = rowsTensor(x, start, b, dx);
      const tb = rowsTensor(theta, start, b, dt);
      const s = est.sample(xb, nSamples, rng);
      // [B, N] so that each x's log-densities are contiguous
      return [tf.transpose(logProbOfSamples(est, s, xb)), est.logProb(tb, xb)];
    });
    const lp = (await samplesLp.data()) as Float32Array;
    const lt = (await trueLp.data()) as Float32Array;
    samplesLp.dispose();
    trueLp.dispose();
    for (let i = 0; i < b; i++)
      ranks[start + i] = rankBelow(lp.subarray(i * nSamples, (i + 1) * nSamples), lt[i]!);
  }
  return ranks;
}

/** Expected coverage over the x whose ranks (coverageRanks) are given: pooled over any split of them. */
export function coverageFromRanks(
  ranks: ArrayLike<number>,
  nSamples: number,
  levels: number = COVERAGE_LEVELS,
): CoverageResult {
  const alphas = coverageLevels(levels);
  const counts = new Float64Array(alphas.length);
  for (let i = 0; i < ranks.length; i++)
    for (let k = 0; k < alphas.length; k++)
      if (coveredAt(ranks[i]!, nSamples, alphas[k]!)) counts[k]! += 1;
  const coverage = Array.from(counts, (c) => c / ranks.length);
  return { alphas, coverage, absArea: coverageAbsArea(alphas, coverage) };
}

/**
 * Expected coverage of q(.|x) for the true theta, over n rows of x and theta. For the attacked
 * curve pass x~ with the theta of the clean x.
 */
export async function expectedCoverage(
  est: DensityEstimator,
  x: Float32Array,
  theta: Float32Array,
  rng: RandomStream,
  opts: CoverageOptions = {},
): Promise<CoverageResult> {
  const ranks = await coverageRanks(est, x, theta, rng, opts);
  return coverageFromRanks(ranks, opts.samples ?? COVERAGE_SAMPLES, opts.levels);
}
