// The trial pipeline, the one way a sweep runs its trials: claim them (a completed trial is skipped),
// simulate the distinct training sets, train (per train queue), simulate the distinct test sets,
// evaluate every attack x eps (per evaluate queue), then complete. A trial whose step fails for good
// is ended as failed with its reason and drops out; the others go on. Cancelled, it ends its
// unfinished trials as cancelled and reports them. A single trial is a pipeline of one.
//
// The steps are an interface so that the activities behind them can differ without the pipeline
// being written twice: TrialPackWorkflow runs one pack activity per step (workflows/pack.ts), and
// the TrialWorkflow kept for histories recorded before this pipeline replays its single-trial
// activities through it (workflows/legacy-trial.ts). Any change to the order in which this calls
// the steps changes the commands of running histories: put it behind patched().
import { CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import type {
  ClaimResult,
  CompleteTrialInput,
  EndTrialInput,
  EvaluateInput,
  EvaluateResult,
  ItemOutcome,
  SimulateInput,
  SimulateResult,
  TrainInput,
  TrainResult,
} from '../activities/index.js';
import type { EvaluateRecordSummary } from '../activities/evaluate.js';
import type { ErrorInfo } from '../results/documents.js';
import { blockRanges, evaluationShardCount } from '../sweeps/expand.js';
import type { TrialConfig } from '../sweeps/types.js';
import type { TrialsOutcome } from './messages.js';
import {
  evaluateInput,
  failureInfo,
  simulateInput,
  trainInput,
  trialSummary,
} from './trial-steps.js';

/** Marks pipelines that evaluate large test sets in shards before the evaluate step pools them. */
export const SHARDED_EVALUATION_PATCH = 'sharded-evaluation-v1';

/** Marks pipelines that skip the complete step when no trial is left to complete. */
export const SKIP_EMPTY_COMPLETE_PATCH = 'skip-empty-complete-v1';

/** The activities behind each step; an item's final failure is its outcome, not a throw. */
export interface TrialSteps {
  claim(trialIds: string[]): Promise<ClaimResult[]>;
  simulate(items: SimulateInput[]): Promise<ItemOutcome<SimulateResult>[]>;
  train(queue: string, items: TrainInput[]): Promise<ItemOutcome<TrainResult>[]>;
  evaluate(queue: string, items: EvaluateInput[]): Promise<ItemOutcome<EvaluateResult>[]>;
  /** Called once with the trials that finished every step (with none only in old histories). */
  complete(items: CompleteTrialInput[]): Promise<unknown>;
  /** Called with the failed or cancelled trials, never with none. */
  end(items: EndTrialInput[]): Promise<unknown>;
}

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

export async function runTrials(
  trials: readonly TrialConfig[],
  steps: TrialSteps,
): Promise<TrialsOutcome> {
  const outcome: TrialsOutcome = { completed: [], skipped: [], failed: [], cancelled: [] };
  const claims = await steps.claim(trials.map((t) => t.trialId));
  /** Trials claimed and still going, with their fencing token. */
  const live = new Map<string, { trial: TrialConfig; attempt: number }>();
  trials.forEach((trial, i) => {
    const c = claims[i]!;
    if (c.skip) outcome.skipped.push(trial.trialId);
    else live.set(trial.trialId, { trial, attempt: c.attempt });
  });
  const ended: (EndTrialInput & { status: 'failed'; error: ErrorInfo })[] = [];
  const fail = (trialId: string, error: ErrorInfo) => {
    const t = live.get(trialId);
    if (!t) return;
    live.delete(trialId);
    ended.push({ trialId, attempt: t.attempt, status: 'failed', error });
    outcome.failed.push({ trialId, type: error.type, message: error.message });
  };
  /**
   * Runs one step over `items` and hands each item's result on; an item that failed for good fails
   * its trials, and so does the whole step failing (its retries spent).
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

  const trialsOfSet = (g: TrialConfig[]) => g.map((t) => t.trialId);
  const stillLive = (g: TrialConfig[]) => g.some((t) => live.has(t.trialId));
  /**
   * Draws each distinct training set or test set of the live trials once. A set of several blocks
   * comes back unsimulated with its block count: each block is then an activity of its own (so the
   * blocks spread over the workers), and one more call joins each such set.
   */
  const simulateSets = async (purpose: 'train' | 'test', id: (t: TrialConfig) => string) => {
    const blocked: { set: TrialConfig[]; blocks: number }[] = [];
    await runStep(
      [...groupBy(liveTrials(), id).values()],
      trialsOfSet,
      (gs) => steps.simulate(gs.map(([t]) => simulateInput(t!, purpose))),
      (set, r) => {
        if (r.blocks !== undefined) blocked.push({ set, blocks: r.blocks });
      },
    );
    if (blocked.length === 0) return;
    await Promise.all(
      blocked.flatMap(({ set, blocks }) =>
        blockRanges(blocks).map(([block, lastBlock]) =>
          runStep(
            [set],
            trialsOfSet,
            () =>
              steps.simulate([
                {
                  ...simulateInput(set[0]!, purpose),
                  block,
                  ...(lastBlock > block ? { lastBlock } : {}),
                },
              ]),
            () => undefined,
          ),
        ),
      ),
    );
    await runStep(
      blocked.map((b) => b.set).filter(stillLive),
      trialsOfSet,
      (gs) => steps.simulate(gs.map(([t]) => simulateInput(t!, purpose))),
      (set, r) => {
        if (r.blocks !== undefined)
          for (const t of set)
            fail(t.trialId, {
              type: 'Error',
              message: `The blocks of ${purpose === 'train' ? 'the training set' : 'the test set'} were drawn but could not be joined.`,
              nonRetryable: true,
            });
      },
    );
  };

  try {
    await simulateSets('train', (t) => t.simulationId);

    const trained = new Map<string, TrainResult>();
    await Promise.all(
      [...groupBy(liveTrials(), (t) => t.queues.train)].map(([queue, group]) =>
        runStep(
          group,
          (t) => [t.trialId],
          (ts) => steps.train(queue, ts.map(trainInput)),
          (t, r) => trained.set(t.trialId, r),
        ),
      ),
    );

    await simulateSets('test', (t) => t.testSetId);

    // Evaluations over several chunks of test points: each chunk first as a shard activity of its
    // own, so a large test set spreads over the workers; the evaluate step below then pools them.
    const sharded = liveTrials().filter((t) => evaluationShardCount(t.evaluation) > 1);
    if (sharded.length > 0 && patched(SHARDED_EVALUATION_PATCH))
      await Promise.all(
        sharded.flatMap((t) =>
          t.evaluation.attacks.flatMap((attack) =>
            t.evaluation.eps.flatMap((eps) =>
              Array.from({ length: evaluationShardCount(t.evaluation) }, (_, shard) =>
                runStep(
                  [t],
                  (x) => [x.trialId],
                  () =>
                    steps.evaluate(t.queues.evaluate, [
                      {
                        ...evaluateInput(t, trained.get(t.trialId)!.modelArtifact, attack, eps),
                        shard,
                      },
                    ]),
                  () => undefined,
                ),
              ),
            ),
          ),
        ),
      );

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
            steps.evaluate(
              queue,
              xs.map(({ t, attack, eps }) =>
                evaluateInput(t, trained.get(t.trialId)!.modelArtifact, attack, eps),
              ),
            ),
          (x, r) => {
            const got = records.get(x.t.trialId);
            if (got) got.push(...r.records);
            else records.set(x.t.trialId, [...r.records]);
          },
        ),
      ),
    );

    const done = [...live.values()];
    // Packs recorded before the patch completed an empty list too.
    if (done.length > 0 || !patched(SKIP_EMPTY_COMPLETE_PATCH))
      await steps.complete(
        done.map(({ trial, attempt }) => {
          const r = trained.get(trial.trialId)!;
          return {
            trialId: trial.trialId,
            attempt,
            summary: trialSummary(r, records.get(trial.trialId) ?? []),
            modelArtifact: r.modelArtifact,
            backend: r.backend,
          };
        }),
      );
    for (const { trial } of done) outcome.completed.push(trial.trialId);
    live.clear();
    if (ended.length > 0) await steps.end(ended);
    return outcome;
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      const items: EndTrialInput[] = [
        ...ended,
        ...[...live.values()].map(({ trial, attempt }) => ({
          trialId: trial.trialId,
          attempt,
          status: 'cancelled' as const,
        })),
      ];
      if (items.length > 0) await steps.end(items);
    });
    for (const { trial } of live.values()) outcome.cancelled.push(trial.trialId);
    return outcome;
  }
}
