// What the trial pipeline's steps take: the options of their activities, the inputs each step takes
// from a trial's configuration, the summary a completed trial stores, and how a failure is told.
// Pure functions of workflow data (bundle-safe).
import { ActivityFailure, ApplicationFailure, type ActivityOptions } from '@temporalio/workflow';
import type { EvaluateInput, SimulateInput, TrainInput, TrainResult } from '../activities/index.js';
import type { EvaluateRecordSummary } from '../activities/evaluate.js';
import type { ErrorInfo, TrialSummary } from '../results/documents.js';
import type { TrialConfig } from '../sweeps/types.js';
import { FINAL_FAILURE_TYPES } from '../sweeps/failures.js';
import { trainingRows } from '../sweeps/expand.js';

export const NON_RETRYABLE = [...FINAL_FAILURE_TYPES];

/** claim / complete / end: the store's fenced writes. */
export const bookkeeping: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
};

/** simulate, train or evaluate on `taskQueue`, under the sweep's heartbeat timeout. */
export function stepOptions(
  taskQueue: string,
  startToCloseTimeout: string,
  maximumAttempts: number,
  heartbeatTimeout: string,
): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout,
    heartbeatTimeout,
    retry: { maximumInterval: '1 minute', maximumAttempts, nonRetryableErrorTypes: NON_RETRYABLE },
  };
}

/** The failure that says what happened (ActivityFailure wraps it). */
export function failureInfo(err: unknown): ErrorInfo {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) {
    return { type: e.type ?? 'Error', message: e.message, nonRetryable: e.nonRetryable === true };
  }
  const x = e as { name?: string; message?: string };
  return { type: x?.name ?? 'Error', message: x?.message ?? String(e), nonRetryable: false };
}

/** The trial's training simulations ('train') or its test set ('test'). */
export function simulateInput(t: TrialConfig, purpose: 'train' | 'test'): SimulateInput {
  return purpose === 'train'
    ? {
        purpose,
        task: t.task,
        n: trainingRows(t.budget, t.training),
        seed: t.seed,
        id: t.simulationId,
      }
    : { purpose, task: t.task, n: t.evaluation.nTest, seed: t.seed, id: t.testSetId };
}

export function trainInput(t: TrialConfig): TrainInput {
  return {
    trialId: t.trialId,
    modelId: t.modelId,
    simulationId: t.simulationId,
    task: t.task,
    estimator: t.estimator,
    defense: t.defense,
    budget: t.budget,
    seed: t.seed,
    training: t.training,
  };
}

export function evaluateInput(
  t: TrialConfig,
  modelArtifact: string,
  attack: EvaluateInput['attack'],
  eps: number,
): EvaluateInput {
  return {
    trial: {
      trialId: t.trialId,
      testSetId: t.testSetId,
      task: t.task,
      seed: t.seed,
      evaluation: t.evaluation,
    },
    modelArtifact,
    attack,
    eps,
  };
}

/** What a completed trial stores. Numbers that were NaN arrive as null (JSON); the store keeps null. */
export function trialSummary(
  trained: TrainResult,
  records: readonly EvaluateRecordSummary[],
): TrialSummary {
  return {
    testNll: records[0]?.nllClean ?? null,
    valLoss: trained.bestValLoss,
    epochs: trained.epochs,
    trainSeconds: trained.trainSeconds,
    droppedSims: trained.dropped,
    bestEpoch: trained.bestEpoch,
    resumedFromEpoch: trained.resumedFromEpoch,
    epochsLastAttempt: trained.epochsThisAttempt,
  } as unknown as TrialSummary;
}
