// Training in unconstrained space: the per-dimension bijections, the constrained density (normalized
// on the box by quadrature, equal to the change of variables by hand), samples in the support,
// second-order gradients through the transform, and trainNPE + save/load re-attaching it.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator, restoreEstimator } from '../../../sbi/estimators/index.js';
import { loadModel, saveModel } from '../../../sbi/model-file.js';
import { trainNPE } from '../../../sbi/npe.js';
import { createRng } from '../../../sbi/rng.js';
import { getTask } from '../../../sbi/tasks/index.js';
import {
  ConstrainedEstimator,
  defaultThetaTransform,
  toConstrained,
  toUnconstrained,
  transformForSupport,
  type ThetaTransformSpec,
} from '../../../sbi/transforms.js';
import type { DensityEstimator, ZScore } from '../../../sbi/types.js';

const X0 = [0.4, -0.3];

function inner(thetaDim: number, seed = 1): DensityEstimator {
  const zscore: ZScore = {
    thetaMean: new Array<number>(thetaDim).fill(0.1),
    thetaStd: new Array<number>(thetaDim).fill(1.2),
    xMean: [0, 0],
    xStd: [1, 1],
  };
  return createEstimator('maf', {
    thetaDim,
    xDim: 2,
    zscore,
    config: { hidden: [16, 16] },
    rng: createRng(seed),
  });
}

function logProbs(est: DensityEstimator, theta: Float32Array, x = X0): Float32Array {
  const n = theta.length / est.thetaDim;
  return tf.tidy(
    () =>
      est
        .logProb(
          tf.tensor2d(theta, [n, est.thetaDim]),
          tf.tile(tf.tensor2d([x]), [n, 1]) as tf.Tensor2D,
        )
        .dataSync() as Float32Array,
  );
}

const BOX: ThetaTransformSpec = { kinds: ['sigmoid'], low: [2], high: [5] };
const BOX2: ThetaTransformSpec = { kinds: ['sigmoid', 'sigmoid'], low: [-1, 0.5], high: [3, 1] };
const POS: ThetaTransformSpec = { kinds: ['exp'], low: [0], high: [0] };

before(async () => {
  await initBackend();
});

describe('theta transforms', () => {
  test('biject_to per task: sigmoid-affine on the HH box, exp for spatial SIR, none elsewhere', () => {
    const hh = defaultThetaTransform(getTask('hodgkin_huxley'))!;
    assert.deepEqual(hh.kinds, new Array(7).fill('sigmoid'));
    assert.deepEqual(hh.low, getTask('hodgkin_huxley').prior.support.lower);
    assert.deepEqual(defaultThetaTransform(getTask('spatial_sir'))!.kinds, ['exp', 'exp']);
    assert.equal(defaultThetaTransform(getTask('sir')), undefined);
    assert.deepEqual(
      transformForSupport({ lower: [-Infinity, 1], upper: [Infinity, Infinity] }).kinds,
      ['identity', 'exp'],
    );
    assert.throws(() => transformForSupport({ lower: [-Infinity], upper: [0] }), /no bijection/);
  });

  test('array maps invert each other, and points outside the support become NaN', () => {
    const theta = Float32Array.of(2.5, 0.9, 2.99, 0.51);
    const u = toUnconstrained(BOX2, theta, 2);
    const back = toConstrained(BOX2, u, 2);
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(back[i]! - theta[i]!) < 1e-5);
    assert.ok(Number.isNaN(toUnconstrained(BOX, Float32Array.of(5.5), 1)[0]));
    assert.ok(Number.isNaN(toUnconstrained(POS, Float32Array.of(-1), 1)[0]));
    assert.ok(Math.abs(toUnconstrained(POS, Float32Array.of(Math.E), 1)[0]! - 1) < 1e-6);
  });

  test('logProb equals the change of variables by hand (sigmoid-affine and exp)', () => {
    const q = inner(1);
    const box = new ConstrainedEstimator(q, BOX);
    const theta = Float32Array.of(2.1, 3.3, 4.95);
    const lp = logProbs(box, theta);
    theta.forEach((t, i) => {
      const p = (t - 2) / 3;
      const u = Math.log(p / (1 - p));
      const byHand = logProbs(q, Float32Array.of(u))[0]! - Math.log(3 * p * (1 - p));
      assert.ok(Math.abs(lp[i]! - byHand) < 1e-4, `${lp[i]} vs ${byHand}`);
    });
    const q2 = inner(1, 2);
    const pos = new ConstrainedEstimator(q2, POS);
    const tp = Float32Array.of(0.05, 1, 7);
    const lpp = logProbs(pos, tp);
    tp.forEach((t, i) => {
      const byHand = logProbs(q2, Float32Array.of(Math.log(t)))[0]! - Math.log(t);
      assert.ok(Math.abs(lpp[i]! - byHand) < 1e-4);
    });
    box.dispose();
    pos.dispose();
  });

  test('the constrained density integrates to 1 on the box (1-D and 2-D midpoint rules)', () => {
    const one = new ConstrainedEstimator(inner(1, 3), BOX);
    const k = 20000;
    const grid = Float32Array.from({ length: k }, (_, i) => 2 + (3 * (i + 0.5)) / k);
    const mass1 = logProbs(one, grid).reduce((s, v) => s + Math.exp(v) * (3 / k), 0);
    assert.ok(Math.abs(mass1 - 1) < 5e-3, `1-D mass ${mass1}`);
    one.dispose();
    const two = new ConstrainedEstimator(inner(2, 4), BOX2);
    const m = 300;
    const pts = new Float32Array(2 * m * m);
    for (let a = 0; a < m; a++)
      for (let b = 0; b < m; b++) {
        pts[2 * (a * m + b)] = -1 + (4 * (a + 0.5)) / m;
        pts[2 * (a * m + b) + 1] = 0.5 + (0.5 * (b + 0.5)) / m;
      }
    const cell = (4 / m) * (0.5 / m);
    const mass2 = logProbs(two, pts).reduce((s, v) => s + Math.exp(v) * cell, 0);
    assert.ok(Math.abs(mass2 - 1) < 1e-2, `2-D mass ${mass2}`);
    two.dispose();
  });

  test('samples and rsamples lie in the support and match the quadrature mean', () => {
    const box = new ConstrainedEstimator(inner(2, 5), BOX2);
    const pos = new ConstrainedEstimator(inner(1, 6), POS);
    const n = 4000;
    const s = tf.tidy(() => box.sample(tf.tensor2d([X0]), n, createRng(1)).dataSync());
    const r = tf.tidy(() => box.rsample(tf.tensor2d([X0]), 50, createRng(2)).dataSync());
    for (const v of [s, r])
      for (let i = 0; i < v.length; i += 2) {
        assert.ok(v[i]! >= -1 && v[i]! <= 3 && v[i + 1]! >= 0.5 && v[i + 1]! <= 1);
      }
    const sp = tf.tidy(() => pos.sample(tf.tensor2d([X0]), n, createRng(3)).dataSync());
    assert.ok(sp.every((v) => v > 0));
    // Mean of the first coordinate from quadrature over its 1-D marginal's box.
    const one = new ConstrainedEstimator(inner(1, 7), BOX);
    const k = 4000;
    const grid = Float32Array.from({ length: k }, (_, i) => 2 + (3 * (i + 0.5)) / k);
    const lp = logProbs(one, grid);
    let mean = 0;
    let second = 0;
    grid.forEach((t, i) => {
      const w = Math.exp(lp[i]!) * (3 / k);
      mean += w * t;
      second += w * t * t;
    });
    const s1 = tf.tidy(() => one.sample(tf.tensor2d([X0]), n, createRng(4)).dataSync());
    const sm = Array.from(s1).reduce((a, v) => a + v, 0) / n;
    const se = Math.sqrt((second - mean * mean) / n);
    assert.ok(Math.abs(sm - mean) < 5 * se, `sample mean ${sm}, quadrature ${mean}`);
    for (const e of [box, pos, one]) e.dispose();
  });

  test('second order through the transform: d/dW of the rsample -> logProb score norm matches FD', () => {
    const est = new ConstrainedEstimator(inner(2, 8), BOX2);
    const x = tf.tensor2d([X0, [1, 0.2]]);
    const xRep = tf.tensor2d([X0, [1, 0.2]]);
    // RABI's FIM-trace estimate: theta = rsample(x) keeps its graph; the score is w.r.t. xRep.
    const h = (): tf.Scalar => {
      const theta = tf.reshape(est.rsample(x, 1, createRng(5)), [2, 2]) as tf.Tensor2D;
      const g = tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(theta, xx as tf.Tensor2D)))(xRep);
      return tf.sum(tf.square(g));
    };
    const v = est.trainableVariables()[0]!;
    const { value, grads } = tf.variableGrads(h, [v]);
    value.dispose();
    const g = grads[v.name]!.dataSync();
    let k = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
    const vals = v.dataSync().slice();
    const at = (d: number): number => {
      const moved = vals.slice();
      moved[k] = vals[k]! + d;
      tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
      return tf.tidy(() => h().dataSync()[0]!);
    };
    const eps = 1e-3;
    const f0 = at(0);
    const c = [(at(eps) - at(-eps)) / (2 * eps), (at(eps) - f0) / eps, (f0 - at(-eps)) / eps];
    assert.ok(g[k] !== 0 && Number.isFinite(g[k]!));
    assert.ok(
      c.some(
        (fd) => Math.abs(fd - g[k]!) <= 2e-4 * Math.max(1, Math.abs(f0)) + 1e-2 * Math.abs(fd),
      ),
      `analytic ${g[k]}, finite differences ${c.join(' / ')}`,
    );
    tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
    tf.dispose(grads);
    tf.dispose([x, xRep]);
    est.dispose();
  });

  test('trainNPE trains on u, returns the constrained model, and save/load re-attaches the transform', async () => {
    // theta ~ Uniform(2, 5); x = (theta, theta^2 / 5) + noise.
    const n = 600;
    const rng = createRng(11);
    const theta = new Float32Array(n);
    const x = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      theta[i] = 2 + 3 * rng.uniform();
      x[2 * i] = theta[i]! + 0.3 * rng.normal();
      x[2 * i + 1] = theta[i]! ** 2 / 5 + 0.3 * rng.normal();
    }
    const before = tf.memory().numTensors;
    const res = await trainNPE({
      data: { theta, x, n },
      thetaDim: 1,
      xDim: 2,
      rng: createRng(12),
      hyperparameters: { maxEpochs: 3, batchSize: 128 },
      thetaTransform: BOX,
      createModel: (z) =>
        createEstimator('maf', {
          thetaDim: 1,
          xDim: 2,
          zscore: z,
          config: { hidden: [16, 16] },
          rng: createRng(13),
        }),
    });
    assert.ok(res.model instanceof ConstrainedEstimator);
    // The z-score is of u = logit((theta - 2) / 3), centred near 0 (theta's own mean is 3.5).
    assert.ok(Math.abs(res.zscore.thetaMean[0]!) < 0.5, `${res.zscore.thetaMean[0]}`);
    const s = tf.tidy(() =>
      res.model.sample(tf.tensor2d([[3, 1.8]]), 500, createRng(1)).dataSync(),
    );
    assert.ok(s.every((v) => v >= 2 && v <= 5));
    const probe = Float32Array.of(2.2, 3, 4.8);
    const dir = mkdtempSync(join(tmpdir(), 'transforms-'));
    try {
      const path = join(dir, 'm.json');
      saveModel(path, {
        estimator: res.model,
        task: 'toy',
        paramNames: ['a'],
        seed: 12,
        n,
        training: {},
        summary: {
          epochs: res.epochs,
          bestEpoch: res.bestEpoch,
          bestValLoss: res.bestValLoss,
          stoppedBy: res.stoppedBy,
          dropped: res.dropped,
          nTrain: res.nTrain,
          nVal: res.nVal,
        },
        code: { version: 'test' },
        backend: 'cpu',
        createdAt: 'now',
      });
      const loaded = loadModel(path).estimator;
      assert.ok(loaded instanceof ConstrainedEstimator);
      assert.deepEqual(logProbs(loaded, probe, [3, 1.8]), logProbs(res.model, probe, [3, 1.8]));
      const again = restoreEstimator(
        'maf',
        1,
        2,
        res.model.config,
        res.model.zscore,
        res.model.getWeights(),
      );
      assert.deepEqual(logProbs(again, probe, [3, 1.8]), logProbs(res.model, probe, [3, 1.8]));
      loaded.dispose();
      again.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    res.model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
