// Packed sweeps (spec.pack > 1, workflows/pack.ts) on the real stack: the trials of a pack run in
// one workflow with one activity per step, yet each trial keeps its own outcome. A diverging trial
// fails alone (once, not retried) while its pack-mates complete; a resubmission reruns only the
// failed trials; a cancelled sweep ends its packs' trials as cancelled.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TrainHeartbeat } from '../../activities/train.js';
import {
  controlSweep,
  submitSweep,
  trainingProgress,
  waitForSweep,
} from '../../cli/sweep-client.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { packWorkflowId, progressQuery, trialWorkflowId } from '../../workflows/messages.js';
import {
  openSweepTestContext,
  startWorker,
  activityAttempts,
  HEALTHY_GAUSSIAN,
  HEALTHY_MAF,
  NOISE_EVALUATION,
  OVERFLOWING_MAF,
  tinySpec,
  until,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';
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

/** Two fresh seeds (tinySpec draws one per call): new IDs on a reused stack. */
function twoSeeds(): number[] {
  const s = tinySpec().seeds[0]!;
  return [s, s + 1];
}

async function workflowEvents(workflowId: string) {
  return (await ctx.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

describe('a packed sweep', () => {
  test(
    'keeps outcomes per trial: a diverging trial fails alone, and a resubmission reruns only it',
    { timeout: 300_000 },
    async () => {
      // 3 estimators x 2 seeds = 6 trials in 2 packs of 3; the overflowing MAF diverges in both.
      const spec = tinySpec({
        name: 'packed',
        estimators: [HEALTHY_MAF, OVERFLOWING_MAF, HEALTHY_GAUSSIAN],
        defenses: [{ name: 'none' }],
        seeds: twoSeeds(),
        training: { maxEpochs: 3, minEpochs: 1, batchSize: 100, patience: 5, maxNanResets: 1 },
        evaluation: NOISE_EVALUATION,
        concurrency: 6,
        pack: 3,
      });
      const sweepId = sweepIdOf(spec);
      const trials = expandSweep(spec);
      assert.equal(trials.length, 6);
      const diverging = new Set(
        trials.filter((t) => t.estimator.architecture.logScaleMin === -100).map((t) => t.trialId),
      );
      assert.equal(diverging.size, 2);

      await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
      const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(final.state, 'failed');
      assert.equal(final.started, 6);
      assert.equal(final.completed, 4);
      assert.equal(final.failed, 2);
      assert.equal(final.cancelled, 0);
      assert.equal(final.queued, 0);
      assert.deepEqual(new Set(final.failures.map((f) => f.trialId)), diverging);
      for (const f of final.failures) assert.equal(f.type, FAILURE_TYPES.diverged);

      for (const t of trials) {
        const doc = await ctx.store.getTrial(t.trialId);
        const evals = await ctx.store.listEvaluations({ trialId: t.trialId });
        if (diverging.has(t.trialId)) {
          assert.equal(doc?.status, 'failed');
          assert.equal(doc?.error?.type, FAILURE_TYPES.diverged);
          assert.match(doc?.error?.message ?? '', /at epoch 2 after 1 reloads/);
          assert.equal(doc?.attempt, 1);
          assert.deepEqual(evals, []);
        } else {
          assert.equal(doc?.status, 'completed', `trial ${t.index}`);
          assert.equal(doc?.attempt, 1);
          assert.ok(Number.isFinite(doc?.summary?.valLoss));
          assert.equal(doc?.modelArtifact, `models/${t.modelId}`);
          assert.deepEqual(
            evals.map((e) => e._id).sort(),
            evaluationPlan(t)
              .map((p) => p.evalId)
              .sort(),
          );
        }
      }
      const sweep = await ctx.store.getSweep(sweepId);
      assert.equal(sweep?.status, 'failed');
      assert.deepEqual(sweep?.counts, {
        trials: 6,
        queued: 0,
        running: 0,
        completed: 4,
        failed: 2,
        cancelled: 0,
      });

      // Each pack ran one activity per step, once: Diverged came back as that trial's outcome
      // rather than failing (and retrying) the pack's trainMany. No per-trial workflow was made.
      const first = packWorkflowId(sweepId, 0, 2);
      assert.deepEqual(activityAttempts(await workflowEvents(first)), {
        simulateMany: [1, 1],
        trainMany: [1],
        evaluateMany: [1],
      });
      await assert.rejects(
        ctx.client.workflow.getHandle(trialWorkflowId(trials[0]!.trialId)).describe(),
        /not found/i,
      );

      // Resubmitted (with another pack size, which is not part of the sweep's ID): the completed
      // trials are skipped untouched, the diverged ones rerun (and diverge again).
      const before = new Map(
        (await ctx.store.trials.find({ sweepIds: sweepId }).toArray()).map((d) => [
          d._id,
          d.updatedAt as Date,
        ]),
      );
      const again = tinySpec({ ...spec, pack: 2 });
      assert.equal(sweepIdOf(again), sweepId);
      await submitSweep(ctx.client, again, { queuePrefix: ctx.queuePrefix });
      const rerun = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(rerun.skipped, 4);
      assert.equal(rerun.started, 2);
      assert.equal(rerun.failed, 2);
      for (const t of trials) {
        const doc = await ctx.store.getTrial(t.trialId);
        if (diverging.has(t.trialId)) assert.equal(doc?.attempt, 2, 'a rerun is a new attempt');
        else
          assert.deepEqual(doc?.updatedAt, before.get(t.trialId), 'a completed trial is untouched');
      }
    },
  );

  test(
    'cancelled, ends the trials of its running pack as cancelled',
    { timeout: 180_000 },
    async () => {
      // Long trainings (no early stop): the pack is still training when the cancel arrives.
      const spec = tinySpec({
        name: 'packed, cancelled',
        defenses: [{ name: 'none' }],
        seeds: twoSeeds(),
        training: { maxEpochs: 5000, minEpochs: 5000, batchSize: 100, patience: 5000 },
        evaluation: NOISE_EVALUATION,
        concurrency: 2,
        pack: 2,
      });
      const sweepId = sweepIdOf(spec);
      const trials = expandSweep(spec);
      const h = (await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix })).handle;
      await until('the pack trains', async () => {
        const doc = await ctx.store.getTrial(trials[0]!.trialId);
        return doc?.status === 'running' && (await h.query(progressQuery)).running === 2;
      });
      // Its training is visible per trial: the pack's trainMany trains the first trial, not the second.
      const p = await h.query(progressQuery);
      const packId = packWorkflowId(sweepId, 0, 1);
      assert.deepEqual(
        p.runningTrials.map((r) => r.workflowId),
        [packId, packId],
      );
      let beat: TrainHeartbeat | undefined;
      await until('the first trial reports an epoch', async () => {
        beat = await trainingProgress(ctx.client, trials[0]!.trialId, packId);
        return beat !== undefined && beat.epoch >= 1;
      });
      assert.equal(beat?.trialId, trials[0]!.trialId);
      assert.equal(beat?.maxEpochs, 5000);
      assert.equal(await trainingProgress(ctx.client, trials[1]!.trialId, packId), undefined);

      assert.equal(await controlSweep(ctx.client, sweepId, 'cancel'), true);
      const end = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(end.state, 'cancelled');
      assert.equal(end.cancelled, 2);
      assert.equal(end.completed, 0);
      assert.equal(end.running, 0);
      for (const t of trials)
        assert.equal((await ctx.store.getTrial(t.trialId))?.status, 'cancelled');
      assert.equal((await ctx.store.getSweep(sweepId))?.status, 'cancelled');
    },
  );
});
