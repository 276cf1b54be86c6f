// The sweep activities, bound to one worker's stores. Workflows import only the type.
import type { ActivityDeps } from './deps.js';
import { evaluate, type EvaluateInput } from './evaluate.js';
import {
  aggregate,
  claimTrial,
  completedTrials,
  completeTrial,
  endTrial,
  registerSweep,
  setSweepStatus,
} from './persist.js';
import { simulate, type SimulateInput } from './simulate.js';
import { train, type TrainInput } from './train.js';

export function createSweepActivities(deps: ActivityDeps) {
  return {
    simulate: (input: SimulateInput) => simulate(deps, input),
    train: (input: TrainInput) => train(deps, input),
    evaluate: (input: EvaluateInput) => evaluate(deps, input),
    registerSweep: (input: Parameters<typeof registerSweep>[1]) => registerSweep(deps, input),
    completedTrials: (input: { trialIds: string[] }) => completedTrials(deps, input),
    claimTrial: (input: { trialId: string }) => claimTrial(deps, input),
    completeTrial: (input: Parameters<typeof completeTrial>[1]) => completeTrial(deps, input),
    endTrial: (input: Parameters<typeof endTrial>[1]) => endTrial(deps, input),
    setSweepStatus: (input: Parameters<typeof setSweepStatus>[1]) => setSweepStatus(deps, input),
    aggregate: (input: { sweepId: string }) => aggregate(deps, input),
  };
}

export type SweepActivities = ReturnType<typeof createSweepActivities>;
export type { ActivityDeps } from './deps.js';
export type { EvaluateInput, EvaluateResult } from './evaluate.js';
export type { SimulateInput, SimulateResult } from './simulate.js';
export type { TrainHeartbeat, TrainInput, TrainResult } from './train.js';
export type { ClaimResult, AggregateSummary } from './persist.js';
