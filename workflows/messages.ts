// The sweep's control messages and the shapes the client, the CLI and the workflows share. Only
// @temporalio/workflow definitions (plain data at run time), so both sides may import this module.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { SearchPoint } from '../sweeps/search.js';
import type { SweepSpec, TrialConfig } from '../sweeps/types.js';

/** Make no new trials until resumed; running ones finish. */
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Cancel the running trials, make no new ones, and end the sweep as cancelled. */
export const cancelSignal = defineSignal('cancel');
export const progressQuery = defineQuery<SweepProgress>('progress');

export const SWEEP_WORKFLOW_TYPE = 'sweepWorkflow';

export const sweepWorkflowId = (sweepId: string): string => `sweep/${sweepId}`;
/** The workflow of a pack of one: named by the trial, so two sweeps sharing it never run it at once. */
export const trialWorkflowId = (trialId: string): string => `trial/${trialId}`;
/** A larger pack is named by its sweep and its first and last trial's positions (the order is fixed). */
export const packWorkflowId = (sweepId: string, first: number, last: number): string =>
  `pack/${sweepId}/${first}-${last}`;

export interface SweepOptions {
  /** Continue as new after starting this many trials in one run (bounds the history). */
  continueAsNewEvery: number;
  /**
   * Heartbeat timeout of the simulate, train and evaluate activities (a dead worker is noticed after
   * it); one simulation, which runs without heartbeats, must finish within it.
   */
  heartbeatTimeout: string;
  /** Limit of one train attempt. */
  trainTimeout: string;
  /** Limit of one evaluate attempt. */
  evaluateTimeout: string;
  /** Prefixed to the task queues `cpu` and `gpu` (isolates test runs sharing one server). */
  queuePrefix: string;
  /**
   * Set the search attributes of sweeps/search-attributes.ts (absent: yes). The client turns it off
   * where the namespace lacks them, since an upsert of an unregistered one fails the workflow task.
   */
  searchAttributes?: boolean;
}

export const DEFAULT_SWEEP_OPTIONS: SweepOptions = {
  continueAsNewEvery: 200,
  heartbeatTimeout: '10 minutes',
  trainTimeout: '24 hours',
  evaluateTimeout: '12 hours',
  queuePrefix: '',
};

export const taskQueueName = (queue: string, prefix = ''): string => `${prefix}${queue}`;

/** Counters carried from one run of the sweep to the next through continue-as-new. */
export interface SweepCounters {
  /** Next trial index to consider. */
  nextIndex: number;
  /** Trials completed (by this submission or before it). */
  completed: number;
  /** Trials found completed before this submission and skipped. */
  skipped: number;
  /** Trial workflows started by this submission. */
  started: number;
  failed: number;
  cancelled: number;
  /** Runs of this submission so far (1 + continue-as-new count). */
  runs: number;
  paused: boolean;
  /** The latest trial failures (bounded). */
  failures: TrialFailure[];
  /** Search sweeps: the rounds so far. */
  search?: SearchState;
}

/** Where a search sweep stands: carried through continue-as-new like the counters. */
export interface SearchState {
  /** The last round proposed (0: only the spec's grid so far). */
  round: number;
  /** Every trial of the search in sweep order (index = position): the grid's, then the proposals. */
  points: SearchPoint[];
  /** Normalized hypervolume after each round, as the last proposal computed it. */
  hypervolume: number[];
  /** Set when the search proposed nothing more: the budget, the stop rule, or an exhausted space. */
  stopped?: 'budget' | 'hypervolume' | 'exhausted';
}

export interface TrialFailure {
  trialId: string;
  type: string;
  message: string;
}

export interface SweepWorkflowInput {
  sweepId: string;
  spec: SweepSpec;
  options?: Partial<SweepOptions>;
  /** Set by continue-as-new only. */
  carried?: SweepCounters;
}

export type SweepState =
  | 'registering'
  | 'running'
  | 'paused'
  | 'draining'
  /** Computing the adversarial examples of the finished trials (spec.evaluation.examples). */
  | 'examples'
  | 'aggregating'
  | 'completed'
  | 'failed'
  | 'cancelled';

export interface SweepProgress {
  sweepId: string;
  state: SweepState;
  trials: number;
  completed: number;
  failed: number;
  running: number;
  /** Not yet started and not known to be completed. */
  queued: number;
  cancelled: number;
  skipped: number;
  started: number;
  runs: number;
  /** workflowId: the TrialPackWorkflow running the trial. */
  runningTrials: { trialId: string; index: number; workflowId: string }[];
  failures: TrialFailure[];
  /** Search sweeps: the round, the hypervolume per round and why it stopped. */
  search?: Omit<SearchState, 'points'>;
}

export interface TrialPackInput {
  sweepId: string;
  trials: TrialConfig[];
  options: SweepOptions;
}

/** What became of each trial a pipeline ran (trial IDs): the one outcome of every launch. */
export interface TrialsOutcome {
  completed: string[];
  /** Completed before this pipeline ran (by another sweep or an earlier run). */
  skipped: string[];
  failed: TrialFailure[];
  cancelled: string[];
}
