// Noise augmentation (RABI L2UniformNoiseTraining, paper.md section 4): every batch x is replaced by
// x + delta, delta uniform in the L2 ball of radius trainEps * xScale. No clipping, as RABI.
import { uniformL2Ball, uniformL2BallHost } from '../attacks/ball.js';
import { tf } from '../backend.js';
import type { DefenseContext, TrainingDefense } from '../npe.js';
import type { FusedPass, FusedPlan, FusedStepContext } from '../types.js';
import { checkTrainEps } from './perturbation.js';

/** paper.md section 4: radius 1.0 * std. */
export const NOISE_DEFAULT_EPS = 1;

export class NoiseAugmentation implements TrainingDefense {
  readonly name = 'noise';

  constructor(readonly trainEps: number = NOISE_DEFAULT_EPS) {
    checkTrainEps('noise', trainEps);
  }

  fusedPlan(): FusedPlan {
    return new FusedNoise(this.trainEps);
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

/**
 * NoiseAugmentation.prepareBatch in a fused trainer: the same delta (uniformL2Ball's draws, in its
 * order) added to the batch's z-scored x as delta / xStd.
 */
class FusedNoise implements FusedPlan {
  constructor(private readonly trainEps: number) {}

  prepareBatch(pass: FusedPass, rows: ArrayLike<number>, ctx: FusedStepContext): void {
    const n = rows.length;
    const C = pass.xDim;
    const delta = uniformL2BallHost(n, C, this.trainEps * ctx.xScale, ctx.rng);
    const xStd = Float32Array.from(pass.xStd);
    const { x, ldX } = pass.batch();
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < C; j++) x[r * ldX + j] += delta[r * C + j]! / xStd[j]!;
    }
  }
}
