// The bookkeeping activities: the sweep and its trials in MongoDB (results/store.ts), each write an
// idempotent upsert or a fenced status transition, so a retried activity or a replayed workflow can
// never duplicate a result or undo a finished trial.
import { aggregateSweep } from '../results/aggregate.js';
import {
  trialInputFromSweep,
  type ErrorInfo,
  type SweepStatus,
  type TrialCounts,
  type TrialSummary,
} from '../results/documents.js';
import { NotFoundError } from '../results/errors.js';
import { expandSweep } from '../sweeps/expand.js';
import type { SweepSpec } from '../sweeps/types.js';
import type { ActivityDeps } from './deps.js';

/** Trials registered per write (a bulk upsert each). */
const REGISTER_PAGE = 500;

export interface RegisterSweepInput {
  sweepId: string;
  spec: SweepSpec;
  workflowId: string;
}

export async function registerSweep(
  deps: ActivityDeps,
  input: RegisterSweepInput,
): Promise<{ created: boolean; trials: number }> {
  const { store } = deps;
  const { created } = await store.createSweep({
    _id: input.sweepId,
    name: input.spec.name,
    spec: input.spec as unknown as Record<string, unknown>,
    specHash: input.sweepId,
    codeVersion: deps.codeVersion,
    workflowId: input.workflowId,
  });
  const trials = expandSweep(input.spec);
  for (let i = 0; i < trials.length; i += REGISTER_PAGE) {
    await store.upsertTrials(
      trials.slice(i, i + REGISTER_PAGE).map((t) => ({
        ...trialInputFromSweep(input.sweepId, t, deps.codeVersion),
        // A search's own grid is its round 0.
        ...(input.spec.search ? { round: 0 } : {}),
      })),
    );
  }
  await store.setSweepStatus(input.sweepId, 'running');
  return { created, trials: trials.length };
}

/** Which of `trialIds` are completed already (their results are kept; they are never rerun). */
export async function completedTrials(
  deps: ActivityDeps,
  input: { trialIds: string[] },
): Promise<string[]> {
  return deps.store.completedAmong(input.trialIds);
}

export type ClaimResult = { skip: true; status: 'completed' } | { skip: false; attempt: number };

/**
 * Marks a trial running under a new fencing token (one above the stored attempt), unless it is
 * completed already. A stale writer of an older run is refused by the store from then on.
 */
export async function claimTrial(
  deps: ActivityDeps,
  input: { trialId: string },
): Promise<ClaimResult> {
  try {
    const r = await deps.store.claimTrial(input.trialId, { backend: deps.backend });
    return r.skip ? { skip: true, status: 'completed' } : r;
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new Error(`Trial ${input.trialId} is not registered.`, { cause: err });
    throw err;
  }
}

export interface CompleteTrialInput {
  trialId: string;
  attempt: number;
  summary: TrialSummary;
  modelArtifact: string;
  backend: string;
}

export async function completeTrial(
  deps: ActivityDeps,
  input: CompleteTrialInput,
): Promise<string> {
  // The ground-truth metrics (gaussian_linear) join the trial's summary from its evaluations, where
  // the evaluate activity stored them: the workflow's summary stays as it was.
  const evaluations = await deps.store.listEvaluations({ trialId: input.trialId });
  const g = evaluations.find((e) => e.groundTruth)?.groundTruth;
  // So do the spec's diagnostics (evaluation.metrics): their headline numbers; the histograms stay
  // on the evaluation documents.
  const d = evaluations.find((e) => e.diagnostics)?.diagnostics;
  const summary: TrialSummary = {
    ...input.summary,
    ...(g ? { c2stTruth: g.c2st, klQPTruth: g.klQP, klPQTruth: g.klPQ } : {}),
    ...(d?.c2st ? { c2st: d.c2st.value } : {}),
    ...(d?.sbc ? { sbcMinP: d.sbc.minPValue } : {}),
  };
  const r = await deps.store.transitionTrial(input.trialId, 'completed', {
    attempt: input.attempt,
    summary,
    modelArtifact: input.modelArtifact,
    backend: input.backend,
  });
  return r.outcome;
}

export interface EndTrialInput {
  trialId: string;
  attempt: number;
  status: 'failed' | 'cancelled';
  error?: ErrorInfo;
}

export async function endTrial(deps: ActivityDeps, input: EndTrialInput): Promise<string> {
  const r = await deps.store.transitionTrial(input.trialId, input.status, {
    attempt: input.attempt,
    ...(input.error ? { error: input.error } : {}),
  });
  return r.outcome;
}

export async function setSweepStatus(
  deps: ActivityDeps,
  input: { sweepId: string; status: SweepStatus; error?: ErrorInfo },
): Promise<TrialCounts> {
  // A finished sweep is not revived by a late pause or resume.
  const from: SweepStatus[] | undefined =
    input.status === 'paused' || input.status === 'running'
      ? ['queued', 'running', 'paused']
      : undefined;
  await deps.store.setSweepStatus(input.sweepId, input.status, {
    ...(from ? { from } : {}),
    ...(input.error ? { error: input.error } : {}),
  });
  return deps.store.refreshSweepCounts(input.sweepId);
}

export interface AggregateSummary {
  curves: number;
  evaluations: number;
  counts: TrialCounts;
}

export async function aggregate(
  deps: ActivityDeps,
  input: { sweepId: string },
): Promise<AggregateSummary> {
  const r = await aggregateSweep(deps.store, input.sweepId);
  return { curves: r.curves.length, evaluations: r.evaluations, counts: r.counts };
}
