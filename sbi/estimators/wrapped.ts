// What an estimator that changes theta or x around another one (ConstrainedEstimator,
// XTransformedEstimator) passes through unchanged: its kind and dimensions, z-score statistics,
// variables, weights and disposal. The config is the inner one plus the wrapper's own key, which
// restoreEstimator reads to wrap a saved model again.
import type { tf } from '../backend.js';
import type {
  DensityEstimator,
  EstimatorKind,
  RandomStream,
  SerializedWeights,
  ZScore,
} from '../types.js';

export abstract class WrappedEstimator implements DensityEstimator {
  readonly kind: EstimatorKind;
  readonly thetaDim: number;
  readonly xDim: number;
  readonly config: Record<string, unknown>;
  readonly inner: DensityEstimator;

  protected constructor(inner: DensityEstimator, configKey: string, configValue: unknown) {
    this.inner = inner;
    this.kind = inner.kind;
    this.thetaDim = inner.thetaDim;
    this.xDim = inner.xDim;
    this.config = { ...inner.config, [configKey]: structuredClone(configValue) };
  }

  /** The inner model's statistics (of the transformed theta or x it was trained on). */
  get zscore(): ZScore {
    return this.inner.zscore;
  }

  set zscore(z: ZScore) {
    this.inner.zscore = z;
  }

  abstract logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D;
  abstract rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D;
  abstract sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D;

  trainableVariables(): tf.Variable[] {
    return this.inner.trainableVariables();
  }

  getWeights(): SerializedWeights[] {
    return this.inner.getWeights();
  }

  setWeights(weights: SerializedWeights[]): void {
    this.inner.setWeights(weights);
  }

  dispose(): void {
    this.inner.dispose();
  }
}
