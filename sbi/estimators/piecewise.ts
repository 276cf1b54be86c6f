// Clipping and branch selection that stay differentiable at second order in tfjs.
//
// tfjs' own tf.clipByValue, tf.minimum and tf.where are NOT: their gradients build logicalAnd,
// lessEqual or logicalNot of a taped input, ops with no registered gradient, so a grad-of-grad that
// reaches them throws "gradient function not found". relu, greaterEqual and cast have gradients
// (zero where there is no slope), so these helpers are built from them only.
import { tf } from '../backend.js';

/** clip(x, lo, hi) = x - relu(x - hi) + relu(lo - x): slope 1 inside, 0 outside. */
export function clip<T extends tf.Tensor>(x: T, lo: number, hi: number): T {
  return tf.add(tf.sub(x, tf.relu(tf.sub(x, hi))), tf.relu(tf.sub(lo, x))) as T;
}

/** 1 where a >= b, else 0 (float32; no gradient flows through it). */
export function geMask(a: tf.Tensor | number, b: tf.Tensor | number): tf.Tensor {
  return tf.cast(tf.greaterEqual(a, b), 'float32');
}

/** mask ? a : b for a 0/1 mask; both branches must be finite (0 * Inf is NaN). */
export function select<T extends tf.Tensor>(mask: tf.Tensor, a: T, b: T): T {
  return tf.add(b, tf.mul(mask, tf.sub(a, b))) as T;
}
