// Adversarial examples on the real stack: a sweep runs without them; the same spec with
// evaluation.examples added keeps every trial ID, skips the finished trials and computes only the
// examples, each at the test point whose KL in the trial's own evaluation is largest; the report
// (JSON and HTML) carries their figures and table.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { artifactNames, decodeChunkPoints } from '../../activities/artifacts.js';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { ExampleStore, exampleId } from '../../results/examples.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { validateSweepSpec } from '../../sweeps/validate.js';
import { robustsbi } from './harness.js';
import {
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

describe('adversarial examples of a sweep', () => {
  test(
    'are added to a finished sweep without retraining or re-evaluating, at the most damaged point',
    { timeout: 300_000 },
    async () => {
      // 40 test points in two chunks of 20: the chosen point may lie in either.
      const plain = tinySpec({
        name: 'examples-plain',
        evaluation: {
          attacks: ['l2pgd'],
          objectives: ['rkl'],
          eps: [0.5, 1],
          nTest: 40,
          steps: 2,
          mcSamples: 2,
          evalSamples: 16,
          coverageSamples: 50,
          coverageLevels: 10,
          attackBatchSize: 20,
          tradeoffEps: 1,
        },
      });
      const withExamples = validateSweepSpec({
        ...plain,
        name: 'examples',
        evaluation: { ...plain.evaluation, examples: { eps: 1, samples: 200, predictive: 3 } },
      });
      const trials = expandSweep(plain);
      assert.deepEqual(
        expandSweep(withExamples).map((t) => t.trialId),
        trials.map((t) => t.trialId),
        'examples do not change a trial',
      );
      assert.notEqual(sweepIdOf(withExamples), sweepIdOf(plain));

      await submitSweep(ctx.client, plain, { queuePrefix: ctx.queuePrefix });
      const first = await waitForSweep(ctx.client, sweepIdOf(plain), () => {}, 500);
      assert.equal(first.state, 'completed');
      const examples = new ExampleStore(ctx.store.db);
      assert.equal((await examples.ofTrials(trials.map((t) => t.trialId))).length, 0);
      // A sweep that asked for none reports none.
      const p = robustsbi(['report', sweepIdOf(plain), '--format', 'json'], process.env);
      assert.equal(p.code, 0, p.stderr);
      const plainTables = (JSON.parse(p.stdout) as { tables: { name: string }[] }).tables;
      assert.ok(!plainTables.some((x) => x.name === 'examples'));
      const evaluationsBefore = await Promise.all(
        trials.map((t) => ctx.store.listEvaluations({ trialId: t.trialId })),
      );

      const sweepId = sweepIdOf(withExamples);
      await submitSweep(ctx.client, withExamples, { queuePrefix: ctx.queuePrefix });
      const second = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(second.state, 'completed');
      assert.equal(second.skipped, 2, 'both trials were finished and are not run again');
      // Nothing re-evaluated: the same evaluation documents, untouched.
      for (const [i, t] of trials.entries())
        assert.deepEqual(
          await ctx.store.listEvaluations({ trialId: t.trialId }),
          evaluationsBefore[i],
        );

      for (const t of trials) {
        const [doc] = await examples.ofTrials([t.trialId]);
        assert.ok(doc, `trial ${t.trialId} has its example`);
        assert.equal(doc._id, exampleId(t.trialId, 'l2pgd', 'rkl', 1));
        // The point is the evaluation's largest KL at (l2pgd, rkl, eps 1), over both chunks.
        const kl: number[] = [];
        for (let c = 0; c < 2; c++) {
          const name = artifactNames.evaluationChunk(t.trialId, 'l2pgd', 1, c);
          const chunk = decodeChunkPoints((await ctx.artifacts.get(name))!, name);
          const r = chunk.records.find((x) => x.eps === 1 && x.objective === 'rkl')!;
          kl.push(...r.kl);
        }
        assert.equal(kl.length, 40);
        const best = kl.indexOf(Math.max(...kl.filter(Number.isFinite)));
        assert.equal(doc.index, best);
        assert.equal(doc.klEvaluation, Number(kl[best]!.toPrecision(6)));
        const mean = kl.reduce((a, b) => a + b, 0) / kl.length;
        assert.ok(Math.abs(doc.klMeanEvaluation! - mean) <= 1e-5 * Math.max(1, Math.abs(mean)));
        const ev = (await ctx.store.listEvaluations({ trialId: t.trialId })).find(
          (e) => e.eps === 1,
        )!;
        assert.ok(Math.abs(ev.kl.mean - mean) <= 1e-5 * Math.max(1, Math.abs(mean)));
        // gaussian_linear: 10 parameters, 200 samples each side, 3 predictive simulations each.
        assert.equal(doc.marginals.length, 10);
        for (const m of doc.marginals) {
          assert.equal(
            m.clean.reduce((a, b) => a + b, 0),
            200,
          );
          assert.equal(
            m.attacked.reduce((a, b) => a + b, 0),
            200,
          );
        }
        assert.equal(doc.predictive.filter((p) => p.from === 'clean').length, 3);
        assert.equal(doc.predictive.filter((p) => p.from === 'attacked').length, 3);
        assert.equal(doc.x.length, 10);
        // x~ stays within the budget around x.
        const dist = Math.hypot(...doc.x.map((v, i) => v - doc.xAdv[i]!));
        assert.ok(dist <= doc.epsAbs * (1 + 1e-4) + 1e-5, `|x~ - x| ${dist} vs eps ${doc.epsAbs}`);
        assert.ok(await ctx.artifacts.info(doc.artifact), 'the raw samples are kept');
      }

      const r = robustsbi(['report', sweepId, '--format', 'json'], process.env);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { tables: { name: string; rows: unknown[][] }[] };
      assert.equal(report.tables.find((x) => x.name === 'examples')?.rows.length, 2);
      // The page inlines Plotly (megabytes): written to a file, not read from a pipe.
      const out = join(mkdtempSync(join(tmpdir(), 'examples-')), 'report.html');
      const html = robustsbi(['report', sweepId, '--format', 'html', '--out', out], process.env);
      assert.equal(html.code, 0, html.stderr);
      const page = readFileSync(out, 'utf8');
      // One marginals and one predictive figure per trial.
      assert.equal(page.match(/data-kind="example_marginals"/g)?.length, 2);
      assert.equal(page.match(/data-kind="example_predictive"/g)?.length, 2);
    },
  );
});
