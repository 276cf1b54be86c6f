// What the rational-quadratic (nsf.ts) and the linear-rational (linear-rational-spline.ts) splines
// share: knot positions from softmax bin sizes on [-B, B], and the bin of each row as a one-hot mask
// (comparisons, no gather, so everything stays differentiable at second order; piecewise.ts).
import { tf } from '../backend.js';
import { softmax } from '../ops.js';
import { geMask } from './piecewise.js';

export interface SplineOptions {
  bins: number;
  tailBound: number;
  minBinWidth: number;
  minBinHeight: number;
  minDerivative: number;
}

/** One spline per row, applied elementwise: what SplineBijection drives. */
export interface RowSpline {
  readonly opts: SplineOptions;
  /** Unconstrained parameters per row (dimension). */
  readonly paramsPerDim: number;
  /** u [N, 1] -> (y, log dy/du) [N, 1]; raw [N, paramsPerDim]. */
  forward(u: tf.Tensor2D, raw: tf.Tensor2D): { y: tf.Tensor2D; logDet: tf.Tensor2D };
  /** y [N, 1] -> u, analytic. */
  inverse(y: tf.Tensor2D, raw: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

export function validateSplineOptions(opts: SplineOptions): void {
  const { bins: K, tailBound, minBinWidth, minBinHeight, minDerivative } = opts;
  if (!Number.isInteger(K) || K < 2) throw new Error(`bins must be an integer >= 2, got ${K}`);
  if (!(tailBound > 0)) throw new Error(`tailBound must be positive, got ${tailBound}`);
  if (!(minBinWidth >= 0 && minBinWidth * K < 1) || !(minBinHeight >= 0 && minBinHeight * K < 1)) {
    throw new Error('minBinWidth and minBinHeight must be in [0, 1/bins)');
  }
  if (!(minDerivative >= 0)) throw new Error(`minDerivative must be >= 0, got ${minDerivative}`);
}

/** [K, K + 1] with 1 where row < column: sizes @ cum gives the cumulative sums 0, s0, s0+s1, ... (kept). */
export function cumulativeMatrix(K: number): tf.Tensor2D {
  const m = new Float32Array(K * (K + 1));
  for (let r = 0; r < K; r++) for (let c = r + 1; c <= K; c++) m[r * (K + 1) + c] = 1;
  return tf.keep(tf.tensor2d(m, [K, K + 1]));
}

/**
 * Bin sizes [N, K] from unconstrained u: each bin gets minSize of the interval and a softmax share
 * of the rest, scaled to the interval's length 2B; and the knots [N, K + 1] from -B to B.
 */
export function binSizes(
  u: tf.Tensor2D,
  minSize: number,
  B: number,
  cum: tf.Tensor2D,
): { sizes: tf.Tensor2D; knots: tf.Tensor2D } {
  const K = u.shape[1];
  const sizes = tf.mul(
    tf.add(tf.mul(softmax(u, -1), 1 - minSize * K), minSize),
    2 * B,
  ) as tf.Tensor2D;
  return { sizes, knots: tf.sub(tf.matMul(sizes, cum), B) as tf.Tensor2D };
}

/** One-hot [N, K] of the bin of v [N, 1] among knots [N, K + 1] (outer knots treated as -inf/+inf). */
export function binOneHot(v: tf.Tensor2D, knots: tf.Tensor2D): tf.Tensor2D {
  const N = v.shape[0];
  const K = knots.shape[1] - 1;
  const ge = geMask(v, tf.slice(knots, [0, 1], [N, K - 1]));
  const full = tf.concat([tf.ones([N, 1]), ge, tf.zeros([N, 1])], 1);
  return tf.sub(tf.slice(full, [0, 0], [N, K]), tf.slice(full, [0, 1], [N, K])) as tf.Tensor2D;
}

/** The entry of t [N, K] in each row's bin, [N, 1]. */
export function pickBin(oneHot: tf.Tensor2D, t: tf.Tensor2D): tf.Tensor2D {
  return tf.sum(tf.mul(oneHot, t), 1, true) as tf.Tensor2D;
}

/** Columns [0, K) and [1, K + 1) of a [N, K + 1] knot quantity: its value at each bin's left and right end. */
export function leftRight(t: tf.Tensor2D): { lo: tf.Tensor2D; hi: tf.Tensor2D } {
  const [N, K1] = t.shape;
  return { lo: tf.slice(t, [0, 0], [N, K1 - 1]), hi: tf.slice(t, [0, 1], [N, K1 - 1]) };
}
