// Projected gradient ascent on the perturbation, as RABI runs it (advertorch perturb_iterative,
// patched to always start at a random point of the ball; paper.md 3.2). Batched: every row is its own
// attack, since the objective is a sum of per-row terms its gradient splits by row. No data is read
// back from the tensors inside the loop.
import { tf } from '../backend.js';
import {
  GRAD_NORM_FLOOR,
  clipDelta,
  normalizeRows,
  projectL2,
  uniformL2Ball,
  uniformLinfBall,
} from './ball.js';
import { autoStepSize } from './eps.js';
import { attackObjectivePerRow, defaultAttackSamples, type AttackObjective } from './objectives.js';
import type { AttackSetup } from './setup.js';
import { hostPgd } from './pgd-host.js';

export const L2_PGD_STEPS = 200;
export const LINF_PGD_STEPS = 120;
export { GRAD_NORM_FLOOR };

export interface PgdOptions {
  objective: AttackObjective;
  /** Iterations; default 200 (L2) or 120 (Linf). */
  steps?: number;
  /** Absolute step size; default RABI's "auto", min(20 eps_abs / steps, eps_abs). */
  stepSize?: number;
  /** Monte Carlo samples per step for the divergences; default 5 (KL) or 10 (MMD). */
  mcSamples?: number;
  /**
   * Test hook: sees each iterate x + delta after projection. Reading it forces a sync, so leave it
   * unset outside tests. The tensor is disposed after the call.
   */
  onIterate?: (xAdv: tf.Tensor2D, step: number) => void;
  /**
   * Sees each point x + delta where a step's gradient is taken (the start and every iterate but the
   * last), before the step; the tensor is disposed after the call. Tensors the hook makes belong to
   * the caller's scope (RABI's adversarial training adds their weight gradients to the update).
   */
  onGradientPoint?: (xAdv: tf.Tensor2D, step: number) => void;
}

type Norm = 'l2' | 'linf';

function pgd(setup: AttackSetup, opts: PgdOptions, norm: Norm): tf.Tensor2D {
  const { estimator: est, x, epsAbs: eps, box, rng } = setup;
  const [b, d] = x.shape;
  const steps = opts.steps ?? (norm === 'l2' ? L2_PGD_STEPS : LINF_PGD_STEPS);
  const stepSize = opts.stepSize ?? autoStepSize(eps, steps);
  const mc = opts.mcSamples ?? defaultAttackSamples(opts.objective);
  const targets = setup.theta ? { xClean: x, theta: setup.theta } : { xClean: x };
  if (opts.objective === 'nll' && !setup.theta)
    throw new Error('The nll attack needs the true theta.');
  // The fused kernels know the KL and NLL objectives only; the MMD runs the tfjs loop.
  const objective = opts.objective;
  const fused = objective === 'mmd' ? null : (est.fusedInference?.() ?? null);
  if (fused && objective !== 'mmd') {
    try {
      return hostPgd(fused, setup, { ...opts, objective, steps, stepSize, mcSamples: mc }, norm);
    } finally {
      fused.dispose();
    }
  }

  const total = (delta: tf.Tensor): tf.Tensor =>
    tf.sum(
      attackObjectivePerRow(est, objective, tf.add(x, delta) as tf.Tensor2D, targets, rng, mc),
    );
  const gradOf = tf.grad(total);

  let delta = tf.tidy(() => {
    const start = norm === 'l2' ? uniformL2Ball(b, d, eps, rng) : uniformLinfBall(b, d, eps, rng);
    return clipDelta(x, start, box);
  });
  for (let step = 0; step < steps; step++) {
    if (opts.onGradientPoint) {
      const at = tf.tidy(() => tf.add(x, delta) as tf.Tensor2D);
      opts.onGradientPoint(at, step);
      at.dispose();
    }
    const next = tf.tidy(() => {
      const g = gradOf(delta) as tf.Tensor2D;
      if (norm === 'l2') {
        const moved = tf.add(
          delta,
          tf.mul(normalizeRows(g, GRAD_NORM_FLOOR), stepSize),
        ) as tf.Tensor2D;
        return projectL2(clipDelta(x, moved, box), eps);
      }
      const moved = tf.clipByValue(
        tf.add(delta, tf.mul(tf.sign(g), stepSize)),
        -eps,
        eps,
      ) as tf.Tensor2D;
      return clipDelta(x, moved, box);
    });
    delta.dispose();
    delta = next;
    if (opts.onIterate) {
      const it = tf.tidy(() => tf.add(x, delta) as tf.Tensor2D);
      opts.onIterate(it, step);
      it.dispose();
    }
  }
  const xAdv = tf.tidy(() => tf.clipByValue(tf.add(x, delta), box.min, box.max) as tf.Tensor2D);
  delta.dispose();
  return xAdv;
}

/**
 * L2 PGD: per-row normalized gradient ascent, then clip x + delta to the box, then project delta onto
 * the L2 ball of radius eps_abs (in that order, as advertorch does). Returns x~ [B, xDim].
 */
export function l2Pgd(setup: AttackSetup, opts: PgdOptions): tf.Tensor2D {
  return pgd(setup, opts, 'l2');
}

/** Linf PGD: sign steps, clamp delta to [-eps_abs, eps_abs], then clip x + delta to the box. */
export function linfPgd(setup: AttackSetup, opts: PgdOptions): tf.Tensor2D {
  return pgd(setup, opts, 'linf');
}
