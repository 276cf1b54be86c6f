// What one `robustsbi train` uses for the settings its options leave unset. Under the robustsbi
// preset that is the most accurate NPE measured at its cost (BENCHMARKS.md, "The default of
// robustsbi train"): sbi 0.27's NPE() recipe (MAF of 5 transforms over tanh MADEs of width 50,
// batch 200, lr 5e-4, 20 epochs without improvement, gradient clip 5) on robustsbi's MAF, which
// the fused step trains, with two anneals where sbi would stop. Under rabi it is the paper's schedule and architecture, as before.
//
// Sweeps do not read these: their schema's defaults (sweeps/schema.ts, equal to
// DEFAULT_NPE_HYPERPARAMETERS) feed the trial IDs of existing specs, so they stay RABI's; a spec
// gets this schedule by writing it in its training block (sweeps/README.md).
import type { NPEHyperparameters } from './npe-hyperparameters.js';
import { DEFAULT_NPE_HYPERPARAMETERS } from './npe-hyperparameters.js';
import type { PresetName } from './presets.js';
import { taskEstimatorDefaults } from './estimators/task-defaults.js';

export const DEFAULT_TRAIN_ESTIMATOR = 'maf';

/** robustsbi's single-training schedule (sbi's NPE defaults, with a finite epoch cap). */
export const TRAIN_HYPERPARAMETERS: Readonly<NPEHyperparameters> = Object.freeze({
  ...DEFAULT_NPE_HYPERPARAMETERS,
  learningRate: 5e-4,
  batchSize: 200,
  clipNorm: 5,
  patience: 20,
  // sbi's stop_after_epochs: patience counts epochs in a row without improvement. Under RABI's
  // counter the same recipe stopped two_moons at 73 epochs, its validation loss still falling.
  stopRule: 'sbi',
  // sbi's cap is effectively unbounded; two_moons at 10k stops near 200 epochs, so 2,000 only
  // bounds a run that would not stop.
  maxEpochs: 2000,
  // Where sbi stops, go on twice from the best state at a tenth of the rate: on paired held-out NLL
  // never worse, up to 0.09 nats better at 10k (BENCHMARKS.md, "Annealing").
  anneals: 2,
  // At the cut rate a wait of 10 epochs, not 20: mean held-out NLL within 0.005 nats at 1k and
  // 0.014 at 10k, for 3 to 19% less training CPU (BENCHMARKS.md, "Anneal patience").
  annealPatience: 10,
});

/**
 * robustsbi's single-training architecture per estimator kind: 5 transforms of tanh MADEs [50, 50]
 * (sbi's width and activation; tanh halved the KL to the exact posterior on both Gaussian tasks
 * against ReLU, at 1k and 10k, over seeds). sbi's nflows MADE has a third masked layer; on paired
 * held-out NLL a third layer helps sir, slcp and gaussian_linear and hurts two_moons and
 * lotka_volterra at 1k (BENCHMARKS.md), so the default keeps two.
 */
export const TRAIN_ARCHITECTURE: Readonly<Record<string, Readonly<Record<string, unknown>>>> =
  Object.freeze({
    maf: Object.freeze({ hidden: [50, 50], numTransforms: 5, activation: 'tanh' }),
  });

/**
 * Architectures `robustsbi train` also trains, on the same split and streams, when the user sets no
 * architecture option: the run with the lowest best validation NLL is kept. The alternative is the
 * MADE nearest to sbi's: three tanh layers with nflows' scale and nflows' initialization (torch's
 * biases; the first layer's theta and context weights drawn over their own fan-ins). On paired
 * held-out NLL over three training streams (BENCHMARKS.md, "nflows' initialization") it gains
 * 0.2 to 1.2 nats over the same MADE with robustsbi's initialization on slcp, lotka_volterra, sir
 * and two_moons at 1k and 0.1 on lotka_volterra and slcp at 10k, and loses 0.4 on gaussian_linear
 * at 1k, where the first candidate is the better one; the validation NLL of the shared split
 * chooses.
 */
export const TRAIN_ALTERNATIVES: Readonly<
  Record<string, readonly Readonly<Record<string, unknown>>[]>
> = Object.freeze({
  maf: Object.freeze([
    Object.freeze({
      hidden: [50, 50, 50],
      numTransforms: 5,
      activation: 'tanh',
      affine: 'nflows',
      biasInit: 'torch',
      inputFanIn: 'separate',
    }),
  ]),
});

/**
 * sbi 0.27's MADE exactly (T3Nbs with nflows' context layer and degrees), which `robustsbi train
 * --sbi-made` adds as a third MAF candidate. Not a default one: it lowers slcp's 1k C2ST from
 * 0.958 to sbi's 0.955 over 24 seeds, but its training to a first stop costs 1.4 to 2.1 times the
 * default's CPU and puts lotka_volterra and sir at 1k and sir at 10k above sbi's (BENCHMARKS.md,
 * "sbi's MADE as a third candidate").
 */
export const SBI_MADE: Readonly<Record<string, unknown>> = Object.freeze({
  ...TRAIN_ALTERNATIVES.maf![0]!,
  contextLayer: 'tanh',
  degrees: 'nflows',
});

/** Below this many simulations the default MAF's candidates are SMALL_BUDGET_CANDIDATES. */
export const SMALL_BUDGET = 10_000;

/**
 * A candidate of another estimator kind than the one trained names it under this key (the rest of
 * the record is that kind's architecture): train fits it on the same split and compares it by the
 * same validation NLL.
 */
export const CANDIDATE_ESTIMATOR_KEY = 'estimator';

/**
 * The default's candidates below SMALL_BUDGET simulations: two-layer tanh MADEs with nflows' scale
 * and initialization, without and with nflows' context layer, and the closed-form linear-Gaussian
 * fit. On paired held-out NLL at 1k (BENCHMARKS.md, "A linear-Gaussian candidate") against the
 * larger budgets' pair: slcp -0.22 nats (24 seeds; the context layer), lotka_volterra -0.23 and sir
 * -0.10 (nflows' initialization on two layers), two_moons -0.01, and the Gaussian tasks 0.15 to
 * 1.45 lower where the linear-Gaussian fit is kept (the flows' SGD does not reach the linear
 * posterior on 900 rows). At 10k the two-layer pair lost lotka_volterra's C2ST to sbi's, so larger
 * budgets keep T2 and the three-layer candidate.
 */
export const SMALL_BUDGET_CANDIDATES: readonly Readonly<Record<string, unknown>>[] = Object.freeze([
  Object.freeze({ ...TRAIN_ALTERNATIVES.maf![0]!, hidden: [50, 50] }),
  Object.freeze({ ...TRAIN_ALTERNATIVES.maf![0]!, hidden: [50, 50], contextLayer: 'tanh' }),
  Object.freeze({ [CANDIDATE_ESTIMATOR_KEY]: 'linear_gaussian' }),
]);

/** Above this many x dimensions the closed form's (xDim + 1)^2 system is not offered (the probe's). */
export const CLOSED_FORM_MAX_XDIM = 256;

/**
 * Whether the linear-Gaussian fit can be a candidate for a task: x enters it directly (an embedding
 * net would have to be trained, which the closed form cannot), x is not too wide, and the budget
 * leaves more training rows than the fit has coefficients per theta dimension.
 */
export function closedFormFits(task: { name: string; xDim: number }, n: number): boolean {
  return (
    taskEstimatorDefaults(task.name).embedding === undefined &&
    task.xDim <= CLOSED_FORM_MAX_XDIM &&
    n > 2 * (task.xDim + 1)
  );
}

/**
 * The architectures one `robustsbi train` fits: more than one only for the robustsbi preset's
 * estimators that have alternatives. For a MAF from `n` simulations below SMALL_BUDGET,
 * SMALL_BUDGET_CANDIDATES (without the closed-form one where `closedForm` is false: an ensemble's
 * members are MAFs); otherwise `first` (the default architecture unless given) and
 * TRAIN_ALTERNATIVES. `sbiMade` adds SBI_MADE to a MAF's.
 */
export function trainCandidates(
  preset: PresetName,
  estimator: string,
  opts: {
    sbiMade?: boolean;
    n?: number;
    first?: Record<string, unknown>;
    closedForm?: boolean;
  } = {},
): Record<string, unknown>[] {
  const first = opts.first ?? trainDefaults(preset, estimator).architecture;
  if (preset === 'rabi') return [first];
  const small = estimator === 'maf' && opts.n !== undefined && opts.n < SMALL_BUDGET;
  const candidates = small
    ? SMALL_BUDGET_CANDIDATES.filter(
        (c) => opts.closedForm !== false || c[CANDIDATE_ESTIMATOR_KEY] === undefined,
      ).map(copyArchitecture)
    : [first, ...(TRAIN_ALTERNATIVES[estimator] ?? []).map(copyArchitecture)];
  if (opts.sbiMade && estimator === 'maf') candidates.push(copyArchitecture(SBI_MADE));
  return candidates;
}

/**
 * A candidate's estimator kind (its CANDIDATE_ESTIMATOR_KEY, else `estimator`) and its architecture
 * without that key.
 */
export function candidateEstimator(
  candidate: Readonly<Record<string, unknown>>,
  estimator: string,
): { estimator: string; architecture: Record<string, unknown> } {
  const { [CANDIDATE_ESTIMATOR_KEY]: kind, ...architecture } = candidate;
  return { estimator: typeof kind === 'string' ? kind : estimator, architecture };
}

function copyArchitecture(arch: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(arch).map(([k, v]) => [k, Array.isArray(v) ? [...(v as unknown[])] : v]),
  );
}

export interface TrainDefaults {
  /** Architecture settings under the user's own, over the preset's and the estimator's defaults. */
  architecture: Record<string, unknown>;
  /** Every hyperparameter, for the user's options to override. */
  hyperparameters: NPEHyperparameters;
}

/** The settings `robustsbi train --preset P --estimator E` starts from before its options apply. */
export function trainDefaults(preset: PresetName, estimator: string): TrainDefaults {
  if (preset === 'rabi')
    return { architecture: {}, hyperparameters: { ...DEFAULT_NPE_HYPERPARAMETERS } };
  return {
    architecture: copyArchitecture(TRAIN_ARCHITECTURE[estimator] ?? {}),
    hyperparameters: { ...TRAIN_HYPERPARAMETERS },
  };
}
