// What the attacks maximize, per row of a batch. The two KL directions are named after the
// divergence they compute, never after "forward"/"reverse" alone, because RABI's figure axes swap them
// (paper.md 3.1):
//   rkl = KL(q(.|x~) || q(.|x)), Monte Carlo over samples rsampled from the attacked q(.|x~), so the
//         gradient with respect to x~ flows through the samples (RABI ReverseKLLoss);
//   fkl = KL(q(.|x) || q(.|x~)), Monte Carlo over samples from the clean q(.|x) (RABI ForwardKLLoss).
// The clean posterior q(.|x) is the fixed target: only x~ is ever differentiated.
import { tf } from '../backend.js';
import type { DensityEstimator, RandomStream } from '../types.js';

export type Divergence = 'rkl' | 'fkl';
/** nll: the targeted attack, -log q(theta_true | x~) (paper.md 3.3). */
export type AttackObjective = Divergence | 'nll';

export const DIVERGENCES: readonly Divergence[] = ['rkl', 'fkl'];

/** Monte Carlo samples per PGD step (RABI attack_mc_budget). */
export const ATTACK_MC_SAMPLES = 5;

export function isDivergence(s: string): s is Divergence {
  return (DIVERGENCES as readonly string[]).includes(s);
}

/** log q(samples[m, b] | x[b]) for samples [n, B, thetaDim] and x [B, xDim]: [n, B]. */
export function logProbOfSamples(
  est: DensityEstimator,
  samples: tf.Tensor3D,
  x: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, b, dt] = samples.shape;
    const flat = tf.reshape(samples, [n * b, dt]) as tf.Tensor2D;
    const xs = tf.tile(x, [n, 1]) as tf.Tensor2D; // row m*B + b is x[b], matching the reshape
    return tf.reshape(est.logProb(flat, xs), [n, b]) as tf.Tensor2D;
  });
}

export interface KlOptions {
  /** Samples per row. */
  samples: number;
  /**
   * true: draw with rsample so the estimate is differentiable with respect to x~ (attacks);
   * false: draw with sample, which may be cheaper (final metrics).
   */
  differentiable: boolean;
}

/**
 * Per-row Monte Carlo KL between q(.|xClean) and q(.|xAdv) in the named direction: [B].
 * rkl draws from q(.|xAdv), fkl from q(.|xClean) (never differentiable: it is the fixed target).
 */
export function klPerRow(
  est: DensityEstimator,
  divergence: Divergence,
  xAdv: tf.Tensor2D,
  xClean: tf.Tensor2D,
  rng: RandomStream,
  opts: KlOptions,
): tf.Tensor1D {
  return tf.tidy(() => {
    if (divergence === 'rkl') {
      const s = opts.differentiable
        ? est.rsample(xAdv, opts.samples, rng)
        : est.sample(xAdv, opts.samples, rng);
      const logAdv = logProbOfSamples(est, s, xAdv);
      const logClean = logProbOfSamples(est, s, xClean);
      return tf.mean(tf.sub(logAdv, logClean), 0) as tf.Tensor1D;
    }
    const s = est.sample(xClean, opts.samples, rng);
    const logClean = logProbOfSamples(est, s, xClean);
    const logAdv = logProbOfSamples(est, s, xAdv);
    return tf.mean(tf.sub(logClean, logAdv), 0) as tf.Tensor1D;
  });
}

/** -log q(theta_b | xAdv_b): [B]. */
export function nllPerRow(
  est: DensityEstimator,
  xAdv: tf.Tensor2D,
  theta: tf.Tensor2D,
): tf.Tensor1D {
  return tf.tidy(() => tf.neg(est.logProb(theta, xAdv)) as tf.Tensor1D);
}

export interface ObjectiveTargets {
  /** The clean x (the fixed target of the divergences). */
  xClean: tf.Tensor2D;
  /** The true theta of each clean x; required by the nll objective. */
  theta?: tf.Tensor2D;
}

/** The per-row quantity an attack maximizes, differentiable with respect to xAdv: [B]. */
export function attackObjectivePerRow(
  est: DensityEstimator,
  objective: AttackObjective,
  xAdv: tf.Tensor2D,
  targets: ObjectiveTargets,
  rng: RandomStream,
  mcSamples: number = ATTACK_MC_SAMPLES,
): tf.Tensor1D {
  if (objective === 'nll') {
    if (!targets.theta) throw new Error('The nll objective needs the true theta of each x.');
    return nllPerRow(est, xAdv, targets.theta);
  }
  return klPerRow(est, objective, xAdv, targets.xClean, rng, {
    samples: mcSamples,
    differentiable: true,
  });
}
