// Geometry of the perturbation sets: uniform draws from L2 / Linf balls, projection onto them, and
// clipping to the data box. Pure tensor code; call inside tf.tidy.
import { tf } from '../backend.js';
import type { RandomStream } from '../types.js';
import type { ClipBox } from './eps.js';

/** Smallest norm used when normalizing, so a zero gradient or zero delta stays zero instead of NaN. */
export const TINY = 1e-12;

/** advertorch's floor on the gradient norm before normalizing it (PGD steps). */
export const GRAD_NORM_FLOOR = 1e-6;

/** Row-wise L2 norms of a [B, d] tensor as [B, 1]. */
export function rowNorms(t: tf.Tensor2D): tf.Tensor2D {
  return tf.sqrt(tf.sum(tf.square(t), 1, true)) as tf.Tensor2D;
}

/**
 * Each row divided by max(its L2 norm, floor): unit rows, except that rows shorter than `floor` only
 * grow to norm/floor (advertorch's normalize_by_pnorm uses floor 1e-6 for PGD gradients).
 */
export function normalizeRows(t: tf.Tensor2D, floor = TINY): tf.Tensor2D {
  return tf.div(t, tf.maximum(rowNorms(t), floor)) as tf.Tensor2D;
}

/**
 * n points uniform in the d-dimensional L2 ball of radius `radius`: a normalized Gaussian direction
 * (the generalized-Gamma(1/2, 2) method reduces to this for p = 2) times radius * U^(1/d).
 */
export function uniformL2Ball(
  n: number,
  d: number,
  radius: number,
  rng: RandomStream,
): tf.Tensor2D {
  return tf.tidy(() => {
    const dir = normalizeRows(rng.normalTensor([n, d]) as tf.Tensor2D);
    const r = tf.mul(tf.pow(rng.uniformTensor([n, 1]), 1 / d), radius);
    return tf.mul(dir, r) as tf.Tensor2D;
  });
}

/** n points uniform in the Linf ball (the cube [-radius, radius]^d). */
export function uniformLinfBall(
  n: number,
  d: number,
  radius: number,
  rng: RandomStream,
): tf.Tensor2D {
  return tf.tidy(
    () => tf.mul(tf.sub(tf.mul(rng.uniformTensor([n, d]), 2), 1), radius) as tf.Tensor2D,
  );
}

/** delta * min(1, radius / ||delta||) per row: the L2 projection onto the ball. */
export function projectL2(delta: tf.Tensor2D, radius: number): tf.Tensor2D {
  return tf.tidy(() => {
    const factor = tf.minimum(1, tf.div(radius, tf.maximum(rowNorms(delta), TINY)));
    return tf.mul(delta, factor) as tf.Tensor2D;
  });
}

/** The delta that keeps x + delta inside the box: clip(x + delta) - x. */
export function clipDelta(x: tf.Tensor2D, delta: tf.Tensor2D, box: ClipBox): tf.Tensor2D {
  return tf.tidy(
    () => tf.sub(tf.clipByValue(tf.add(x, delta), box.min, box.max), x) as tf.Tensor2D,
  );
}

/**
 * uniformL2Ball on the host, drawing from rng in the same order (the direction's normals, then the
 * radii's uniforms), for fused trainers: n rows, [n, d] row-major, float64.
 */
export function uniformL2BallHost(
  n: number,
  d: number,
  radius: number,
  rng: RandomStream,
): Float64Array {
  const dir = new Float32Array(n * d);
  rng.fillNormal(dir);
  const u = new Float32Array(n);
  rng.fillUniform(u);
  const out = Float64Array.from(dir);
  for (let r = 0; r < n; r++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += out[r * d + j]! * out[r * d + j]!;
    const scale = (Math.pow(u[r]!, 1 / d) * radius) / Math.max(Math.sqrt(sq), TINY);
    for (let j = 0; j < d; j++) out[r * d + j]! *= scale;
  }
  return out;
}
