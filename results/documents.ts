// The documents of the results database, as the application sees them (numbers may be non-finite;
// results/nonfinite.ts encodes them for storage), and their deterministic IDs.
import type { EvaluationRecord } from '../sbi/evaluation.js';
import type { KlSummary } from '../sbi/metrics/robustness.js';

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

export interface TrialConfig {
  task: string;
  estimator: string;
  defense: string;
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
  [metric: string]: number;
}

export interface ErrorInfo {
  type: string;
  message: string;
  nonRetryable: boolean;
}

export interface TrialDoc {
  _id: string;
  sweepId: string;
  /** Position in the sweep's expansion, for stable listings. */
  index?: number;
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

export interface EvaluationDoc {
  _id: string;
  trialId: string;
  sweepId: string;
  attack: string;
  /** KL direction scored: rkl = KL(q~ || q), fkl = KL(q || q~). */
  objective: string;
  /** Budget relative to the test set's mean per-sample std. */
  eps: number;
  epsAbs: number;
  epsScale: number;
  nTest: number;
  kl: KlSummary;
  nllClean: number;
  nllAttacked: number;
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
  estimator: string;
  budget: number;
}

export interface TradeoffPoint {
  trialId: string;
  defense: string;
  beta: number;
  estimator: string;
  budget: number;
  seed: number;
  /** Mean KL under the attack at the chosen eps. */
  x: number;
  /** Mean test NLL. */
  y: number;
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

/** `${trialId}|${attack}|${objective}|${eps}`: one evaluation per (trial, attack, objective, eps). */
export function evaluationId(
  trialId: string,
  attack: string,
  objective: string,
  eps: number,
): string {
  return `${trialId}|${attack}|${objective}|${numberKey(eps)}`;
}

export function curveId(sweepId: string, task: string, kind: CurveKind): string {
  return `${sweepId}|${task}|${kind}`;
}

/** The evaluation document of one sbi/evaluation.ts record (timestamps are set by the store). */
export function evaluationFromRecord(
  trialId: string,
  sweepId: string,
  r: EvaluationRecord,
): Omit<EvaluationDoc, 'createdAt' | 'updatedAt'> {
  return {
    _id: evaluationId(trialId, r.attack, r.objective, r.eps),
    trialId,
    sweepId,
    attack: r.attack,
    objective: r.objective,
    eps: r.eps,
    epsAbs: r.epsAbs,
    epsScale: r.epsScale,
    nTest: r.nTest,
    kl: { ...r.kl },
    nllClean: r.nll.clean,
    nllAttacked: r.nll.attacked,
    coverage: {
      levels: [...r.alphas],
      clean: [...r.cleanCoverage],
      attacked: [...r.coverage],
    },
    coverageAbsArea: { clean: r.cleanCoverageAbsArea, attacked: r.coverageAbsArea },
    seconds: r.seconds,
  };
}
