// The linear-Gaussian probe bench scores on exactly the rows robustsbi train's flows validate on, and
// its closed-form fit reaches the exact posterior's expected NLL on gaussian_linear.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { benchTask, heldoutDataset, trainCell } from '../../../bench/accuracy-core.js';
import { cellSplit, linearGaussianCell } from '../../../bench/linear-gaussian-probe.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import { gatherRows } from '../../../sbi/training-data.js';

before(async () => {
  await initBackend('cpu');
});

describe('linear-gaussian-probe', () => {
  test("its validation rows are trainNPE's: a trained MAF's validation log q, row for row", async () => {
    const task = benchTask('gaussian_linear');
    const n = 300;
    const split = cellSplit(task, n, 0);
    const { trained } = await trainCell({
      task,
      data: split.data,
      cell: split.cell,
      estimator: 'maf',
      config: { hidden: [8], numTransforms: 2 },
      hyperparameters: { maxEpochs: 2, batchSize: 64 },
    });
    const D = task.thetaDim;
    const C = task.xDim;
    const lq = tf.tidy(() =>
      trained.model.logProb(
        tf.tensor2d(gatherRows(split.rows.theta, D, split.val), [split.val.length, D]),
        tf.tensor2d(gatherRows(split.rows.x, C, split.val), [split.val.length, C]),
      ),
    );
    const ours = lq.dataSync();
    lq.dispose();
    trained.model.dispose();
    assert.equal(ours.length, trained.valLogProbs.length);
    assert.equal(split.val.length + split.train.length, n);
    ours.forEach((v, i) =>
      assert.ok(
        Math.abs(v - trained.valLogProbs[i]!) < 1e-3,
        `row ${i}: ${v} vs ${trained.valLogProbs[i]}`,
      ),
    );
  });

  test("gaussian_linear: held-out NLL within 0.05 nats of the exact posterior's expected NLL", () => {
    const task = benchTask('gaussian_linear');
    const heldout = heldoutDataset(task, 2000);
    const r = linearGaussianCell(task, 4000, 0, heldout);
    // The posterior covariance does not depend on x: E[-log p] = (D log 2 pi e + log det S) / 2.
    const { cov } = task.analyticPosterior!(heldout.x.subarray(0, task.xDim));
    const D = task.thetaDim;
    let logDet = 0;
    const l = cov.map((row) => [...row]);
    // Cholesky by hand: log det S = 2 sum log L_ii.
    for (let i = 0; i < D; i++)
      for (let j = 0; j <= i; j++) {
        let s = l[i]![j]!;
        for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
        if (i === j) {
          l[i]![i] = Math.sqrt(s);
          logDet += 2 * Math.log(l[i]![i]!);
        } else l[i]![j] = s / l[j]![j]!;
      }
    const exact = 0.5 * (D * Math.log(2 * Math.PI * Math.E) + logDet);
    assert.ok(Math.abs(r.heldoutNll - exact) < 0.05, `${r.heldoutNll} vs ${exact}`);
    assert.ok(r.heldoutNll > exact - 0.01, 'no model beats the exact posterior on fresh rows');
    assert.equal(r.nVal, 400);
  });
});
