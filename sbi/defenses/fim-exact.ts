// RABI's exact FIM regularizers of the appendix (paper.md 2.3; the figure comparing exact, eigenvalue
// and EMA estimators): FIMTraceRegularizer with algorithm "jac_exact" and
// FIMLargestEigenvalueRegularizer. Both take the plain gradient of R (no EMA) and both use the
// closed-form FIM where the estimator has one (fisher_info.py's registry: Gaussian heads), else the
// Monte Carlo FIM from 50 reparameterized samples kept attached to the weights.
//
// One representation serves both: factors F [M, B, d] with I_x = mean_m F_m F_m^T. Monte Carlo:
// the scores. Closed form: the estimator's fisherCoordinates c(x; at) give I_x = J^T J with
// J = dc/dx, so F_k = sqrt(K) grad_x c_k over the K coordinates. Then
//   fim-exact:      R = beta * mean_b tr I_x = beta * mean_b mean_m |F_mb|^2;
//   fim-eigenvalue: R = beta * mean_b lambda_max(I_x), lambda_max = v^T I_x v at the top
//                   eigenvector v (power iteration on detached factors, fim-eigen.ts), whose weight
//                   gradient is v^T dI_x v (v held fixed: the Hellmann-Feynman identity for a simple
//                   top eigenvalue). RABI calls eigvalsh on the dense I_x.
import { tf } from '../backend.js';
import { topFisherEigen, POWER_ITERATIONS } from '../attacks/fim-eigen.js';
import type { DefenseContext } from '../npe.js';
import type { DensityEstimator, RandomStream } from '../types.js';
import {
  EmaRegularizerDefense,
  attachedScores,
  checkFimOptions,
  finiteMeanTrace,
} from './fim-trace.js';

/** RABI's defaults: fisher_trace.yaml mc_samples 50 (exact path); fisher_eigenval.yaml beta 0.1, 50. */
export const FIM_EXACT_DEFAULTS = Object.freeze({ beta: 0.05, mcSamples: 50 });
export const FIM_EIGENVALUE_DEFAULTS = Object.freeze({
  beta: 0.1,
  mcSamples: 50,
  iterations: POWER_ITERATIONS,
});

/** J [K, B, d]: grad_x c_k(x; at) at x = at for every coordinate k of the estimator's closed form. */
export function fisherJacobian(model: DensityEstimator, x: tf.Tensor2D): tf.Tensor3D {
  const coords = model.fisherCoordinates?.bind(model);
  if (!coords) throw new Error(`The ${model.kind} estimator has no closed-form FIM.`);
  const [b, d] = x.shape;
  return tf.tidy(() => {
    const K = coords(tf.slice(x, [0, 0], [1, d]), tf.slice(x, [0, 0], [1, d])).shape[1];
    // K copies of the batch: copy k differentiates coordinate k alone, in one backward pass. The
    // metric's copy is another tensor, so the x-gradient does not flow through it.
    const at = tf.tile(x, [K, 1]) as tf.Tensor2D;
    const pick = new Float32Array(K * b * K);
    for (let k = 0; k < K; k++) for (let r = 0; r < b; r++) pick[(k * b + r) * K + k] = 1;
    const mask = tf.tensor2d(pick, [K * b, K]);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(coords(xx as tf.Tensor2D, at), mask)))(
      tf.tile(x, [K, 1]),
    );
    return tf.reshape(g, [K, b, d]) as tf.Tensor3D;
  });
}

/**
 * F [M, B, d] with I_x = mean_m F_m F_m^T, differentiable in the weights: sqrt(K) J where the
 * estimator's FIM is analytic, else mcSamples attached Monte Carlo scores.
 */
export function fisherFactors(
  model: DensityEstimator,
  x: tf.Tensor2D,
  mcSamples: number,
  rng: RandomStream,
): tf.Tensor3D {
  if (!model.fisherCoordinates) return attachedScores(model, x, mcSamples, rng);
  return tf.tidy(() => {
    const j = fisherJacobian(model, x);
    return tf.mul(j, Math.sqrt(j.shape[0])) as tf.Tensor3D;
  });
}

/** I_x per row, [B, d, d], from factors [M, B, d] (tests and small d). */
export function fimFromFactors(f: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [M] = f.shape;
    const outer = tf.mul(tf.expandDims(f, 3), tf.expandDims(f, 2)); // [M, B, d, d]
    return tf.div(tf.sum(outer, 0), M) as tf.Tensor3D;
  });
}

/** tr I_x per row [B] from factors. */
export function traceFromFactors(f: tf.Tensor3D): tf.Tensor1D {
  return tf.tidy(() => tf.mean(tf.sum(tf.square(f), 2), 0) as tf.Tensor1D);
}

/**
 * lambda_max(I_x) per row [B] as v^T I_x v, v the top eigenvector from `iterations` power steps on
 * a detached copy of the factors (the random start drawn from rng), so only I_x is differentiated.
 */
export function topEigenvalueFromFactors(
  f: tf.Tensor3D,
  rng: RandomStream,
  iterations: number,
): tf.Tensor1D {
  const detached = tf.tensor(f.dataSync(), f.shape) as tf.Tensor3D;
  const top = topFisherEigen(detached, rng, iterations);
  const v = tf.tensor(top.vector.dataSync(), top.vector.shape) as tf.Tensor2D;
  tf.dispose([detached, top.vector, top.value]);
  const lambda = tf.tidy(() => tf.mean(tf.square(tf.sum(tf.mul(f, v), 2)), 0) as tf.Tensor1D);
  v.dispose();
  return lambda;
}

export interface FimExactOptions {
  beta?: number;
  /** Samples of the Monte Carlo fallback (estimators without a closed form). */
  mcSamples?: number;
}

/** `fim-exact`: beta * mean tr I_x, closed form where there is one; plain gradient. */
export class FimExactDefense extends EmaRegularizerDefense {
  readonly name = 'fim-exact';

  constructor(opts: FimExactOptions = {}) {
    // EMA decay 1: m_t = g_t, the plain gradient of R as RABI's exact path takes it.
    super({
      beta: opts.beta ?? FIM_EXACT_DEFAULTS.beta,
      mcSamples: opts.mcSamples ?? FIM_EXACT_DEFAULTS.mcSamples,
      decay: 1,
    });
    checkFimOptions(this.name, this.beta, this.mcSamples);
  }

  protected regularizer(_theta: tf.Tensor2D, x: tf.Tensor2D, ctx: DefenseContext): tf.Scalar {
    return tf.tidy(() => {
      const t = traceFromFactors(fisherFactors(ctx.model, x, this.mcSamples, ctx.rng));
      return finiteMeanTrace(tf.reshape(t, [1, -1]) as tf.Tensor2D, this.beta);
    });
  }
}

export interface FimEigenvalueOptions extends FimExactOptions {
  /** Power iterations for the top eigenvector. */
  iterations?: number;
}

/** `fim-eigenvalue`: beta * mean lambda_max(I_x); plain gradient. */
export class FimEigenvalueDefense extends EmaRegularizerDefense {
  readonly name = 'fim-eigenvalue';
  readonly iterations: number;

  constructor(opts: FimEigenvalueOptions = {}) {
    super({
      beta: opts.beta ?? FIM_EIGENVALUE_DEFAULTS.beta,
      mcSamples: opts.mcSamples ?? FIM_EIGENVALUE_DEFAULTS.mcSamples,
      decay: 1,
    });
    checkFimOptions(this.name, this.beta, this.mcSamples);
    this.iterations = opts.iterations ?? FIM_EIGENVALUE_DEFAULTS.iterations;
    if (!Number.isInteger(this.iterations) || this.iterations < 1)
      throw new RangeError(`${this.name}: iterations must be a positive integer.`);
  }

  protected regularizer(_theta: tf.Tensor2D, x: tf.Tensor2D, ctx: DefenseContext): tf.Scalar {
    return tf.tidy(() => {
      const f = fisherFactors(ctx.model, x, this.mcSamples, ctx.rng);
      const lambda = topEigenvalueFromFactors(f, ctx.rng, this.iterations);
      return finiteMeanTrace(tf.reshape(lambda, [1, -1]) as tf.Tensor2D, this.beta);
    });
  }
}
