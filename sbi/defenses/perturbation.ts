// What the data-perturbing defenses share: the training budget is relative to the TRAINING data's
// scale (paper.md section 4: eps_abs = eps * X.std(1).mean() on raw training X, which the training
// loop hands over as ctx.xScale), and RABI's training-time PGD settings.
import type { ClipBox } from '../attacks/eps.js';

/** RABI's training-time PGD: 20 iterations, step 0.1 * std, x~ clipped to +-1000. */
export const TRAINING_PGD = Object.freeze({
  steps: 20,
  relStep: 0.1,
  box: { min: -1000, max: 1000 } as ClipBox,
});

export function checkTrainEps(name: string, trainEps: number): void {
  if (!(trainEps > 0) || !Number.isFinite(trainEps))
    throw new RangeError(
      `${name}: the training epsilon must be a positive number, got ${trainEps}.`,
    );
}
