// Adversarial training (RABI L2PGDTargetedAdversarialTraining, paper.md section 4): every batch x is
// REPLACED by x~ from a targeted L2-PGD that maximizes the NLL of the batch's own true theta (20
// steps of 0.1 * std, random start in the ball, clipped to +-1000). There is no clean term: the loss
// is the NLL on (theta, x~).
import { l2Pgd } from '../attacks/pgd.js';
import type { tf } from '../backend.js';
import type { DefenseContext, TrainingDefense } from '../npe.js';
import type { FusedAdversarialPlan } from '../types.js';
import { TRAINING_PGD, checkTrainEps } from './perturbation.js';

/** RABI config/defense/l2pgdTargetedAdvTrain.yaml: eps 0.5 (relative). */
export const ADVERSARIAL_DEFAULT_EPS = 0.5;

export class AdversarialTraining implements TrainingDefense {
  readonly name = 'adversarial';

  constructor(
    readonly trainEps: number = ADVERSARIAL_DEFAULT_EPS,
    readonly steps: number = TRAINING_PGD.steps,
  ) {
    checkTrainEps('adversarial', trainEps);
  }

  fusedPlan(): FusedAdversarialPlan {
    return {
      kind: 'adversarial',
      trainEps: this.trainEps,
      steps: this.steps,
      relStep: TRAINING_PGD.relStep,
      box: { ...TRAINING_PGD.box },
    };
  }

  prepareBatch(
    theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
  ): { theta: tf.Tensor2D; x: tf.Tensor2D } {
    const xAdv = l2Pgd(
      {
        estimator: ctx.model,
        x,
        theta,
        epsAbs: this.trainEps * ctx.xScale,
        box: TRAINING_PGD.box,
        rng: ctx.rng,
      },
      { objective: 'nll', steps: this.steps, stepSize: TRAINING_PGD.relStep * ctx.xScale },
    );
    return { theta, x: xAdv };
  }
}
