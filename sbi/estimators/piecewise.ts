// Branch selection by a 0/1 mask that stays differentiable at second order in tfjs (clip, where
// and minimum are in ../ops.ts). tf.where's gradient tapes a cast of its condition, which a
// grad-of-grad cannot pass through; a mask made by greaterEqual + cast and mixed arithmetically can.
import { tf } from '../backend.js';

/** 1 where a >= b, else 0 (float32; no gradient flows through it). */
export function geMask(a: tf.Tensor | number, b: tf.Tensor | number): tf.Tensor {
  return tf.cast(tf.greaterEqual(a, b), 'float32');
}

/** mask ? a : b for a 0/1 mask; both branches must be finite (0 * Inf is NaN). */
export function select<T extends tf.Tensor>(mask: tf.Tensor, a: T, b: T): T {
  return tf.add(b, tf.mul(mask, tf.sub(a, b))) as T;
}
