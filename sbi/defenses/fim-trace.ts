// The FIM-trace regularizer as RABI trains with it (paper.md 2.1-2.2, FIMTraceRegularizer with
// algorithm "ema"): R = beta * mean_b tr I_x(x_b), with
//   I_x = E_{theta ~ q(.|x)} [s s^T],  s = grad_x log q(theta | x)  (x raw: the z-score is in the model),
// estimated from M reparameterized samples theta_m = rsample(x) that stay attached to the weights, and
// tr I_x ~ t_b = mean_m ||s_mb||^2. Its gradient with respect to the weights is a double backprop
// (tf.grad for s, nested in tf.variableGrads), so everything the estimator computes must use the
// twice-differentiable ops of ops.ts (ARCHITECTURE.md, the tfjs double-backprop trap). The gradient
// goes through an EMA (weight 0.85 on the new one, bias-corrected) and is added to the NLL gradient
// before the global clip; the regularizer's value is never part of the reported loss.
import { tf } from '../backend.js';
import type { DefenseContext, TrainingDefense } from '../npe.js';
import { where } from '../ops.js';
import type {
  DensityEstimator,
  FusedPass,
  FusedPlan,
  FusedStepContext,
  HostEma,
  RandomStream,
} from '../types.js';
import { GradientEma, RABI_EMA_DECAY, type EmaState } from './ema.js';

/** RABI's config/defense/fisher_trace.yaml: beta 0.05, ema_mc_samples 5, ema_decay 0.85. */
export const FIM_DEFAULTS = Object.freeze({ beta: 0.05, mcSamples: 5, decay: RABI_EMA_DECAY });

export interface FimOptions {
  beta?: number;
  /** Samples of theta per x for the Monte Carlo trace (RABI ema_mc_samples). */
  mcSamples?: number;
  /** EMA weight on the new gradient. */
  decay?: number;
  /**
   * The share of the batch the regularizer is evaluated on (its first rows: batches are shuffled, so
   * they are a random subset). The mean over the subset estimates the batch mean without bias; the
   * cost falls in proportion, the noise grows. RABI: the whole batch (1).
   */
  batchFraction?: number;
  /**
   * RABI's grad_clamp_val: a global L2-norm bound on the regularizer's smoothed weight gradient
   * alone, applied before the NLL gradient is added (RABI sets 1,000 for the pyloric network only).
   */
  gradClamp?: number;
}

/**
 * ||grad_x log q(theta_m | x_b)||^2 for M reparameterized theta_m ~ q(.|x_b): [M, B]. The graph is
 * kept, so the result is differentiable with respect to the weights, through the score and through
 * the samples. The score is the partial derivative in the conditioning x: the samples depend on x
 * too, but on another copy of it.
 */
export function squaredScores(
  model: DensityEstimator,
  x: tf.Tensor2D,
  mcSamples: number,
  rng: RandomStream,
): tf.Tensor2D {
  return tf.tidy(
    () => tf.sum(tf.square(attachedScores(model, x, mcSamples, rng)), 2) as tf.Tensor2D,
  );
}

/**
 * The scores grad_x log q(theta_m | x_b) themselves, [M, B, xDim], for M reparameterized theta_m that
 * stay attached to the weights (as squaredScores draws them): I_x ~ mean_m s_m s_m^T.
 */
export function attachedScores(
  model: DensityEstimator,
  x: tf.Tensor2D,
  mcSamples: number,
  rng: RandomStream,
): tf.Tensor3D {
  const [b, d] = x.shape;
  return tf.tidy(() => {
    const theta = model.rsample(x, mcSamples, rng);
    const flat = tf.reshape(theta, [mcSamples * b, model.thetaDim]) as tf.Tensor2D;
    const xr = tf.tile(x, [mcSamples, 1]) as tf.Tensor2D; // row m*B + b is x_b, as in the reshape
    // Rows are independent, so the gradient of the sum is each row's own score.
    const s = tf.grad((xx: tf.Tensor) => tf.sum(model.logProb(flat, xx as tf.Tensor2D)))(xr);
    return tf.reshape(s, [mcSamples, b, d]) as tf.Tensor3D;
  });
}

/**
 * beta * mean over the rows whose t_b is finite, from per-sample values [M, B]: t_b is their mean
 * over M. RABI drops non-finite t_b; with none left the regularizer is 0.
 */
export function finiteMeanTrace(perSample: tf.Tensor2D, beta: number): tf.Scalar {
  return tf.tidy(() => {
    const t = tf.mean(perSample, 0);
    const finite = tf.isFinite(t);
    const kept = where(finite, t, tf.zerosLike(t));
    const count = tf.maximum(tf.sum(tf.cast(finite, 'float32')), 1);
    return tf.mul(tf.div(tf.sum(kept), count), beta) as tf.Scalar;
  });
}

/**
 * The gradients scaled together so that their global L2 norm is at most `bound` (torch's
 * clip_grad_norm_ without its 1e-6 in the denominator); unchanged without a bound.
 */
export function clampGlobalNorm(
  grads: Record<string, tf.Tensor>,
  bound: number | undefined,
): Record<string, tf.Tensor> {
  if (bound === undefined) return grads;
  const list = Object.values(grads);
  if (list.length === 0) return grads;
  const norm = Math.sqrt(
    tf.tidy(() => tf.addN(list.map((g) => tf.sum(tf.square(g)))).dataSync()[0]!),
  );
  if (!(norm > bound)) return grads;
  const out: Record<string, tf.Tensor> = {};
  for (const [k, g] of Object.entries(grads)) out[k] = tf.mul(g, bound / norm);
  return out;
}

/** R = beta * mean_b t_b (exact estimator, differentiable in the weights at second order). */
export function fimTraceRegularizer(
  model: DensityEstimator,
  x: tf.Tensor2D,
  rng: RandomStream,
  opts: { beta: number; mcSamples: number },
): tf.Scalar {
  return tf.tidy(() => finiteMeanTrace(squaredScores(model, x, opts.mcSamples, rng), opts.beta));
}

export function checkFimOptions(name: string, beta: number, mcSamples: number): void {
  if (!(beta >= 0) || !Number.isFinite(beta))
    throw new RangeError(`${name}: beta must be a finite number >= 0, got ${beta}.`);
  if (!Number.isInteger(mcSamples) || mcSamples < 1)
    throw new RangeError(
      `${name}: the number of Monte Carlo samples must be a positive integer, got ${mcSamples}.`,
    );
}

/**
 * A regularizer whose parameter gradient is smoothed by RABI's EMA and handed to the training loop
 * through extraGrads. Subclasses say how R is computed for a batch.
 */
export abstract class EmaRegularizerDefense implements TrainingDefense {
  abstract readonly name: string;
  readonly beta: number;
  readonly mcSamples: number;
  readonly batchFraction: number;
  readonly gradClamp: number | undefined;
  protected readonly ema: GradientEma;

  constructor(opts: FimOptions, defaultBatchFraction = 1) {
    this.beta = opts.beta ?? FIM_DEFAULTS.beta;
    this.mcSamples = opts.mcSamples ?? FIM_DEFAULTS.mcSamples;
    this.batchFraction = opts.batchFraction ?? defaultBatchFraction;
    if (!(this.batchFraction > 0 && this.batchFraction <= 1))
      throw new RangeError(`the batch fraction must lie in (0, 1], got ${this.batchFraction}.`);
    this.gradClamp = opts.gradClamp;
    if (this.gradClamp !== undefined && !(this.gradClamp > 0))
      throw new RangeError(`the gradient clamp must be a number > 0, got ${this.gradClamp}.`);
    this.ema = new GradientEma(opts.decay ?? FIM_DEFAULTS.decay);
  }

  /** beta * the estimated mean trace for the batch; called inside tf.variableGrads. */
  protected abstract regularizer(
    theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
    prepared: unknown,
  ): tf.Scalar;

  /** Work done before the gradient tape starts (drawing detached samples, say). */
  protected prepare(_theta: tf.Tensor2D, _x: tf.Tensor2D, _ctx: DefenseContext): unknown {
    return undefined;
  }

  extraGrads(theta: tf.Tensor2D, x: tf.Tensor2D, ctx: DefenseContext): Record<string, tf.Tensor> {
    // beta = 0 adds exactly nothing; skip the cost (the beta sweep starts at 0).
    if (this.beta === 0) return {};
    if (this.batchFraction < 1) {
      const rows = Math.max(1, Math.ceil(this.batchFraction * x.shape[0]));
      theta = tf.slice(theta, [0, 0], [rows, -1]);
      x = tf.slice(x, [0, 0], [rows, -1]);
    }
    const vars = ctx.model.trainableVariables();
    const prepared = this.prepare(theta, x, ctx);
    const { value, grads } = tf.variableGrads(
      () => this.regularizer(theta, x, ctx, prepared),
      vars,
    );
    value.dispose();
    // The EMA is keyed by position in trainableVariables(): tfjs variable names are global counters,
    // so a model rebuilt from a checkpoint has other names for the same weights.
    const byIndex: Record<string, tf.Tensor> = {};
    vars.forEach((v, i) => {
      const g = grads[v.name];
      if (g) byIndex[String(i)] = g;
    });
    const smoothed = clampGlobalNorm(this.ema.update(byIndex), this.gradClamp);
    const out: Record<string, tf.Tensor> = {};
    vars.forEach((v, i) => {
      const g = smoothed[String(i)];
      if (g) out[v.name] = g;
    });
    return out;
  }

  getState(): { beta: number; mcSamples: number; ema: EmaState } {
    return { beta: this.beta, mcSamples: this.mcSamples, ema: this.ema.getState() };
  }

  setState(state: unknown): void {
    const s = state as { ema?: EmaState } | null;
    if (!s || typeof s !== 'object' || !s.ema)
      throw new RangeError(`${this.name}: checkpointed defense state has no EMA.`);
    this.ema.setState(s.ema);
  }

  dispose(): void {
    this.ema.dispose();
  }
}

/** `fim`: the exact Monte Carlo trace with reparameterized samples and double backprop. */
export class FimTraceDefense extends EmaRegularizerDefense {
  readonly name = 'fim';

  constructor(opts: FimOptions = {}) {
    super(opts);
    checkFimOptions('fim', this.beta, this.mcSamples);
  }

  protected regularizer(_theta: tf.Tensor2D, x: tf.Tensor2D, ctx: DefenseContext): tf.Scalar {
    return fimTraceRegularizer(ctx.model, x, ctx.rng, {
      beta: this.beta,
      mcSamples: this.mcSamples,
    });
  }

  /** The fused passes have no gradient clamp: with one, the step runs on tfjs ops. */
  fusedPlan(): FusedPlan | null {
    return this.gradClamp === undefined ? new FusedFimTrace(this, this.ema) : null;
  }
}

/**
 * FimTraceDefense.extraGrads in a fused trainer: the same base noise drawn from the same stream
 * (rsample's [M * m, thetaDim] normals for the batch's first m rows), handed to the trainer's exact
 * FIM passes, whose weight gradient goes through the EMA into the step's gradient.
 */
class FusedFimTrace implements FusedPlan {
  readonly exactFim = true;

  constructor(
    private readonly o: Pick<FimTraceDefense, 'beta' | 'mcSamples' | 'batchFraction'>,
    readonly ema: HostEma,
  ) {}

  private rows(n: number): number {
    return Math.max(1, Math.ceil(this.o.batchFraction * n));
  }

  probeRows(maxBatch: number): number {
    return this.o.mcSamples * this.rows(maxBatch);
  }

  addGradients(pass: FusedPass, n: number, ctx: FusedStepContext): number | null {
    const { beta, mcSamples } = this.o;
    // beta = 0 adds exactly nothing (extraGrads skips it too, EMA included).
    if (beta === 0) return null;
    if (!pass.addFimTraceGradientEma)
      throw new Error('fim: the fused trainer has no exact FIM passes.');
    const m = this.rows(n);
    const noise = new Float32Array(mcSamples * m * pass.thetaDim);
    ctx.rng.fillNormal(noise);
    return pass.addFimTraceGradientEma(m, mcSamples, beta, noise);
  }
}
