// TrialPackWorkflow: the trial pipeline (workflows/pipeline.ts) over the trials a sweep hands it, one
// activity per step for the whole pack. A sweep with `pack` 1 starts one per trial (a pack of one),
// named after the trial so that two sweeps sharing a trial never run it at once.
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { SweepActivities } from '../activities/index.js';
import { taskQueueName, type TrialPackInput, type TrialsOutcome } from './messages.js';
import { runTrials, type TrialSteps } from './pipeline.js';
import { bookkeeping, stepOptions } from './trial-steps.js';
import {
  SA,
  searchAttributesOn,
  trialAttributes,
  trialStatuses,
  upsert,
} from './search-attributes.js';

/** Each step one pack activity; claim, complete and end are local activities of this worker. */
function packSteps(options: TrialPackInput['options']): TrialSteps {
  const q = (name: string) => taskQueueName(name, options.queuePrefix);
  const persist = proxyLocalActivities<SweepActivities>(bookkeeping);
  const step = (queue: string, startToCloseTimeout: string, maximumAttempts: number) =>
    proxyActivities<SweepActivities>(
      stepOptions(q(queue), startToCloseTimeout, maximumAttempts, options.heartbeatTimeout),
    );
  return {
    claim: (trialIds) => persist.claimTrials({ trialIds }),
    // A simulate activity heartbeats between the sets or blocks it draws (the heartbeat timeout
    // bounds one draw); a run of blocks may take hours.
    simulate: (items) => step('cpu', '24 hours', 10).simulateMany({ items }),
    train: (queue, items) => step(queue, options.trainTimeout, 20).trainMany({ items }),
    evaluate: (queue, items) => step(queue, options.evaluateTimeout, 20).evaluateMany({ items }),
    complete: (items) => persist.completeTrials({ items }),
    end: (items) => persist.endTrials({ items }),
  };
}

export async function trialPackWorkflow(input: TrialPackInput): Promise<TrialsOutcome> {
  const searchable = searchAttributesOn(input.options);
  if (searchable) upsert(trialAttributes(input.sweepId, input.trials));
  try {
    const out = await runTrials(input.trials, packSteps(input.options));
    if (searchable) upsert([{ key: SA.TrialStatus, value: trialStatuses(out) }]);
    return out;
  } catch (err) {
    // The pipeline throws only past its own failure handling (a bug, or a cancellation it did not
    // see): the trials count as failed in the sweep, and so they are found.
    if (searchable) upsert([{ key: SA.TrialStatus, value: ['failed'] }]);
    throw err;
  }
}
