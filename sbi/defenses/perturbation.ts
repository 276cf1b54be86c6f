// What the data-perturbing defenses share: the training budget is relative to the TRAINING data's
// scale (paper.md section 4: eps_abs = eps * X.std(1).mean() on raw training X, which the training
// loop hands over as ctx.xScale), and RABI's training-time PGD settings.
import type { ClipBox } from '../attacks/eps.js';
import { tf } from '../backend.js';

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

/**
 * RABI's effective update (adversarial training, TRADES): grad_w of `loss` added, per variable
 * name, to the running sum of the attack iterates' gradients; the tensors it replaces are disposed
 * and the ones it returns belong to the caller's scope.
 */
export function addWeightGradient(
  sum: Record<string, tf.Tensor> | null,
  vars: tf.Variable[],
  loss: () => tf.Scalar,
): Record<string, tf.Tensor> {
  const { value, grads } = tf.variableGrads(loss, vars);
  value.dispose();
  const out = sum ?? {};
  for (const v of vars) {
    const g = grads[v.name];
    if (!g) continue;
    const prev = out[v.name];
    out[v.name] = prev ? tf.add(prev, g) : g;
    if (prev) {
      prev.dispose();
      g.dispose();
    }
  }
  return out;
}
