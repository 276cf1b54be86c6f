// A conditional autoregressive flow: z-scored theta -> T elementwise bijections, each parameterized by
// its own MADE of (theta_<i in that layer's order, z-scored x) -> base N(0, I). Density takes one MADE
// pass per transform; sampling inverts each transform with D passes (after pass t the first t
// dimensions in the order are exact). MAF and NSF differ only in the elementwise bijection.
import { tf } from '../backend.js';
import type { RandomStream, ZScore } from '../types.js';
import { BaseEstimator } from './base.js';
import { Made, type MadeDegrees, type MadeState, validateOrder } from './made.js';

/** Elementwise bijection u -> z given per-dimension parameters from a MADE. */
export interface ElementwiseBijection {
  readonly paramsPerDim: number;
  readonly layout: 'paramMajor' | 'dimMajor';
  /** u [B, D] -> z [B, D] and log|dz/du| summed over dimensions [B]. */
  forward(u: tf.Tensor2D, params: tf.Tensor2D): { z: tf.Tensor2D; logDet: tf.Tensor1D };
  /** z -> u for the same parameters. */
  inverse(z: tf.Tensor2D, params: tf.Tensor2D): tf.Tensor2D;
  /** Releases kept constants, if any. */
  dispose?(): void;
}

export interface AutoregressiveConfig {
  hidden: number[];
  numTransforms: number;
  /** One variable order per transform (RABI: pyro draws a random order per layer). */
  orders: number[][];
}

/** Random orders per transform, derived from the stream (so a seed fixes them; they are saved in the config). */
export function drawOrders(rng: RandomStream, dim: number, numTransforms: number): number[][] {
  return Array.from({ length: numTransforms }, (_, l) =>
    Array.from(rng.fork(`order-${l}`).permutation(dim)),
  );
}

export abstract class AutoregressiveFlow extends BaseEstimator {
  protected readonly mades: Made[];
  protected readonly bijection: ElementwiseBijection;

  constructor(
    thetaDim: number,
    xDim: number,
    config: AutoregressiveConfig & Record<string, unknown>,
    zscore: ZScore,
    rng: RandomStream,
    bijection: ElementwiseBijection,
  ) {
    super(thetaDim, xDim, config, zscore);
    if (!Number.isInteger(config.numTransforms) || config.numTransforms < 1) {
      throw new Error(`numTransforms must be a positive integer, got ${config.numTransforms}`);
    }
    if (!Array.isArray(config.orders) || config.orders.length !== config.numTransforms) {
      throw new Error(
        `expected ${config.numTransforms} variable orders, got ${JSON.stringify(config.orders)}`,
      );
    }
    config.orders.forEach((o) => validateOrder(Array.isArray(o) ? o : [], thetaDim));
    this.bijection = bijection;
    const ctxDim = this.buildEmbedding(rng.fork('embedding'));
    this.mades = config.orders.map(
      (order, l) =>
        new Made(
          this.params,
          `t${l}`,
          {
            thetaDim,
            ctxDim,
            hidden: config.hidden,
            paramsPerDim: bijection.paramsPerDim,
            order,
            layout: bijection.layout,
            ...(config.degrees !== undefined && config.degrees !== 'cycle'
              ? { degrees: config.degrees as MadeDegrees }
              : {}),
            ...(config.biasInit === 'torch' ? { biasInit: 'torch' as const } : {}),
            ...(config.inputFanIn === 'separate' ? { inputFanIn: 'separate' as const } : {}),
            ...(config.contextLayer === 'tanh' ? { contextLayer: 'tanh' as const } : {}),
            ...(config.activation === 'tanh' ? { activation: 'tanh' as const } : {}),
          },
          rng.fork(`made-${l}`),
        ),
    );
  }

  /** z-scored theta u -> base z, with log|det dz/du| [B]. xz: z-scored x, same rows. */
  toBase(u: tf.Tensor2D, xz: tf.Tensor2D): { z: tf.Tensor2D; logDet: tf.Tensor1D } {
    let z = u;
    let logDet: tf.Tensor1D | undefined;
    for (const made of this.mades) {
      const params = made.forward(z, made.prepare(xz));
      const r = this.bijection.forward(z, params);
      z = r.z;
      logDet = logDet ? (tf.add(logDet, r.logDet) as tf.Tensor1D) : r.logDet;
    }
    return { z, logDet: logDet! };
  }

  /** base z [repeat * B, D] -> z-scored theta; xz [B, Dx] is tiled `repeat` times (sample-major). */
  fromBase(z: tf.Tensor2D, xz: tf.Tensor2D, repeat = 1): tf.Tensor2D {
    const D = this.thetaDim;
    let y = z;
    for (let l = this.mades.length - 1; l >= 0; l--) {
      const made = this.mades[l]!;
      const state: MadeState = made.prepare(xz, repeat);
      // Pass t makes the t-th dimension of the order exact; starting from zeros, D passes suffice.
      let u = tf.zerosLike(y) as tf.Tensor2D;
      for (let t = 0; t < D; t++) u = this.bijection.inverse(y, made.forward(u, state));
      y = u;
    }
    return y;
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    this.checkPair(theta, x);
    return tf.tidy(() => {
      const { z, logDet } = this.toBase(this.z.normalizeTheta(theta), this.embedX(x));
      return tf.sub(
        tf.add(this.standardNormalLogProb(z), logDet),
        this.z.thetaLogScale,
      ) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    this.checkX(x);
    this.checkN(n);
    const B = x.shape[0];
    return tf.tidy(() => {
      const eps = rng.normalTensor([n * B, this.thetaDim]) as tf.Tensor2D;
      const u = this.fromBase(eps, this.embedX(x), n);
      return tf.reshape(this.z.denormalizeTheta(u), [n, B, this.thetaDim]) as tf.Tensor3D;
    });
  }

  /**
   * The same draws as rsample, without a tape to serve: each inversion pass runs in its own tidy, so
   * only the current pass's intermediates are alive. rsample keeps every pass's (D per transform)
   * until it returns, which for 12,000 draws of a 10-d NSF outgrew wasm's 4 GB heap.
   */
  override sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    this.checkX(x);
    this.checkN(n);
    const B = x.shape[0];
    const D = this.thetaDim;
    const eps = rng.normalTensor([n * B, D]) as tf.Tensor2D;
    const xz = tf.tidy(() => this.embedX(x));
    let y = eps;
    try {
      for (let l = this.mades.length - 1; l >= 0; l--) {
        const made = this.mades[l]!;
        const prev = y;
        y = tf.tidy(() => {
          const state = made.prepare(xz, n);
          let u = tf.zerosLike(prev) as tf.Tensor2D;
          for (let t = 0; t < D; t++) {
            const next = tf.tidy(() => this.bijection.inverse(prev, made.forward(u, state)));
            u.dispose();
            u = next;
          }
          return u;
        });
        prev.dispose();
      }
      return tf.tidy(() => tf.reshape(this.z.denormalizeTheta(y), [n, B, D]) as tf.Tensor3D);
    } finally {
      y.dispose();
      xz.dispose();
    }
  }

  override dispose(): void {
    for (const m of this.mades) m.dispose();
    this.bijection.dispose?.();
    super.dispose();
  }
}
