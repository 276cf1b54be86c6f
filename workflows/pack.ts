// TrialPackWorkflow: the lifecycle of several trials (a spec's `pack`) in one workflow, for sweeps of
// short trials whose per-trial workflow, workflow tasks and activity tasks would cost more than the
// trials themselves. The steps are those of TrialWorkflow, each one activity over the whole pack:
// claim, simulate the distinct training sets, train (per train queue), simulate the distinct test
// sets, evaluate every attack x eps (per evaluate queue), then complete. A trial whose step fails
// for good is ended as failed with its reason and drops out; the others go on. Cancelled, it ends its
// unfinished trials as cancelled and reports them.
import {
  CancellationScope,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
} from '@temporalio/workflow';
import type { EvaluateRecordSummary } from '../activities/evaluate.js';
import type { ItemOutcome, SweepActivities, TrainResult } from '../activities/index.js';
import type { ErrorInfo } from '../results/documents.js';
import type { TrialConfig } from '../sweeps/types.js';
import { taskQueueName, type PackOutcome, type TrialPackInput } from './messages.js';
import {
  bookkeeping,
  evaluateInput,
  failureInfo,
  simulateInput,
  stepOptions,
  trainInput,
  trialSummary,
} from './trial-steps.js';

/** Groups `items` by `key`, keeping their order within each group. */
function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const g = m.get(k);
    if (g) g.push(t);
    else m.set(k, [t]);
  }
  return m;
}

export async function trialPackWorkflow(input: TrialPackInput): Promise<PackOutcome> {
  const { trials, options } = input;
  const q = (name: string) => taskQueueName(name, options.queuePrefix);
  const persist = proxyLocalActivities<SweepActivities>(bookkeeping);
  const step = (queue: string, startToCloseTimeout: string, maximumAttempts: number) =>
    proxyActivities<SweepActivities>(
      stepOptions(q(queue), startToCloseTimeout, maximumAttempts, options.heartbeatTimeout),
    );

  const outcome: PackOutcome = { completed: [], skipped: [], failed: [], cancelled: [] };
  const claims = await persist.claimTrials({ trialIds: trials.map((t) => t.trialId) });
  /** Trials claimed and still going, with their fencing token. */
  const live = new Map<string, { trial: TrialConfig; attempt: number }>();
  trials.forEach((trial, i) => {
    const c = claims[i]!;
    if (c.skip) outcome.skipped.push(trial.trialId);
    else live.set(trial.trialId, { trial, attempt: c.attempt });
  });
  const ended: { trialId: string; attempt: number; status: 'failed'; error: ErrorInfo }[] = [];
  const fail = (trialId: string, error: ErrorInfo) => {
    const t = live.get(trialId);
    if (!t) return;
    live.delete(trialId);
    ended.push({ trialId, attempt: t.attempt, status: 'failed', error });
    outcome.failed.push({ trialId, type: error.type, message: error.message });
  };
  /**
   * Runs one pack activity over `items` and hands each item's result on; an item that failed for
   * good fails its trials, and so does the whole activity failing (its retries spent).
   */
  const runStep = async <I, O>(
    items: I[],
    trialsOf: (item: I) => string[],
    call: (items: I[]) => Promise<ItemOutcome<O>[]>,
    use: (item: I, out: O) => void,
  ): Promise<void> => {
    if (items.length === 0) return;
    let outs: ItemOutcome<O>[];
    try {
      outs = await call(items);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const info = failureInfo(err);
      for (const it of items) for (const id of trialsOf(it)) fail(id, info);
      return;
    }
    items.forEach((it, i) => {
      const o = outs[i]!;
      if ('error' in o) for (const id of trialsOf(it)) fail(id, o.error);
      else use(it, o.ok);
    });
  };
  const liveTrials = () => [...live.values()].map((t) => t.trial);
  /** The distinct datasets of the live trials, each with the trials that use it. */
  const datasets = (id: (t: TrialConfig) => string) => [...groupBy(liveTrials(), id).values()];

  /** Draws each distinct training set or test set of the live trials once. */
  const simulateSets = (purpose: 'train' | 'test', id: (t: TrialConfig) => string) =>
    runStep(
      datasets(id),
      (g) => g.map((t) => t.trialId),
      (gs) =>
        step('cpu', '1 hour', 10).simulateMany({
          items: gs.map(([t]) => simulateInput(t!, purpose)),
        }),
      () => undefined,
    );

  try {
    await simulateSets('train', (t) => t.simulationId);

    const trained = new Map<string, TrainResult>();
    await Promise.all(
      [...groupBy(liveTrials(), (t) => t.queues.train)].map(([queue, group]) =>
        runStep(
          group,
          (t) => [t.trialId],
          (ts) => step(queue, options.trainTimeout, 20).trainMany({ items: ts.map(trainInput) }),
          (t, r) => trained.set(t.trialId, r),
        ),
      ),
    );

    await simulateSets('test', (t) => t.testSetId);

    const records = new Map<string, EvaluateRecordSummary[]>();
    await Promise.all(
      [...groupBy(liveTrials(), (t) => t.queues.evaluate)].map(([queue, group]) =>
        runStep(
          group.flatMap((t) =>
            t.evaluation.attacks.flatMap((attack) =>
              t.evaluation.eps.map((eps) => ({ t, attack, eps })),
            ),
          ),
          (x) => [x.t.trialId],
          (xs) =>
            step(queue, options.evaluateTimeout, 20).evaluateMany({
              items: xs.map(({ t, attack, eps }) =>
                evaluateInput(t, trained.get(t.trialId)!.modelArtifact, attack, eps),
              ),
            }),
          (x, r) => {
            const got = records.get(x.t.trialId);
            if (got) got.push(...r.records);
            else records.set(x.t.trialId, [...r.records]);
          },
        ),
      ),
    );

    const done = [...live.values()];
    await persist.completeTrials({
      items: done.map(({ trial, attempt }) => {
        const r = trained.get(trial.trialId)!;
        return {
          trialId: trial.trialId,
          attempt,
          summary: trialSummary(r, records.get(trial.trialId) ?? []),
          modelArtifact: r.modelArtifact,
          backend: r.backend,
        };
      }),
    });
    for (const { trial } of done) outcome.completed.push(trial.trialId);
    live.clear();
    if (ended.length > 0) await persist.endTrials({ items: ended });
    return outcome;
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      const items = [
        ...ended,
        ...[...live.values()].map(({ trial, attempt }) => ({
          trialId: trial.trialId,
          attempt,
          status: 'cancelled' as const,
        })),
      ];
      if (items.length > 0) await persist.endTrials({ items });
    });
    for (const { trial } of live.values()) outcome.cancelled.push(trial.trialId);
    return outcome;
  }
}
