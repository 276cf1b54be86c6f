// The training-time defenses by name, for the CLI and the activities.
import { InvalidSettingError } from '../errors.js';
import type { TrainingDefense } from '../npe.js';
import {
  ADVERSARIAL_DEFAULT_EPS,
  AdversarialTraining,
  type AdversarialUpdate,
} from './adversarial.js';
import {
  FIM_EIGENVALUE_DEFAULTS,
  FIM_EXACT_DEFAULTS,
  FimEigenvalueDefense,
  FimExactDefense,
} from './fim-exact.js';
import { FimFastDefense, type FimFastOptions } from './fim-fast.js';
import { FIM_DEFAULTS, FimTraceDefense } from './fim-trace.js';
import { NOISE_DEFAULT_EPS, NoiseAugmentation } from './noise.js';
import { TRADES_DEFAULTS, Trades } from './trades.js';

import { DEFENSE_NAMES, isDefenseName, type DefenseName } from './names.js';

export { DEFENSE_NAMES, DEFENSE_TAKES, isDefenseName, type DefenseName } from './names.js';

export interface DefenseOptions {
  /**
   * fim / fim-fast / fim-exact: the regularizer weight (default 0.05); fim-eigenvalue: likewise
   * (default 0.1); trades: the KL weight (default 0.1).
   */
  beta?: number;
  /** trades / adversarial / noise: the budget relative to the training x scale. */
  trainEps?: number;
  /** fim / fim-fast: Monte Carlo samples of theta per x (default 5); fim-exact / fim-eigenvalue: 50. */
  mcSamples?: number;
  /** fim: RABI's grad_clamp_val, a global-norm bound on the regularizer's gradient alone. */
  gradClamp?: number;
  /** fim-fast only. */
  fast?: Omit<FimFastOptions, 'beta' | 'mcSamples'>;
  /** adversarial and trades: the intended update (default) or RABI's (AdversarialTraining, Trades). */
  update?: AdversarialUpdate;
}

const USES: Record<DefenseName, (keyof DefenseOptions)[]> = {
  none: [],
  fim: ['beta', 'mcSamples', 'gradClamp'],
  'fim-fast': ['beta', 'mcSamples', 'fast'],
  trades: ['beta', 'trainEps', 'update'],
  adversarial: ['trainEps', 'update'],
  noise: ['trainEps'],
  'fim-exact': ['beta', 'mcSamples'],
  'fim-eigenvalue': ['beta', 'mcSamples'],
};

/** The defaults each defense fills in (for the record kept with a trained model). */
export function defenseDefaults(name: DefenseName): { beta?: number; trainEps?: number } {
  switch (name) {
    case 'fim':
    case 'fim-fast':
      return { beta: FIM_DEFAULTS.beta };
    case 'fim-exact':
      return { beta: FIM_EXACT_DEFAULTS.beta };
    case 'fim-eigenvalue':
      return { beta: FIM_EIGENVALUE_DEFAULTS.beta };
    case 'trades':
      return { beta: TRADES_DEFAULTS.beta, trainEps: TRADES_DEFAULTS.trainEps };
    case 'adversarial':
      return { trainEps: ADVERSARIAL_DEFAULT_EPS };
    case 'noise':
      return { trainEps: NOISE_DEFAULT_EPS };
    case 'none':
      return {};
  }
}

/** A fresh defense (undefined for none). Options a defense does not use are an error, not ignored. */
export function createDefense(
  name: string,
  opts: DefenseOptions = {},
): TrainingDefense | undefined {
  if (!isDefenseName(name))
    throw new InvalidSettingError(`Unknown defense "${name}"; known: ${DEFENSE_NAMES.join(', ')}`);
  for (const [key, v] of Object.entries(opts)) {
    if (v !== undefined && !USES[name].includes(key as keyof DefenseOptions)) {
      throw new RangeError(
        `The ${name} defense does not take ${key === 'trainEps' ? 'a training epsilon' : key}.`,
      );
    }
  }
  switch (name) {
    case 'none':
      return undefined;
    case 'fim':
      return new FimTraceDefense({
        beta: opts.beta,
        mcSamples: opts.mcSamples,
        gradClamp: opts.gradClamp,
      });
    case 'fim-fast':
      return new FimFastDefense({ ...opts.fast, beta: opts.beta, mcSamples: opts.mcSamples });
    case 'trades':
      return new Trades(opts.beta, opts.trainEps, undefined, opts.update);
    case 'adversarial':
      return new AdversarialTraining(opts.trainEps, undefined, opts.update);
    case 'noise':
      return new NoiseAugmentation(opts.trainEps);
    case 'fim-exact':
      return new FimExactDefense({ beta: opts.beta, mcSamples: opts.mcSamples });
    case 'fim-eigenvalue':
      return new FimEigenvalueDefense({ beta: opts.beta, mcSamples: opts.mcSamples });
  }
}
