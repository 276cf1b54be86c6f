// Learning curves from real training: a one-trial sweep on the real stack (Temporal + the
// MongoDB-protocol server, a worker in this process) stores the train activity's per-epoch losses,
// and the dashboard's trial page in Chromium draws them.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { startDashboard } from '../../results/dashboard/server.js';
import { LearningCurveStore } from '../../results/learning-curves.js';
import { sweepIdOf } from '../../sweeps/expand.js';
import {
  openSweepTestContext,
  startWorker,
  tinySpec,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let ctx: SweepTestContext;
let worker: RunningWorker;

before(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not at ${CHROMIUM}; install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH.`,
    );
  ctx = await openSweepTestContext();
  worker = await startWorker(ctx, 2);
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

describe('learning curves', () => {
  test('a trained trial has one stored epoch per epoch trained, drawn on its page', async () => {
    const base = tinySpec();
    const spec = tinySpec({
      defenses: [{ name: 'none' }],
      training: { maxEpochs: 4, minEpochs: 1, batchSize: 100, patience: 50 },
      evaluation: { ...base.evaluation, attacks: ['noise'], eps: [1] },
    });
    const sweepId = sweepIdOf(spec);
    await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
    const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
    assert.equal(final.state, 'completed');

    const [trial] = await ctx.store.listTrials(sweepId);
    const curve = await new LearningCurveStore(ctx.store.db).get(trial!._id);
    assert.ok(curve, 'a learning curve is stored');
    assert.deepEqual(curve.epochs, [1, 2, 3, 4]);
    assert.equal(trial!.summary!.epochs, 4);
    for (const series of [curve.trainLoss, curve.valLoss, curve.bestValLoss])
      assert.ok(series.every(Number.isFinite), JSON.stringify(series));
    // The summary's validation loss is the best epoch's.
    assert.equal(Math.min(...curve.valLoss), trial!.summary!.valLoss);
    assert.equal(curve.bestValLoss[3], trial!.summary!.valLoss);

    const dash = await startDashboard({ store: ctx.store, port: 0 });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${dash.url}#/trial/${trial!._id}`);
      await page.waitForFunction(
        () => document.querySelectorAll('#trial-curve .main-svg').length > 0,
      );
      const drawn = await page.$eval('#trial-curve', (d) =>
        (d as unknown as { data: { meta: string; y: number[] }[] }).data.map((t) => [t.meta, t.y]),
      );
      assert.deepEqual(drawn, [
        ['train', curve.trainLoss],
        ['val', curve.valLoss],
      ]);
    } finally {
      await browser.close();
      await dash.close();
    }
  });

  test('batched epochs: a batch adds its epochs; one holding epoch 1 starts the map over from it', async () => {
    const curves = new LearningCurveStore(ctx.store.db);
    const id = `batch-${ctx.queuePrefix}`;
    const e = (epoch: number, loss: number) => ({
      epoch,
      trainLoss: loss,
      valLoss: loss + 1,
      bestValLoss: loss + 1,
    });
    await curves.putEpochs(id, 'm', 1, [e(1, 5), e(2, 4)]);
    await curves.putEpochs(id, 'm', 1, [e(3, 3), e(4, NaN)]);
    let c = (await curves.get(id))!;
    assert.deepEqual(c.epochs, [1, 2, 3, 4]);
    assert.deepEqual(c.trainLoss.slice(0, 3), [5, 4, 3]);
    assert.ok(Number.isNaN(c.trainLoss[3]));
    // A second candidate (or a restart) begins inside a batch: the first run's epochs go.
    await curves.putEpochs(id, 'm', 2, [e(5, 2), e(1, 9), e(2, 8)]);
    c = (await curves.get(id))!;
    assert.deepEqual(c.epochs, [1, 2]);
    assert.deepEqual(c.trainLoss, [9, 8]);
    assert.equal(c.attempt, 2);
    await curves.putEpochs(id, 'm', 2, []);
    assert.deepEqual((await curves.get(id))!.epochs, [1, 2]);
    await assert.rejects(curves.putEpochs(id, 'm', 2, [e(0, 1)]), /positive integer/);
  });
});
