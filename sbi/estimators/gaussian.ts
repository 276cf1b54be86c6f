// Diagonal Gaussian q(theta | x) = N(mu(x), diag sigma(x)^2), RABI's `gaussian`
// (IndependentGaussianNet): a ReLU MLP [100, 100] from z-scored x to (mu, softplus -> sigma), in
// z-scored theta units. sigma gets a floor minScale (default 1e-5) so log sigma stays finite.
import { tf } from '../backend.js';
import { softplus } from '../ops.js';
import type { RandomStream, ZScore } from '../types.js';
import { BaseEstimator, LOG_2PI } from './base.js';
import { Mlp } from './mlp.js';

export interface GaussianConfig {
  hidden: number[];
  minScale: number;
  [key: string]: unknown;
}

export const GAUSSIAN_DEFAULTS = { hidden: [100, 100], minScale: 1e-5 };

export class DiagonalGaussian extends BaseEstimator {
  readonly kind = 'gaussian' as const;
  private readonly net: Mlp;
  private readonly minScale: number;

  constructor(
    thetaDim: number,
    xDim: number,
    config: GaussianConfig,
    zscore: ZScore,
    rng: RandomStream,
  ) {
    super(thetaDim, xDim, config, zscore);
    if (!(config.minScale >= 0)) throw new Error(`minScale must be >= 0, got ${config.minScale}`);
    this.minScale = config.minScale;
    this.net = new Mlp(
      this.params,
      'net',
      [this.buildEmbedding(rng.fork('embedding')), ...config.hidden, 2 * thetaDim],
      rng.fork('net'),
    );
  }

  /** mu and sigma [B, D] in z-scored theta units. */
  private head(xz: tf.Tensor2D): { mu: tf.Tensor2D; sigma: tf.Tensor2D } {
    const out = this.net.forward(xz);
    const B = out.shape[0];
    const D = this.thetaDim;
    const mu = tf.slice(out, [0, 0], [B, D]);
    const sigma = tf.add(softplus(tf.slice(out, [0, D], [B, D])), this.minScale) as tf.Tensor2D;
    return { mu, sigma };
  }

  /**
   * Mean and per-dimension std of q(theta | x) in raw theta units, as differentiable functions of raw
   * x (for the closed-form FIM J^T diag(1/sigma^2, 2/sigma^2) J).
   */
  meanAndScale(x: tf.Tensor2D): { mean: tf.Tensor2D; scale: tf.Tensor2D } {
    this.checkX(x);
    return tf.tidy(() => {
      const { mu, sigma } = this.head(this.embedX(x));
      return { mean: this.z.denormalizeTheta(mu), scale: this.z.scaleTheta(sigma) };
    });
  }

  /**
   * Coordinates whose Jacobian in x at x = at gives I_x = J^T J (types.ts): the closed form
   * J^T diag(1/sigma^2, 2/sigma^2) J of RABI's jac_exact as [mu(x), sqrt 2 sigma(x)] / sigma(at).
   */
  fisherCoordinates(x: tf.Tensor2D, at: tf.Tensor2D): tf.Tensor2D {
    this.checkX(x);
    this.checkX(at);
    return tf.tidy(() => {
      const { mu, sigma } = this.head(this.embedX(x));
      const fixed = this.head(this.embedX(at)).sigma;
      return tf.concat(
        [tf.div(mu, fixed), tf.mul(tf.div(sigma, fixed), Math.SQRT2)],
        1,
      ) as tf.Tensor2D;
    });
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    this.checkPair(theta, x);
    return tf.tidy(() => {
      const { mu, sigma } = this.head(this.embedX(x));
      const r = tf.div(tf.sub(this.z.normalizeTheta(theta), mu), sigma);
      const perDim = tf.add(tf.mul(tf.square(r), 0.5), tf.log(sigma));
      const constant = 0.5 * LOG_2PI * this.thetaDim + this.z.thetaLogScale;
      return tf.neg(tf.add(tf.sum(perDim, 1), constant)) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    this.checkX(x);
    this.checkN(n);
    const B = x.shape[0];
    return tf.tidy(() => {
      const { mu, sigma } = this.head(this.embedX(x));
      const eps = rng.normalTensor([n, B, this.thetaDim]);
      // [B, D] broadcasts against [n, B, D].
      const u = tf.add(tf.mul(eps, sigma), mu) as tf.Tensor3D;
      return tf.reshape(
        this.z.denormalizeTheta(tf.reshape(u, [n * B, this.thetaDim]) as tf.Tensor2D),
        [n, B, this.thetaDim],
      ) as tf.Tensor3D;
    });
  }
}
