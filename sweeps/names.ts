// The names a sweep spec may use. sbi/ registries hold the same lists, but importing them would pull
// tfjs into workflow bundles, so they are repeated here; a unit test asserts that both agree.

/** sbi/tasks/index.ts TASK_NAMES. */
export const TASK_NAMES = [
  'gaussian_linear',
  'lotka_volterra',
  'sir',
  'two_moons',
  'slcp',
  'hodgkin_huxley',
  'spatial_sir',
  'vae',
  'pyloric',
] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/**
 * sbi/estimators/index.ts ESTIMATOR_KINDS but linear_gaussian: fitted in closed form, it takes no
 * defense, so a sweep has nothing to vary on it.
 */
export const ESTIMATOR_KINDS = [
  'maf',
  'nsf',
  'gaussian',
  'mdn',
  'multivariate_gaussian',
  'maf_ensemble',
] as const;
export type EstimatorKind = (typeof ESTIMATOR_KINDS)[number];

/**
 * sbi/defenses/names.ts DEFENSE_NAMES (research/paper.md section 4; fim-fast is a cheaper FIM
 * estimate; fim-exact and fim-eigenvalue are the appendix's exact trace and largest eigenvalue).
 */
export const DEFENSE_NAMES = [
  'none',
  'fim',
  'fim-fast',
  'trades',
  'adversarial',
  'noise',
  'fim-exact',
  'fim-eigenvalue',
] as const;
export type DefenseName = (typeof DEFENSE_NAMES)[number];

/** sbi/attacks/index.ts ATTACKS. */
export const ATTACK_NAMES = ['l2pgd', 'linfpgd', 'noise', 'nll', 'fim-eigen'] as const;
export type AttackName = (typeof ATTACK_NAMES)[number];

/**
 * sbi/attacks/objectives.ts DISCREPANCIES: rkl = KL(q~ || q), fkl = KL(q || q~), mmd = MMD^2(q~, q)
 * (RABI's RBF kernel; the sweep's mcSamples is its attack budget too: RABI used 10 for it).
 */
export const OBJECTIVES = ['rkl', 'fkl', 'mmd'] as const;
export type Objective = (typeof OBJECTIVES)[number];

/** Temporal task queues a worker can serve. */
/** Named estimator and training choices (sbi/presets.ts): robustsbi's own, or the paper's code. */
/** Accuracy diagnostics a sweep can add to its evaluation (sbi/diagnostics.ts). */
export const METRICS = ['c2st', 'sbc'] as const;
export type Metric = (typeof METRICS)[number];

/** Tasks with a reference posterior to score C2ST against (sbi tasks' referencePosterior). */
export const REFERENCE_POSTERIOR_TASKS = [
  'gaussian_linear',
  'lotka_volterra',
  'sir',
  'two_moons',
  'slcp',
] as const;

export const PRESETS = ['robustsbi', 'rabi'] as const;
export type PresetName = (typeof PRESETS)[number];
/**
 * Validation rows the rabi preset simulates beside the budget when training.valSize is unset
 * (sbi/presets.ts PRESET_SETTINGS.rabi.extraValidationRows; a unit test keeps them equal).
 */
export const RABI_VALIDATION_ROWS = 512;

/** Early stopping's rules (sbi/npe-hyperparameters.ts STOP_RULES; a unit test keeps them equal). */
export const STOP_RULES = ['rabi', 'sbi'] as const;
export type StopRule = (typeof STOP_RULES)[number];

export const QUEUES = ['cpu', 'gpu'] as const;
export type Queue = (typeof QUEUES)[number];

/**
 * Architecture settings each estimator accepts: the keys of sbi's *_DEFAULTS (`orders` is left out
 * because a flow draws it from the trial's seed), plus `embedding` (sbi/estimators/base.ts
 * EMBEDDINGS: 'identity', RABI's 'mlp' or its 'pyloric-cnn'; absent means the task's default).
 */
export const ARCHITECTURE_KEYS = {
  maf: ['hidden', 'numTransforms', 'logScaleMin', 'logScaleMax', 'embedding'],
  nsf: [
    'hidden',
    'numTransforms',
    'bins',
    'tailBound',
    'minBinWidth',
    'minBinHeight',
    'minDerivative',
    'embedding',
  ],
  gaussian: ['hidden', 'minScale', 'embedding'],
  mdn: ['hidden', 'components', 'minScale', 'embedding'],
  multivariate_gaussian: ['hidden', 'minScale', 'embedding'],
  maf_ensemble: ['members', 'hidden', 'numTransforms', 'logScaleMin', 'logScaleMax', 'embedding'],
} as const satisfies Record<EstimatorKind, readonly string[]>;

/** sbi/estimators/base.ts EMBEDDINGS. */
export const EMBEDDINGS = ['identity', 'mlp', 'pyloric-cnn'] as const;

/** How a search proposes (sweeps/search.ts): bisect the front's widest gaps, or the baselines. */
export const SEARCH_METHODS = ['gaps', 'random', 'grid'] as const;
export type SearchMethod = (typeof SEARCH_METHODS)[number];

/** The objectives a search minimizes: the test NLL and the mean KL of one attack evaluation. */
export const SEARCH_METRICS = ['testNll', 'kl'] as const;
