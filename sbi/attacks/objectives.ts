// What the attacks maximize, per row of a batch. The two KL directions are named after the
// divergence they compute, never after "forward"/"reverse" alone, because RABI's figure axes swap them
// (paper.md 3.1):
//   rkl = KL(q(.|x~) || q(.|x)), Monte Carlo over samples rsampled from the attacked q(.|x~), so the
//         gradient with respect to x~ flows through the samples (RABI ReverseKLLoss);
//   fkl = KL(q(.|x) || q(.|x~)), Monte Carlo over samples from the clean q(.|x) (RABI ForwardKLLoss).
//   mmd = MMD^2(q(.|x~), q(.|x)), RABI's linear-time estimate with an RBF kernel (metrics/mmd.ts), from
//         samples rsampled from q(.|x~) against samples of q(.|x) (RABI MMDsquared, the appendix's
//         "different divergence" attack).
// The clean posterior q(.|x) is the fixed target: only x~ is ever differentiated.
import { tf } from '../backend.js';
import { MMD_ATTACK_MC_SAMPLES, mmdSquaredLinear } from '../metrics/mmd.js';
import type { DensityEstimator, RandomStream } from '../types.js';

export type Divergence = 'rkl' | 'fkl';
/** What an untargeted attack maximizes and an evaluation scores: a KL direction or the MMD^2. */
export type Discrepancy = Divergence | 'mmd';
/** nll: the targeted attack, -log q(theta_true | x~) (paper.md 3.3). */
export type AttackObjective = Discrepancy | 'nll';

export const DIVERGENCES: readonly Divergence[] = ['rkl', 'fkl'];
export const DISCREPANCIES: readonly Discrepancy[] = ['rkl', 'fkl', 'mmd'];

/** Monte Carlo samples per PGD step (RABI attack_mc_budget). */
export const ATTACK_MC_SAMPLES = 5;

export function isDivergence(s: string): s is Divergence {
  return (DIVERGENCES as readonly string[]).includes(s);
}

export function isDiscrepancy(s: string): s is Discrepancy {
  return (DISCREPANCIES as readonly string[]).includes(s);
}

/**
 * Monte Carlo samples per PGD step for an objective: the MMD has RABI's own budget (10: five pairs
 * for the linear-time estimate), the others 5.
 */
export function defaultAttackSamples(objective: AttackObjective): number {
  return objective === 'mmd' ? MMD_ATTACK_MC_SAMPLES : ATTACK_MC_SAMPLES;
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

/**
 * Per-row linear-time MMD^2 between q(.|xAdv) and q(.|xClean) from opts.samples draws of each: [B].
 * The attacked draws are rsampled when differentiable (the gradient with respect to x~ flows through
 * them); the clean ones never are (the fixed target). Attacked draws first, then clean ones.
 */
export function mmdPerRow(
  est: DensityEstimator,
  xAdv: tf.Tensor2D,
  xClean: tf.Tensor2D,
  rng: RandomStream,
  opts: KlOptions,
): tf.Tensor1D {
  return tf.tidy(() => {
    const adv = opts.differentiable
      ? est.rsample(xAdv, opts.samples, rng)
      : est.sample(xAdv, opts.samples, rng);
    const clean = est.sample(xClean, opts.samples, rng);
    return mmdSquaredLinear(adv, clean);
  });
}

/** klPerRow or mmdPerRow, by name: [B]. */
export function discrepancyPerRow(
  est: DensityEstimator,
  discrepancy: Discrepancy,
  xAdv: tf.Tensor2D,
  xClean: tf.Tensor2D,
  rng: RandomStream,
  opts: KlOptions,
): tf.Tensor1D {
  return discrepancy === 'mmd'
    ? mmdPerRow(est, xAdv, xClean, rng, opts)
    : klPerRow(est, discrepancy, xAdv, xClean, rng, opts);
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
  mcSamples: number = defaultAttackSamples(objective),
): tf.Tensor1D {
  if (objective === 'nll') {
    if (!targets.theta) throw new Error('The nll objective needs the true theta of each x.');
    return nllPerRow(est, xAdv, targets.theta);
  }
  return discrepancyPerRow(est, objective, xAdv, targets.xClean, rng, {
    samples: mcSamples,
    differentiable: true,
  });
}
