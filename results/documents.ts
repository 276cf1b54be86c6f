// The documents of the results database, as the application sees them (numbers may be non-finite;
// results/nonfinite.ts encodes them for storage), and their deterministic IDs. Trial and evaluation
// IDs are sweeps/'s content hashes: a trial is the same trial in every sweep whose grid holds it,
// so a trial document lists the sweeps it belongs to instead of having one owner.
import type { EvaluationRecord } from '../sbi/evaluation.js';
import type { Diagnostics } from '../sbi/diagnostics.js';
import type { KlSummary } from '../sbi/metrics/robustness.js';
import type { Summary } from '../sbi/metrics/summary.js';
import { contentId, ID_VERSIONS } from '../sweeps/expand.js';
import type { TrialConfig as SweepTrial } from '../sweeps/types.js';

export const COLLECTIONS = {
  sweeps: 'sweeps',
  trials: 'trials',
  evaluations: 'evaluations',
  curves: 'curves',
} as const;
export type CollectionName = keyof typeof COLLECTIONS;

export const SWEEP_STATUSES = [
  'queued',
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];

export const TRIAL_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type TrialStatus = (typeof TRIAL_STATUSES)[number];

export interface TrialCounts {
  trials: number;
  queued: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}

export interface SweepDoc {
  _id: string;
  name: string;
  /** The sweep spec as submitted (validated by sweeps/); immutable. */
  spec: Record<string, unknown>;
  specHash: string;
  status: SweepStatus;
  counts: TrialCounts;
  codeVersion: string;
  createdAt: Date;
  updatedAt: Date;
  workflowId?: string;
  completedAt?: Date;
  error?: ErrorInfo;
}

/**
 * A trial's configuration, flattened from sweeps/' TrialConfig so that the axes the curves group by
 * (estimator kind, defense name, beta, trainEps) are scalars; the rest is kept as given.
 */
export interface TrialConfig {
  task: string;
  /** Estimator kind (maf, nsf, ...). */
  estimator: string;
  /** Defense name (none, fim, trades, ...). */
  defense: string;
  /** Regularization strength; 0 for defenses without one. */
  beta: number;
  /** Training-time attack budget of adversarial defenses (relative eps); absent otherwise. */
  trainEps?: number;
  /** Simulation budget N. */
  budget: number;
  seed: number;
  [key: string]: unknown;
}

export interface TrialSummary {
  testNll: number;
  valLoss: number;
  epochs: number;
  trainSeconds: number;
  /** Simulations dropped as non-finite before training. */
  droppedSims: number;
  /**
   * Tasks with an analytic posterior (gaussian_linear): the evaluations' ground-truth metrics
   * (EvaluationDoc.groundTruth), Bayes-optimal C2ST and KL(q||p), KL(p||q).
   */
  c2stTruth?: number;
  klQPTruth?: number;
  klPQTruth?: number;
  [metric: string]: number | undefined;
}

export interface ErrorInfo {
  type: string;
  message: string;
  nonRetryable: boolean;
}

export interface TrialPosition {
  sweepId: string;
  /** Position in that sweep's expansion, for stable listings. */
  index: number;
  /** Search sweeps: the round that proposed the trial (0: the spec's own grid). */
  round?: number;
}

export interface TrialDoc {
  /** sweeps/' trialId: a hash of the trial's content, not of its sweep. */
  _id: string;
  /** The sweeps whose grids hold this trial (added to, never removed from). */
  sweepIds: string[];
  positions?: TrialPosition[];
  config: TrialConfig;
  status: TrialStatus;
  /** Fencing token: raised by each new run of the trial; a write with a lower one is stale. */
  attempt: number;
  summary?: TrialSummary;
  error?: ErrorInfo;
  /** Artifact name of the trained model (results/artifacts.ts). */
  modelArtifact?: string;
  /** Tensor backend the trial trained on (cpu, wasm, tensorflow, ...). */
  backend?: string;
  codeVersion: string;
  createdAt: Date;
  updatedAt: Date;
  startedAt?: Date;
  endedAt?: Date;
}

/** RABI's Bayes-optimal C2ST and KL(q||p), KL(p||q) against the analytic posterior. */
export interface GroundTruthDoc {
  c2st: number;
  klQP: number;
  klPQ: number;
  /** Draws per x of each distribution. */
  samples: number;
}

export interface EvaluationDoc {
  /** evaluationId(trialId, attack, objective, eps). */
  _id: string;
  trialId: string;
  attack: string;
  /** Discrepancy scored: rkl = KL(q~ || q), fkl = KL(q || q~), mmd = MMD^2(q~, q) (in `kl`). */
  objective: string;
  /** Budget relative to the test set's mean per-sample std. */
  eps: number;
  epsAbs: number;
  epsScale: number;
  nTest: number;
  kl: KlSummary;
  /** Mean test NLL on the clean x. */
  nllClean: number;
  /** Mean test NLL on the attacked x. */
  nllAttacked: number;
  /** The per-x NLL on attacked x summarized like kl (when the evaluation computed it). */
  nllAttackedSummary?: Summary;
  /**
   * Tasks with an analytic posterior (gaussian_linear): the paper's ground-truth metrics of the
   * clean test x, means over the test points (the same in every evaluation of a trial).
   */
  groundTruth?: GroundTruthDoc;
  /**
   * The spec's accuracy diagnostics (evaluation.metrics: SBC, C2ST) of the trial on its clean test
   * set, on the evaluations of the trial's first (attack, eps) only.
   */
  diagnostics?: Diagnostics;
  coverage: { levels: number[]; clean: number[]; attacked: number[] };
  coverageAbsArea: { clean: number; attacked: number };
  seconds?: number;
  createdAt: Date;
  updatedAt: Date;
}

export const CURVE_KINDS = ['tradeoff', 'kl_vs_eps', 'coverage'] as const;
export type CurveKind = (typeof CURVE_KINDS)[number];

/** What a curve's trials share besides task: the grouping of kl_vs_eps and coverage series. */
export interface SeriesKey {
  attack: string;
  objective: string;
  defense: string;
  beta: number;
  /** Present for defenses trained at an attack budget (trades, adversarial, noise). */
  trainEps?: number;
  estimator: string;
  budget: number;
}

export interface TradeoffPoint {
  trialId: string;
  defense: string;
  beta: number;
  trainEps?: number;
  estimator: string;
  budget: number;
  seed: number;
  /** Mean KL under the attack at the chosen eps. */
  x: number;
  /** Mean test NLL. */
  y: number;
  /** The trial's ground-truth metrics (tasks with an analytic posterior; EvaluationDoc.groundTruth). */
  groundTruth?: Pick<GroundTruthDoc, 'c2st' | 'klQP' | 'klPQ'>;
  /** The trial's training cost (TrialSummary), so a point's price sits beside its place. */
  trainSeconds?: number;
  epochs?: number;
  pareto: boolean;
}

export interface TradeoffCurveDoc {
  _id: string;
  sweepId: string;
  task: string;
  kind: 'tradeoff';
  attack: string;
  objective: string;
  eps: number;
  points: TradeoffPoint[];
  /** trialIds of the Pareto front (minimizing x and y), by increasing x. */
  front: string[];
  /** Completed trials of the task with no evaluation at (attack, objective, eps). */
  missing: string[];
  /**
   * The attacks, objectives and eps the task's completed trials were evaluated at (distinct,
   * ascending), so an empty front can say what the spec should ask for. Absent in older curves.
   */
  evaluated?: { attacks: string[]; objectives: string[]; eps: number[] };
}

export interface KlSeries extends SeriesKey {
  eps: number[];
  /** Per eps, the mean over the group's trials of each trial's per-x quantile. */
  median: number[];
  q15: number[];
  q85: number[];
  mean: number[];
  trials: number[];
}

export interface KlVsEpsCurveDoc {
  _id: string;
  sweepId: string;
  task: string;
  kind: 'kl_vs_eps';
  series: KlSeries[];
}

export interface CoverageAtEps {
  eps: number;
  observed: number[];
  absArea: number;
  trials: number;
}

export interface CoverageSeries extends SeriesKey {
  levels: number[];
  clean: number[];
  cleanAbsArea: number;
  trials: number;
  curves: CoverageAtEps[];
}

export interface CoverageCurveDoc {
  _id: string;
  sweepId: string;
  task: string;
  kind: 'coverage';
  series: CoverageSeries[];
}

export type CurveDoc = TradeoffCurveDoc | KlVsEpsCurveDoc | CoverageCurveDoc;

/** A number in an ID: ECMAScript's shortest round-trip form, so 2, 2.0 and 2e0 give one ID. */
export function numberKey(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`An ID cannot hold the number ${x}.`);
  return String(x);
}

/**
 * One evaluation per (trial, attack, objective, eps): sweeps/' evalId of that tuple, so the ID the
 * workflow plans with (evaluationPlan) is the document's _id.
 */
export function evaluationId(
  trialId: string,
  attack: string,
  objective: string,
  eps: number,
): string {
  numberKey(eps);
  return contentId(ID_VERSIONS.evaluation, { trialId, attack, objective, eps });
}

export function curveId(sweepId: string, task: string, kind: CurveKind): string {
  return `${sweepId}|${task}|${kind}`;
}

/** The trial to register for one trial of sweeps/' expansion of `sweepId`. */
export function trialInputFromSweep(
  sweepId: string,
  t: SweepTrial,
  codeVersion: string,
): { _id: string; sweepId: string; index: number; config: TrialConfig; codeVersion: string } {
  // sweeps/ names the training budget trainEps (eps in its first version); accept either.
  const {
    name,
    beta,
    trainEps: budget,
    eps,
    ...defenseOptions
  } = t.defense as SweepTrial['defense'] & { trainEps?: number; eps?: number };
  const trainEps = budget ?? eps;
  const config: TrialConfig = {
    task: t.task,
    estimator: t.estimator.kind,
    defense: name,
    beta: beta ?? 0,
    ...(trainEps !== undefined ? { trainEps } : {}),
    budget: t.budget,
    seed: t.seed,
    architecture: { ...t.estimator.architecture },
    ...(Object.keys(defenseOptions).length > 0 ? { defenseOptions } : {}),
    training: { ...t.training },
    evaluation: { ...t.evaluation },
    modelId: t.modelId,
    simulationId: t.simulationId,
    testSetId: t.testSetId,
  };
  return { _id: t.trialId, sweepId, index: t.index, config, codeVersion };
}

/** The attacked-NLL summary of a record that has one (sbi/evaluation.ts added it later). */
function summaryOf(r: EvaluationRecord): Summary | undefined {
  return (r as { nllAttacked?: Summary }).nllAttacked;
}

/** The evaluation document of one sbi/evaluation.ts record (timestamps are set by the store). */
export function evaluationFromRecord(
  trialId: string,
  r: EvaluationRecord,
  diagnostics?: Diagnostics,
): Omit<EvaluationDoc, 'createdAt' | 'updatedAt'> {
  return {
    _id: evaluationId(trialId, r.attack, r.objective, r.eps),
    trialId,
    attack: r.attack,
    objective: r.objective,
    eps: r.eps,
    epsAbs: r.epsAbs,
    epsScale: r.epsScale,
    nTest: r.nTest,
    kl: { ...r.kl },
    nllClean: r.nll.clean,
    nllAttacked: r.nll.attacked,
    ...(summaryOf(r) ? { nllAttackedSummary: { ...summaryOf(r)! } } : {}),
    ...(r.groundTruth ? { groundTruth: { ...r.groundTruth } } : {}),
    ...(diagnostics ? { diagnostics } : {}),
    coverage: {
      levels: [...r.alphas],
      clean: [...r.cleanCoverage],
      attacked: [...r.coverage],
    },
    coverageAbsArea: { clean: r.cleanCoverageAbsArea, attacked: r.coverageAbsArea },
    seconds: r.seconds,
  };
}
