// Mixture density network: q(theta | x) = sum_c pi_c(x) N(mu_c(x), diag sigma_c(x)^2), RABI's
// `mixture_gaussian`: 10 components, ReLU MLP [200, 200] from z-scored x to logits, means and
// softplus scales (floor minScale), in z-scored theta units; weights via logSoftmax.
//
// rsample: the component index is drawn from pi(x) (a discrete choice: no gradient flows through it);
// the draw within the component is reparameterized, mu_c(x) + sigma_c(x) eps. So gradients with
// respect to x and the weights reach the samples through mu and sigma of the drawn component only.
import { tf } from '../backend.js';
import { logSoftmax, logSumExp, softmax, softplus } from '../ops.js';
import type { RandomStream, ZScore } from '../types.js';
import { BaseEstimator, LOG_2PI } from './base.js';
import { Mlp } from './mlp.js';

export interface MdnConfig {
  hidden: number[];
  components: number;
  minScale: number;
  [key: string]: unknown;
}

export const MDN_DEFAULTS = { hidden: [200, 200], components: 10, minScale: 1e-5 };

export class MixtureDensityNetwork extends BaseEstimator {
  readonly kind = 'mdn' as const;
  private readonly net: Mlp;
  private readonly C: number;
  private readonly minScale: number;

  constructor(
    thetaDim: number,
    xDim: number,
    config: MdnConfig,
    zscore: ZScore,
    rng: RandomStream,
  ) {
    super(thetaDim, xDim, config, zscore);
    if (!Number.isInteger(config.components) || config.components < 1) {
      throw new Error(`components must be a positive integer, got ${config.components}`);
    }
    if (!(config.minScale >= 0)) throw new Error(`minScale must be >= 0, got ${config.minScale}`);
    this.C = config.components;
    this.minScale = config.minScale;
    const out = this.C * (1 + 2 * thetaDim);
    this.net = new Mlp(
      this.params,
      'net',
      [this.buildEmbedding(rng.fork('embedding')), ...config.hidden, out],
      rng.fork('net'),
    );
  }

  /** logits [B, C]; means and scales [B, C, D] in z-scored theta units. */
  private head(xz: tf.Tensor2D): { logits: tf.Tensor2D; mu: tf.Tensor3D; sigma: tf.Tensor3D } {
    const out = this.net.forward(xz);
    const B = out.shape[0];
    const C = this.C;
    const CD = C * this.thetaDim;
    const logits = tf.slice(out, [0, 0], [B, C]);
    const mu = tf.reshape(tf.slice(out, [0, C], [B, CD]), [B, C, this.thetaDim]) as tf.Tensor3D;
    const raw = tf.reshape(tf.slice(out, [0, C + CD], [B, CD]), [B, C, this.thetaDim]);
    const sigma = tf.add(softplus(raw), this.minScale) as tf.Tensor3D;
    return { logits, mu, sigma };
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    this.checkPair(theta, x);
    return tf.tidy(() => {
      const { logits, mu, sigma } = this.head(this.embedX(x));
      const u = tf.expandDims(this.z.normalizeTheta(theta), 1); // [B, 1, D]
      const r = tf.div(tf.sub(u, mu), sigma);
      const perComp = tf.neg(tf.sum(tf.add(tf.mul(tf.square(r), 0.5), tf.log(sigma)), 2)); // [B, C]
      const joint = tf.add(logSoftmax(logits, 1), perComp);
      const constant = 0.5 * LOG_2PI * this.thetaDim + this.z.thetaLogScale;
      return tf.sub(logSumExp(joint, 1), constant) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    this.checkX(x);
    this.checkN(n);
    const B = x.shape[0];
    const C = this.C;
    const D = this.thetaDim;
    return tf.tidy(() => {
      const { logits, mu, sigma } = this.head(this.embedX(x));
      const probs = softmax(logits, 1).dataSync();
      // Components first (n * B uniforms, sample-major), then the base noise.
      const oneHot = new Float32Array(n * B * C);
      for (let m = 0; m < n; m++) {
        for (let b = 0; b < B; b++) {
          const u = rng.uniform();
          let c = 0;
          let acc = probs[b * C]!;
          while (u >= acc && c < C - 1) acc += probs[b * C + ++c]!;
          oneHot[(m * B + b) * C + c] = 1;
        }
      }
      const eps = rng.normalTensor([n * B, D]) as tf.Tensor2D;
      const mask = tf.tensor3d(oneHot, [n * B, C, 1]);
      const pick = (t: tf.Tensor3D): tf.Tensor2D =>
        tf.sum(tf.mul(mask, tf.tile(t, [n, 1, 1])), 1) as tf.Tensor2D;
      const uz = tf.add(tf.mul(eps, pick(sigma)), pick(mu)) as tf.Tensor2D;
      return tf.reshape(this.z.denormalizeTheta(uz), [n, B, D]) as tf.Tensor3D;
    });
  }
}
