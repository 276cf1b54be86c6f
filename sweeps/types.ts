// The shapes of a validated sweep spec (defaults filled, estimator shorthands expanded) and of the
// trials it expands to. Pure types: workflows import them freely.
import type {
  AttackName,
  DefenseName,
  EstimatorKind,
  Metric,
  Objective,
  PresetName,
  Queue,
  StopRule,
  SearchMethod,
  TaskName,
} from './names.js';

/** Overrides of sbi's default architecture for one estimator kind (sbi fills the rest). */
export type ArchitectureOverrides = Record<string, number | number[]>;

export interface EstimatorSpec {
  kind: EstimatorKind;
  architecture: ArchitectureOverrides;
  /** Task queue that trains this estimator; overrides routing.train. Not part of any ID. */
  queue?: Queue;
}

export interface DefenseSpec {
  name: DefenseName;
  /** Regularization strengths (fim, fim-fast, fim-exact, fim-eigenvalue, trades). */
  betas?: number[];
  /** Training epsilons relative to the training data's mean per-sample std (trades, adversarial, noise). */
  trainEps?: number[];
  /** Monte Carlo samples of the FIM estimate (fim, fim-fast; fim-exact / fim-eigenvalue fallback). */
  mcSamples?: number;
  /** Probe directions per sample (fim-fast). */
  probes?: number;
  /** fim: RABI's grad_clamp_val (global-norm bound on the regularizer's gradient; pyloric 1,000). */
  gradClamp?: number;
}

export interface TrainingOptions {
  maxEpochs: number;
  minEpochs: number;
  batchSize: number;
  learningRate: number;
  patience: number;
  /** Global gradient-norm clip; null turns clipping off. */
  clipNorm: number | null;
  maxNanResets: number;
  /** Validation rows; absent means sbi's rule, min(512, 10% of the budget). */
  valSize?: number;
  /**
   * Named estimator and training choices (sbi/presets.ts); absent: robustsbi's. Under rabi the
   * validation rows (valSize, default 512) are simulated beside the budget.
   */
  preset?: PresetName;
  /** What an improvement does to early stopping's counter; absent: 'rabi' (lowers it by one). */
  stopRule?: StopRule;
  /** Times a run early stopping would end goes on from its best state at a cut rate; absent: never. */
  anneals?: number;
  /** The learning rate's factor at each anneal; absent: 0.1. Needs anneals. */
  annealFactor?: number;
  /** Early stopping's patience once an anneal is taken; absent: patience. Needs anneals. */
  annealPatience?: number;
  /** Leave out each epoch's last partial batch (sbi's drop_last); absent: keep it. */
  dropLast?: boolean;
}

export interface EvaluationOptions {
  attacks: AttackName[];
  objectives: Objective[];
  /** Attack budgets relative to the test set's mean per-sample std. */
  eps: number[];
  nTest: number;
  /** Monte Carlo samples per PGD step. */
  mcSamples: number;
  /** Samples per x for the reported KL. */
  evalSamples: number;
  /** Samples per x for expected coverage. */
  coverageSamples: number;
  coverageLevels: number;
  /** PGD iterations; absent means each attack's default (200 L2, 120 Linf). */
  steps?: number;
  attackBatchSize: number;
  /** Accuracy diagnostics on the clean test set, once per trial (sbi/diagnostics.ts); absent: none. */
  metrics?: Metric[];
  /** SBC settings (defaults in sbi/diagnostics.ts: 200 pairs, 100 draws, bins from N). */
  sbc?: { pairs?: number; samples?: number; bins?: number };
  /** C2ST settings where the task has no analytic posterior (defaults: 3 observations, 1,000 draws). */
  c2st?: { observations?: number; samples?: number };
  /** The eps at which the accuracy-robustness trade-off is read (RABI: 2). One of `eps`. */
  tradeoffEps: number;
  /** The attack the trade-off is read under; absent: the first of `attacks`. One of `attacks`. */
  tradeoffAttack?: AttackName;
  /** The objective the trade-off's KL is read for; absent: the first of `objectives`. One of `objectives`. */
  tradeoffObjective?: Objective;
  /**
   * The paper's Fig. 2 per completed trial: its most damaging test point at one evaluated (attack,
   * objective, eps), with clean and attacked posteriors and their predictives
   * (activities/examples.ts). Absent: none. Not part of a trial's ID: it is read off a trained model
   * and its evaluation, so adding it to a finished sweep computes the examples alone.
   */
  examples?: ExamplesOptions;
}

export interface ExamplesOptions {
  /** One of `eps`: the evaluation's per-point KL at it picks the point. */
  eps: number;
  /** Absent: the trade-off's attack / objective. */
  attack?: AttackName;
  objective?: Objective;
  /** Posterior samples drawn at the point, clean and attacked. */
  samples: number;
  /** Posterior-predictive simulations from each. */
  predictive: number;
}

export interface RoutingOptions {
  train: Queue;
  evaluate: Queue;
}

/** A validated sweep spec: what validateSweepSpec returns and what expandSweep takes. */
export interface SweepSpec {
  name: string;
  description?: string;
  tasks: TaskName[];
  estimators: EstimatorSpec[];
  defenses: DefenseSpec[];
  seeds: number[];
  budgets: number[];
  training: TrainingOptions;
  evaluation: EvaluationOptions;
  /** Trials in flight at once. */
  concurrency: number;
  /**
   * Trials run together in one workflow, one activity per step (workflows/pack.ts): for sweeps of
   * short trials, where the server's per-trial tasks would cost more than the trials. 1: a workflow
   * per trial. Not part of any ID.
   */
  pack: number;
  routing: RoutingOptions;
  /** Stop the sweep at the first failed trial instead of recording it and going on. */
  failFast: boolean;
  /**
   * Adaptive search along the accuracy-robustness front (sweeps/search.ts): the grid of `defenses`
   * (possibly empty) is round 0, then rounds of proposed defense points until the budget or the
   * stop rule ends it.
   */
  search?: SearchSpec;
}

/** A searched parameter: a continuous range, read on a linear or a log scale. */
export interface SearchRange {
  min: number;
  max: number;
  scale: 'linear' | 'log';
}

/** One categorical choice of the search: a defense, each of its parameters fixed or a range. */
export interface SearchChoice {
  defense: DefenseName;
  beta?: number | SearchRange;
  trainEps?: number | SearchRange;
  mcSamples?: number;
  probes?: number;
}

/**
 * The two objectives, both minimized: the test NLL, and the mean KL at one attack evaluation. The
 * scale is how the search measures gaps and hypervolume (validate.ts fills it: log for kl, whose
 * values span decades, linear for testNll).
 */
export type SearchObjective = { scale: 'linear' | 'log' } & (
  { metric: 'testNll' } | { metric: 'kl'; attack: AttackName; objective: Objective; eps: number }
);

export interface SearchSpec {
  /** The categorical choices (one per defense) and their parameters. */
  space: SearchChoice[];
  /** Exactly two: testNll and kl. */
  objectives: SearchObjective[];
  /** Trials of the sweep in all, the grid's included. */
  budget: number;
  /** Trials proposed per round (the last round may be smaller). */
  batch: number;
  /**
   * Stop early when the normalized hypervolume grew by less than `tolerance` over the last `rounds`
   * rounds; absent: the budget alone ends the search.
   */
  stop?: { rounds: number; tolerance: number };
  seed: number;
  /** gaps (default): bisect the widest front gaps; random and grid are the baselines. */
  method: SearchMethod;
}

/** One point of a defense's grid. */
export interface TrialDefense {
  name: DefenseName;
  beta?: number;
  /** Relative training epsilon. */
  trainEps?: number;
  mcSamples?: number;
  probes?: number;
  gradClamp?: number;
}

/** What every evaluation of a trial shares (the per-record attack x objective x eps come from evaluationPlan). */
export type TrialEvaluation = Omit<
  EvaluationOptions,
  'tradeoffEps' | 'tradeoffAttack' | 'tradeoffObjective' | 'examples'
>;

export interface TrialConfig {
  /** Hash of everything below except `index` and `queues`: any change of the configuration changes it. */
  trialId: string;
  /** Hash of what determines the trained model (task, estimator, defense, budget, seed, training). */
  modelId: string;
  /** Hash of (task, budget, seed): the training simulations, shared by every trial that uses them. */
  simulationId: string;
  /** Hash of (task, nTest, seed): the test set, shared across estimators and defenses for paired comparisons. */
  testSetId: string;
  /** Position in the sweep's deterministic order. */
  index: number;
  task: TaskName;
  estimator: { kind: EstimatorKind; architecture: ArchitectureOverrides };
  defense: TrialDefense;
  /** Training simulations. */
  budget: number;
  seed: number;
  training: TrainingOptions;
  evaluation: TrialEvaluation;
  /** Where the activities run; not part of any ID. */
  queues: { simulate: 'cpu'; train: Queue; evaluate: Queue };
}

/** One (attack, objective, eps) record of a trial's evaluation. */
export interface EvaluationItem {
  /** Hash of (trialId, attack, objective, eps). */
  evalId: string;
  trialId: string;
  attack: AttackName;
  objective: Objective;
  eps: number;
}
