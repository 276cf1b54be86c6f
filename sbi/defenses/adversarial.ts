// Adversarial training (RABI L2PGDTargetedAdversarialTraining, paper.md section 4): every batch x is
// REPLACED by x~ from a targeted L2-PGD that maximizes the NLL of the batch's own true theta (20
// steps of 0.1 * std, random start in the ball, clipped to +-1000). There is no clean term: the loss
// is the NLL on (theta, x~).
import { TINY, uniformL2BallHost } from '../attacks/ball.js';
import { GRAD_NORM_FLOOR, l2Pgd } from '../attacks/pgd.js';
import { tf } from '../backend.js';
import type { DefenseContext, TrainingDefense } from '../npe.js';
import type { FusedPass, FusedPlan, FusedStepContext } from '../types.js';
import { TRAINING_PGD, addWeightGradient, checkTrainEps } from './perturbation.js';

/** RABI config/defense/l2pgdTargetedAdvTrain.yaml: eps 0.5 (relative). */
export const ADVERSARIAL_DEFAULT_EPS = 0.5;

/**
 * The weight update: 'intended' is the algorithm (the NLL gradient at x~); 'rabi' is what RABI's
 * code computes: advertorch's PGD calls loss.backward() in each of its 20 iterations after the
 * training loop's optim.zero_grad(), with the weights requiring grad, so each iterate's mean-NLL
 * gradient with respect to the weights is added to the update (run_train.py, advertorch_attack.py).
 */
export type AdversarialUpdate = 'intended' | 'rabi';
export const ADVERSARIAL_UPDATES: readonly AdversarialUpdate[] = ['intended', 'rabi'];

export class AdversarialTraining implements TrainingDefense {
  readonly name = 'adversarial';
  /** Under 'rabi': the attack iterates' summed weight gradients, for extraGrads. */
  private attackGrads: Record<string, tf.Tensor> | null = null;

  constructor(
    readonly trainEps: number = ADVERSARIAL_DEFAULT_EPS,
    readonly steps: number = TRAINING_PGD.steps,
    readonly update: AdversarialUpdate = 'intended',
  ) {
    checkTrainEps('adversarial', trainEps);
    if (!ADVERSARIAL_UPDATES.includes(update))
      throw new RangeError(
        `adversarial: the update must be one of ${ADVERSARIAL_UPDATES.join(', ')}, got "${update}".`,
      );
  }

  /** The fused step runs the intended update only; RABI's trains on tfjs ops. */
  fusedPlan(): FusedPlan | null {
    if (this.update === 'rabi') return null;
    return new FusedAdversarial(this.trainEps, this.steps, TRAINING_PGD.relStep, {
      ...TRAINING_PGD.box,
    });
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
    const xAdv = l2Pgd(
      {
        estimator: ctx.model,
        x,
        theta,
        epsAbs: this.trainEps * ctx.xScale,
        box: TRAINING_PGD.box,
        rng: ctx.rng,
      },
      {
        objective: 'nll',
        steps: this.steps,
        stepSize: TRAINING_PGD.relStep * ctx.xScale,
        ...(this.update === 'rabi'
          ? { onGradientPoint: (at: tf.Tensor2D) => this.addAttackGradient(theta, at, ctx) }
          : {}),
      },
    );
    return { theta, x: xAdv };
  }

  /** grad_w mean NLL(theta, x~_t), summed over the iterates t (RABI's accumulated backward). */
  private addAttackGradient(theta: tf.Tensor2D, at: tf.Tensor2D, ctx: DefenseContext): void {
    this.attackGrads = addWeightGradient(
      this.attackGrads,
      ctx.model.trainableVariables(),
      () => tf.neg(tf.mean(ctx.model.logProb(theta, at))) as tf.Scalar,
    );
  }
}

/**
 * AdversarialTraining.prepareBatch in a fused trainer: the batch x is replaced by the targeted
 * L2-PGD iterate that maximizes the batch's NLL (l2Pgd with objective 'nll': random start in the
 * ball, normalized-gradient steps, clip to the box, projection onto the ball), with the gradients
 * from the trainer's backward pass through the conditioner input.
 */
class FusedAdversarial implements FusedPlan {
  readonly usesInputGradient = true;

  constructor(
    private readonly trainEps: number,
    private readonly steps: number,
    private readonly relStep: number,
    private readonly box: { min: number; max: number },
  ) {}

  prepareBatch(pass: FusedPass, rows: ArrayLike<number>, ctx: FusedStepContext): void {
    const C = pass.xDim;
    const n = rows.length;
    const eps = this.trainEps * ctx.xScale;
    const stepSize = this.relStep * ctx.xScale;
    const { min, max } = this.box;
    const xMean = Float32Array.from(pass.xMean);
    const xStd = Float32Array.from(pass.xStd);
    const x = new Float64Array(n * C);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < C; j++) x[r * C + j] = pass.trainX[rows[r]! * C + j]!;
    }
    const clipDelta = (delta: Float64Array): void => {
      for (let i = 0; i < delta.length; i++) {
        delta[i] = Math.min(Math.max(x[i]! + delta[i]!, min), max) - x[i]!;
      }
    };
    const rowScale = (v: Float64Array, r: number, f: (norm: number) => number): void => {
      let sq = 0;
      for (let j = 0; j < C; j++) sq += v[r * C + j]! * v[r * C + j]!;
      const s = f(Math.sqrt(sq));
      for (let j = 0; j < C; j++) v[r * C + j]! *= s;
    };
    const delta = uniformL2BallHost(n, C, eps, ctx.rng);
    clipDelta(delta);
    const putX = (): void => {
      const { x: bx, ldX } = pass.batch();
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < C; j++) {
          bx[r * ldX + j] = (x[r * C + j]! + delta[r * C + j]! - xMean[j]!) / xStd[j]!;
        }
      }
    };
    const g = new Float64Array(n * C);
    for (let step = 0; step < this.steps; step++) {
      putX();
      const dx = pass.inputGradient(n);
      const ldX = pass.batch().ldX;
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < C; j++) g[r * C + j] = dx[r * ldX + j]! / xStd[j]!;
        rowScale(g, r, (norm) => stepSize / Math.max(norm, GRAD_NORM_FLOOR));
      }
      for (let i = 0; i < delta.length; i++) delta[i] += g[i]!;
      clipDelta(delta);
      for (let r = 0; r < n; r++)
        rowScale(delta, r, (norm) => Math.min(1, eps / Math.max(norm, TINY)));
    }
    // x~ = clip(x + delta) to the box, as l2Pgd returns it.
    clipDelta(delta);
    putX();
  }
}
