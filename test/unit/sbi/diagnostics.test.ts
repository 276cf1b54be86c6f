// The sweep diagnostics: SBC's chi-square p-value is uniform-friendly on an exact posterior
// (gaussian_linear's analytic one) and tiny on an over-confident one; C2ST against the reference
// sampler is about 0.5 for the exact posterior and near 1 for a shifted one; a task with an
// analytic posterior reuses the evaluation's Bayes-optimal C2ST instead of training a classifier.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { computeDiagnostics, runSbc } from '../../../sbi/diagnostics.js';
import { chiSquareSurvival, gammaQ, sbcRanks, sbcTest } from '../../../sbi/metrics/sbc.js';
import { createRng } from '../../../sbi/rng.js';
import { getTask } from '../../../sbi/tasks/index.js';
import type { DensityEstimator, RandomStream, Task } from '../../../sbi/types.js';

before(async () => {
  await initBackend('cpu');
});

/**
 * A stand-in estimator whose draws are the task's reference posterior, pulled towards its mean by
 * `shrink` (1: exact; below 1: over-confident) and moved by `shift`. Only what the diagnostics call.
 */
function referenceEstimator(task: Task, shrink = 1, shift = 0): DensityEstimator {
  const D = task.thetaDim;
  const sample = (x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D => {
    const [B, xDim] = x.shape;
    const xs = x.dataSync();
    const out = new Float32Array(n * B * D);
    for (let b = 0; b < B; b++) {
      const xo = xs.slice(b * xDim, (b + 1) * xDim) as Float32Array;
      const draws = task.referencePosterior!(xo, n, rng.fork(b));
      const mean = new Float64Array(D);
      for (let m = 0; m < n; m++) for (let d = 0; d < D; d++) mean[d]! += draws[m * D + d]! / n;
      for (let m = 0; m < n; m++)
        for (let d = 0; d < D; d++)
          out[(m * B + b) * D + d] = mean[d]! + shrink * (draws[m * D + d]! - mean[d]!) + shift;
    }
    return tf.tensor3d(out, [n, B, D]);
  };
  return { thetaDim: D, xDim: task.xDim, sample } as unknown as DensityEstimator;
}

function jointPairs(task: Task, n: number, seed: number) {
  const rng = createRng(seed);
  const theta = task.prior.sample(n, rng.fork('prior'));
  const x = task.simulate(theta, n, rng.fork('simulator'));
  return { theta, x, n };
}

describe('chi-square tail', () => {
  test('matches tables: the 5 % critical values of 1, 10 and 30 degrees of freedom', () => {
    assert.ok(Math.abs(chiSquareSurvival(3.841459, 1) - 0.05) < 1e-6);
    assert.ok(Math.abs(chiSquareSurvival(18.307038, 10) - 0.05) < 1e-6);
    assert.ok(Math.abs(chiSquareSurvival(43.772972, 30) - 0.05) < 1e-6);
    assert.ok(Math.abs(gammaQ(1, 2) - Math.exp(-2)) < 1e-12);
    assert.equal(chiSquareSurvival(0, 5), 1);
  });
});

describe('SBC', () => {
  test('ranks count the draws below theta, laid out as sample() returns them', () => {
    // 2 rows, 1 dimension, 3 draws: [m][row].
    const ranks = sbcRanks([0.5, 0], [0, 1, 1, -1, 0.2, -2], 2, 3, 1);
    assert.deepEqual([...ranks], [2, 2]);
    const r = sbcTest(Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]), 8, 3, 1, 4);
    assert.deepEqual(r.dimensions[0]!.histogram, [2, 2, 2, 2]);
    assert.equal(r.dimensions[0]!.chi2, 0);
    assert.throws(() => sbcTest(ranks, 2, 3, 1, 5), /bins must be an integer in 2\.\.4/);
  });

  test('the exact posterior of gaussian_linear passes; an over-confident one fails', () => {
    const task = getTask('gaussian_linear');
    const pairs = jointPairs(task, 300, 11);
    const opts = { pairs: 300, samples: 99, bins: 10 };
    const exact = runSbc(
      referenceEstimator(task),
      pairs.theta,
      pairs.x,
      pairs.n,
      opts,
      createRng(1),
    );
    assert.equal(exact.dimensions.length, task.thetaDim);
    for (const d of exact.dimensions)
      assert.equal(
        d.histogram.reduce((a, b) => a + b, 0),
        300,
      );
    assert.ok(exact.minPValue > 1e-3, `exact posterior: min p ${exact.minPValue}`);
    // Half the width: theta falls in the outer ranks far too often.
    const narrow = runSbc(
      referenceEstimator(task, 0.5),
      pairs.theta,
      pairs.x,
      pairs.n,
      opts,
      createRng(1),
    );
    assert.ok(narrow.minPValue < 1e-6, `over-confident posterior: min p ${narrow.minPValue}`);
    const h = narrow.dimensions[0]!.histogram;
    assert.ok(h[0]! + h[9]! > 3 * (h[4]! + h[5]!), `U-shaped histogram ${h.join(' ')}`);
    assert.equal(tf.memory().numTensors, 0);
  });
});

describe('computeDiagnostics', () => {
  test('C2ST against two_moons reference samples: about 0.5 exact, near 1 shifted', () => {
    const task = getTask('two_moons');
    const pairs = jointPairs(task, 5, 3);
    // A short classifier training keeps the test quick; sbibm's stopping rule is c2st.test.ts'.
    const opts = {
      metrics: ['c2st'] as const,
      c2st: { observations: 1, samples: 300 },
      classifier: { maxEpochs: 40, learningRate: 0.01 },
    };
    const exact = computeDiagnostics(referenceEstimator(task), task, pairs, opts, createRng(2));
    assert.equal(exact.c2st!.method, 'classifier');
    assert.equal(exact.c2st!.observations, 1);
    assert.ok(Math.abs(exact.c2st!.value - 0.5) < 0.1, `exact: ${exact.c2st!.value}`);
    assert.equal(exact.sbc, undefined);
    const shifted = computeDiagnostics(
      referenceEstimator(task, 1, 0.5),
      task,
      pairs,
      opts,
      createRng(2),
    );
    assert.ok(shifted.c2st!.value > 0.9, `shifted: ${shifted.c2st!.value}`);
  });

  test('with an analytic posterior the Bayes-optimal C2ST is reused, no classifier trained', () => {
    const task = getTask('gaussian_linear');
    const pairs = jointPairs(task, 20, 4);
    const never = { thetaDim: 10, xDim: 10, sample: () => assert.fail('sampled') };
    const d = computeDiagnostics(
      never as unknown as DensityEstimator,
      task,
      pairs,
      { metrics: ['c2st'] },
      createRng(0),
      { value: 0.61, observations: 20, samples: 100 },
    );
    assert.deepEqual(d.c2st, {
      value: 0.61,
      observations: 20,
      samples: 100,
      method: 'bayes-optimal',
    });
  });
});
