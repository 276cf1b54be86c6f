// One entry point for the attacks the CLI and the activities name.
import { tf } from '../backend.js';
import { fimEigenAttack } from './fim-eigen.js';
import { uniformNoise } from './noise.js';
import type { Discrepancy } from './objectives.js';
import { l2Pgd, linfPgd } from './pgd.js';
import type { AttackSetup } from './setup.js';

export { absoluteEps, autoStepSize, clipBoxOf, meanPerSampleStd, type ClipBox } from './eps.js';
export {
  ATTACK_MC_SAMPLES,
  DISCREPANCIES,
  discrepancyPerRow,
  isDiscrepancy,
  klPerRow,
  type AttackObjective,
  type Discrepancy,
  type Divergence,
} from './objectives.js';
export type { AttackSetup } from './setup.js';

export const ATTACKS = ['l2pgd', 'linfpgd', 'noise', 'nll', 'fim-eigen'] as const;
export type AttackName = (typeof ATTACKS)[number];

export function isAttackName(s: string): s is AttackName {
  return (ATTACKS as readonly string[]).includes(s);
}

export interface AttackOptions {
  /** What the untargeted attacks maximize, a KL direction or the MMD (nll and noise ignore it). */
  divergence: Discrepancy;
  /** PGD iterations (l2pgd / nll default 200, linfpgd 120). */
  steps?: number;
  /** Monte Carlo samples per PGD step (default 5; the MMD 10). */
  mcSamples?: number;
  /** Absolute PGD step size (default RABI's auto rule). */
  stepSize?: number;
  /** Samples for the Monte Carlo FIM of fim-eigen (default 256). */
  fimSamples?: number;
}

/** Attacks one batch: returns x~ [B, xDim]; the caller owns it. */
export function runAttack(name: AttackName, setup: AttackSetup, opts: AttackOptions): tf.Tensor2D {
  const pgd = { steps: opts.steps, stepSize: opts.stepSize, mcSamples: opts.mcSamples };
  switch (name) {
    case 'l2pgd':
      return l2Pgd(setup, { objective: opts.divergence, ...pgd });
    case 'linfpgd':
      return linfPgd(setup, { objective: opts.divergence, ...pgd });
    case 'nll':
      // Targeted: maximize -log q(theta_true | x~) with the same L2 PGD (paper.md 3.3).
      return l2Pgd(setup, { objective: 'nll', ...pgd });
    case 'noise':
      return uniformNoise(setup);
    case 'fim-eigen':
      return fimEigenAttack(setup, { divergence: opts.divergence, fimSamples: opts.fimSamples });
  }
}

/**
 * Attacks many x in batches of `batchSize` rows (RABI: 1000) so that memory stays bounded; x and theta
 * are row-major Float32Arrays. Returns x~ as a Float32Array of the same shape.
 */
export async function attackInBatches(
  name: AttackName,
  base: Omit<AttackSetup, 'x' | 'theta'>,
  x: Float32Array,
  theta: Float32Array | undefined,
  opts: AttackOptions,
  batchSize = 1000,
): Promise<Float32Array> {
  const est = base.estimator;
  const n = x.length / est.xDim;
  const out = new Float32Array(x.length);
  for (let start = 0; start < n; start += batchSize) {
    const b = Math.min(batchSize, n - start);
    const xb = tf.tensor2d(x.subarray(start * est.xDim, (start + b) * est.xDim), [b, est.xDim]);
    const tb = theta
      ? tf.tensor2d(theta.subarray(start * est.thetaDim, (start + b) * est.thetaDim), [
          b,
          est.thetaDim,
        ])
      : undefined;
    const adv = runAttack(name, { ...base, x: xb, ...(tb ? { theta: tb } : {}) }, opts);
    out.set(await adv.data(), start * est.xDim);
    adv.dispose();
    xb.dispose();
    tb?.dispose();
  }
  return out;
}
