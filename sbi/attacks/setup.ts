// What every attack gets: the model, a batch of clean x (and their true theta for the targeted attack),
// the absolute budget, the clip box and the seeded stream.
import type { tf } from '../backend.js';
import type { DensityEstimator, RandomStream } from '../types.js';
import type { ClipBox } from './eps.js';

export interface AttackSetup {
  estimator: DensityEstimator;
  /** Clean observations [B, xDim], raw (the estimator z-scores inside). */
  x: tf.Tensor2D;
  /** True theta of each clean x [B, thetaDim]; needed by the nll attack only. */
  theta?: tf.Tensor2D;
  /** Absolute budget (already multiplied by the data scale; see eps.ts). */
  epsAbs: number;
  box: ClipBox;
  rng: RandomStream;
}
