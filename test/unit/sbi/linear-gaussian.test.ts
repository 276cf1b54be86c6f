// The closed-form linear-Gaussian estimator: its fit recovers a linear-Gaussian conditional, its
// validation NLL through trainNPE is the x-transform probe's on the same rows (an independent
// implementation, in raw theta units), and it trains no epochs and takes no defense.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { computeZScore } from '../../../sbi/estimators/zscore.js';
import { trainNPE } from '../../../sbi/npe.js';
import { createRng } from '../../../sbi/rng.js';
import { defaultValSize, splitOrder } from '../../../sbi/training-data.js';
import { linearGaussianValNll } from '../../../sbi/x-transform-choice.js';
import type { TrainingDefense } from '../../../sbi/npe.js';

before(async () => {
  await initBackend('cpu');
});

// theta = A x + c + L e, e ~ N(0, I): x 3-D, theta 2-D, correlated noise.
const A = [
  [1.5, -0.5, 0.2],
  [0.3, 0.8, -1.1],
];
const C = [0.4, -2];
const L = [
  [0.3, 0],
  [0.2, 0.1],
];

function data(n: number, seed: number): { theta: Float32Array; x: Float32Array; n: number } {
  const rng = createRng(seed);
  const x = new Float32Array(n * 3);
  rng.fillNormal(x);
  for (let i = 0; i < x.length; i++) x[i] = 2 * x[i]! + 1;
  const e = new Float32Array(n * 2);
  rng.fillNormal(e);
  const theta = new Float32Array(n * 2);
  for (let r = 0; r < n; r++)
    for (let d = 0; d < 2; d++) {
      let v = C[d]!;
      for (let j = 0; j < 3; j++) v += A[d]![j]! * x[r * 3 + j]!;
      for (let k = 0; k <= d; k++) v += L[d]![k]! * e[r * 2 + k]!;
      theta[r * 2 + d] = v;
    }
  return { theta, x, n };
}

/** log N(theta; A x + c, L L^T). */
function exactLogProb(theta: number[], x: number[]): number {
  const r = [0, 1].map((d) => theta[d]! - C[d]! - A[d]!.reduce((s, a, j) => s + a * x[j]!, 0));
  const y0 = r[0]! / L[0]![0]!;
  const y1 = (r[1]! - L[1]![0]! * y0) / L[1]![1]!;
  return -0.5 * (y0 * y0 + y1 * y1) - Math.log(L[0]![0]! * L[1]![1]!) - Math.log(2 * Math.PI);
}

describe('linear_gaussian', () => {
  test('the fit recovers the conditional: logProb within 0.03 nats, sample covariance L L^T', () => {
    const d = data(20000, 1);
    const zscore = computeZScore(d.theta, d.x, d.n, 2, 3);
    const est = createEstimator('linear_gaussian', {
      thetaDim: 2,
      xDim: 3,
      zscore,
      rng: createRng(2),
    });
    est.fitClosedForm!(d.theta, d.x, d.n);
    const x = [0.5, 2, -1];
    // Around the conditional mean (-0.05, 0.85), within two standard deviations.
    const thetas = [
      [-0.05, 0.85],
      [0.3, 1.0],
      [-0.4, 0.7],
    ];
    const lp = tf.tidy(() =>
      est.logProb(tf.tensor2d(thetas), tf.tensor2d(thetas.map(() => x))).dataSync(),
    );
    thetas.forEach((t, i) =>
      assert.ok(Math.abs(lp[i]! - exactLogProb(t, x)) < 0.03, `${lp[i]} vs ${exactLogProb(t, x)}`),
    );
    const s = tf.tidy(() => est.sample(tf.tensor2d([x]), 20000, createRng(3)).dataSync());
    const m = [0, 1].map((k) => {
      let v = 0;
      for (let i = 0; i < 20000; i++) v += s[i * 2 + k]!;
      return v / 20000;
    });
    const cov = (a: number, b: number): number => {
      let v = 0;
      for (let i = 0; i < 20000; i++) v += (s[i * 2 + a]! - m[a]!) * (s[i * 2 + b]! - m[b]!);
      return v / 20000;
    };
    const exact = [
      [L[0]![0]! ** 2, L[0]![0]! * L[1]![0]!],
      [L[0]![0]! * L[1]![0]!, L[1]![0]! ** 2 + L[1]![1]! ** 2],
    ];
    for (const [a, b] of [
      [0, 0],
      [1, 0],
      [1, 1],
    ] as const)
      assert.ok(Math.abs(cov(a, b) - exact[a]![b]!) < 0.05 * exact[a]![a]!, `cov ${a}${b}`);
    const mean = [0, 1].map((k) => C[k]! + A[k]!.reduce((acc, v, j) => acc + v * x[j]!, 0));
    m.forEach((v, k) => assert.ok(Math.abs(v - mean[k]!) < 0.01, `mean ${k}: ${v} vs ${mean[k]}`));
    est.dispose();
  });

  test("through trainNPE: no epochs, and the probe's validation NLL on the same rows", async () => {
    const d = data(300, 4);
    const rng = createRng(5);
    const r = await trainNPE({
      data: d,
      thetaDim: 2,
      xDim: 3,
      rng,
      // The probe's ridge, so the two fits are the same fit.
      createModel: (zscore) =>
        createEstimator('linear_gaussian', {
          thetaDim: 2,
          xDim: 3,
          zscore,
          rng: createRng(6),
          config: { ridge: 1e-3 },
        }),
    });
    assert.equal(r.epochs, 0);
    assert.equal(r.stoppedBy, 'closed-form');
    assert.equal(r.valLosses.length, 1);
    const nVal = defaultValSize(300);
    const order = splitOrder(300, nVal, undefined, rng);
    const probe = linearGaussianValNll(
      d.theta,
      d.x,
      2,
      3,
      Array.from(order.subarray(nVal)),
      Array.from(order.subarray(0, nVal)),
    );
    assert.ok(Math.abs(r.bestValLoss - probe) < 1e-4, `${r.bestValLoss} vs ${probe}`);
    const mean = -r.valLogProbs.reduce((s, v) => s + v, 0) / nVal;
    assert.ok(Math.abs(mean - r.bestValLoss) < 1e-9);
    r.model.dispose();
  });

  test('a defense is refused in one sentence', async () => {
    const d = data(100, 7);
    const defense = { name: 'noise' } as unknown as TrainingDefense;
    await assert.rejects(
      trainNPE({
        data: d,
        thetaDim: 2,
        xDim: 3,
        rng: createRng(8),
        defense,
        createModel: (zscore) =>
          createEstimator('linear_gaussian', { thetaDim: 2, xDim: 3, zscore, rng: createRng(9) }),
      }),
      /A linear_gaussian estimator is fitted in closed form: it takes no defense\./,
    );
  });
});
