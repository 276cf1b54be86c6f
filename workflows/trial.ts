// TrialWorkflow: one trial's lifecycle. Claim it (a completed trial is skipped), simulate, train,
// draw the test set, evaluate every attack x eps, then persist the summary. A non-retryable failure
// (InvalidConfig, Diverged) or retries running out is recorded on the trial with its reason and
// fails this workflow; a cancelled trial is recorded as cancelled.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { SweepActivities } from '../activities/index.js';
import type { EvaluateRecordSummary } from '../activities/evaluate.js';
import type { ErrorInfo, TrialSummary } from '../results/documents.js';
import {
  FINAL_FAILURE_TYPES,
  taskQueueName,
  type TrialOutcome,
  type TrialWorkflowInput,
} from './messages.js';

const NON_RETRYABLE = [...FINAL_FAILURE_TYPES];

const bookkeeping: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * Marks trials whose claim / complete / end run as local activities (in the worker that runs this
 * workflow, the cpu worker, which holds them): each saves the server an activity task, its
 * dispatch and a workflow task. They may run more than once (a lost workflow task reruns them),
 * which the fenced, idempotent store writes make harmless. Trials started before it replay with
 * ordinary activities.
 */
export const LOCAL_BOOKKEEPING_PATCH = 'local-bookkeeping-v1';

function failureInfo(err: unknown): ErrorInfo {
  let e: unknown = err;
  // ActivityFailure / ChildWorkflowFailure wrap the failure that says what happened.
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) {
    return { type: e.type ?? 'Error', message: e.message, nonRetryable: e.nonRetryable === true };
  }
  const x = e as { name?: string; message?: string };
  return { type: x?.name ?? 'Error', message: x?.message ?? String(e), nonRetryable: false };
}

export async function trialWorkflow(input: TrialWorkflowInput): Promise<TrialOutcome> {
  const { trial, options } = input;
  const q = (name: string) => taskQueueName(name, options.queuePrefix);
  const persist = patched(LOCAL_BOOKKEEPING_PATCH)
    ? proxyLocalActivities<SweepActivities>(bookkeeping)
    : proxyActivities<SweepActivities>({ ...bookkeeping, taskQueue: q('cpu') });
  const { simulate } = proxyActivities<SweepActivities>({
    taskQueue: q(trial.queues.simulate),
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: options.heartbeatTimeout,
    retry: {
      maximumInterval: '1 minute',
      maximumAttempts: 10,
      nonRetryableErrorTypes: NON_RETRYABLE,
    },
  });
  const { train } = proxyActivities<SweepActivities>({
    taskQueue: q(trial.queues.train),
    startToCloseTimeout: options.trainTimeout,
    heartbeatTimeout: options.heartbeatTimeout,
    retry: {
      maximumInterval: '1 minute',
      maximumAttempts: 20,
      nonRetryableErrorTypes: NON_RETRYABLE,
    },
  });
  const { evaluate } = proxyActivities<SweepActivities>({
    taskQueue: q(trial.queues.evaluate),
    startToCloseTimeout: options.evaluateTimeout,
    heartbeatTimeout: options.heartbeatTimeout,
    retry: {
      maximumInterval: '1 minute',
      maximumAttempts: 20,
      nonRetryableErrorTypes: NON_RETRYABLE,
    },
  });

  const claim = await persist.claimTrial({ trialId: trial.trialId });
  if (claim.skip) return { trialId: trial.trialId, status: 'skipped', evaluations: 0 };
  const attempt = claim.attempt;

  try {
    await simulate({
      purpose: 'train',
      task: trial.task,
      n: trial.budget,
      seed: trial.seed,
      id: trial.simulationId,
    });
    const trained = await train({
      trialId: trial.trialId,
      modelId: trial.modelId,
      simulationId: trial.simulationId,
      task: trial.task,
      estimator: trial.estimator,
      defense: trial.defense,
      budget: trial.budget,
      seed: trial.seed,
      training: trial.training,
    });
    await simulate({
      purpose: 'test',
      task: trial.task,
      n: trial.evaluation.nTest,
      seed: trial.seed,
      id: trial.testSetId,
    });
    const records: EvaluateRecordSummary[] = [];
    for (const attack of trial.evaluation.attacks) {
      for (const eps of trial.evaluation.eps) {
        const r = await evaluate({
          trial: {
            trialId: trial.trialId,
            testSetId: trial.testSetId,
            task: trial.task,
            seed: trial.seed,
            evaluation: trial.evaluation,
          },
          modelArtifact: trained.modelArtifact,
          attack,
          eps,
        });
        records.push(...r.records);
      }
    }
    // Numbers that were NaN arrive as null (JSON); the store keeps null for them.
    const summary = {
      testNll: records[0]?.nllClean ?? null,
      valLoss: trained.bestValLoss,
      epochs: trained.epochs,
      trainSeconds: trained.trainSeconds,
      droppedSims: trained.dropped,
      bestEpoch: trained.bestEpoch,
      resumedFromEpoch: trained.resumedFromEpoch,
      epochsLastAttempt: trained.epochsThisAttempt,
    } as unknown as TrialSummary;
    await persist.completeTrial({
      trialId: trial.trialId,
      attempt,
      summary,
      modelArtifact: trained.modelArtifact,
      backend: trained.backend,
    });
    return {
      trialId: trial.trialId,
      status: 'completed',
      evaluations: records.length,
      epochs: trained.epochs,
      resumedFromEpoch: trained.resumedFromEpoch,
    };
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() =>
        persist.endTrial({ trialId: trial.trialId, attempt, status: 'cancelled' }),
      );
      throw err;
    }
    const info = failureInfo(err);
    await persist.endTrial({ trialId: trial.trialId, attempt, status: 'failed', error: info });
    throw ApplicationFailure.create({
      message: info.message,
      type: info.type,
      nonRetryable: true,
    });
  }
}
