// A sharded evaluation on the real stack: 2,000 test points in chunks of 500 are evaluated as four
// shard activities per (attack, eps), served by two workers, then pooled; the stored records equal
// an unsharded evaluation of the same model on the same test set and seeds, and every shard kept
// its per-point values (the ground-truth metrics against gaussian_linear's analytic posterior too).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifactNames, decodeChunkPoints } from '../../activities/artifacts.js';
import { loadDataset } from '../../activities/simulate.js';
import { loadModelArtifact } from '../../activities/train.js';
import type { EvaluateInput } from '../../activities/evaluate.js';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { initBackend } from '../../sbi/backend.js';
import { evaluateRobustness } from '../../sbi/evaluation.js';
import { createRng } from '../../sbi/rng.js';
import { getTask } from '../../sbi/tasks/index.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { trialWorkflowId } from '../../workflows/messages.js';
import {
  HEALTHY_MAF,
  openSweepTestContext,
  scheduledItems,
  startWorker,
  tinySpec,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

let ctx: SweepTestContext;
const workers: RunningWorker[] = [];

before(async () => {
  ctx = await openSweepTestContext();
  workers.push(await startWorker(ctx, 2), await startWorker(ctx, 2));
});

after(async () => {
  for (const w of workers) await w.stop();
  await ctx?.close();
});

describe('a sweep evaluating 2,000 test points', () => {
  test(
    'in four shards per (attack, eps) stores the records of one unsharded evaluation',
    { timeout: 300_000 },
    async () => {
      const spec = tinySpec({
        name: 'shards',
        estimators: [HEALTHY_MAF],
        defenses: [{ name: 'none' }],
        evaluation: {
          attacks: ['l2pgd'],
          objectives: ['rkl', 'fkl'],
          eps: [1],
          nTest: 2000,
          steps: 2,
          mcSamples: 2,
          evalSamples: 8,
          coverageSamples: 20,
          coverageLevels: 10,
          attackBatchSize: 500,
          tradeoffEps: 1,
        },
      });
      const [trial] = expandSweep(spec);
      await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
      const final = await waitForSweep(ctx.client, sweepIdOf(spec), () => {}, 500);
      assert.equal(final.state, 'completed');

      // Four shard activities, then the one that pools them.
      const history = await ctx.client.workflow
        .getHandle(trialWorkflowId(trial!.trialId))
        .fetchHistory();
      const evaluations = scheduledItems<EvaluateInput>(history.events ?? [], 'evaluateMany');
      assert.deepEqual(
        evaluations.map((items) => items.map((i) => i.shard ?? 'pool').join(',')),
        ['0', '1', '2', '3', 'pool'],
      );
      // The shards ran at the same time, not one after another.
      const events = history.events ?? [];
      const time = (e: (typeof events)[number]) =>
        Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
      const spans = events
        .filter((e) => e.activityTaskStartedEventAttributes)
        .map((e) => {
          const scheduled = String(e.activityTaskStartedEventAttributes!.scheduledEventId);
          const done = events.find(
            (d) => String(d.activityTaskCompletedEventAttributes?.scheduledEventId) === scheduled,
          );
          return { scheduled, start: time(e), end: done ? time(done) : Infinity };
        });
      const shardIds = events
        .filter(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'evaluateMany',
        )
        .slice(0, 4)
        .map((e) => String(e.eventId));
      const shardSpans = spans.filter((s) => shardIds.includes(s.scheduled));
      assert.equal(shardSpans.length, 4);
      const overlapping = shardSpans.some((a) =>
        shardSpans.some((b) => a !== b && a.start < b.end && b.start < a.end),
      );
      assert.ok(overlapping, `shard spans ${JSON.stringify(shardSpans)}`);

      const stored = await ctx.store.listEvaluations({ trialId: trial!.trialId });
      assert.equal(stored.length, 2);
      for (let c = 0; c < 4; c++) {
        const name = artifactNames.evaluationChunk(trial!.trialId, 'l2pgd', 1, c);
        const points = decodeChunkPoints((await ctx.artifacts.get(name))!, name);
        assert.equal(points.to - points.from, 500);
        assert.equal(points.records.length, 2);
        assert.equal(points.groundTruth!.c2st.length, 500, 'the chunk kept its ground truth');
      }

      // The same evaluation in one process, on the backend the workers ran.
      const doc = await ctx.store.getTrial(trial!.trialId);
      await initBackend(doc!.backend!);
      const deps = { artifacts: ctx.artifacts } as Parameters<typeof loadDataset>[0];
      const test = await loadDataset(deps, {
        purpose: 'test',
        task: trial!.task,
        n: 2000,
        seed: trial!.seed,
        id: trial!.testSetId,
      });
      const saved = await loadModelArtifact(deps, doc!.modelArtifact!);
      try {
        const ev = trial!.evaluation;
        const task = getTask('gaussian_linear');
        const records = await evaluateRobustness(
          saved.estimator,
          { ...test, analyticPosterior: (x) => task.analyticPosterior!(x) },
          {
            attacks: ['l2pgd'],
            divergences: ev.objectives,
            eps: [1],
            steps: ev.steps!,
            mcSamples: ev.mcSamples,
            evalSamples: ev.evalSamples,
            coverageSamples: ev.coverageSamples,
            coverageLevels: ev.coverageLevels,
            attackBatchSize: ev.attackBatchSize,
          },
          createRng(trial!.seed).fork('evaluate/attacks'),
        );
        for (const r of records) {
          const s = stored.find((e) => e.objective === r.objective)!;
          // To float tolerance: the stored numbers passed through MongoDB.
          const close = (a: number, b: number, what: string) =>
            assert.ok(
              Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)),
              `${r.objective} ${what}: ${a} vs ${b}`,
            );
          close(s.kl.mean, r.kl.mean, 'KL mean');
          close(s.kl.q95, r.kl.q95, 'KL q95');
          close(s.kl.median, r.kl.median, 'KL median');
          close(s.nllClean, r.nll.clean, 'clean NLL');
          close(s.nllAttacked, r.nll.attacked, 'attacked NLL');
          close(s.coverageAbsArea.attacked, r.coverageAbsArea, 'coverage area');
          close(s.coverageAbsArea.clean, r.cleanCoverageAbsArea, 'clean coverage area');
          // Against the analytic posterior, pooled from the four shards.
          close(s.groundTruth!.c2st, r.groundTruth!.c2st, 'C2ST');
          close(s.groundTruth!.klQP, r.groundTruth!.klQP, 'KL(q||p)');
          close(s.groundTruth!.klPQ, r.groundTruth!.klPQ, 'KL(p||q)');
          assert.equal(s.nTest, r.nTest);
        }
      } finally {
        saved.estimator.dispose();
      }
    },
  );
});
