// The squared maximum mean discrepancy between two sample sets, as RABI computes it (rbi/loss/mmd.py
// MMDsquared with kernels.py RBFKernel; paper.md 3.2 and 5): the linear-time estimate of Gretton et
// al. (2012) with an RBF kernel of fixed bandwidth,
//   k(a, b) = sigma^2 exp(-|a - b|^2 / (2 l)),  sigma = 1, l = 10 (l is a *squared* length scale),
//   h_i = k(p_2i+1, p_2i) + k(q_2i+1, q_2i) - k(p_2i+1, q_2i) - k(p_2i, q_2i+1),
//   MMD^2 ~ mean_i h_i over the floor(n / 2) pairs of the n samples of each set.
// It is unbiased (each h_i has expectation MMD^2) and may be negative. The kernel acts on raw theta,
// as RABI's samples are. Also the closed form for two Gaussians, against which the estimate is tested.
import { tf } from '../backend.js';
import { exp } from '../ops.js';
import { cholesky } from '../tasks/linalg.js';

export interface RbfKernel {
  /** Output scale: k(a, a) = sigma^2. */
  sigma: number;
  /** Squared length scale. */
  l: number;
}

/** RABI's RBFKernel() defaults, used by its MMD attack and metric (kernel_name "rbf", no params). */
export const RBF_DEFAULTS: Readonly<RbfKernel> = Object.freeze({ sigma: 1, l: 10 });

/** Samples per PGD step of the MMD attack (RABI l2pgd_mmd.yaml attack_mc_budget). */
export const MMD_ATTACK_MC_SAMPLES = 10;

function checkKernel(k: RbfKernel): void {
  if (!(k.sigma > 0) || !(k.l > 0) || !Number.isFinite(k.sigma) || !Number.isFinite(k.l))
    throw new RangeError(`The RBF kernel needs sigma > 0 and l > 0, got ${k.sigma} and ${k.l}.`);
}

/** k(a_r, b_r) for paired rows along the last axis: [..., D] x [..., D] -> [...]. */
export function rbf(a: tf.Tensor, b: tf.Tensor, kernel: RbfKernel = RBF_DEFAULTS): tf.Tensor {
  return tf.tidy(() => {
    const sq = tf.sum(tf.square(tf.sub(a, b)), -1);
    // ops.exp: the estimate may sit inside a double backprop (a regularizer), never wrong there.
    return tf.mul(exp(tf.mul(sq, -0.5 / kernel.l)), kernel.sigma ** 2);
  });
}

/**
 * The linear-time MMD^2 between samples p [n, B, D] and q [n, B, D] of B pairs of distributions
 * (row b of p against row b of q): [B]. Differentiable with respect to both sets.
 */
export function mmdSquaredLinear(
  p: tf.Tensor3D,
  q: tf.Tensor3D,
  kernel: RbfKernel = RBF_DEFAULTS,
): tf.Tensor1D {
  checkKernel(kernel);
  const [n, B, D] = p.shape;
  if (q.shape[0] !== n || q.shape[1] !== B || q.shape[2] !== D)
    throw new Error(
      `Both sample sets must have the same shape, got [${p.shape}] and [${q.shape}].`,
    );
  const m = Math.floor(n / 2);
  if (m < 1) throw new RangeError(`The MMD estimate needs at least 2 samples per set, got ${n}.`);
  return tf.tidy(() => {
    // Samples 2i and 2i+1 of the first 2m: [m, 2, B, D].
    const split = (s: tf.Tensor3D): [tf.Tensor, tf.Tensor] => {
      const pairs = tf.reshape(tf.slice(s, [0, 0, 0], [2 * m, B, D]), [m, 2, B, D]);
      const even = tf.reshape(tf.slice(pairs, [0, 0, 0, 0], [m, 1, B, D]), [m, B, D]);
      const odd = tf.reshape(tf.slice(pairs, [0, 1, 0, 0], [m, 1, B, D]), [m, B, D]);
      return [even, odd];
    };
    const [p1, p2] = split(p);
    const [q1, q2] = split(q);
    const h = tf.sub(
      tf.add(rbf(p2, p1, kernel), rbf(q2, q1, kernel)),
      tf.add(rbf(p2, q1, kernel), rbf(p1, q2, kernel)),
    );
    return tf.mean(h, 0) as tf.Tensor1D;
  });
}

export interface GaussianMoments {
  mean: number[];
  /** Full covariance. */
  cov: number[][];
}

/**
 * E k(X, Y) for independent X ~ N(a, A), Y ~ N(b, B): X - Y ~ N(a - b, C), C = A + B, and
 * E exp(-|z|^2 / (2l)) = det(I + C / l)^-1/2 exp(-1/2 (a - b)^T (C + l I)^-1 (a - b)).
 */
function expectedKernel(x: GaussianMoments, y: GaussianMoments, kernel: RbfKernel): number {
  const d = x.mean.length;
  // M = C + l I = l (I + C / l): det(I + C/l) = det(M) / l^d.
  const m = x.cov.map((row, i) => row.map((v, j) => v + y.cov[i]![j]! + (i === j ? kernel.l : 0)));
  const c = cholesky(m);
  let logDetM = 0;
  for (let i = 0; i < d; i++) logDetM += 2 * Math.log(c[i]![i]!);
  // (a - b)^T M^-1 (a - b) = |c^-1 (a - b)|^2 by forward substitution.
  const diff = x.mean.map((v, i) => v - y.mean[i]!);
  const z = new Array<number>(d).fill(0);
  let quad = 0;
  for (let i = 0; i < d; i++) {
    let s = diff[i]!;
    for (let k = 0; k < i; k++) s -= c[i]![k]! * z[k]!;
    z[i] = s / c[i]![i]!;
    quad += z[i]! ** 2;
  }
  const logDet = logDetM - d * Math.log(kernel.l);
  return kernel.sigma ** 2 * Math.exp(-0.5 * logDet - 0.5 * quad);
}

/** The exact MMD^2 between N(p.mean, p.cov) and N(q.mean, q.cov) under the RBF kernel. */
export function gaussianMmdSquared(
  p: GaussianMoments,
  q: GaussianMoments,
  kernel: RbfKernel = RBF_DEFAULTS,
): number {
  checkKernel(kernel);
  if (p.mean.length !== q.mean.length)
    throw new Error(`The Gaussians differ in dimension: ${p.mean.length} and ${q.mean.length}.`);
  return (
    expectedKernel(p, p, kernel) + expectedKernel(q, q, kernel) - 2 * expectedKernel(p, q, kernel)
  );
}
