// Z-score statistics from the training split, and the two layers built from them.
// x is standardized as the first layer of every estimator, so that gradients (the FIM) are taken
// with respect to raw x. theta is standardized by an affine bijection whose log-determinant enters
// logProb, so logProb is the density of raw theta.
import { tf } from '../backend.js';
import type { ZScore } from '../types.js';

/**
 * Std floors. x: 0.05, as RABI's ZScoreLayer clamps. theta: 1e-8, only a guard against a constant
 * parameter (sbi uses 1e-14; float32 needs a larger one), because theta scales can legitimately be
 * tiny (pyloric conductances are ~1e-3).
 */
export const X_MIN_STD = 0.05;
export const THETA_MIN_STD = 1e-8;

export interface ZScoreOptions {
  xMinStd?: number;
  thetaMinStd?: number;
}

/** Per-column mean and unbiased std over the given rows; std floored, 1 when under 2 rows. */
function columnStats(
  data: Float32Array,
  dim: number,
  rows: number[],
  minStd: number,
): { mean: number[]; std: number[] } {
  const mean = new Array<number>(dim).fill(0);
  const std = new Array<number>(dim).fill(1);
  const n = rows.length;
  if (n === 0) return { mean, std };
  for (const r of rows) for (let j = 0; j < dim; j++) mean[j]! += data[r * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= n;
  if (n < 2) return { mean, std };
  const ss = new Array<number>(dim).fill(0);
  for (const r of rows) {
    for (let j = 0; j < dim; j++) {
      const d = data[r * dim + j]! - mean[j]!;
      ss[j]! += d * d;
    }
  }
  for (let j = 0; j < dim; j++) std[j] = Math.max(Math.sqrt(ss[j]! / (n - 1)), minStd);
  return { mean, std };
}

function rowFinite(data: Float32Array, dim: number, r: number): boolean {
  for (let j = 0; j < dim; j++) if (!Number.isFinite(data[r * dim + j]!)) return false;
  return true;
}

/**
 * Z-score statistics of n paired rows (theta: n * thetaDim, x: n * xDim). Rows with any non-finite
 * value in theta or x are excluded. Std is the unbiased (n - 1) estimate, floored as documented above.
 */
export function computeZScore(
  theta: Float32Array,
  x: Float32Array,
  n: number,
  thetaDim: number,
  xDim: number,
  options: ZScoreOptions = {},
): ZScore {
  if (theta.length !== n * thetaDim || x.length !== n * xDim) {
    throw new Error(
      `computeZScore: expected ${n}x${thetaDim} theta and ${n}x${xDim} x values, got ${theta.length} and ${x.length}`,
    );
  }
  const rows: number[] = [];
  for (let r = 0; r < n; r++)
    if (rowFinite(theta, thetaDim, r) && rowFinite(x, xDim, r)) rows.push(r);
  const t = columnStats(theta, thetaDim, rows, options.thetaMinStd ?? THETA_MIN_STD);
  const s = columnStats(x, xDim, rows, options.xMinStd ?? X_MIN_STD);
  return { thetaMean: t.mean, thetaStd: t.std, xMean: s.mean, xStd: s.std };
}

/** The identity standardization (mean 0, std 1). */
export function identityZScore(thetaDim: number, xDim: number): ZScore {
  return {
    thetaMean: new Array<number>(thetaDim).fill(0),
    thetaStd: new Array<number>(thetaDim).fill(1),
    xMean: new Array<number>(xDim).fill(0),
    xStd: new Array<number>(xDim).fill(1),
  };
}

export function validateZScore(z: ZScore, thetaDim: number, xDim: number): void {
  const check = (name: string, v: number[], len: number, positive: boolean): void => {
    if (!Array.isArray(v) || v.length !== len) {
      throw new Error(
        `z-score ${name} must have ${len} entries, got ${Array.isArray(v) ? v.length : typeof v}`,
      );
    }
    for (const a of v) {
      if (!Number.isFinite(a) || (positive && a <= 0))
        throw new Error(`z-score ${name} has an invalid entry ${a}`);
    }
  };
  check('thetaMean', z.thetaMean, thetaDim, false);
  check('thetaStd', z.thetaStd, thetaDim, true);
  check('xMean', z.xMean, xDim, false);
  check('xStd', z.xStd, xDim, true);
}

/**
 * The z-score statistics as kept tensors. Every estimator holds one; assigning a new ZScore object to
 * an estimator's `zscore` rebuilds it (mutating the arrays in place is not seen).
 */
export class ZScoreTensors {
  readonly stats: ZScore;
  private readonly thetaMean: tf.Tensor1D;
  private readonly thetaStd: tf.Tensor1D;
  private readonly xMean: tf.Tensor1D;
  private readonly xStd: tf.Tensor1D;
  /** sum_j log thetaStd_j: log q(theta) = log q_z(theta_z) - thetaLogScale. */
  readonly thetaLogScale: number;

  constructor(stats: ZScore, thetaDim: number, xDim: number) {
    validateZScore(stats, thetaDim, xDim);
    this.stats = {
      thetaMean: [...stats.thetaMean],
      thetaStd: [...stats.thetaStd],
      xMean: [...stats.xMean],
      xStd: [...stats.xStd],
    };
    // keep: the setter may run inside a caller's tidy.
    this.thetaMean = tf.keep(tf.tensor1d(stats.thetaMean, 'float32'));
    this.thetaStd = tf.keep(tf.tensor1d(stats.thetaStd, 'float32'));
    this.xMean = tf.keep(tf.tensor1d(stats.xMean, 'float32'));
    this.xStd = tf.keep(tf.tensor1d(stats.xStd, 'float32'));
    this.thetaLogScale = stats.thetaStd.reduce((a, s) => a + Math.log(s), 0);
  }

  /** Raw x -> z-scored x (inside the differentiable graph). */
  normalizeX(x: tf.Tensor2D): tf.Tensor2D {
    return tf.div(tf.sub(x, this.xMean), this.xStd);
  }

  normalizeTheta(theta: tf.Tensor2D): tf.Tensor2D {
    return tf.div(tf.sub(theta, this.thetaMean), this.thetaStd);
  }

  /** A z-scored scale (std) -> raw theta units. */
  scaleTheta(scaleZ: tf.Tensor2D): tf.Tensor2D {
    return tf.mul(scaleZ, this.thetaStd);
  }

  denormalizeTheta(thetaZ: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.mul(thetaZ, this.thetaStd), this.thetaMean);
  }

  dispose(): void {
    this.thetaMean.dispose();
    this.thetaStd.dispose();
    this.xMean.dispose();
    this.xStd.dispose();
  }
}
