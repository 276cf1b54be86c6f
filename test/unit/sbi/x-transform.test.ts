// Training on log x: which dimensions qualify, the transform and its gradient, the wrapper that
// keeps callers in raw x (against the inner model on log x), its round trip through a saved config,
// trainNPE with it, and the linear-Gaussian probe that decides it (against its closed form).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createDefense } from '../../../sbi/defenses/index.js';
import { createEstimator, restoreEstimator } from '../../../sbi/estimators/index.js';
import { trainNPE } from '../../../sbi/npe.js';
import { createRng } from '../../../sbi/rng.js';
import type { ZScore } from '../../../sbi/types.js';
import { chooseXTransform, linearGaussianValNll } from '../../../sbi/x-transform-choice.js';
import {
  positiveLogTransform,
  transformRows,
  transformTensor,
  validateXTransformSpec,
  XTransformedEstimator,
} from '../../../sbi/x-transform.js';

before(async () => {
  await initBackend('cpu');
});

const ZS: ZScore = {
  thetaMean: [0, 0],
  thetaStd: [1, 1],
  xMean: [0.5, -0.3, 1],
  xStd: [1, 2, 0.5],
};

function maf(seed = 3) {
  return createEstimator('maf', {
    thetaDim: 2,
    xDim: 3,
    zscore: ZS,
    config: { hidden: [8, 8], numTransforms: 2, activation: 'tanh' },
    rng: createRng(seed),
  });
}

describe('x transform', () => {
  test('logs exactly the dimensions positive in every finite row', () => {
    const x = Float32Array.from([1, -1, 2, 3, 0.5, 4, NaN, -7, -1, 2, 0, 1]);
    // Row 3 holds a NaN and is skipped (training drops it, so its -1 does not count); dimension 1
    // has -1 in row 1 and 0 in row 4.
    // The floor of a logged dimension is half its smallest training value.
    assert.deepEqual(positiveLogTransform(x, 4, 3), {
      kinds: ['log', 'identity', 'log'],
      floor: [0.5, 0, 0.5],
    });
    assert.equal(positiveLogTransform(Float32Array.from([1, -1, -2, 0]), 2, 2), undefined);
  });

  test('rows and tensors agree; the gradient is 1/x on logged dimensions, 1 elsewhere', () => {
    const spec = { kinds: ['log', 'identity'] as ('log' | 'identity')[], floor: [0.1, 0] };
    const x = Float32Array.from([2, -3, 0.25, 5]);
    assert.deepEqual(Array.from(transformRows(spec, x, 2)), [
      Math.fround(Math.log(2)),
      -3,
      Math.fround(Math.log(0.25)),
      5,
    ]);
    const before = tf.memory().numTensors;
    const xt = tf.tensor2d(x, [2, 2]);
    const y = transformTensor(spec, xt);
    assert.deepEqual(Array.from(y.dataSync()), Array.from(transformRows(spec, x, 2)));
    const g = tf.grad((v: tf.Tensor) => tf.sum(transformTensor(spec, v as tf.Tensor2D)))(xt);
    const gv = Array.from(g.dataSync());
    [0.5, 1, 4, 1].forEach((want, i) => assert.ok(Math.abs(gv[i]! - want) < 1e-6, `${gv}`));
    // An attack that pushes a logged x below its floor reads the floor (gradient 0), not NaN.
    const neg = tf.tensor2d([[-1, 0]]);
    const low = transformTensor(spec, neg);
    assert.ok(Math.abs(low.dataSync()[0]! - Math.log(0.1)) < 1e-6);
    assert.equal(
      transformRows(spec, Float32Array.from([0.05, 0]), 1)[0],
      Math.fround(Math.log(0.1)),
    );
    const gLow = tf.grad((v: tf.Tensor) => tf.sum(transformTensor(spec, v as tf.Tensor2D)))(neg);
    assert.deepEqual(Array.from(gLow.dataSync()), [0, 1]);
    tf.dispose([xt, y, g, neg, low, gLow]);
    assert.equal(tf.memory().numTensors, before);
  });

  test('the wrapper is the inner model on log x, and a saved config rebuilds it', () => {
    const inner = maf();
    const spec = {
      kinds: ['log', 'identity', 'log'] as ('log' | 'identity')[],
      floor: [0.1, 0, 0.1],
    };
    const model = new XTransformedEstimator(inner, spec);
    assert.deepEqual(model.config.xTransform, spec);
    const xRaw = [0.5, -1, 2, 3, 0.2, 0.7];
    const theta = tf.tensor2d([0.1, -0.4, 1.2, 0.3], [2, 2]);
    const x = tf.tensor2d(xRaw, [2, 3]);
    const xLog = tf.tensor2d(transformRows(spec, Float32Array.from(xRaw), 2), [2, 3]);
    const got = model.logProb(theta, x).arraySync();
    const want = inner.logProb(theta, xLog).arraySync();
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5));
    const s1 = model.sample(x, 4, createRng(9)).arraySync();
    const s2 = inner.sample(xLog, 4, createRng(9)).arraySync();
    assert.deepEqual(s1, s2);
    const restored = restoreEstimator('maf', 2, 3, model.config, model.zscore, model.getWeights());
    assert.ok(restored instanceof XTransformedEstimator);
    const again = restored.logProb(theta, x).arraySync();
    got.forEach((v, i) => assert.ok(Math.abs(v - again[i]!) < 1e-6));
    tf.dispose([theta, x, xLog]);
    restored.dispose();
    model.dispose();
  });

  test('a saved transform without a positive floor where it logs is refused', () => {
    assert.throws(() => validateXTransformSpec({ kinds: ['log'] }, 1), /"floor"/);
    assert.throws(
      () => validateXTransformSpec({ kinds: ['log'], floor: [0] }, 1),
      /positive floor/,
    );
    assert.throws(
      () => validateXTransformSpec({ kinds: ['exp'], floor: [1] }, 1),
      /"identity" or "log"/,
    );
    assert.deepEqual(validateXTransformSpec({ kinds: ['identity'], floor: [0] }, 1), {
      kinds: ['identity'],
      floor: [0],
    });
  });

  test("an attack's gradient in raw x passes through the log (finite differences)", () => {
    const model = new XTransformedEstimator(maf(11), {
      kinds: ['log', 'identity', 'log'],
      floor: [0.1, 0, 0.1],
    });
    const theta = tf.tensor2d([[0.3, -0.2]]);
    const x0 = [0.8, -0.5, 1.7];
    const f = (v: number[]): number =>
      tf.tidy(() => model.logProb(theta, tf.tensor2d([v])).dataSync()[0]!);
    const x = tf.tensor2d([x0]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(model.logProb(theta, v as tf.Tensor2D)))(x);
    const gv = g.dataSync();
    const h = 1e-3;
    x0.forEach((_, j) => {
      const up = [...x0];
      const down = [...x0];
      up[j]! += h;
      down[j]! -= h;
      const fd = (f(up) - f(down)) / (2 * h);
      assert.ok(Math.abs(gv[j]! - fd) < 2e-2 * (1 + Math.abs(fd)), `dim ${j}: ${gv[j]} vs ${fd}`);
    });
    tf.dispose([theta, x, g]);
    model.dispose();
  });

  test('trainNPE on log x returns the wrapper, z-scored in log x, and refuses a defense', async () => {
    // theta ~ U(0, 1)^2, x = exp(theta_1 + theta_2 k / 3 + 0.1 noise): log-normal.
    const rng = createRng(4);
    const n = 400;
    const theta = Float32Array.from({ length: 2 * n }, () => rng.uniform());
    const x = new Float32Array(3 * n);
    for (let i = 0; i < n; i++)
      for (let k = 0; k < 3; k++)
        x[i * 3 + k] = Math.exp(theta[2 * i]! + (theta[2 * i + 1]! * k) / 3 + 0.1 * rng.normal());
    const spec = positiveLogTransform(x, n, 3)!;
    const opts = {
      data: { theta, x, n },
      thetaDim: 2,
      xDim: 3,
      rng: createRng(5),
      hyperparameters: { maxEpochs: 3, batchSize: 100 },
      xTransform: spec,
      createModel: (zscore: ZScore) =>
        createEstimator('maf', {
          thetaDim: 2,
          xDim: 3,
          zscore,
          config: { hidden: [8, 8], numTransforms: 2 },
          rng: createRng(6),
        }),
    };
    const r = await trainNPE(opts);
    assert.ok(r.model instanceof XTransformedEstimator);
    // The z-score means are those of log x (within the split's sampling error), not of x.
    const logMean0 = transformRows(spec, x, n).filter((_, i) => i % 3 === 0);
    const mean0 = logMean0.reduce((s, v) => s + v, 0) / n;
    assert.ok(Math.abs(r.zscore.xMean[0]! - mean0) < 0.1, `${r.zscore.xMean[0]} vs ${mean0}`);
    r.model.dispose();
    const defense = createDefense('noise', {});
    await assert.rejects(
      trainNPE({ ...opts, defense: defense! }),
      /does not combine with a defense/,
    );
    defense?.dispose?.();
  });
});

describe('the linear-Gaussian probe', () => {
  test('its validation NLL is the Gaussian NLL of the least-squares fit', () => {
    // theta = 2 f + 1 + e, e ~ N(0, 0.3^2): NLL -> 0.5 log(2 pi 0.09) + 0.5.
    const rng = createRng(7);
    const n = 20000;
    const f = Float32Array.from({ length: n }, () => rng.normal());
    const theta = Float32Array.from(f, (v) => 2 * v + 1 + 0.3 * rng.normal());
    const rows = Array.from({ length: n }, (_, i) => i);
    const nll = linearGaussianValNll(theta, f, 1, 1, rows.slice(0, 15000), rows.slice(15000));
    const want = 0.5 * Math.log(2 * Math.PI * 0.09) + 0.5;
    assert.ok(Math.abs(nll - want) < 0.03, `${nll} vs ${want}`);
  });

  test('with correlated theta its NLL is that of the residual covariance', () => {
    // theta = B f + c + L e over two features, L L' = Sigma: NLL -> 0.5 (2 log(2 pi e) + log det).
    const rng = createRng(9);
    const n = 30000;
    const f = Float32Array.from({ length: 2 * n }, () => rng.normal());
    const sigma = [
      [0.25, 0.12],
      [0.12, 0.16],
    ];
    const l00 = Math.sqrt(sigma[0]![0]!);
    const l10 = sigma[1]![0]! / l00;
    const l11 = Math.sqrt(sigma[1]![1]! - l10 * l10);
    const theta = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      const [e0, e1] = [rng.normal(), rng.normal()];
      theta[2 * i] = f[2 * i]! - 0.5 * f[2 * i + 1]! + 2 + l00 * e0;
      theta[2 * i + 1] = 3 * f[2 * i + 1]! - 1 + l10 * e0 + l11 * e1;
    }
    const rows = Array.from({ length: n }, (_, i) => i);
    const nll = linearGaussianValNll(theta, f, 2, 2, rows.slice(0, 20000), rows.slice(20000));
    const det = sigma[0]![0]! * sigma[1]![1]! - sigma[0]![1]! ** 2;
    const want = Math.log(2 * Math.PI * Math.E) + 0.5 * Math.log(det);
    assert.ok(Math.abs(nll - want) < 0.03, `${nll} vs ${want}`);
  });

  test('logs multiplicative-noise x and keeps additive-noise x', () => {
    const rng = createRng(8);
    const n = 2000;
    const theta = Float32Array.from({ length: n }, () => 3 * rng.uniform());
    const mult = Float32Array.from(theta, (t) => Math.exp(2 * t + 0.3 * rng.normal()));
    const add = Float32Array.from(theta, (t) => 10 + t + 0.3 * rng.normal());
    const logged = chooseXTransform(theta, mult, n, 1, 1, createRng(1));
    assert.deepEqual(logged.transform?.kinds, ['log']);
    assert.ok(logged.probe!.log < logged.probe!.identity);
    const kept = chooseXTransform(theta, add, n, 1, 1, createRng(1));
    assert.equal(kept.transform, undefined);
    assert.ok(kept.probe!.identity < kept.probe!.log);
    // Nothing positive, or too few rows to measure: x as it is, and no probe.
    const neg = Float32Array.from(theta, (t) => t - 1.5);
    assert.deepEqual(chooseXTransform(theta, neg, n, 1, 1, createRng(1)), { transform: undefined });
    assert.deepEqual(chooseXTransform(theta, mult, 20, 1, 1, createRng(1)), {
      transform: undefined,
    });
  });
});
