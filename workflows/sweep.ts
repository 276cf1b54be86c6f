// SweepWorkflow: registers the sweep and its trials, keeps a sliding window of TrialPackWorkflow
// children in flight (packs of spec.pack trials, one by default; spec.concurrency trials), skips
// trials MongoDB already holds as completed, answers a progress query, obeys pause / resume / cancel signals, continues as new before its history grows
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
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
// @temporalio/common is bundle-safe (the workflow package re-exports most of it, not this class).
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { SweepActivities } from '../activities/index.js';
import { proposedTrial, trialIndexer } from '../sweeps/expand.js';
import type { TrialConfig } from '../sweeps/types.js';
import { FAILURE_TYPES } from '../sweeps/failures.js';
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
  type SearchState,
  type SweepProgress,
  type SweepState,
  type SweepWorkflowInput,
  type TrialFailure,
  type TrialsOutcome,
} from './messages.js';
import { trialWorkflow, type TrialWorkflowInput } from './legacy-trial.js';
import { trialPackWorkflow } from './pack.js';
import { NON_RETRYABLE, stepOptions } from './trial-steps.js';
import { searchAttributesOn, sweepAttributes, upsert } from './search-attributes.js';

/**
 * Marks sweeps that run every trial through the one pipeline (TrialPackWorkflow, a pack of one when
 * spec.pack is 1); sweeps recorded before it go on starting a TrialWorkflow per trial on replay.
 */
export const ONE_PIPELINE_PATCH = 'one-pipeline-v1';

/**
 * Marks sweeps that compute their adversarial examples (spec.evaluation.examples) after the trials
 * and before the aggregation; only sweeps that ask for examples reach it.
 */
export const EXAMPLES_PATCH = 'adversarial-examples-v1';

/** Examples activities of a sweep at most: batches grow with the sweep so that its history does not. */
const MAX_EXAMPLE_BATCHES = 200;

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

/** A TrialWorkflow (workflows/legacy-trial.ts) as a launch of one, for histories recorded before the patch. */
async function runLegacyTrial(
  workflowId: string,
  input: TrialWorkflowInput,
): Promise<TrialsOutcome> {
  const out = await executeChild(trialWorkflow, { workflowId, args: [input] });
  const id = [input.trial.trialId];
  return out.status === 'skipped'
    ? { completed: [], skipped: id, failed: [], cancelled: [] }
    : { completed: id, skipped: [], failed: [], cancelled: [] };
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
      nonRetryableErrorTypes: NON_RETRYABLE,
    },
  });
  const ix = trialIndexer(spec);
  const packSize = spec.pack ?? 1;
  const c: SweepCounters = input.carried
    ? { ...input.carried, runs: input.carried.runs + 1 }
    : freshCounters();
  // A search sweep's trials are its grid (round 0) and then the rounds it proposes; a grid sweep's
  // are its grid alone, read through the indexer exactly as before the search existed.
  let sc: SearchState | undefined;
  if (spec.search) {
    sc = c.search ?? {
      round: 0,
      points: Array.from({ length: ix.count }, (_, i) => {
        const t = ix.at(i);
        return { trialId: t.trialId, round: 0, defense: t.defense };
      }),
      hypervolume: [],
    };
    c.search = sc;
  }
  const total = (): number => (sc ? sc.points.length : ix.count);
  const trialAt = (i: number): TrialConfig =>
    i < ix.count || !sc ? ix.at(i) : proposedTrial(spec, sc.points[i]!.defense, i);
  let state: SweepState = input.carried ? (c.paused ? 'paused' : 'running') : 'registering';
  let cancelRequested = false;
  let failFastTriggered = false;
  /** trialId -> its position and the workflow running it. */
  const running = new Map<string, { index: number; workflowId: string }>();
  const children = new CancellationScope();

  const progress = (): SweepProgress => ({
    sweepId,
    state,
    trials: total(),
    completed: c.completed,
    failed: c.failed,
    running: running.size,
    queued: Math.max(0, total() - c.completed - c.failed - c.cancelled - running.size),
    cancelled: c.cancelled,
    skipped: c.skipped,
    started: c.started,
    runs: c.runs,
    runningTrials: [...running].map(([trialId, r]) => ({ trialId, ...r })),
    failures: [...c.failures],
    ...(sc
      ? {
          search: {
            round: sc.round,
            hypervolume: [...sc.hypervolume],
            ...(sc.stopped ? { stopped: sc.stopped } : {}),
          },
        }
      : {}),
  });
  const finished = () => ['completed', 'failed', 'cancelled', 'aggregating'].includes(state);

  /**
   * The examples of every trial of the sweep (the activity skips those not completed and those
   * stored), in batches, `concurrency` at once on the evaluate queue; a cancel stops them.
   */
  const runExamples = async (): Promise<void> => {
    const ex = spec.evaluation.examples!;
    const settings = {
      attack: ex.attack ?? spec.evaluation.tradeoffAttack ?? spec.evaluation.attacks[0]!,
      objective:
        ex.objective ?? spec.evaluation.tradeoffObjective ?? spec.evaluation.objectives[0]!,
      eps: ex.eps,
      samples: ex.samples,
      predictive: ex.predictive,
    };
    const acts = proxyActivities<SweepActivities>(
      stepOptions(
        taskQueueName(spec.routing.evaluate, options.queuePrefix),
        options.evaluateTimeout,
        20,
        options.heartbeatTimeout,
      ),
    );
    const ids = Array.from({ length: total() }, (_, i) => trialAt(i).trialId);
    const size = Math.max(1, Math.ceil(ids.length / MAX_EXAMPLE_BATCHES));
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += size) batches.push(ids.slice(i, i + size));
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < batches.length && !cancelRequested) {
        const trialIds = batches[next++]!;
        try {
          await acts.adversarialExamples({ trialIds, examples: settings });
        } catch (err) {
          // Its retries spent: the report says which trials have no example; the sweep's results stand.
          if (isCancellation(err)) throw err;
        }
      }
    };
    try {
      await children.run(() =>
        Promise.all(Array.from({ length: Math.min(spec.concurrency, batches.length) }, lane)),
      );
    } catch (err) {
      if (!isCancellation(err)) throw err;
    }
  };

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

  const count = (o: TrialsOutcome) => {
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

  /** Trials `indices` in one TrialPackWorkflow: a pack of one unless spec.pack > 1. */
  const startPack = (indices: number[]): void => {
    const trials = indices.map(trialAt);
    const ids = trials.map((t) => t.trialId);
    const workflowId =
      packSize === 1
        ? trialWorkflowId(ids[0]!)
        : packWorkflowId(sweepId, indices[0]!, indices[indices.length - 1]!);
    for (const t of trials) running.set(t.trialId, { index: t.index, workflowId });
    c.started += trials.length;
    // Sweeps recorded before the one pipeline started a TrialWorkflow per trial; they replay so.
    const legacy = packSize === 1 && !patched(ONE_PIPELINE_PATCH);
    children
      .run(() =>
        legacy
          ? runLegacyTrial(workflowId, { sweepId, trial: trials[0]!, options })
          : executeChild(trialPackWorkflow, { workflowId, args: [{ sweepId, trials, options }] }),
      )
      .then(count, (err: unknown) => {
        // The pipeline records its own trials' ends; here all of them count alike.
        const none = { completed: [], skipped: [], failed: [], cancelled: [] };
        if (isCancellation(err)) count({ ...none, cancelled: ids });
        else if (err instanceof WorkflowExecutionAlreadyStartedError)
          count({
            ...none,
            failed: ids.map((trialId) => ({
              trialId,
              type: FAILURE_TYPES.alreadyRunning,
              message: `Trial ${trialId} is being run by another sweep; rerun this one when it ends.`,
            })),
          });
        else count({ ...none, failed: ids.map((id) => failureOf(id, err)) });
      })
      .finally(() => {
        for (const id of ids) running.delete(id);
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

  // Every run (a continue-as-new run starts without them).
  if (searchAttributesOn(options))
    upsert(
      sweepAttributes(
        sweepId,
        spec.tasks,
        spec.defenses.map((d) => d.name),
      ),
    );

  try {
    if (!input.carried) {
      await persist.registerSweep({ sweepId, spec, workflowId: workflowInfo().workflowId });
      state = c.paused ? 'paused' : 'running';
    }
    let startedThisRun = 0;
    let continueNow = false;
    const stop = () => cancelRequested || failFastTriggered;
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
      startPack(pending);
      startedThisRun += pending.length;
      pending = [];
      c.nextIndex = last + 1;
    };
    /** Next trial to read; ahead of nextIndex while a pack is being gathered. */
    let cursor = c.nextIndex;
    for (;;) {
      while (cursor < total() && !stop() && !continueNow) {
        const start = cursor;
        const end = Math.min(total(), start + PAGE);
        cursor = end;
        const ids: string[] = [];
        for (let i = start; i < end; i++) ids.push(trialAt(i).trialId);
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
        if (pending.length > 0 && (end >= total() || stop())) {
          if (stop()) pending = [];
          else await launch();
        }
      }
      if (!sc || sc.stopped || stop() || continueNow) break;
      // A round ends when its trials have: the next is proposed from all of their results.
      await condition(() => running.size === 0 || stop());
      if (stop()) break;
      const firstIndex = sc.points.length;
      const r = await persist.proposeSearch({
        sweepId,
        spec,
        round: sc.round + 1,
        firstIndex,
        points: sc.points,
      });
      sc.hypervolume = r.hypervolume;
      if (r.defenses.length === 0) {
        sc.stopped = r.stopped ?? 'exhausted';
        break;
      }
      sc.round++;
      r.defenses.forEach((defense, k) => {
        const t = proposedTrial(spec, defense, firstIndex + k);
        sc!.points.push({ trialId: t.trialId, round: sc!.round, defense });
      });
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
    if (spec.evaluation.examples && !stop() && patched(EXAMPLES_PATCH)) {
      state = 'examples';
      await runExamples();
    }
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
              message: `${c.failed} of ${total()} trials failed; the last: ${last.message}`,
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
