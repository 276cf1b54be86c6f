// TrialWorkflow: one trial's lifecycle. Claim it (a completed trial is skipped), simulate, train,
// draw the test set, evaluate every attack x eps, then persist the summary. A non-retryable failure
// (InvalidConfig, Diverged) or retries running out is recorded on the trial with its reason and
// fails this workflow; a cancelled trial is recorded as cancelled.
import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
} from '@temporalio/workflow';
import type { SweepActivities } from '../activities/index.js';
import type { EvaluateRecordSummary } from '../activities/evaluate.js';
import { taskQueueName, type TrialOutcome, type TrialWorkflowInput } from './messages.js';
import {
  bookkeeping,
  evaluateInput,
  failureInfo,
  simulateInput,
  stepOptions,
  trainInput,
  trialSummary,
} from './trial-steps.js';

/**
 * Marks trials whose claim / complete / end run as local activities (in the worker that runs this
 * workflow, the cpu worker, which holds them): each saves the server an activity task, its
 * dispatch and a workflow task. They may run more than once (a lost workflow task reruns them),
 * which the fenced, idempotent store writes make harmless. Trials started before it replay with
 * ordinary activities.
 */
export const LOCAL_BOOKKEEPING_PATCH = 'local-bookkeeping-v1';

export async function trialWorkflow(input: TrialWorkflowInput): Promise<TrialOutcome> {
  const { trial, options } = input;
  const q = (name: string) => taskQueueName(name, options.queuePrefix);
  const persist = patched(LOCAL_BOOKKEEPING_PATCH)
    ? proxyLocalActivities<SweepActivities>(bookkeeping)
    : proxyActivities<SweepActivities>({ ...bookkeeping, taskQueue: q('cpu') });
  const beat = options.heartbeatTimeout;
  const { simulate } = proxyActivities<SweepActivities>(
    stepOptions(q(trial.queues.simulate), '1 hour', 10, beat),
  );
  const { train } = proxyActivities<SweepActivities>(
    stepOptions(q(trial.queues.train), options.trainTimeout, 20, beat),
  );
  const { evaluate } = proxyActivities<SweepActivities>(
    stepOptions(q(trial.queues.evaluate), options.evaluateTimeout, 20, beat),
  );

  const claim = await persist.claimTrial({ trialId: trial.trialId });
  if (claim.skip) return { trialId: trial.trialId, status: 'skipped', evaluations: 0 };
  const attempt = claim.attempt;

  try {
    await simulate(simulateInput(trial, 'train'));
    const trained = await train(trainInput(trial));
    await simulate(simulateInput(trial, 'test'));
    const records: EvaluateRecordSummary[] = [];
    for (const attack of trial.evaluation.attacks) {
      for (const eps of trial.evaluation.eps) {
        const r = await evaluate(evaluateInput(trial, trained.modelArtifact, attack, eps));
        records.push(...r.records);
      }
    }
    await persist.completeTrial({
      trialId: trial.trialId,
      attempt,
      summary: trialSummary(trained, records),
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
