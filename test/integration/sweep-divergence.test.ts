// A training that diverges, reached from the sweep spec alone, on the real stack (issue 9): the trial
// is recorded as failed with its reason, once, without retries, and the sweep goes on; with failFast
// the sweep stops and the trials after it are never started.
//
// How it diverges: a MAF whose log-scale clamp is [-100, -90] scales z by exp(-s) >= e^90, beyond
// float32's largest number (about e^88.7), so every validation NLL is non-finite from the first
// epoch whatever the seed or the weights. trainNPE reloads the best state on each non-finite
// validation loss and gives up (DivergedError) once more than training.maxNanResets have happened;
// the train activity turns that into the non-retryable failure type Diverged.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitForSweep } from '../../cli/sweep-client.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import type { SweepSpec } from '../../sweeps/types.js';
import {
  SWEEP_WORKFLOW_TYPE,
  progressQuery,
  sweepWorkflowId,
  taskQueueName,
  trialWorkflowId,
  type SweepProgress,
  type SweepWorkflowInput,
} from '../../workflows/messages.js';
import {
  openSweepTestContext,
  startWorker,
  activityAttempts,
  HEALTHY_GAUSSIAN,
  HEALTHY_MAF,
  NOISE_EVALUATION,
  OVERFLOWING_MAF,
  tinySpec,
  type HistoryEvent,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';
import { robustsbi, sharedStackEnv } from './harness.js';
import { FAILURE_TYPES } from '../../sweeps/failures.js';

let ctx: SweepTestContext;
let worker: RunningWorker;

before(async () => {
  ctx = await openSweepTestContext();
  worker = await startWorker(ctx);
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

/** One trial per estimator; one at a time unless told, so the order of events is the trial order. */
function specWith(estimators: unknown[], failFast: boolean, concurrency = 1): SweepSpec {
  return tinySpec({
    name: failFast ? 'divergence, fail-fast' : 'divergence',
    estimators,
    defenses: [{ name: 'none' }],
    // maxNanResets 1: one reload of the best state is tried, the second NaN epoch gives up.
    training: { maxEpochs: 3, minEpochs: 1, batchSize: 100, patience: 5, maxNanResets: 1 },
    evaluation: NOISE_EVALUATION,
    concurrency,
    failFast,
  });
}

async function runSweep(spec: SweepSpec): Promise<SweepProgress> {
  const sweepId = sweepIdOf(spec);
  const input: SweepWorkflowInput = {
    sweepId,
    spec,
    options: { queuePrefix: ctx.queuePrefix },
  };
  await ctx.client.workflow.start(SWEEP_WORKFLOW_TYPE, {
    workflowId: sweepWorkflowId(sweepId),
    taskQueue: taskQueueName('cpu', ctx.queuePrefix),
    args: [input],
  });
  return waitForSweep(ctx.client, sweepId, () => {}, 500);
}

async function trialHistory(trialId: string): Promise<HistoryEvent[]> {
  const h = await ctx.client.workflow.getHandle(trialWorkflowId(trialId)).fetchHistory();
  return h.events ?? [];
}

const DIVERGED_MESSAGE = /diverged: the validation loss was NaN/i;

async function assertDivergedTrial(trialId: string): Promise<void> {
  const doc = await ctx.store.getTrial(trialId);
  assert.equal(doc?.status, 'failed');
  assert.equal(doc?.error?.type, FAILURE_TYPES.diverged);
  assert.equal(doc?.error?.nonRetryable, true);
  assert.match(doc?.error?.message ?? '', DIVERGED_MESSAGE);
  assert.equal(doc?.attempt, 1);
  assert.equal(doc?.summary, undefined, 'a diverged trial has no results');
  assert.deepEqual(await ctx.store.listEvaluations({ trialId }), []);

  // The trial's pack of one trained once: Diverged came back as the trial's outcome, not retried,
  // and nothing was evaluated after it.
  const events = await trialHistory(trialId);
  const attempts = activityAttempts(events);
  assert.deepEqual(attempts.trainMany, [1], 'train ran once: Diverged is not retried');
  assert.equal(attempts.evaluateMany, undefined, 'nothing is evaluated after a divergence');
  assert.equal(events.filter((e) => e.activityTaskFailedEventAttributes).length, 0);
  // Epoch 1 was NaN (one reload of the best state), epoch 2 NaN again: past maxNanResets = 1.
  assert.match(doc?.error?.message ?? '', /at epoch 2 after 1 reloads/);
}

describe('a diverging training in a sweep', () => {
  test(
    'is stored as failed with its reason, is not retried, and the sweep goes on',
    { timeout: 180_000 },
    async () => {
      const spec = specWith([HEALTHY_MAF, OVERFLOWING_MAF, HEALTHY_GAUSSIAN], false);
      const [first, diverging, last] = expandSweep(spec);
      const final = await runSweep(spec);

      // The workflow's own account: every trial started, one failed as Diverged, the rest completed.
      assert.equal(final.state, 'failed');
      assert.equal(final.trials, 3);
      assert.equal(final.started, 3, 'the trial after the diverged one was started too');
      assert.equal(final.completed, 2);
      assert.equal(final.failed, 1);
      assert.equal(final.cancelled, 0);
      assert.equal(final.queued, 0);
      assert.equal(final.failures.length, 1);
      assert.equal(final.failures[0]!.trialId, diverging!.trialId);
      assert.equal(final.failures[0]!.type, FAILURE_TYPES.diverged);
      assert.match(final.failures[0]!.message, DIVERGED_MESSAGE);

      // What MongoDB holds.
      await assertDivergedTrial(diverging!.trialId);
      for (const t of [first!, last!]) {
        const doc = await ctx.store.getTrial(t.trialId);
        assert.equal(doc?.status, 'completed', `trial ${t.index}`);
        assert.equal(doc?.error, undefined);
        assert.ok(
          Number.isFinite(doc?.summary?.valLoss),
          `trial ${t.index} trained to a finite loss`,
        );
        assert.equal((await ctx.store.listEvaluations({ trialId: t.trialId })).length, 1);
      }
      const sweep = await ctx.store.getSweep(sweepIdOf(spec));
      assert.equal(sweep?.status, 'failed');
      assert.equal(sweep?.error?.type, FAILURE_TYPES.diverged);
      assert.match(
        sweep?.error?.message ?? '',
        /^1 of 3 trials failed; the last: Training diverged/,
      );
      assert.deepEqual(sweep?.counts, {
        trials: 3,
        queued: 0,
        running: 0,
        completed: 2,
        failed: 1,
        cancelled: 0,
      });
      // The healthy trials' results were aggregated into curves all the same.
      assert.ok((await ctx.store.listCurves(sweepIdOf(spec))).length > 0);
    },
  );

  test(
    'with failFast, stops the sweep and starts none of the remaining trials',
    { timeout: 180_000 },
    async () => {
      const spec = specWith([OVERFLOWING_MAF, HEALTHY_MAF, HEALTHY_GAUSSIAN], true);
      const [diverging, ...rest] = expandSweep(spec);
      const sweepId = sweepIdOf(spec);
      const final = await runSweep(spec);

      assert.equal(final.state, 'failed');
      assert.equal(final.started, 1, 'no trial was started after the divergence');
      assert.equal(final.failed, 1);
      assert.equal(final.completed, 0);
      assert.equal(final.running, 0);
      assert.equal(final.queued, 2, 'the remaining trials are left queued');
      assert.equal(final.failures[0]?.type, FAILURE_TYPES.diverged);
      // The ended workflow still answers the progress query with the same account.
      const queried = await ctx.client.workflow
        .getHandle(sweepWorkflowId(sweepId))
        .query(progressQuery);
      assert.deepEqual(queried, final);

      await assertDivergedTrial(diverging!.trialId);
      for (const t of rest) {
        const doc = await ctx.store.getTrial(t.trialId);
        assert.equal(doc?.status, 'queued', `trial ${t.index} is registered but never claimed`);
        assert.equal(doc?.attempt, 0);
        assert.equal(doc?.startedAt, undefined);
        assert.deepEqual(await ctx.store.listEvaluations({ trialId: t.trialId }), []);
        await assert.rejects(
          ctx.client.workflow.getHandle(trialWorkflowId(t.trialId)).describe(),
          (err: Error) => err.name === 'WorkflowNotFoundError',
          `no workflow was started for trial ${t.index}`,
        );
      }
      const sweep = await ctx.store.getSweep(sweepId);
      assert.equal(sweep?.status, 'failed');
      assert.equal(sweep?.error?.type, FAILURE_TYPES.diverged);
      assert.match(sweep?.error?.message ?? '', /^1 of 3 trials failed/);
      assert.deepEqual(sweep?.counts, {
        trials: 3,
        queued: 2,
        running: 0,
        completed: 0,
        failed: 1,
        cancelled: 0,
      });
      // What a user sees: the stopped sweep and the reason, from the command line.
      const st = robustsbi(['sweep', 'status', sweepId], sharedStackEnv());
      assert.equal(st.code, 0, st.stderr);
      assert.match(
        st.stdout,
        /: failed; 3 trials: 0 completed, 1 failed, 0 running, 2 queued, 0 cancelled\n/,
      );
      assert.match(
        st.stdout,
        /1 of 3 trials failed; the last: Training diverged: the validation loss was NaN/,
      );
    },
  );

  test(
    'with failFast, cancels the trial running beside the diverged one and starts no other',
    { timeout: 180_000 },
    async () => {
      const HEALTHY_MDN = { kind: 'mdn', architecture: { hidden: [8], components: 2 } };
      const spec = specWith([OVERFLOWING_MAF, HEALTHY_MAF, HEALTHY_GAUSSIAN, HEALTHY_MDN], true, 2);
      const [diverging, beside, ...rest] = expandSweep(spec);
      const final = await runSweep(spec);

      assert.equal(final.state, 'failed');
      assert.equal(final.started, 2, 'only the first window of two was started');
      assert.equal(final.failed, 1);
      assert.equal(final.running, 0);
      assert.equal(final.queued, 2);
      await assertDivergedTrial(diverging!.trialId);
      // The trial beside it is cancelled, unless it finished first (it trains longer: simulate,
      // 3 epochs, then evaluation, against 2 NaN epochs); the store agrees with the workflow.
      const besideDoc = await ctx.store.getTrial(beside!.trialId);
      assert.equal(final.completed + final.cancelled, 1);
      assert.equal(besideDoc?.status, final.cancelled === 1 ? 'cancelled' : 'completed');
      for (const t of rest) {
        const doc = await ctx.store.getTrial(t.trialId);
        assert.equal(doc?.status, 'queued', `trial ${t.index}`);
        assert.equal(doc?.attempt, 0);
      }
    },
  );
});
