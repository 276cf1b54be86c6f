// The attack along the top eigenvector of the Fisher information with respect to x (RABI
// SpectralKLAttack): for small eps, KL(q(.|x) || q(.|x + delta)) ~ 1/2 delta^T I_x delta, so the
// worst L2 direction is the top eigenvector of I_x = E_{theta ~ q(.|x)}[s s^T], s = grad_x log q.
// RABI forms I_x and calls eigh; we never form the d x d matrix: Monte Carlo scores are computed once
// by autograd and power iteration uses I_x v = mean_m s_m (s_m . v), so the cost is O(M B d) per
// iteration.
import { tf } from '../backend.js';
import type { DensityEstimator, RandomStream } from '../types.js';
import { normalizeRows } from './ball.js';
import { discrepancyPerRow, type Discrepancy } from './objectives.js';
import type { AttackSetup } from './setup.js';

export const FIM_SAMPLES = 256;
export const POWER_ITERATIONS = 100;
/** Samples per candidate when choosing the sign of the eigenvector. */
export const SIGN_SAMPLES = 64;

/** Scores s_m = grad_x log q(theta_m | x) at theta_m ~ q(.|x) (theta held fixed): [M, B, xDim]. */
export function scoresAt(
  est: DensityEstimator,
  x: tf.Tensor2D,
  samples: number,
  rng: RandomStream,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, d] = x.shape;
    const theta = est.sample(x, samples, rng);
    const flat = tf.reshape(theta, [samples * b, est.thetaDim]) as tf.Tensor2D;
    const xs = tf.tile(x, [samples, 1]) as tf.Tensor2D;
    // Rows are independent, so the gradient of the sum is the per-row score.
    const g = tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(flat, xx as tf.Tensor2D)))(xs);
    return tf.reshape(g, [samples, b, d]) as tf.Tensor3D;
  });
}

/** I_x v per row, from scores [M, B, d] and v [B, d]: mean_m s_m (s_m . v). */
export function fisherVectorProduct(scores: tf.Tensor3D, v: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const proj = tf.sum(tf.mul(scores, v), 2, true); // [M, B, 1]
    return tf.mean(tf.mul(scores, proj), 0) as tf.Tensor2D;
  });
}

export interface TopEigen {
  /** Unit top eigenvector per row [B, d]. */
  vector: tf.Tensor2D;
  /** Its Rayleigh quotient v^T I_x v per row [B]. */
  value: tf.Tensor1D;
}

/** Power iteration on the Monte Carlo FIM given by `scores`, from a random start. */
export function topFisherEigen(
  scores: tf.Tensor3D,
  rng: RandomStream,
  iterations: number = POWER_ITERATIONS,
): TopEigen {
  const [, b, d] = scores.shape;
  let v = tf.tidy(() => normalizeRows(rng.normalTensor([b, d]) as tf.Tensor2D));
  for (let i = 0; i < iterations; i++) {
    const next = tf.tidy(() => normalizeRows(fisherVectorProduct(scores, v)));
    v.dispose();
    v = next;
  }
  const value = tf.tidy(() => tf.sum(tf.mul(v, fisherVectorProduct(scores, v)), 1) as tf.Tensor1D);
  return { vector: v, value };
}

export interface FimEigenOptions {
  /** Discrepancy whose increase picks the sign of the eigenvector. */
  divergence: Discrepancy;
  fimSamples?: number;
  iterations?: number;
  signSamples?: number;
}

/** Sampled rows (x times samples) per chunk, so that the Monte Carlo FIM of many x fits in memory. */
export const FIM_ROWS_PER_CHUNK = 8192;

/**
 * x~ = clip(x +- eps_abs v_max): both signs are scored with the same random numbers and each row
 * keeps the one with the larger divergence (I_x cannot tell them apart; the higher-order terms can).
 * Rows are processed in chunks of FIM_ROWS_PER_CHUNK / fimSamples.
 */
export function fimEigenAttack(setup: AttackSetup, opts: FimEigenOptions): tf.Tensor2D {
  const fimSamples = opts.fimSamples ?? FIM_SAMPLES;
  const signSamples = opts.signSamples ?? SIGN_SAMPLES;
  const chunk = Math.max(1, Math.floor(FIM_ROWS_PER_CHUNK / Math.max(fimSamples, signSamples)));
  const [b, d] = setup.x.shape;
  if (b <= chunk) return fimEigenChunk(setup, opts, fimSamples, signSamples);
  const parts: tf.Tensor2D[] = [];
  for (let start = 0; start < b; start += chunk) {
    const rows = Math.min(chunk, b - start);
    const x = tf.slice(setup.x, [start, 0], [rows, d]) as tf.Tensor2D;
    parts.push(fimEigenChunk({ ...setup, x }, opts, fimSamples, signSamples));
    x.dispose();
  }
  const out = tf.concat(parts, 0) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

function fimEigenChunk(
  setup: AttackSetup,
  opts: FimEigenOptions,
  fimSamples: number,
  signSamples: number,
): tf.Tensor2D {
  const { estimator: est, x, epsAbs, box, rng } = setup;
  const scores = scoresAt(est, x, fimSamples, rng);
  const top = topFisherEigen(scores, rng, opts.iterations ?? POWER_ITERATIONS);
  scores.dispose();
  const key = rng.int(2 ** 31 - 1);
  const xAdv = tf.tidy(() => {
    const step = tf.mul(top.vector, epsAbs);
    const plus = tf.clipByValue(tf.add(x, step), box.min, box.max) as tf.Tensor2D;
    const minus = tf.clipByValue(tf.sub(x, step), box.min, box.max) as tf.Tensor2D;
    const score = { samples: signSamples, differentiable: false };
    const d = opts.divergence;
    const klPlus = discrepancyPerRow(est, d, plus, x, rng.fork(`sign-${key}`), score);
    const klMinus = discrepancyPerRow(est, d, minus, x, rng.fork(`sign-${key}`), score);
    const takePlus = tf.reshape(tf.cast(tf.greaterEqual(klPlus, klMinus), 'float32'), [-1, 1]);
    return tf.add(minus, tf.mul(takePlus, tf.sub(plus, minus))) as tf.Tensor2D;
  });
  top.vector.dispose();
  top.value.dispose();
  return xAdv;
}
