// What every estimator shares: its weights, its z-score layers, input checks and the tiling of x for
// n samples per row.
import { tf } from '../backend.js';
import type {
  DensityEstimator,
  EstimatorKind,
  RandomStream,
  SerializedWeights,
  ZScore,
} from '../types.js';
import { Mlp } from './mlp.js';
import { PyloricCnn } from './pyloric-cnn.js';
import { ParamStore } from './params.js';
import { ZScoreTensors } from './zscore.js';

export const LOG_2PI = Math.log(2 * Math.PI);

/**
 * The `embedding` config values: x as it is, RABI's MLP embedding net (paper.md section 7), or
 * RABI's pyloric per-neuron CNN + MLP (pyloric.md section 4.1).
 */
export const EMBEDDINGS = ['identity', 'mlp', 'pyloric-cnn'] as const;
export type Embedding = (typeof EMBEDDINGS)[number];
/** RABI's `mlp` embedding: D_x -> 400 -> 200 -> 100 -> 50, ReLU between layers, linear output. */
export const MLP_EMBEDDING_SIZES: readonly number[] = [400, 200, 100, 50];

export abstract class BaseEstimator implements DensityEstimator {
  abstract readonly kind: EstimatorKind;
  readonly thetaDim: number;
  readonly xDim: number;
  readonly config: Record<string, unknown>;
  protected readonly params = new ParamStore();
  protected z: ZScoreTensors;
  private embedding: Mlp | PyloricCnn | null = null;

  constructor(thetaDim: number, xDim: number, config: Record<string, unknown>, zscore: ZScore) {
    if (!Number.isInteger(thetaDim) || thetaDim < 1)
      throw new Error(`thetaDim must be a positive integer, got ${thetaDim}`);
    if (!Number.isInteger(xDim) || xDim < 1)
      throw new Error(`xDim must be a positive integer, got ${xDim}`);
    this.thetaDim = thetaDim;
    this.xDim = xDim;
    this.config = config;
    this.z = new ZScoreTensors(zscore, thetaDim, xDim);
  }

  get zscore(): ZScore {
    return this.z.stats;
  }

  /** Assign a whole new ZScore object; in-place edits of its arrays are not seen. */
  set zscore(stats: ZScore) {
    const next = new ZScoreTensors(stats, this.thetaDim, this.xDim);
    this.z.dispose();
    this.z = next;
  }

  /**
   * Builds the embedding net named by config.embedding (weights from rng) and returns the width of
   * what the conditioner sees. Subclasses call it once, before building their conditioner.
   */
  protected buildEmbedding(rng: RandomStream): number {
    const kind = this.config.embedding ?? 'identity';
    if (kind === 'identity') return this.xDim;
    if (kind === 'pyloric-cnn') {
      const cnn = new PyloricCnn(this.params, 'embedding', this.xDim, rng);
      this.embedding = cnn;
      return cnn.outputDim;
    }
    if (kind !== 'mlp') {
      throw new Error(
        `embedding must be one of ${EMBEDDINGS.join(', ')}, got ${JSON.stringify(kind)}`,
      );
    }
    this.embedding = new Mlp(this.params, 'embedding', [this.xDim, ...MLP_EMBEDDING_SIZES], rng);
    return MLP_EMBEDDING_SIZES[MLP_EMBEDDING_SIZES.length - 1]!;
  }

  /** Raw x -> z-scored x -> embedding: the conditioner's input, differentiable in x. */
  protected embedX(x: tf.Tensor2D): tf.Tensor2D {
    const xz = this.z.normalizeX(x);
    return this.embedding ? this.embedding.forward(xz) : xz;
  }

  abstract logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D;
  abstract rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D;

  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    // Outside a gradient tape rsample records nothing, so drawing is the same computation.
    return this.rsample(x, n, rng);
  }

  trainableVariables(): tf.Variable[] {
    return this.params.variables();
  }

  getWeights(): SerializedWeights[] {
    return this.params.get();
  }

  setWeights(weights: SerializedWeights[]): void {
    this.params.set(weights);
  }

  dispose(): void {
    this.params.dispose();
    this.z.dispose();
  }

  protected checkX(x: tf.Tensor2D): void {
    if (x.rank !== 2 || x.shape[1] !== this.xDim) {
      throw new Error(`x must have shape [B, ${this.xDim}], got [${x.shape}]`);
    }
  }

  protected checkPair(theta: tf.Tensor2D, x: tf.Tensor2D): void {
    this.checkX(x);
    if (theta.rank !== 2 || theta.shape[1] !== this.thetaDim) {
      throw new Error(`theta must have shape [B, ${this.thetaDim}], got [${theta.shape}]`);
    }
    if (theta.shape[0] !== x.shape[0]) {
      throw new Error(
        `theta and x must have the same number of rows, got ${theta.shape[0]} and ${x.shape[0]}`,
      );
    }
  }

  protected checkN(n: number): void {
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`number of samples must be a positive integer, got ${n}`);
  }

  /** log N(z; 0, I) summed over the last axis of z [B, D]. */
  protected standardNormalLogProb(z: tf.Tensor2D): tf.Tensor1D {
    return tf.sub(tf.mul(tf.sum(tf.square(z), 1), -0.5), 0.5 * LOG_2PI * z.shape[1]) as tf.Tensor1D;
  }
}
