// Named sets of estimator and training choices. `rabi` is the paper's code (mackelab/RABI, research
// paper.md 7) point by point, for reproducing its numbers; `robustsbi` is this project's own, and
// each of its departures is listed with its reason. A preset fills what a configuration leaves
// unset: explicit settings still win.
import type { EstimatorKind } from './types.js';

export const PRESETS = ['robustsbi', 'rabi'] as const;
export type PresetName = (typeof PRESETS)[number];

export function isPresetName(s: string): s is PresetName {
  return (PRESETS as readonly string[]).includes(s);
}

export interface Preset {
  /** Estimator settings over the estimator's and the task's defaults, per estimator kind. */
  architecture: Partial<Record<EstimatorKind, Record<string, unknown>>>;
  /** Whether theta is z-scored inside the model (x always is, std clamped at 0.05). */
  zscoreTheta: boolean;
  /**
   * Validation rows: 'split' takes them out of the simulation budget N at random; 'extra' simulates
   * them beside it (N train rows + valSize more), as RABI's 512 separate validation rows.
   */
  validation: 'split' | 'extra';
  /** Validation rows simulated beside N under 'extra'. */
  extraValidationRows: number;
  /** Restarts of a run that ends diverged (non-finite loss), each with the learning rate x 0.1. */
  nanRestarts: number;
}

export const PRESET_SETTINGS: Record<PresetName, Preset> = {
  robustsbi: {
    architecture: {},
    // theta z-scored: the log-scale clip [-7, 5] and the spline bound then mean the same thing
    // whatever the prior's scale, and a uniform prior on [-1000, 1000] trains like one on [-1, 1].
    zscoreTheta: true,
    // The budget N counts every simulation paid for, as sbi does; RABI's N does not count its 512
    // validation rows.
    validation: 'split',
    extraValidationRows: 0,
    // A diverged trial fails with its reason; the sweep's retry policy decides what runs again.
    nanRestarts: 0,
  },
  rabi: {
    architecture: {
      // pyro's AffineAutoregressive(...).inv around ConditionalAutoRegressiveNN (paper.md 7):
      // z = exp(s) theta + mu, clamp_preserve_gradients, round(linspace) degrees, nn.Linear biases.
      // robustsbi's own: z = (theta - mu) exp(-s) (Papamakarios et al.'s MAF, as sbi's nflows), a clip
      // whose gradient is 0 outside [-7, 5] (a clipped scale does not drift further), degrees k mod D
      // (every degree equally often) and zero biases (Germain et al.'s MADE).
      maf: { affine: 'pyro', clampGradient: 'pass', degrees: 'linspace', biasInit: 'torch' },
      // RABI's InverseAffineAutoregressiveEnsemble: the same MAF, K times.
      maf_ensemble: {
        affine: 'pyro',
        clampGradient: 'pass',
        degrees: 'linspace',
        biasInit: 'torch',
      },
      // pyro's SplineAutoregressive(...).inv with order="linear", count_bins 12, bound 30 around the
      // same ConditionalAutoRegressiveNN (paper.md 7): linear-rational splines (Dolatabadi et al.)
      // on [-30, 30] of raw theta, in the density direction theta -> z as robustsbi's own, pyro's
      // degrees and torch's biases. robustsbi's own: rational-quadratic splines (Durkan et al., as
      // sbi's nflows NSF) on [-5, 5] of z-scored theta: with theta standardized, [-5, 5] holds all
      // but ~6e-7 of the mass of each marginal, where [-30, 30] of raw theta is too wide for a prior
      // of scale 0.5 (lotka_volterra: the 12 bins average 5 units, 10 prior stds) and too narrow
      // for one of scale 100 (all of it in the identity tails); and the rational-quadratic spline
      // is C1 at the bound, where pyro's slope jumps from 1 - minDerivative to 1.
      nsf: {
        spline: 'linear-rational',
        tailBound: 30,
        degrees: 'linspace',
        biasInit: 'torch',
      },
    },
    zscoreTheta: false,
    validation: 'extra',
    extraValidationRows: 512,
    nanRestarts: 3,
  },
};

export function presetSettings(name: string | undefined): Preset {
  if (name === undefined) return PRESET_SETTINGS.robustsbi;
  if (!isPresetName(name))
    throw new RangeError(`Unknown preset "${name}"; known: ${PRESETS.join(', ')}.`);
  return PRESET_SETTINGS[name];
}
