// KL (or MMD^2) between the clean and the attacked posterior, per x, and its summary over the test
// set (paper.md 3.4 and 5, "Robustness").
import { tf } from '../backend.js';
import { klPerRow, mmdPerRow, type Discrepancy, type Divergence } from '../attacks/objectives.js';
import type { DensityEstimator, FusedInference, RandomStream } from '../types.js';
import { SAMPLE_ROWS_PER_BATCH } from './coverage.js';
import { perRowInBatches, rowsTensor, tileRows } from './row-batches.js';
import { summarize, type Summary } from './summary.js';

/** Monte Carlo samples per x for the reported KL (RABI eval_mc_budget). */
export const EVAL_MC_SAMPLES = 256;

/** RABI's guard: a KL estimate below this is float overflow, not a result. */
export const OVERFLOW_GUARD = -10000;

export interface KlEvalOptions {
  samples?: number;
  /** Rows of x per batch; memory grows with samples * batch rows of logProb. */
  batchSize?: number;
}

/**
 * The Monte Carlo KL in the named direction between q(.|x) and q(.|x~) for every row, in batches:
 * rkl = KL(q(.|x~) || q(.|x)) from samples of q(.|x~), fkl = KL(q(.|x) || q(.|x~)) from q(.|x).
 */
export async function klUnderAttack(
  est: DensityEstimator,
  divergence: Divergence,
  xClean: Float32Array,
  xAdv: Float32Array,
  rng: RandomStream,
  opts: KlEvalOptions = {},
): Promise<Float64Array> {
  const samples = opts.samples ?? EVAL_MC_SAMPLES;
  const batch = opts.batchSize ?? Math.max(1, Math.floor(SAMPLE_ROWS_PER_BATCH / samples));
  const d = est.xDim;
  const fused = est.fusedInference?.() ?? null;
  if (fused) {
    try {
      return fusedKl(fused, divergence, xClean, xAdv, rng, samples, batch, est.xDim);
    } finally {
      fused.dispose();
    }
  }
  return perRowInBatches(xClean.length / d, batch, (start, b) =>
    tf.tidy(() =>
      klPerRow(
        est,
        divergence,
        rowsTensor(xAdv, start, b, d),
        rowsTensor(xClean, start, b, d),
        rng,
        {
          samples,
          differentiable: false,
        },
      ),
    ),
  );
}

/**
 * klUnderAttack, or for 'mmd' the linear-time MMD^2 between `samples` draws of q(.|x~) and of q(.|x)
 * per row (RABI MMDsquaredRobMetric: eval_mc_budget 256 draws, RBF kernel l = 10), on tfjs.
 */
export async function discrepancyUnderAttack(
  est: DensityEstimator,
  discrepancy: Discrepancy,
  xClean: Float32Array,
  xAdv: Float32Array,
  rng: RandomStream,
  opts: KlEvalOptions = {},
): Promise<Float64Array> {
  if (discrepancy !== 'mmd') return klUnderAttack(est, discrepancy, xClean, xAdv, rng, opts);
  const samples = opts.samples ?? EVAL_MC_SAMPLES;
  const batch = opts.batchSize ?? Math.max(1, Math.floor(SAMPLE_ROWS_PER_BATCH / samples));
  const d = est.xDim;
  return perRowInBatches(xClean.length / d, batch, (start, b) =>
    tf.tidy(() =>
      mmdPerRow(est, rowsTensor(xAdv, start, b, d), rowsTensor(xClean, start, b, d), rng, {
        samples,
        differentiable: false,
      }),
    ),
  );
}

/**
 * klPerRow (not differentiable) on fused inference: per batch of x, the same draws (rkl from the
 * attacked q, fkl from the clean one), log-densities of both, the mean difference per x.
 */
function fusedKl(
  fused: FusedInference,
  divergence: Divergence,
  xClean: Float32Array,
  xAdv: Float32Array,
  rng: RandomStream,
  samples: number,
  batch: number,
  d: number,
): Float64Array {
  const n = xClean.length / d;
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const adv = xAdv.subarray(start * d, (start + b) * d);
    const clean = xClean.subarray(start * d, (start + b) * d);
    const [from, other] = divergence === 'rkl' ? [adv, clean] : [clean, adv];
    const s = fused.sample(from, b, samples, rng);
    const lpFrom = fused.logProb(s, tileRows(from, b, samples, d), b * samples);
    const lpOther = fused.logProb(s, tileRows(other, b, samples, d), b * samples);
    for (let r = 0; r < b * samples; r++)
      out[start + (r % b)] += (lpFrom[r]! - lpOther[r]!) / samples;
  }
  return out;
}

export interface GuardedValues {
  values: Float64Array;
  /** How many entries the guard replaced. */
  replaced: number;
}

/**
 * RABI's _ensure_loss_constraint: entries below -10000 (overflow) are replaced by the median of the
 * others. We extend it to NaN, which RABI lets through and which would poison every summary; small
 * negative values are Monte Carlo noise and are kept, as in RABI.
 */
export function guardOverflow(values: ArrayLike<number>): GuardedValues {
  const bad = (v: number) => Number.isNaN(v) || v < OVERFLOW_GUARD;
  const good = Array.from(values)
    .filter((v) => !bad(v))
    .sort((a, b) => a - b);
  const m = good.length;
  // torch.median returns the lower of the two middle values
  const median = m > 0 ? good[Math.floor((m - 1) / 2)]! : NaN;
  const out = Float64Array.from(values);
  let replaced = 0;
  for (let i = 0; i < out.length; i++) {
    if (bad(out[i]!)) {
      out[i] = median;
      replaced++;
    }
  }
  return { values: out, replaced };
}

export type KlSummary = Summary & { guarded: number };

/** Guard, then summarize: mean, median, std, min, max and the quantiles of paper.md 3.4. */
export function summarizeKl(values: ArrayLike<number>): KlSummary {
  const g = guardOverflow(values);
  return { ...summarize(g.values), guarded: g.replaced };
}
