// Linear-Gaussian q(theta | x) = N(W x + b, Sigma), fitted in closed form: least squares of
// z-scored theta on z-scored x over the training rows (a small ridge on the slopes), Sigma their
// residual covariance (sbi/least-squares.ts, the x-transform probe's fit). No epochs: trainNPE calls fitClosedForm instead of stepping. Where the
// posterior is nearly linear-Gaussian and simulations are few, this maximum-likelihood fit beats
// every flow trained by SGD on the same rows (gaussian_linear at 1k: held-out NLL 1.4 nats lower;
// BENCHMARKS.md, "A linear-Gaussian candidate"), so robustsbi train offers it beside its MAFs and
// keeps it only where its validation NLL is the lowest.
//
// Weights (z-scored units): W [xDim, D], b [D] and the inverse L^-1 of Sigma's lower Cholesky
// factor: the density reads |L^-1 (u - mu)|^2 without a solve, sampling inverts the D x D factor.
import { tf } from '../backend.js';
import { fitLinearGaussian } from '../least-squares.js';
import { cholesky, forwardSubstitute } from '../tasks/linalg.js';
import type { RandomStream, ZScore } from '../types.js';
import { BaseEstimator, LOG_2PI } from './base.js';
import { torchLinearUniform } from './params.js';
import { lowerInverse } from './triangular.js';

export interface LinearGaussianConfig {
  /**
   * Ridge on the slopes, per training row (z-scored x, so one scale fits every dimension): only to
   * keep collinear or constant x dimensions solvable. The probe's 1e-3 shrinks the mean by a few
   * percent of a posterior standard deviation where x determines theta closely.
   */
  ridge: number;
  [key: string]: unknown;
}

export const LINEAR_GAUSSIAN_DEFAULTS = { ridge: 1e-6 };

export class LinearGaussian extends BaseEstimator {
  readonly kind = 'linear_gaussian' as const;
  private readonly ridge: number;
  private readonly weight: tf.Variable;
  private readonly bias: tf.Variable;
  private readonly scaleInverse: tf.Variable;
  /** Flat indices of the diagonal of a D x D matrix. */
  private readonly diagonal: tf.Tensor1D;

  constructor(
    thetaDim: number,
    xDim: number,
    config: LinearGaussianConfig,
    zscore: ZScore,
    rng: RandomStream,
  ) {
    super(thetaDim, xDim, config, zscore);
    if (!(config.ridge >= 0)) throw new Error(`ridge must be >= 0, got ${config.ridge}`);
    this.ridge = config.ridge;
    const D = thetaDim;
    const identity = new Float32Array(D * D);
    for (let i = 0; i < D; i++) identity[i * D + i] = 1;
    // Unfitted, as every kind starts: random slopes (torch's nn.Linear bound), unit covariance.
    this.weight = this.params.add('lg.weight', [xDim, D], torchLinearUniform(rng, xDim, xDim * D));
    this.bias = this.params.add('lg.bias', [D]);
    this.scaleInverse = this.params.add('lg.scaleInverse', [D, D], identity);
    this.diagonal = tf.keep(
      tf.tensor1d(
        Array.from({ length: D }, (_, i) => i * D + i),
        'int32',
      ),
    );
  }

  /**
   * Sets the weights to the least-squares fit of the n rows (raw theta [n, D] and x [n, xDim], as
   * logProb takes them), in the z-scored units the model works in.
   */
  fitClosedForm(theta: Float32Array, x: Float32Array, n: number): void {
    const D = this.thetaDim;
    const C = this.xDim;
    const p = C + 1;
    if (n <= p)
      throw new RangeError(
        `A linear-Gaussian fit needs more than ${p} training rows for ${C}-dimensional x, got ${n}.`,
      );
    const { thetaMean, thetaStd, xMean, xStd } = this.zscore;
    const feats = new Float64Array(n * p);
    const u = new Float64Array(n * D);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < C; j++) feats[r * p + j] = (x[r * C + j]! - xMean[j]!) / xStd[j]!;
      feats[r * p + C] = 1;
      for (let d = 0; d < D; d++) u[r * D + d] = (theta[r * D + d]! - thetaMean[d]!) / thetaStd[d]!;
    }
    // coef[d]: theta_d's slopes, then its intercept.
    const { coef, cov } = fitLinearGaussian(feats, u, n, p, D, this.ridge);
    // A floor for a dimension x predicts exactly (z-scored units, so absolute).
    for (let i = 0; i < D; i++) cov[i]![i]! += 1e-9;
    const l = cholesky(cov);
    const w = new Float32Array(C * D);
    const b = new Float32Array(D);
    const sInv = new Float32Array(D * D);
    for (let d = 0; d < D; d++) {
      for (let j = 0; j < C; j++) w[j * D + d] = coef[d]![j]!;
      b[d] = coef[d]![C]!;
      // Column d of L^-1: L y = e_d.
      const unit = new Array<number>(D).fill(0);
      unit[d] = 1;
      const col = forwardSubstitute(l, unit);
      for (let i = 0; i < D; i++) sInv[i * D + d] = col[i]!;
    }
    tf.tidy(() => {
      this.weight.assign(tf.tensor2d(w, [C, D]));
      this.bias.assign(tf.tensor1d(b));
      this.scaleInverse.assign(tf.tensor2d(sInv, [D, D]));
    });
  }

  private mean(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(this.embedX(x), this.weight as tf.Tensor2D), this.bias) as tf.Tensor2D;
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    this.checkPair(theta, x);
    return tf.tidy(() => {
      const r = tf.sub(this.z.normalizeTheta(theta), this.mean(x)) as tf.Tensor2D;
      const y = tf.matMul(r, this.scaleInverse as tf.Tensor2D, false, true);
      // log det Sigma^-1/2 = sum log diag(L^-1).
      const logDet = tf.sum(tf.log(tf.gather(tf.reshape(this.scaleInverse, [-1]), this.diagonal)));
      const constant = 0.5 * LOG_2PI * this.thetaDim + this.z.thetaLogScale;
      return tf.add(tf.sub(tf.mul(tf.sum(tf.square(y), 1), -0.5), constant), logDet) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    this.checkX(x);
    this.checkN(n);
    const B = x.shape[0];
    const D = this.thetaDim;
    return tf.tidy(() => {
      const eps = tf.reshape(rng.normalTensor([n, B, D]), [n * B, D]) as tf.Tensor2D;
      // Row m * B + b uses x_b's mean, as eps is laid out.
      const scale = tf.reshape(
        lowerInverse(tf.reshape(this.scaleInverse, [1, D, D]) as tf.Tensor3D),
        [D, D],
      ) as tf.Tensor2D;
      const u = tf.add(
        tf.matMul(eps, scale, false, true),
        tf.tile(this.mean(x), [n, 1]),
      ) as tf.Tensor2D;
      return tf.reshape(this.z.denormalizeTheta(u), [n, B, D]) as tf.Tensor3D;
    });
  }

  override dispose(): void {
    this.diagonal.dispose();
    super.dispose();
  }
}
