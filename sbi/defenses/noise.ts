// Noise augmentation (RABI L2UniformNoiseTraining, paper.md section 4): every batch x is replaced by
// x + delta, delta uniform in the L2 ball of radius trainEps * xScale. No clipping, as RABI.
import { uniformL2Ball } from '../attacks/ball.js';
import { tf } from '../backend.js';
import type { DefenseContext, TrainingDefense } from '../npe.js';
import type { FusedNoisePlan } from '../types.js';
import { checkTrainEps } from './perturbation.js';

/** paper.md section 4: radius 1.0 * std. */
export const NOISE_DEFAULT_EPS = 1;

export class NoiseAugmentation implements TrainingDefense {
  readonly name = 'noise';

  constructor(readonly trainEps: number = NOISE_DEFAULT_EPS) {
    checkTrainEps('noise', trainEps);
  }

  fusedPlan(): FusedNoisePlan {
    return { kind: 'noise', trainEps: this.trainEps };
  }

  prepareBatch(
    theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
  ): { theta: tf.Tensor2D; x: tf.Tensor2D } {
    const [b, d] = x.shape;
    const delta = uniformL2Ball(b, d, this.trainEps * ctx.xScale, ctx.rng);
    return { theta, x: tf.add(x, delta) as tf.Tensor2D };
  }
}
