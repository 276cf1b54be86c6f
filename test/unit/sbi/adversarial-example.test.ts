import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { adversarialExample } from '../../../sbi/adversarial-example.js';
import { createEstimator, computeZScore } from '../../../sbi/estimators/index.js';
import { createRng } from '../../../sbi/rng.js';
import { simulateDataset } from '../../../sbi/simulate.js';
import { getTask } from '../../../sbi/tasks/index.js';

before(async () => {
  await initBackend('cpu');
});

describe("the paper's Fig. 2 example", () => {
  test('keeps the test point with the largest KL, with its posteriors and predictive', async () => {
    const task = getTask('gaussian_linear');
    const train = simulateDataset(task, 500, createRng(1));
    const model = createEstimator('maf', {
      thetaDim: task.thetaDim,
      xDim: task.xDim,
      zscore: computeZScore(train.theta, train.x, train.n, task.thetaDim, task.xDim),
      rng: createRng(2),
      config: { hidden: [16, 16], numTransforms: 2 },
    });
    const test = simulateDataset(task, 12, createRng(3));
    const opts = {
      attack: 'l2pgd' as const,
      objective: 'rkl' as const,
      eps: 1,
      steps: 5,
      klSamples: 32,
      samples: 50,
      predictive: 4,
    };
    const before = tf.memory().numTensors;
    const ex = await adversarialExample(model, task, test, opts, createRng(4));
    assert.equal(tf.memory().numTensors, before);
    assert.equal(ex.klAll.length, 12);
    assert.equal(ex.kl, Math.max(...ex.klAll));
    assert.equal(ex.kl, ex.klAll[ex.index]);
    assert.ok(ex.kl > 0);
    assert.deepEqual(ex.x, Array.from(test.x.subarray(ex.index * 10, ex.index * 10 + 10)));
    assert.notDeepEqual(ex.xAdv, ex.x);
    assert.equal(ex.posterior.clean.length, 50);
    assert.equal(ex.posterior.attacked[0]!.length, task.thetaDim);
    assert.equal(ex.predictive.clean.length, 4);
    assert.equal(ex.predictive.attacked[0]!.length, task.xDim);
    // The same seed, the same example.
    const again = await adversarialExample(model, task, test, opts, createRng(4));
    assert.deepEqual(again, ex);
    model.dispose();
  });
});
