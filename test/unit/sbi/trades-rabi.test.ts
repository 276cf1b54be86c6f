// TRADES with RABI's effective update: the attack is the intended update's, and the step adds the
// weight gradient of every PGD iterate's one-sample rKL(q(.|x~_t) || q(.|x)), recomputed here from
// PGD runs of t steps on the same streams.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { logProbOfSamples } from '../../../sbi/attacks/objectives.js';
import { l2Pgd } from '../../../sbi/attacks/pgd.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createDefense } from '../../../sbi/defenses/index.js';
import { TRAINING_PGD } from '../../../sbi/defenses/perturbation.js';
import { Trades } from '../../../sbi/defenses/trades.js';
import { computeZScore, createEstimator } from '../../../sbi/estimators/index.js';
import { trainNPE } from '../../../sbi/npe.js';
import { createRng } from '../../../sbi/rng.js';
import { simulateDataset } from '../../../sbi/simulate.js';
import { getTask } from '../../../sbi/tasks/index.js';

before(async () => {
  await initBackend('cpu');
});

describe("TRADES with RABI's effective update", () => {
  const task = getTask('gaussian_linear');
  const data = simulateDataset(task, 300, createRng(1));
  const make = () =>
    createEstimator('maf', {
      thetaDim: 10,
      xDim: 10,
      zscore: computeZScore(data.theta, data.x, data.n, 10, 10),
      rng: createRng(2),
      config: { hidden: [12, 12], numTransforms: 2 },
    });

  test('adds the weight gradient of every iterate’s attack KL, and attacks as the intended update does', () => {
    const model = make();
    const vars = model.trainableVariables();
    const steps = 3;
    const xScale = 1.3;
    const theta = tf.tensor2d(data.theta.subarray(0, 8 * 10), [8, 10]);
    const x = tf.tensor2d(data.x.subarray(0, 8 * 10), [8, 10]);
    const ctx = (seed: number) => ({ model, rng: createRng(seed), epoch: 2, step: 7, xScale });
    const rabi = new Trades(0.1, 0.5, steps, 'rabi');
    const intended = new Trades(0.1, 0.5, steps);
    tf.tidy(() => {
      const a = rabi.prepareBatch(theta, x, ctx(5));
      const g = rabi.extraGrads();
      const xAdvRabi = (rabi as unknown as { xAdv: tf.Tensor2D }).xAdv.dataSync();
      intended.prepareBatch(theta, x, ctx(5));
      const xAdvIntended = (intended as unknown as { xAdv: tf.Tensor2D }).xAdv.dataSync();
      assert.deepEqual(a.x.dataSync(), x.dataSync(), 'TRADES trains on the clean batch');
      assert.deepEqual(xAdvRabi, xAdvIntended, 'the same attack');
      assert.equal(Object.keys(intended.extraGrads()).length, 0);
      // x~_t is PGD of t steps from the same stream; the samples come from the update's own fork.
      const sampler = createRng(5).fork('rabi-update/2/7');
      const expected = new Map<string, Float32Array>();
      for (let t = 0; t < steps; t++) {
        const xt = l2Pgd(
          { estimator: model, x, epsAbs: 0.5 * xScale, box: TRAINING_PGD.box, rng: createRng(5) },
          { objective: 'rkl', mcSamples: 1, steps: t, stepSize: TRAINING_PGD.relStep * xScale },
        );
        const { value, grads } = tf.variableGrads(() => {
          const s = model.rsample(xt, 1, sampler);
          return tf.mean(
            tf.sub(logProbOfSamples(model, s, xt), logProbOfSamples(model, s, x)),
          ) as tf.Scalar;
        }, vars);
        value.dispose();
        for (const v of vars) {
          const prev = expected.get(v.name);
          const cur = grads[v.name]!.dataSync() as Float32Array;
          expected.set(v.name, prev ? prev.map((p, i) => p + cur[i]!) : Float32Array.from(cur));
        }
      }
      let worst = 0;
      let scale = 0;
      for (const v of vars) {
        const got = g[v.name]!.dataSync();
        expected.get(v.name)!.forEach((ev, i) => {
          worst = Math.max(worst, Math.abs(got[i]! - ev));
          scale = Math.max(scale, Math.abs(ev));
        });
      }
      assert.ok(scale > 1e-4, `the attack gradients carry signal (${scale})`);
      assert.ok(worst < 1e-4 * scale, `differs by ${worst} (scale ${scale})`);
      // The extra loss of the step is consumed once.
      rabi.extraLoss(theta, x, ctx(6));
    });
    theta.dispose();
    x.dispose();
    model.dispose();
  });

  test('trains on tfjs ops without leaking tensors; bad names are refused', async () => {
    const before = tf.memory().numTensors;
    const r = await trainNPE({
      data,
      thetaDim: 10,
      xDim: 10,
      rng: createRng(3),
      createModel: () => make(),
      hyperparameters: { batchSize: 64, maxEpochs: 2, minEpochs: 1 },
      defense: createDefense('trades', { update: 'rabi' })!,
    });
    assert.equal(r.fused, false);
    assert.ok(r.valLosses.every(Number.isFinite));
    r.model.dispose();
    assert.equal(tf.memory().numTensors, before);
    assert.throws(
      () => new Trades(0.1, 0.5, 20, 'paper' as never),
      /the update must be one of intended, rabi, got "paper"/,
    );
  });
});
