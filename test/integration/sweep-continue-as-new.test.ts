// Continue-as-new past a lowered threshold on the real stack, then replay of every recorded history
// (the sweep's runs and its trials) against the current workflow bundle: a determinism check.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { sweepWorkflowBundle } from '../../workers/bundle.js';
import { packWorkflowId, sweepWorkflowId, trialWorkflowId } from '../../workflows/messages.js';
import {
  openSweepTestContext,
  startWorker,
  NOISE_EVALUATION,
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

/** Every run of a workflow ID (continue-as-new chains included), oldest first. */
async function runIds(workflowId: string): Promise<string[]> {
  const out: { runId: string; start: number }[] = [];
  for await (const w of ctx.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    out.push({ runId: w.runId, start: w.startTime.getTime() });
  }
  return out.sort((a, b) => a.start - b.start).map((r) => r.runId);
}

describe('long sweeps', () => {
  // Three trials, a continue-as-new after every started trial.
  const spec = tinySpec({
    defenses: [{ name: 'none' }, { name: 'fim', betas: [0.01, 0.1] }],
    evaluation: NOISE_EVALUATION,
  });
  const sweepId = sweepIdOf(spec);

  test('a sweep with more trials than the continue-as-new threshold completes', async () => {
    await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix, continueAsNewEvery: 1 });
    const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
    assert.equal(final.state, 'completed');
    assert.equal(final.completed, 3);
    assert.equal(final.started, 3);
    assert.equal(final.runs, 3, 'one run per started trial');
    const runs = await runIds(sweepWorkflowId(sweepId));
    assert.equal(runs.length, 3);
    const first = await ctx.client.workflow.getHandle(sweepWorkflowId(sweepId), runs[0]).describe();
    assert.equal(first.status.name, 'CONTINUED_AS_NEW');
    assert.equal(
      await ctx.store.trials.countDocuments({ sweepIds: sweepId, status: 'completed' }),
      3,
    );
  });

  test('replaying the recorded histories of the sweep and its trials passes', async () => {
    const ids = [
      sweepWorkflowId(sweepId),
      ...expandSweep(spec).map((t) => trialWorkflowId(t.trialId)),
    ];
    const histories = [];
    for (const workflowId of ids) {
      for (const runId of await runIds(workflowId)) {
        histories.push({
          workflowId,
          history: await ctx.client.workflow.getHandle(workflowId, runId).fetchHistory(),
        });
      }
    }
    assert.ok(histories.length >= 6, `got ${histories.length} histories`);
    const bundle = await sweepWorkflowBundle();
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) {
      assert.equal(r.error, undefined, `${r.workflowId}: ${String(r.error)}`);
      replayed++;
    }
    assert.equal(replayed, histories.length);
  });

  // Five trials in packs of two, a continue-as-new after every pack: the last pack is a partial one.
  const packed = tinySpec({
    name: 'packed, continued as new',
    defenses: [{ name: 'none' }, { name: 'fim', betas: [0.01, 0.03, 0.1, 0.3] }],
    evaluation: spec.evaluation,
    concurrency: 2,
    pack: 2,
  });
  const packedId = sweepIdOf(packed);

  test('a packed sweep continues as new between packs and replays', async () => {
    await submitSweep(ctx.client, packed, { queuePrefix: ctx.queuePrefix, continueAsNewEvery: 2 });
    const final = await waitForSweep(ctx.client, packedId, () => {}, 500);
    assert.equal(final.state, 'completed');
    assert.equal(final.completed, 5);
    assert.equal(final.started, 5);
    assert.equal(final.skipped, 0);
    assert.equal(final.runs, 3, 'packs [0, 1] and [2, 3], then [4]');
    assert.equal(
      await ctx.store.trials.countDocuments({ sweepIds: packedId, status: 'completed' }),
      5,
    );
    const ids = [
      sweepWorkflowId(packedId),
      packWorkflowId(packedId, 0, 1),
      packWorkflowId(packedId, 2, 3),
      packWorkflowId(packedId, 4, 4),
    ];
    const histories = [];
    for (const workflowId of ids) {
      const runs = await runIds(workflowId);
      assert.ok(runs.length > 0, `${workflowId} ran`);
      for (const runId of runs) {
        histories.push({
          workflowId,
          history: await ctx.client.workflow.getHandle(workflowId, runId).fetchHistory(),
        });
      }
    }
    const bundle = await sweepWorkflowBundle();
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) {
      assert.equal(r.error, undefined, `${r.workflowId}: ${String(r.error)}`);
      replayed++;
    }
    assert.equal(replayed, 6, 'three sweep runs and three packs');
  });
});
