// Full-covariance Gaussian q(theta | x) = N(mu(x), Lambda(x)^-1), RABI's `multivariate_gaussian`
// (MultivariateGaussianNet with MultivariateNormalGenerator): a ReLU MLP [200, 200] from z-scored x
// to D means, D raw diagonal and D(D-1)/2 raw off-diagonal entries of a lower-triangular P, the
// Cholesky factor of the *precision* Lambda = P P^T, in z-scored theta units. As in RABI the diagonal
// is 2 softplus(raw) and the off-diagonal 0.01 raw ("more stable to have low correlation at start").
// RABI adds min_scale I to P P^T, which needs a Cholesky factorization inside the graph; here the
// floor goes on P's diagonal instead, P_aa = sqrt((2 softplus(raw))^2 + minScale), the same thing
// when P is diagonal and a positive diagonal always.
//
// logProb = -1/2 |P^T (u - mu)|^2 + sum_a log P_aa - D/2 log 2 pi (u = z-scored theta): no solve.
// rsample: u = mu + P^-T eps (covariance P^-T P^-1 = Lambda^-1), P^-1 by forward substitution.
// The FIM with respect to x is analytic (fisherCoordinates, see there).
import { tf } from '../backend.js';
import { matMul, softplus } from '../ops.js';
import type { RandomStream, ZScore } from '../types.js';
import { BaseEstimator, LOG_2PI } from './base.js';
import { Mlp } from './mlp.js';
import {
  batchMatMul,
  diagonal,
  lowerInverse,
  lowerTriangular,
  strictLowerCount,
  strictLowerIndex,
  transposedMatVec,
} from './triangular.js';

export interface MultivariateGaussianConfig {
  hidden: number[];
  minScale: number;
  [key: string]: unknown;
}

/** RABI's config/model/multivariate_gaussian.yaml. */
export const MULTIVARIATE_GAUSSIAN_DEFAULTS = { hidden: [200, 200], minScale: 1e-5 };

/** RABI's factor on the raw off-diagonal entries. */
const OFF_DIAGONAL_SCALE = 0.01;

export class MultivariateGaussian extends BaseEstimator {
  readonly kind = 'multivariate_gaussian' as const;
  private readonly net: Mlp;
  private readonly minScale: number;

  constructor(
    thetaDim: number,
    xDim: number,
    config: MultivariateGaussianConfig,
    zscore: ZScore,
    rng: RandomStream,
  ) {
    super(thetaDim, xDim, config, zscore);
    if (!(config.minScale >= 0)) throw new Error(`minScale must be >= 0, got ${config.minScale}`);
    this.minScale = config.minScale;
    const D = thetaDim;
    this.net = new Mlp(
      this.params,
      'net',
      [this.buildEmbedding(rng.fork('embedding')), ...config.hidden, 2 * D + strictLowerCount(D)],
      rng.fork('net'),
    );
  }

  /** mu [B, D] and the precision's Cholesky factor P [B, D, D], z-scored theta units. */
  private head(xz: tf.Tensor2D): { mu: tf.Tensor2D; p: tf.Tensor3D } {
    const out = this.net.forward(xz);
    const B = out.shape[0];
    const D = this.thetaDim;
    const mu = tf.slice(out, [0, 0], [B, D]);
    const sp = tf.mul(softplus(tf.slice(out, [0, D], [B, D])), 2);
    const diag = tf.sqrt(tf.add(tf.square(sp), this.minScale)) as tf.Tensor2D;
    const off =
      D > 1
        ? (tf.mul(
            tf.slice(out, [0, 2 * D], [B, strictLowerCount(D)]),
            OFF_DIAGONAL_SCALE,
          ) as tf.Tensor2D)
        : null;
    return { mu, p: lowerTriangular(diag, off, D) };
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    this.checkPair(theta, x);
    return tf.tidy(() => {
      const { mu, p } = this.head(this.embedX(x));
      const y = transposedMatVec(p, tf.sub(this.z.normalizeTheta(theta), mu) as tf.Tensor2D);
      const logDetP = tf.sum(tf.log(diagonal(p)), 1);
      const constant = 0.5 * LOG_2PI * this.thetaDim + this.z.thetaLogScale;
      return tf.sub(tf.sub(logDetP, tf.mul(tf.sum(tf.square(y), 1), 0.5)), constant) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    this.checkX(x);
    this.checkN(n);
    const B = x.shape[0];
    const D = this.thetaDim;
    return tf.tidy(() => {
      const { mu, p } = this.head(this.embedX(x));
      const eps = tf.reshape(rng.normalTensor([n, B, D]), [n * B, D]) as tf.Tensor2D;
      // Row m * B + b uses x_b's factor, as eps is laid out.
      const pinv = tf.tile(lowerInverse(p), [n, 1, 1]) as tf.Tensor3D;
      const u = tf.add(transposedMatVec(pinv, eps), tf.tile(mu, [n, 1])) as tf.Tensor2D;
      return tf.reshape(this.z.denormalizeTheta(u), [n, B, D]) as tf.Tensor3D;
    });
  }

  /**
   * Coordinates whose Jacobian J in x (at x = at) gives the FIM I_x = J^T J. For N(mu, Lambda^-1)
   * with Lambda = P P^T the FIM in the mean is J_mu^T Lambda J_mu = |P^T J_mu|^2, and in the
   * precision 1/2 tr(S_i S_j) with S_i = G_i + G_i^T, G_i = P^-1 dP/dx_i (lower triangular), i.e.
   * sum_{a>b} G_i,ab G_j,ab + 2 sum_a G_i,aa G_j,aa; mean and precision are orthogonal. So
   *   c(x) = [P(at)^T mu(x), sqrt 2 diag(P(at)^-1 P(x)), strict lower of P(at)^-1 P(x)],
   * D + D(D+1)/2 of them; P(at) held fixed in x (the metric), both differentiable in the weights.
   * z-scored theta units: an affine map of theta leaves the FIM in x unchanged.
   */
  fisherCoordinates(x: tf.Tensor2D, at: tf.Tensor2D): tf.Tensor2D {
    this.checkX(x);
    this.checkX(at);
    return tf.tidy(() => {
      const D = this.thetaDim;
      const B = x.shape[0];
      const { mu, p } = this.head(this.embedX(x));
      const fixed = this.head(this.embedX(at)).p;
      const g = batchMatMul(lowerInverse(fixed), p);
      const parts: tf.Tensor2D[] = [
        transposedMatVec(fixed, mu),
        tf.mul(diagonal(g), Math.SQRT2) as tf.Tensor2D,
      ];
      if (D > 1) {
        const idx = strictLowerIndex(D);
        const pick = new Float32Array(D * D * idx.length);
        idx.forEach(([a, b], k) => (pick[(a * D + b) * idx.length + k] = 1));
        parts.push(
          matMul(tf.reshape(g, [B, D * D]) as tf.Tensor2D, tf.tensor2d(pick, [D * D, idx.length])),
        );
      }
      return tf.concat(parts, 1) as tf.Tensor2D;
    });
  }
}
