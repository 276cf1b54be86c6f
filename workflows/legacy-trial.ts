// TrialWorkflow as it was before every trial ran as a pack of one: kept only so that its histories,
// and those of sweeps that started it, replay after an upgrade. No sweep starts it any more (see
// ONE_PIPELINE_PATCH in workflows/sweep.ts). It runs the one pipeline (workflows/pipeline.ts) through
// steps that issue exactly the commands it used to issue: claimTrial, simulate, train, simulate, each
// evaluate in turn, completeTrial, or endTrial when the trial failed or was cancelled; a failed trial
// fails this workflow. test/unit/workflows/replay.test.ts replays histories it recorded.
import {
  ApplicationFailure,
  CancelledFailure,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
} from '@temporalio/workflow';
import type { ItemOutcome, SweepActivities } from '../activities/index.js';
import { taskQueueName, type TrialsOutcome, type SweepOptions } from './messages.js';
import type { TrialConfig } from '../sweeps/types.js';
import { runTrials, type TrialSteps } from './pipeline.js';
import { bookkeeping, failureInfo, stepOptions } from './trial-steps.js';

/**
 * Marks trials whose claim / complete / end ran as local activities; trials started before it
 * replay with ordinary activities.
 */
export const LOCAL_BOOKKEEPING_PATCH = 'local-bookkeeping-v1';

export interface TrialWorkflowInput {
  sweepId: string;
  trial: TrialConfig;
  options: SweepOptions;
}

/** What TrialWorkflow returned; a failed trial failed the workflow instead. */
export interface TrialOutcome {
  trialId: string;
  /** skipped: it was completed already (by another sweep or an earlier run). */
  status: 'completed' | 'skipped';
}

/** One activity call per item, in order; the first failure is the outcome of the rest (never run). */
async function oneByOne<I, O>(items: I[], run: (item: I) => Promise<O>): Promise<ItemOutcome<O>[]> {
  const out: ItemOutcome<O>[] = [];
  for (const item of items) {
    const last = out[out.length - 1];
    if (last && 'error' in last) {
      out.push(last);
      continue;
    }
    try {
      out.push({ ok: await run(item) });
    } catch (err) {
      if (isCancellation(err)) throw err;
      out.push({ error: failureInfo(err) });
    }
  }
  return out;
}

function singleTrialSteps(trial: TrialConfig, options: SweepOptions): TrialSteps {
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
  return {
    claim: async (trialIds) =>
      Promise.all(trialIds.map((trialId) => persist.claimTrial({ trialId }))),
    simulate: (items) => oneByOne(items, simulate),
    train: (_queue, items) => oneByOne(items, train),
    evaluate: (_queue, items) => oneByOne(items, evaluate),
    complete: async (items) => {
      for (const item of items) {
        try {
          await persist.completeTrial(item);
        } catch (err) {
          // It used to end the trial as failed here, then fail.
          if (isCancellation(err)) throw err;
          const error = failureInfo(err);
          await persist.endTrial({
            trialId: item.trialId,
            attempt: item.attempt,
            status: 'failed',
            error,
          });
          throw ApplicationFailure.create({
            message: error.message,
            type: error.type,
            nonRetryable: true,
          });
        }
      }
    },
    end: async (items) => {
      for (const item of items) await persist.endTrial(item);
    },
  };
}

export async function trialWorkflow(input: TrialWorkflowInput): Promise<TrialOutcome> {
  const { trial } = input;
  const out: TrialsOutcome = await runTrials([trial], singleTrialSteps(trial, input.options));
  const failed = out.failed[0];
  if (failed)
    throw ApplicationFailure.create({
      message: failed.message,
      type: failed.type,
      nonRetryable: true,
    });
  if (out.cancelled.length > 0) throw new CancelledFailure('The trial was cancelled.');
  return { trialId: trial.trialId, status: out.skipped.length > 0 ? 'skipped' : 'completed' };
}
