// The contracts between the parts of sbi/: tasks (prior + simulator), density estimators, and the
// seeded random stream every stochastic step draws from. Arrays are row-major Float32Array
// batches: n rows of `dim` values.
import type { tf } from './backend.js';

/** A seeded, splittable random stream (implemented in rng.ts). */
export interface RandomStream {
  /** Uniform on [0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
  /** Integer uniform on [0, n). */
  int(n: number): number;
  fillUniform(out: Float32Array | Float64Array): void;
  fillNormal(out: Float32Array | Float64Array): void;
  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array;
  gamma(shape: number): number;
  beta(a: number, b: number): number;
  binomial(n: number, p: number): number;
  /** An independent stream derived from this one's seed and `key`; it does not advance this one. */
  fork(key: string | number): RandomStream;
  /** A tensor of standard normals drawn from this stream (never from tf's own generator). */
  normalTensor(shape: number[]): tf.Tensor;
  uniformTensor(shape: number[]): tf.Tensor;
}

export interface Support {
  /** Per-dimension bounds; -Infinity / Infinity when unbounded. */
  lower: number[];
  upper: number[];
}

export interface Prior {
  readonly dim: number;
  readonly support: Support;
  /** n draws, n * dim values. */
  sample(n: number, rng: RandomStream): Float32Array;
  /** log p(theta) per row; -Infinity outside the support. */
  logProb(theta: Float32Array, n: number): Float64Array;
}

export interface GaussianPosterior {
  mean: number[];
  /** Full covariance, dim x dim. */
  cov: number[][];
}

export interface Task {
  readonly name: string;
  readonly thetaDim: number;
  readonly xDim: number;
  readonly paramNames: string[];
  readonly prior: Prior;
  /**
   * Simulates one x per row of theta (n rows). A simulation that fails yields a row of NaN; callers
   * drop and count such rows. Deterministic given the stream.
   */
  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array;
  /** log p(xo | theta) per row of theta (n rows), where the likelihood is tractable. */
  logLikelihood?(theta: Float32Array, n: number, xo: Float32Array): Float64Array;
  /** Exact posterior samples for one observation, where the task has them. */
  referencePosterior?(xo: Float32Array, n: number, rng: RandomStream): Float32Array;
  /** Closed-form Gaussian posterior, where the task has one. */
  analyticPosterior?(xo: Float32Array): GaussianPosterior;
}

export type EstimatorKind = 'maf' | 'nsf' | 'gaussian' | 'mdn';

/** Z-score statistics from the training split; x is z-scored inside the model so it sees raw x. */
export interface ZScore {
  thetaMean: number[];
  thetaStd: number[];
  xMean: number[];
  xStd: number[];
}

export interface SerializedWeights {
  name: string;
  shape: number[];
  values: number[];
}

/**
 * A conditional density estimator q(theta | x). All methods take raw (un-normalized) x and theta;
 * the z-score layers are inside. logProb and rsample use only the twice-differentiable ops of
 * ops.ts, so the FIM regularizer may differentiate them with respect to x and then the weights.
 */
/** Adam's state on host backends: the step count and one moment array per trained variable. */
export interface AdamHostState {
  step: number;
  readonly m: Float32Array[];
  readonly v: Float32Array[];
}

/** A gradient EMA whose moments a fused trainer can read and write as host arrays. */
export interface HostEma {
  readonly decay: number;
  /** Steps folded in so far and copies of the moments, keyed as the EMA keys them. */
  exportHost(): { t: number; moments: Map<string, Float32Array> };
  importHost(t: number, moments: { name: string; shape: number[]; values: Float32Array }[]): void;
}

/**
 * A training regularizer that a fused trainer runs itself instead of tfjs: fim-fast with the
 * batch's own theta (sbi/defenses/fim-fast.ts), on the first ceil(batchFraction * B) rows.
 */
export interface FusedFimFastPlan {
  kind: 'fim-fast';
  beta: number;
  relStep: number;
  batchFraction: number;
  probes: number;
  probe: 'rademacher' | 'gaussian';
  /** The defense's gradient EMA (keyed by variable index), read at load and written at store. */
  ema: HostEma;
}

/** Noise augmentation (sbi/defenses/noise.ts): x + delta, delta uniform in the L2 ball of radius trainEps * xScale. */
export interface FusedNoisePlan {
  kind: 'noise';
  trainEps: number;
}

/**
 * Adversarial training (sbi/defenses/adversarial.ts): each batch x replaced by the targeted L2-PGD
 * iterate (steps of relStep * xScale inside the ball of radius trainEps * xScale, clipped to box).
 */
export interface FusedAdversarialPlan {
  kind: 'adversarial';
  trainEps: number;
  steps: number;
  relStep: number;
  box: { min: number; max: number };
}

export type FusedPlan = FusedFimFastPlan | FusedNoisePlan | FusedAdversarialPlan;

/** What a fused step needs from trainNPE beside the rows: the defense's stream, the x scale. */
export interface FusedStepContext {
  rng: RandomStream;
  xScale: number;
}

/**
 * A plain-NLL training step that runs outside tfjs on host memory (an estimator offers one where it
 * has hand-written kernels). Weights and moments move in at the start of an epoch (load) and out at
 * its end (store); in between, step(rows) trains on rows of the data the trainer was built with.
 */
export interface FusedTrainer {
  load(adam: AdamHostState, vars: tf.Variable[]): void;
  /**
   * One clipped Adam step on the given training rows; returns the batch's mean NLL. ctx feeds the
   * defense the trainer runs, if any (probes, noise).
   */
  step(
    rows: ArrayLike<number>,
    adam: AdamHostState,
    hp: { clipNorm: number; learningRate: number; beta1: number; beta2: number; epsilon: number },
    ctx?: FusedStepContext,
  ): number;
  store(adam: AdamHostState, vars: tf.Variable[]): void;
  /** Mean NLL of raw rows under the weights last loaded or stored (validation after an epoch). */
  meanNLL?(theta: Float32Array, x: Float32Array, n: number): number;
  dispose(): void;
}

export interface DensityEstimator {
  readonly kind: EstimatorKind;
  readonly thetaDim: number;
  readonly xDim: number;
  /** The architecture, JSON-serializable, enough to rebuild the model with createEstimator. */
  readonly config: Record<string, unknown>;
  zscore: ZScore;
  /** log q(theta_b | x_b) for paired rows: theta [B, thetaDim], x [B, xDim] -> [B]. */
  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D;
  /**
   * n reparameterized samples per row of x: [n, B, thetaDim], differentiable with respect to x and
   * the weights. The base noise comes from rng.
   */
  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D;
  /** As rsample, but for drawing only (may skip work that gradients need). */
  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D;
  trainableVariables(): tf.Variable[];
  getWeights(): SerializedWeights[];
  setWeights(weights: SerializedWeights[]): void;
  /**
   * A fused trainer over training rows theta [n, thetaDim] and x [n, xDim] (raw; the estimator
   * z-scores them), for batches of at most maxBatch rows; null where the estimator has none for its
   * current configuration. With a plan the trainer also runs that regularizer.
   */
  fusedTrainer?(
    theta: Float32Array,
    x: Float32Array,
    n: number,
    maxBatch: number,
    plan?: FusedPlan,
  ): FusedTrainer | null;
  dispose(): void;
}
