// A demo-sized sweep on the real stack: every expected trial and evaluation lands in MongoDB exactly
// once, the sweep ends completed with its curves, resubmitting it starts no trial, and a malformed
// spec is refused before anything starts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { submitSweep, sweepStatus, waitForSweep } from '../../cli/sweep-client.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { sweepWorkflowId } from '../../workflows/messages.js';
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
  worker = await startWorker(ctx);
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

describe('a sweep on the real stack', () => {
  const spec = tinySpec();
  const sweepId = sweepIdOf(spec);
  const trials = expandSweep(spec);
  const plan = trials.flatMap((t) => evaluationPlan(t));

  test('completes with every trial and evaluation stored exactly once', async () => {
    const sub = await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
    assert.equal(sub.sweepId, sweepId);
    assert.equal(sub.attached, false);
    const seen: number[] = [];
    const final = await waitForSweep(ctx.client, sweepId, (p) => seen.push(p.completed), 500);
    assert.equal(final.state, 'completed');
    assert.equal(final.trials, trials.length);
    assert.equal(final.completed, trials.length);
    assert.equal(final.failed, 0);
    assert.equal(final.started, trials.length);
    assert.equal(final.skipped, 0);

    const docs = await ctx.store.trials.find({ sweepIds: sweepId }).toArray();
    assert.deepEqual(docs.map((d) => d._id).sort(), trials.map((t) => t.trialId).sort());
    for (const d of docs) {
      assert.equal(d.status, 'completed');
      assert.equal(d.attempt, 1);
      assert.equal(d.summary.epochs, 3);
      assert.equal(typeof d.summary.testNll, 'number');
      assert.equal(d.modelArtifact, `models/${trials.find((t) => t.trialId === d._id)!.modelId}`);
    }
    const evals = await ctx.store.evaluations
      .find({ trialId: { $in: trials.map((t) => t.trialId) } })
      .toArray();
    assert.equal(evals.length, plan.length);
    assert.deepEqual(evals.map((e) => e._id).sort(), plan.map((p) => p.evalId).sort());
    for (const p of plan) {
      assert.equal(
        await ctx.store.evaluations.countDocuments({
          trialId: p.trialId,
          attack: p.attack,
          objective: p.objective,
          eps: p.eps,
        }),
        1,
      );
    }
    const sweep = await ctx.store.getSweep(sweepId);
    assert.equal(sweep?.status, 'completed');
    assert.equal(sweep?.counts.completed, trials.length);
    const curves = await ctx.store.listCurves(sweepId);
    assert.ok(
      curves.some((c) => c.kind === 'tradeoff'),
      'a trade-off curve was aggregated',
    );
    // Checkpoints are removed once the model is stored; models and simulations stay.
    for (const t of trials) {
      assert.equal(await ctx.artifacts.exists(`checkpoints/${t.modelId}/latest`), false);
      assert.equal(await ctx.artifacts.exists(`models/${t.modelId}`), true);
    }
    assert.equal(await ctx.artifacts.exists(`sims/${trials[0]!.simulationId}`), true);

    const status = await sweepStatus(ctx.client, ctx.store, sweepId);
    assert.equal(status.state, 'completed');
    assert.equal(status.trials, trials.length);
    assert.equal(status.completed, trials.length);
    assert.equal(status.failed, 0);
    assert.equal(status.running, 0);
  });

  test('resubmitting the finished sweep starts no trial and changes no result', async () => {
    const before = await ctx.store.evaluations
      .find({ trialId: { $in: trials.map((t) => t.trialId) } })
      .toArray();
    const sub = await submitSweep(
      ctx.client,
      { ...spec, name: 'renamed', concurrency: 1 },
      { queuePrefix: ctx.queuePrefix },
    );
    assert.equal(sub.sweepId, sweepId);
    const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
    assert.equal(final.state, 'completed');
    assert.equal(final.started, 0);
    assert.equal(final.skipped, trials.length);
    assert.equal(final.completed, trials.length);
    const desc = await ctx.client.workflow.getHandle(sweepWorkflowId(sweepId)).describe();
    assert.equal(desc.status.name, 'COMPLETED');
    for (const t of trials) {
      const d = await ctx.store.getTrial(t.trialId);
      assert.equal(d?.attempt, 1, 'no trial was claimed again');
    }
    const afterDocs = await ctx.store.evaluations
      .find({ trialId: { $in: trials.map((t) => t.trialId) } })
      .toArray();
    assert.equal(afterDocs.length, before.length);
    for (const a of afterDocs) {
      const b = before.find((x) => x._id === a._id)!;
      assert.equal(a.updatedAt.getTime(), b.updatedAt.getTime(), 'no evaluation was rewritten');
    }
  });
});
