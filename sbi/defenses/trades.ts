// TRADES as RABI runs it (L2PGDrKLTrades, paper.md section 4): x~ from an untargeted L2-PGD (20 steps
// of 0.1 * std, random start) that maximizes the one-sample rKL, KL(q(.|x~) || q(.|x)), against the
// clean posterior; the loss is NLL(theta | x) + beta * KL(q(.|x) || q(.|x~)), the KL from one
// rsample of the clean q, differentiated through both posteriors with x~ held fixed.
// x~ is computed in prepareBatch (before the loss is taped, so the attack is not differentiated
// with the weights) and used by extraLoss of the same step.
//
// Under the 'rabi' update the step also adds what RABI's code adds: advertorch's PGD calls
// loss.backward() at each of its iterates x~_t after the training loop's optim.zero_grad(), and the
// attack's loss is the one-sample rKL(q(.|x~_t) || q(.|x)) whose clean posterior, built under
// no_grad, is a lazy flow evaluated later with the weights live; so grad_w of that KL (through both
// posteriors and the rsample) is summed over the iterates into the update (trades_regularizers.py,
// advertorch_attack.py, attacks/base.py, loss/eval_loss.py).
import { logProbOfSamples } from '../attacks/objectives.js';
import { l2Pgd } from '../attacks/pgd.js';
import { tf } from '../backend.js';
import type { DefenseContext, TrainingDefense } from '../npe.js';
import type { RandomStream } from '../types.js';
import { ADVERSARIAL_UPDATES, type AdversarialUpdate } from './adversarial.js';
import { TRAINING_PGD, addWeightGradient, checkTrainEps } from './perturbation.js';

export const TRADES_DEFAULTS = Object.freeze({ beta: 0.1, trainEps: 0.5 });

export class Trades implements TrainingDefense {
  readonly name = 'trades';
  private xAdv: tf.Tensor2D | undefined;
  /** Under 'rabi': the attack iterates' summed weight gradients, for extraGrads. */
  private attackGrads: Record<string, tf.Tensor> | null = null;

  constructor(
    readonly beta: number = TRADES_DEFAULTS.beta,
    readonly trainEps: number = TRADES_DEFAULTS.trainEps,
    readonly steps: number = TRAINING_PGD.steps,
    readonly update: AdversarialUpdate = 'intended',
  ) {
    if (!(beta >= 0) || !Number.isFinite(beta))
      throw new RangeError(`trades: beta must be a finite number >= 0, got ${beta}.`);
    checkTrainEps('trades', trainEps);
    if (!ADVERSARIAL_UPDATES.includes(update))
      throw new RangeError(
        `trades: the update must be one of ${ADVERSARIAL_UPDATES.join(', ')}, got "${update}".`,
      );
  }

  /** Under 'rabi', the attack iterates' weight gradients (the tensors belong to the step's scope). */
  extraGrads(): Record<string, tf.Tensor> {
    const g = this.attackGrads ?? {};
    this.attackGrads = null;
    return g;
  }

  prepareBatch(
    theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
  ): { theta: tf.Tensor2D; x: tf.Tensor2D } {
    // A stream of its own for the iterates' samples: the attack draws what the intended update's does.
    // (fork does not move ctx.rng; the step's position keys it, so every step draws afresh).
    const updateRng =
      this.update === 'rabi' ? ctx.rng.fork(`rabi-update/${ctx.epoch}/${ctx.step}`) : undefined;
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
        ...(updateRng
          ? { onGradientPoint: (at: tf.Tensor2D) => this.addAttackGradient(x, at, ctx, updateRng) }
          : {}),
      },
    );
    return { theta, x };
  }

  /** grad_w of the mean one-sample KL(q(.|x~_t) || q(.|x)), added to the sum over the iterates. */
  private addAttackGradient(
    x: tf.Tensor2D,
    at: tf.Tensor2D,
    ctx: DefenseContext,
    rng: RandomStream,
  ): void {
    this.attackGrads = addWeightGradient(this.attackGrads, ctx.model.trainableVariables(), () => {
      const s = ctx.model.rsample(at, 1, rng);
      return tf.mean(
        tf.sub(logProbOfSamples(ctx.model, s, at), logProbOfSamples(ctx.model, s, x)),
      ) as tf.Scalar;
    });
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
