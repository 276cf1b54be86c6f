// A search sweep on the real stack: the grid is round 0, the SweepWorkflow proposes the next rounds
// through the proposeSearch activity until the budget is spent (continuing as new in between), every proposal is an ordinary trial
// in MongoDB tagged with its round, each round's points are what the pure proposer makes of the
// stored results of the rounds before, and submitting the finished sweep again proposes the same
// points and trains nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { observe } from '../../activities/search.js';
import { controlSweep, submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { sweepIdOf } from '../../sweeps/expand.js';
import { defenseKey, proposeBatch, type SearchPoint } from '../../sweeps/search.js';
import type { TrialDoc } from '../../results/documents.js';
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
  worker = await startWorker(ctx);
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

/** The sweep's trials as search points, in sweep order. */
async function pointsOf(sweepId: string): Promise<(SearchPoint & { status: string })[]> {
  const docs: TrialDoc[] = await ctx.store.listTrials(sweepId);
  return docs.map((d) => {
    const pos = d.positions!.find((p) => p.sweepId === sweepId)!;
    const c = d.config;
    return {
      trialId: d._id,
      round: pos.round!,
      status: d.status,
      defense: {
        name: c.defense as SearchPoint['defense']['name'],
        ...(c.defense !== 'none' ? { beta: c.beta } : {}),
      },
    };
  });
}

describe('a search sweep on the real stack', () => {
  const spec = tinySpec({
    name: 'search',
    defenses: [{ name: 'none' }],
    evaluation: { ...NOISE_EVALUATION, tradeoffEps: 1 },
    search: {
      space: [{ defense: 'fim-fast', beta: { min: 1e-3, max: 1, scale: 'log' } }],
      objectives: [
        { metric: 'testNll' },
        { metric: 'kl', attack: 'noise', objective: 'rkl', eps: 1 },
      ],
      budget: 5,
      batch: 2,
      seed: 3,
    },
  });
  const sweepId = sweepIdOf(spec);

  test('proposes round by round until the budget, each proposal a stored trial', async () => {
    // Continuing as new every 2 trials carries the search's rounds from run to run.
    await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix, continueAsNewEvery: 2 });
    const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
    assert.equal(final.state, 'completed');
    assert.ok(final.runs >= 2, `runs ${final.runs}`);
    assert.equal(final.trials, 5);
    assert.equal(final.completed, 5);
    assert.equal(final.search?.round, 2);
    assert.equal(final.search?.stopped, 'budget');
    assert.equal(final.search?.hypervolume.length, 3);

    const points = await pointsOf(sweepId);
    assert.deepEqual(
      points.map((p) => p.round),
      [0, 1, 1, 2, 2],
    );
    for (const p of points) assert.equal(p.status, 'completed');
    assert.deepEqual(points[0]!.defense, { name: 'none' });
    // Round 1 brackets the range; round 2 is what the proposer makes of the stored results.
    assert.deepEqual(
      points.filter((p) => p.round === 1).map((p) => p.defense.beta),
      [1e-3, 1],
    );
    const before2 = points.filter((p) => p.round < 2);
    const observed = await observe(ctx, spec, before2);
    assert.equal(observed.length, 3);
    const again = proposeBatch({
      search: spec.search!,
      tried: before2.map((p) => p.defense),
      observed,
      round: 2,
      count: 2,
    });
    assert.deepEqual(
      points.filter((p) => p.round === 2).map((p) => defenseKey(p.defense)),
      again.map(defenseKey),
    );
    const curves = await ctx.store.listCurves(sweepId);
    assert.ok(curves.some((c) => c.kind === 'tradeoff'));
  });

  test('a resubmitted search proposes the same points and trains nothing', async () => {
    const first = await pointsOf(sweepId);
    await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
    const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
    assert.equal(final.state, 'completed');
    assert.equal(final.started, 0);
    assert.equal(final.skipped, 5);
    assert.deepEqual(await pointsOf(sweepId), first);
  });

  test('cancelled in round 1, it proposes nothing more; rerun, it goes on from there', async () => {
    const other = tinySpec({ ...spec, name: 'search-cancel', seeds: [spec.seeds[0]! + 1] });
    const id = sweepIdOf(other);
    await submitSweep(ctx.client, other, { queuePrefix: ctx.queuePrefix });
    let cancelled = false;
    const final = await waitForSweep(
      ctx.client,
      id,
      (p) => {
        if (!cancelled && (p.search?.round ?? 0) >= 1 && p.running > 0) {
          cancelled = true;
          void controlSweep(ctx.client, id, 'cancel');
        }
      },
      200,
    );
    assert.equal(final.state, 'cancelled');
    assert.equal(final.search?.round, 1);
    const kept = await pointsOf(id);
    assert.deepEqual(
      kept.map((p) => p.round),
      [0, 1, 1],
    );
    await submitSweep(ctx.client, other, { queuePrefix: ctx.queuePrefix });
    const rerun = await waitForSweep(ctx.client, id, () => {}, 500);
    assert.equal(rerun.state, 'completed');
    const all = await pointsOf(id);
    assert.deepEqual(
      all.slice(0, 3).map((p) => p.defense),
      kept.map((p) => p.defense),
    );
    assert.deepEqual(
      all.map((p) => p.round),
      [0, 1, 1, 2, 2],
    );
  });
});
