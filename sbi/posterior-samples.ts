// Posterior draws at one observation, restricted to the prior's support by default. A flow trained on
// simulations puts some of its mass where the prior has none (outside slcp's or two_moons' box,
// below zero on sir's rates); those draws are impossible parameters. sbi's DirectPosterior.sample
// rejects them and draws again ("leakage correction"), so a researcher comparing the two tools, and
// every C2ST this project reports against sbi (bench/sbi-parity.ts), samples this way.
import { tf } from './backend.js';
import type { DensityEstimator, Prior, RandomStream } from './types.js';

/** reject: draws outside the prior's support redrawn, as sbi does; keep: q's draws as they are. */
export type Leakage = 'reject' | 'keep';

/** Draws behind supportMass's estimate, as sbi's leakage_correction takes. */
export const SUPPORT_MASS_DRAWS = 10_000;

export interface PosteriorDraws {
  /** n rows of thetaDim values. */
  samples: Float32Array;
  /** Draws made to keep n: n when nothing was rejected. */
  drawn: number;
  /** n / drawn. */
  acceptance: number;
}

/**
 * The estimator's mass at this observation lies almost all outside the prior's support, so
 * rejection would take without end. sbi warns and goes on; a command should stop and say so.
 */
export class LeakageError extends Error {
  constructor(
    readonly kept: number,
    readonly drawn: number,
  ) {
    super(
      `Only ${kept} of ${drawn} draws from the estimator fell inside the prior's support at this observation (below 1 in ${Math.round(1 / MIN_ACCEPTANCE)}), so its posterior there lies almost entirely outside the prior.`,
    );
    this.name = 'LeakageError';
  }
}

const MAX_ROUND = 20_000;
/** Below this acceptance, measured over at least ACCEPTANCE_WINDOW draws, rejection gives up. */
export const MIN_ACCEPTANCE = 1e-3;
const ACCEPTANCE_WINDOW = 100_000;

/**
 * n draws from `model` at xo. Round r draws from rng.fork(`draw-${r}`) a batch sized for what is
 * still missing at the acceptance seen so far (20% spare, at most 20,000 rows), so a posterior that
 * leaks little is drawn in one round; the same seed and n give the same rows.
 * Without a prior, the draws are taken as the estimator makes them.
 */
export function samplePosterior(
  model: DensityEstimator,
  xo: ArrayLike<number>,
  n: number,
  rng: RandomStream,
  prior?: Prior,
): PosteriorDraws {
  const d = model.thetaDim;
  if (prior !== undefined && prior.dim !== d)
    throw new RangeError(`The prior has ${prior.dim} dimensions, the estimator ${d}.`);
  const out = new Float32Array(n * d);
  let kept = 0;
  let drawn = 0;
  const x = tf.tensor2d(Float32Array.from(xo), [1, model.xDim]);
  try {
    for (let round = 0; kept < n; round++) {
      const missing = n - kept;
      // Until something is known, expect everything to be accepted (the usual case); never plan
      // for less than 5% acceptance in one round, so a bad first round does not ask for millions.
      const rate = drawn === 0 ? 1 : Math.max(kept / drawn, 0.05);
      const want =
        prior === undefined
          ? Math.min(MAX_ROUND, missing)
          : Math.min(MAX_ROUND, Math.ceil((missing * 1.2) / rate) + 16);
      const t = tf.tidy(() =>
        tf.reshape(model.sample(x, want, rng.fork(`draw-${round}`)), [want, d]),
      );
      const s = t.dataSync() as Float32Array;
      t.dispose();
      if (prior === undefined) {
        out.set(s, kept * d);
        kept += want;
        drawn += want;
        continue;
      }
      const lp = prior.logProb(s, want);
      for (let i = 0; i < want && kept < n; i++) {
        drawn++;
        if (!Number.isFinite(lp[i]!)) continue;
        out.set(s.subarray(i * d, (i + 1) * d), kept * d);
        kept++;
      }
      if (kept < n && drawn >= ACCEPTANCE_WINDOW && kept / drawn < MIN_ACCEPTANCE)
        throw new LeakageError(kept, drawn);
    }
  } finally {
    x.dispose();
  }
  return { samples: out, drawn, acceptance: n / drawn };
}

/** The share of the n rows of theta inside the prior's support. */
export function shareInSupport(prior: Prior, theta: Float32Array, n: number): number {
  const lp = prior.logProb(theta, n);
  let inside = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(lp[i]!)) inside++;
  return inside / n;
}

/**
 * The share of the estimator's mass at xo inside the prior's support, from `draws` draws (sbi's
 * leakage_correction): log q - log(share) is the density of the rejection sampler above, over the
 * support.
 */
export function supportMass(
  model: DensityEstimator,
  xo: ArrayLike<number>,
  prior: Prior,
  rng: RandomStream,
  draws = SUPPORT_MASS_DRAWS,
): number {
  const { lower, upper } = prior.support;
  if (lower.every((v) => v === -Infinity) && upper.every((v) => v === Infinity)) return 1;
  return shareInSupport(prior, samplePosterior(model, xo, draws, rng).samples, draws);
}
