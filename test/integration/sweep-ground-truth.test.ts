// The paper's ground-truth metrics on the real stack: a tiny gaussian_linear sweep stores, in every
// evaluation of every trial, the Bayes-optimal C2ST and KL(q||p), KL(p||q) against the analytic
// posterior over the trial's test set (pooled over its two chunks), equal to those of the same
// evaluation in one process, and the trial's summary repeats them; `robustsbi report` shows them
// per trial.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadDataset } from '../../activities/simulate.js';
import { loadModelArtifact } from '../../activities/train.js';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { initBackend } from '../../sbi/backend.js';
import { evaluateRobustness } from '../../sbi/evaluation.js';
import { GROUND_TRUTH_SAMPLES } from '../../sbi/metrics/ground-truth.js';
import { createRng } from '../../sbi/rng.js';
import { getTask } from '../../sbi/tasks/index.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { robustsbi } from './harness.js';
import {
  NOISE_EVALUATION,
  openSweepTestContext,
  startWorker,
  tinySpec,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

let ctx: SweepTestContext;
let worker: RunningWorker;

before(async () => {
  ctx = await openSweepTestContext();
  worker = await startWorker(ctx, 2);
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

describe('a gaussian_linear sweep', () => {
  test(
    'stores the ground-truth metrics of every trial and the report shows them',
    { timeout: 300_000 },
    async () => {
      // 40 test points in two chunks of 20; L2 PGD (2 steps) at eps 0.5 and 1, 1 the trade-off's.
      const spec = tinySpec({
        name: 'ground-truth',
        evaluation: {
          ...NOISE_EVALUATION,
          attacks: ['l2pgd'],
          eps: [0.5, 1],
          steps: 2,
          mcSamples: 2,
          nTest: 40,
          attackBatchSize: 20,
        },
      });
      const trials = expandSweep(spec);
      assert.equal(trials.length, 2);
      const sweepId = sweepIdOf(spec);
      await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
      const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(final.state, 'completed');

      const seen: Record<string, unknown>[] = [];
      for (const trial of trials) {
        const stored = await ctx.store.listEvaluations({ trialId: trial.trialId });
        assert.equal(stored.length, 2);
        const g = stored[0]!.groundTruth!;
        assert.ok(g, 'the evaluation carries groundTruth');
        assert.ok(g.c2st >= 0.5 && g.c2st <= 1, `c2st ${g.c2st}`);
        assert.ok(Number.isFinite(g.klQP) && Number.isFinite(g.klPQ), JSON.stringify(g));
        assert.equal(g.samples, GROUND_TRUTH_SAMPLES);
        // One test set and one stream: the same in every evaluation of the trial.
        for (const e of stored) assert.deepEqual(e.groundTruth, g);
        seen.push({ defense: trial.defense.name, ...g });

        // The trial's summary carries them too.
        const doc = await ctx.store.getTrial(trial.trialId);
        assert.deepEqual(
          [doc!.summary!.c2stTruth, doc!.summary!.klQPTruth, doc!.summary!.klPQTruth],
          [g.c2st, g.klQP, g.klPQ],
        );

        // The same evaluation in one process, on the backend the worker ran.
        await initBackend(doc!.backend!);
        const deps = { artifacts: ctx.artifacts } as Parameters<typeof loadDataset>[0];
        const testSet = await loadDataset(deps, {
          purpose: 'test',
          task: trial.task,
          n: 40,
          seed: trial.seed,
          id: trial.testSetId,
        });
        const task = getTask('gaussian_linear');
        const saved = await loadModelArtifact(deps, doc!.modelArtifact!);
        try {
          const ev = trial.evaluation;
          const [r] = await evaluateRobustness(
            saved.estimator,
            { ...testSet, analyticPosterior: (x) => task.analyticPosterior!(x) },
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
            createRng(trial.seed).fork('evaluate/attacks'),
          );
          for (const k of ['c2st', 'klQP', 'klPQ'] as const)
            assert.ok(
              Math.abs(r!.groundTruth![k] - g[k]) <= 1e-9 * Math.max(1, Math.abs(g[k])),
              `${k}: ${r!.groundTruth![k]} vs ${g[k]}`,
            );
        } finally {
          saved.estimator.dispose();
        }
      }
      console.log(`ground truth per trial: ${JSON.stringify(seen)}`);

      // `robustsbi report`: one trade-off row per trial with its figures.
      const r = robustsbi(['report', sweepId, '--format', 'json'], process.env);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as {
        tables: { name: string; columns: string[]; rows: unknown[][] }[];
      };
      const t = report.tables.find((x) => x.name === 'tradeoff')!;
      const col = (c: string) => t.columns.indexOf(c);
      assert.equal(t.rows.length, 2);
      for (const row of t.rows) {
        const trialId = row[col('trialId')] as string;
        const e = (await ctx.store.listEvaluations({ trialId }))[0]!;
        assert.deepEqual(
          [row[col('c2stTruth')], row[col('klQPTruth')], row[col('klPQTruth')]],
          [e.groundTruth!.c2st, e.groundTruth!.klQP, e.groundTruth!.klPQ],
        );
      }
      const text = robustsbi(['report', sweepId], process.env);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /c2stTruth/);
      console.log(text.stdout);
    },
  );
});
