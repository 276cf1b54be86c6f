// TRADES as RABI runs it (L2PGDrKLTrades, paper.md section 4): x~ from an untargeted L2-PGD (20 steps
// of 0.1 * std, random start) that maximizes the one-sample rKL, KL(q(.|x~) || q(.|x)), against the
// clean posterior; the loss is NLL(theta | x) + beta * KL(q(.|x) || q(.|x~)), the KL from one
// rsample of the clean q, differentiated through both posteriors with x~ held fixed.
// x~ is computed in prepareBatch (before the loss is taped, so the attack is not differentiated
// with the weights) and used by extraLoss of the same step.
import { logProbOfSamples } from '../attacks/objectives.js';
import { l2Pgd } from '../attacks/pgd.js';
import { tf } from '../backend.js';
import type { DefenseContext, TrainingDefense } from '../npe.js';
import { TRAINING_PGD, checkTrainEps } from './perturbation.js';

export const TRADES_DEFAULTS = Object.freeze({ beta: 0.1, trainEps: 0.5 });

export class Trades implements TrainingDefense {
  readonly name = 'trades';
  private xAdv: tf.Tensor2D | undefined;

  constructor(
    readonly beta: number = TRADES_DEFAULTS.beta,
    readonly trainEps: number = TRADES_DEFAULTS.trainEps,
    readonly steps: number = TRAINING_PGD.steps,
  ) {
    if (!(beta >= 0) || !Number.isFinite(beta))
      throw new RangeError(`trades: beta must be a finite number >= 0, got ${beta}.`);
    checkTrainEps('trades', trainEps);
  }

  prepareBatch(
    theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
  ): { theta: tf.Tensor2D; x: tf.Tensor2D } {
    // The step's tf.tidy owns x~; extraLoss runs inside the same step.
    this.xAdv = l2Pgd(
      {
        estimator: ctx.model,
        x,
        epsAbs: this.trainEps * ctx.xScale,
        box: TRAINING_PGD.box,
        rng: ctx.rng,
      },
      {
        objective: 'rkl',
        mcSamples: 1,
        steps: this.steps,
        stepSize: TRAINING_PGD.relStep * ctx.xScale,
      },
    );
    return { theta, x };
  }

  extraLoss(_theta: tf.Tensor2D, x: tf.Tensor2D, ctx: DefenseContext): tf.Scalar {
    const xAdv = this.xAdv;
    this.xAdv = undefined;
    if (!xAdv) throw new Error('trades: extraLoss ran without prepareBatch in the same step.');
    return tf.tidy(() => {
      const s = ctx.model.rsample(x, 1, ctx.rng);
      const kl = tf.mean(
        tf.sub(logProbOfSamples(ctx.model, s, x), logProbOfSamples(ctx.model, s, xAdv)),
      );
      return tf.mul(kl, this.beta) as tf.Scalar;
    });
  }
}
