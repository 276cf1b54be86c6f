// SweepWorkflow: registers the sweep and its trials, keeps a sliding window of TrialWorkflow
// children in flight (spec.concurrency), skips trials MongoDB already holds as completed, answers a
// progress query, obeys pause / resume / cancel signals, continues as new before its history grows
// too long (draining the window first, since children do not carry over), and aggregates at the end.
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
// @temporalio/common is bundle-safe (the workflow package re-exports most of it, not this class).
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { SweepActivities } from '../activities/index.js';
import { trialIndexer } from '../sweeps/expand.js';
import {
  DEFAULT_SWEEP_OPTIONS,
  cancelSignal,
  pauseSignal,
  packWorkflowId,
  progressQuery,
  resumeSignal,
  taskQueueName,
  trialWorkflowId,
  type SweepCounters,
  type SweepOptions,
  type SweepProgress,
  type SweepState,
  type PackOutcome,
  type SweepWorkflowInput,
  type TrialFailure,
} from './messages.js';
import { trialPackWorkflow } from './pack.js';
import { trialWorkflow } from './trial.js';

/** Trials whose completion is looked up in one activity call. */
const PAGE = 100;
const MAX_FAILURES_KEPT = 20;

function freshCounters(): SweepCounters {
  return {
    nextIndex: 0,
    completed: 0,
    skipped: 0,
    started: 0,
    failed: 0,
    cancelled: 0,
    runs: 1,
    paused: false,
    failures: [],
  };
}

function failureOf(trialId: string, err: unknown): TrialFailure {
  let e: unknown = err;
  while ((e instanceof ChildWorkflowFailure || e instanceof ApplicationFailure) && e.cause)
    e = e.cause;
  if (e instanceof ApplicationFailure)
    return { trialId, type: e.type ?? 'Error', message: e.message };
  const x = e as { name?: string; message?: string };
  return { trialId, type: x?.name ?? 'Error', message: x?.message ?? String(e) };
}

export async function sweepWorkflow(input: SweepWorkflowInput): Promise<SweepProgress> {
  const options: SweepOptions = { ...DEFAULT_SWEEP_OPTIONS, ...input.options };
  const { sweepId, spec } = input;
  const persist = proxyActivities<SweepActivities>({
    taskQueue: taskQueueName('cpu', options.queuePrefix),
    startToCloseTimeout: '10 minutes',
    retry: {
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: ['InvalidConfig', 'SchemaError', 'ConflictError', 'NotFoundError'],
    },
  });
  const ix = trialIndexer(spec);
  const c: SweepCounters = input.carried
    ? { ...input.carried, runs: input.carried.runs + 1 }
    : freshCounters();
  let state: SweepState = input.carried ? (c.paused ? 'paused' : 'running') : 'registering';
  let cancelRequested = false;
  let failFastTriggered = false;
  /** trialId -> its position and the workflow running it. */
  const running = new Map<string, { index: number; workflowId: string }>();
  const children = new CancellationScope();

  const progress = (): SweepProgress => ({
    sweepId,
    state,
    trials: ix.count,
    completed: c.completed,
    failed: c.failed,
    running: running.size,
    queued: Math.max(0, ix.count - c.completed - c.failed - c.cancelled - running.size),
    cancelled: c.cancelled,
    skipped: c.skipped,
    started: c.started,
    runs: c.runs,
    runningTrials: [...running].map(([trialId, r]) => ({ trialId, ...r })),
    failures: [...c.failures],
  });
  const finished = () => ['completed', 'failed', 'cancelled', 'aggregating'].includes(state);

  setHandler(progressQuery, progress);
  // Handlers only flip flags: the main loop writes the status to MongoDB (after the sweep exists there,
  // and never from a handler, whose failure would fail the workflow).
  setHandler(pauseSignal, () => {
    if (c.paused || cancelRequested || finished()) return;
    c.paused = true;
    if (state === 'running') state = 'paused';
  });
  setHandler(resumeSignal, () => {
    if (!c.paused || finished()) return;
    c.paused = false;
    if (state === 'paused') state = 'running';
  });
  setHandler(cancelSignal, () => {
    if (finished()) return;
    cancelRequested = true;
    children.cancel();
  });

  const noteFailure = (f: TrialFailure) => {
    c.failures.push(f);
    if (c.failures.length > MAX_FAILURES_KEPT) c.failures.shift();
  };

  const startTrial = (index: number): void => {
    const trial = ix.at(index);
    const workflowId = trialWorkflowId(trial.trialId);
    running.set(trial.trialId, { index, workflowId });
    c.started++;
    children
      .run(() =>
        executeChild(trialWorkflow, {
          workflowId,
          args: [{ sweepId, trial, options }],
        }),
      )
      .then(
        (out) => {
          c.completed++;
          if (out.status === 'skipped') c.skipped++;
        },
        (err: unknown) => {
          if (isCancellation(err)) {
            c.cancelled++;
            return;
          }
          c.failed++;
          noteFailure(
            err instanceof WorkflowExecutionAlreadyStartedError
              ? {
                  trialId: trial.trialId,
                  type: 'AlreadyRunning',
                  message: `Trial ${trial.trialId} is being run by another sweep; rerun this one when it ends.`,
                }
              : failureOf(trial.trialId, err),
          );
          if (spec.failFast && !failFastTriggered) {
            failFastTriggered = true;
            children.cancel();
          }
        },
      )
      .finally(() => running.delete(trial.trialId));
  };

  /** Trials `indices` in one TrialPackWorkflow (spec.pack > 1). */
  const startPack = (indices: number[]): void => {
    const trials = indices.map((i) => ix.at(i));
    const workflowId = packWorkflowId(sweepId, indices[0]!, indices[indices.length - 1]!);
    for (const t of trials) running.set(t.trialId, { index: t.index, workflowId });
    c.started += trials.length;
    const counted = (o: PackOutcome) => {
      c.completed += o.completed.length + o.skipped.length;
      c.skipped += o.skipped.length;
      c.cancelled += o.cancelled.length;
      c.failed += o.failed.length;
      o.failed.forEach(noteFailure);
      if (o.failed.length > 0 && spec.failFast && !failFastTriggered) {
        failFastTriggered = true;
        children.cancel();
      }
    };
    children
      .run(() =>
        executeChild(trialPackWorkflow, {
          workflowId,
          args: [{ sweepId, trials, options }],
        }),
      )
      .then(counted, (err: unknown) => {
        // The pack records its own trials' ends; here all of them count alike.
        const ids = trials.map((t) => t.trialId);
        if (isCancellation(err))
          counted({ completed: [], skipped: [], failed: [], cancelled: ids });
        else
          counted({
            completed: [],
            skipped: [],
            cancelled: [],
            failed: ids.map((id) => failureOf(id, err)),
          });
      })
      .finally(() => {
        for (const t of trials) running.delete(t.trialId);
      });
  };

  // What MongoDB's sweep status says about pausing (registerSweep stores 'running').
  let pausedInStore = input.carried ? c.paused : false;
  const syncPaused = async (): Promise<void> => {
    while (pausedInStore !== c.paused) {
      const want = c.paused;
      await persist.setSweepStatus({ sweepId, status: want ? 'paused' : 'running' });
      pausedInStore = want;
    }
  };

  try {
    if (!input.carried) {
      await persist.registerSweep({ sweepId, spec, workflowId: workflowInfo().workflowId });
      state = c.paused ? 'paused' : 'running';
    }
    let startedThisRun = 0;
    let continueNow = false;
    const stop = () => cancelRequested || failFastTriggered;
    const packSize = spec.pack ?? 1;
    /** Trials gathered for the next pack; nextIndex moves past them once the pack starts. */
    let pending: number[] = [];
    const launch = async (): Promise<void> => {
      for (;;) {
        await syncPaused();
        if (stop() || (!c.paused && running.size < spec.concurrency)) break;
        await condition(
          () =>
            stop() || c.paused !== pausedInStore || (!c.paused && running.size < spec.concurrency),
        );
      }
      if (stop()) return;
      const last = pending[pending.length - 1]!;
      if (packSize === 1) startTrial(last);
      else startPack(pending);
      startedThisRun += pending.length;
      pending = [];
      c.nextIndex = last + 1;
    };
    /** Next trial to read; ahead of nextIndex while a pack is being gathered. */
    let cursor = c.nextIndex;
    while (cursor < ix.count && !stop() && !continueNow) {
      const start = cursor;
      const end = Math.min(ix.count, start + PAGE);
      cursor = end;
      const ids: string[] = [];
      for (let i = start; i < end; i++) ids.push(ix.at(i).trialId);
      const done = new Set(await persist.completedTrials({ trialIds: ids }));
      for (let i = start; i < end; i++) {
        if (stop()) break;
        if (
          pending.length === 0 &&
          (startedThisRun >= options.continueAsNewEvery || workflowInfo().continueAsNewSuggested)
        ) {
          continueNow = true;
          break;
        }
        if (done.has(ids[i - start]!)) {
          // Counted once: after a continue-as-new the sweep resumes past the last started pack,
          // which lies beyond every trial counted here.
          c.completed++;
          c.skipped++;
          if (pending.length === 0) c.nextIndex = i + 1;
          continue;
        }
        pending.push(i);
        if (pending.length >= packSize) await launch();
      }
      // The page is read; a partial pack waits for the next page unless this was the last.
      if (pending.length > 0 && (end >= ix.count || stop())) {
        if (stop()) pending = [];
        else await launch();
      }
    }
    // Children do not carry over a continue-as-new: let the window drain first.
    if (continueNow && !stop()) {
      state = 'draining';
      await condition(() => running.size === 0);
      state = c.paused ? 'paused' : 'running';
      await condition(allHandlersFinished);
      return await continueAsNew<typeof sweepWorkflow>({ ...input, carried: c });
    }
    await condition(() => running.size === 0);
    state = 'aggregating';
    await persist.aggregate({ sweepId });
    const end: SweepState = cancelRequested ? 'cancelled' : c.failed > 0 ? 'failed' : 'completed';
    const last = c.failures[c.failures.length - 1];
    await persist.setSweepStatus({
      sweepId,
      status: end,
      ...(end === 'failed' && last
        ? {
            error: {
              type: last.type,
              message: `${c.failed} of ${ix.count} trials failed; the last: ${last.message}`,
              nonRetryable: false,
            },
          }
        : {}),
    });
    state = end;
    return progress();
  } catch (err) {
    if (isCancellation(err)) {
      // Cancelled through Temporal (not the cancel signal): record it, then end as cancelled.
      await CancellationScope.nonCancellable(async () => {
        await condition(() => running.size === 0);
        await persist.setSweepStatus({ sweepId, status: 'cancelled' });
      });
      state = 'cancelled';
    }
    throw err;
  }
}
