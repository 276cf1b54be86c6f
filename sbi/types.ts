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
   * Rows per block of a dataset (sbi/simulate.ts): a block should take a minute or two of one core,
   * so that sweeps draw large datasets as blocks on many workers. Part of what a dataset is: a
   * change redraws every dataset of more rows than the old figure. Default 1,000,000.
   */
  readonly simulationBlock?: number;
  /**
   * The share of simulations a dataset keeps (the rest come back as non-finite rows and are
   * dropped), for cost planning: training rows and test points are this share of the simulations.
   * Absent: every simulation is kept.
   */
  readonly keptShare?: number;
  /** x is these equal-length traces back to back (pyloric: one voltage trace per neuron), for plots. */
  readonly xTraces?: readonly string[];
  /**
   * Simulates one x per row of theta (n rows). A simulation that fails yields a row of NaN; callers
   * drop and count such rows. Deterministic given the stream.
   */
  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array;
  /**
   * Simulations for posterior predictives where `simulate` filters (pyloric: RABI's on-the-fly
   * simulator keeps invalid traces). Absent: `simulate`.
   */
  simulateUnfiltered?(theta: Float32Array, n: number, rng: RandomStream): Float32Array;
  /** log p(xo | theta) per row of theta (n rows), where the likelihood is tractable. */
  logLikelihood?(theta: Float32Array, n: number, xo: Float32Array): Float64Array;
  /** Exact posterior samples for one observation, where the task has them. */
  referencePosterior?(xo: Float32Array, n: number, rng: RandomStream): Float32Array;
  /** Closed-form Gaussian posterior, where the task has one. */
  analyticPosterior?(xo: Float32Array): GaussianPosterior;
}

export type EstimatorKind =
  'maf' | 'nsf' | 'gaussian' | 'mdn' | 'multivariate_gaussian' | 'maf_ensemble' | 'linear_gaussian';

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
 * Rows in a fused trainer's memory: z-scored theta (u) and conditioner input (x), rows ldU and ldX
 * floats apart. Views, valid until the trainer's next call.
 */
export interface FusedRows {
  u: Float32Array;
  x: Float32Array;
  ldU: number;
  ldX: number;
}

/** What a fused trainer lends a defense's fused form (FusedPlan) during a step. */
export interface FusedPass {
  readonly thetaDim: number;
  readonly xDim: number;
  /** The model's z-score of x: conditioner input = (x - xMean) / xStd. */
  readonly xMean: readonly number[];
  readonly xStd: readonly number[];
  /** Raw training x [n, xDim], numbered as the step's rows number them. */
  readonly trainX: Float32Array;
  /** The step's batch as the loss will see it; a defense may rewrite its x. */
  batch(): FusedRows;
  /** d(sum of the batch rows' NLL) / d(their conditioner input) at the batch as it stands: n rows, ldX apart. */
  inputGradient(n: number): Float32Array;
  /** Rows for probe passes (FusedPlan.probeRows of them). */
  probes(): FusedRows;
  /** The NLL of probe rows [0, count), float64, up to a constant shared by every row. */
  probeNLL(count: number): Float64Array;
  /**
   * Right after probeNLL: folds the weight gradient of sum_r coef[r] nll_r over those probe rows
   * into the plan's EMA and adds the bias-corrected EMA to the step's gradient. Returns the squared
   * norm of the sum.
   */
  addProbeGradientEma(coef: Float32Array): number;
  /**
   * The exact FIM trace (fim-trace.ts) on the batch's first `count` rows, from base noise
   * [mcSamples * count, thetaDim] (row m * count + b: sample m of row b, as rsample draws it): folds
   * the weight gradient of beta * mean over finite rows of mean_m |d log q(theta_mb | x_b) / dx|^2,
   * theta_mb reparameterized, into the plan's EMA and adds the bias-corrected EMA to the step's
   * gradient. Returns the squared norm of the sum. Only where the plan asked for it (exactFim).
   */
  addFimTraceGradientEma?(
    count: number,
    mcSamples: number,
    beta: number,
    noise: Float32Array,
  ): number;
}

/**
 * A defense's fused form: what a fused trainer (DensityEstimator.fusedTrainer) runs in its step in
 * place of the defense's tfjs hooks, computing the same numbers from the same random draws.
 */
export interface FusedPlan {
  /** Probe rows needed beside a batch of maxBatch rows; absent: none. */
  probeRows?(maxBatch: number): number;
  /** Whether addGradients calls FusedPass.addFimTraceGradientEma (the trainer then keeps its buffers). */
  readonly exactFim?: boolean;
  /** Whether prepareBatch calls FusedPass.inputGradient. */
  readonly usesInputGradient?: boolean;
  /** The gradient EMA that addProbeGradientEma keeps; the trainer loads and stores it with the weights. */
  readonly ema?: HostEma;
  /** Rewrites the batch's x before the loss (noise augmentation, adversarial training). */
  prepareBatch?(pass: FusedPass, rows: ArrayLike<number>, ctx: FusedStepContext): void;
  /** Adds the regularizer's gradient; returns the squared norm of the sum, or null where it added nothing. */
  addGradients?(pass: FusedPass, n: number, ctx: FusedStepContext): number | null;
}

/** What a fused step needs from trainNPE beside the rows: the defense's stream, the x scale. */
export interface FusedStepContext {
  rng: RandomStream;
  xScale: number;
}

/**
 * A plain-NLL training step that runs outside tfjs on host memory (an estimator offers one where it
 * has hand-written kernels). Weights and moments move in (load) after the variables changed and out
 * (store) where they are read; in between, step(rows) trains on rows of the data the trainer was
 * built with, over as many epochs as come.
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
  /** Mean NLL of raw rows under the weights in the trainer's memory (validation after an epoch). */
  meanNLL?(theta: Float32Array, x: Float32Array, n: number): number;
  dispose(): void;
}

/**
 * Inference outside tfjs for an estimator with hand-written kernels (host memory, float32 rows, raw
 * units), drawing from a stream exactly as the tfjs methods do, so both give the same numbers up to
 * float rounding. A snapshot of the weights when it was made: make a new one after training.
 */
export interface FusedInference {
  /** n draws per row of x ([B, xDim]) as sample() draws them: [n * B, thetaDim], row m * B + b. */
  sample(x: Float32Array, B: number, n: number, rng: RandomStream): Float32Array;
  /** log q(theta_r | x_r) for paired rows. */
  logProb(theta: Float32Array, x: Float32Array, rows: number): Float64Array;
  /**
   * The gradient with respect to xAdv ([B, xDim]) of the sum over rows of the attack objective
   * (attacks/objectives.ts: rkl and fkl from mcSamples draws, nll of the true theta [B, thetaDim]),
   * drawing from rng as attackObjectivePerRow does.
   */
  objectiveGradient(
    objective: 'rkl' | 'fkl' | 'nll',
    xAdv: Float32Array,
    xClean: Float32Array,
    theta: Float32Array | null,
    B: number,
    rng: RandomStream,
    mcSamples: number,
  ): Float32Array;
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
  /** Inference on hand-written kernels for the current weights; null where there is none. */
  fusedInference?(): FusedInference | null;
  /**
   * Where the FIM with respect to x is analytic (the Gaussian families): coordinates c(x; at) [B, K]
   * whose Jacobian J in x, taken at x = at, gives I_x = J^T J. `at` carries the metric (the
   * posterior's own covariance) and is not differentiated in x; both are differentiable in the
   * weights, with the twice-differentiable ops.
   */
  fisherCoordinates?(x: tf.Tensor2D, at: tf.Tensor2D): tf.Tensor2D;
  /**
   * Where the estimator is fitted in closed form (the linear-Gaussian one): its weights from the
   * training rows (raw theta [n, thetaDim] and x [n, xDim], as logProb takes them), in place of
   * trainNPE's epochs.
   */
  fitClosedForm?(theta: Float32Array, x: Float32Array, n: number): void;
  dispose(): void;
}
