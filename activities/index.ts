// The sweep activities, bound to one worker's stores. Workflows import only the type.
import { Context } from '@temporalio/activity';
import { FINAL_FAILURE_TYPES } from '../sweeps/failures.js';
import type { ActivityDeps } from './deps.js';
import { evaluate, type EvaluateInput } from './evaluate.js';
import { adversarialExamples, type ExamplesInput } from './examples.js';
import {
  aggregate,
  claimTrial,
  completedTrials,
  completeTrial,
  endTrial,
  registerSweep,
  setSweepStatus,
} from './persist.js';
import { keepAlive } from './keep-alive.js';
import { proposeSearch, type ProposeSearchInput } from './search.js';
import { packActivities, type TrialStepActivities } from './pack.js';
import { simulate, type SimulateInput } from './simulate.js';
import { train, type TrainInput } from './train.js';

/**
 * simulate under a heartbeat timeout: a task the server handed out but no worker runs (a lost poll
 * response, a partitioned worker) is retried after that timeout instead of the hour of its limit.
 * The drawing itself is synchronous, so one simulation must finish within the heartbeat timeout.
 */
async function simulateActivity(deps: ActivityDeps, input: SimulateInput) {
  const ctx = Context.current();
  ctx.heartbeat();
  const stop = keepAlive(ctx, () => undefined);
  try {
    return await simulate(deps, input);
  } finally {
    stop();
  }
}

function trialActivities(deps: ActivityDeps) {
  return {
    simulate: (input: SimulateInput) => simulateActivity(deps, input),
    train: (input: TrainInput) => train(deps, input),
    evaluate: (input: EvaluateInput) => evaluate(deps, input),
    registerSweep: (input: Parameters<typeof registerSweep>[1]) => registerSweep(deps, input),
    completedTrials: (input: { trialIds: string[] }) => completedTrials(deps, input),
    claimTrial: (input: { trialId: string }) => claimTrial(deps, input),
    completeTrial: (input: Parameters<typeof completeTrial>[1]) => completeTrial(deps, input),
    endTrial: (input: Parameters<typeof endTrial>[1]) => endTrial(deps, input),
    setSweepStatus: (input: Parameters<typeof setSweepStatus>[1]) => setSweepStatus(deps, input),
    aggregate: (input: { sweepId: string }) => aggregate(deps, input),
    proposeSearch: (input: ProposeSearchInput) => proposeSearch(deps, input),
    adversarialExamples: (input: ExamplesInput) => adversarialExamples(deps, input),
  };
}

/**
 * `acts` with the pack activities (activities/pack.ts) made of its single-trial ones, so that a
 * worker given other simulate / train / evaluate (the orchestration bench) packs those.
 */
export function withPackActivities<A extends TrialStepActivities>(acts: A) {
  return { ...acts, ...packActivities(acts, FINAL_FAILURE_TYPES) };
}

export function createSweepActivities(deps: ActivityDeps) {
  return withPackActivities(trialActivities(deps));
}

export type SweepActivities = ReturnType<typeof createSweepActivities>;
export type { ActivityDeps } from './deps.js';
export type { EvaluateInput, EvaluateResult } from './evaluate.js';
export type { SimulateInput, SimulateResult } from './simulate.js';
export type { TrainHeartbeat, TrainInput, TrainResult } from './train.js';
export type {
  ClaimResult,
  AggregateSummary,
  CompleteTrialInput,
  EndTrialInput,
} from './persist.js';
export type { ItemOutcome } from './pack.js';
export type { ExamplesInput, ExamplesResult } from './examples.js';
export type { ProposeSearchInput, ProposeSearchResult, SearchPoint } from './search.js';
