// Metrics against closed forms: summaries of known data, RABI's overflow guard, expected coverage
// of a well-specified and of an over-confident Gaussian (for two dimensions the HPD coverage of a
// posterior whose std is k times too small is 1 - (1 - alpha)^(1/k^2)), test NLL, and the KL under a
// fixed perturbation.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import {
  accumulateCoverage,
  coverageAbsArea,
  coverageLevels,
  cutIndex,
  expectedCoverage,
} from '../../../sbi/metrics/coverage.js';
import { meanNll, nllPerPair } from '../../../sbi/metrics/nll.js';
import { guardOverflow, klUnderAttack, summarizeKl } from '../../../sbi/metrics/robustness.js';
import { quantileSorted, summarize } from '../../../sbi/metrics/summary.js';
import { LinearGaussian } from './linear-gaussian.js';

before(async () => {
  await initBackend('cpu');
});

/** theta_true = A x + b + k L eps: the model q = N(A x + b, L L^T) is k times too narrow. */
function drawPairs(est: LinearGaussian, n: number, k: number, seed: number) {
  const rng = createRng(seed);
  const x = new Float32Array(n * est.xDim);
  rng.fillNormal(x);
  const eps = new Float64Array(est.thetaDim);
  const theta = new Float32Array(n * est.thetaDim);
  for (let i = 0; i < n; i++) {
    rng.fillNormal(eps);
    for (let r = 0; r < est.thetaDim; r++) {
      let v = est.b[r]!;
      for (let j = 0; j < est.xDim; j++) v += est.a[r]![j]! * x[i * est.xDim + j]!;
      for (let j = 0; j <= r; j++) v += k * est.l[r]![j]! * eps[j]!;
      theta[i * est.thetaDim + r] = v;
    }
  }
  return { x, theta };
}

describe('summaries', () => {
  test('mean, std, min, max and linearly interpolated quantiles of 1..101', () => {
    const v = Array.from({ length: 101 }, (_, i) => 101 - i);
    const s = summarize(v);
    assert.equal(s.n, 101);
    assert.equal(s.mean, 51);
    assert.equal(s.median, 51);
    assert.equal(s.min, 1);
    assert.equal(s.max, 101);
    // sum of squared deviations of 1..101 is 101 * (101^2 - 1) / 12
    assert.ok(Math.abs(s.std - Math.sqrt((101 * (101 * 101 - 1)) / 12 / 100)) < 1e-9);
    assert.ok(Math.abs(s.q15 - 16) < 1e-9);
    assert.ok(Math.abs(s.q85 - 86) < 1e-9);
    assert.ok(Math.abs(s.q0_5 - 1.5) < 1e-9);
    assert.ok(Math.abs(s.q97_5 - 98.5) < 1e-9);
    assert.ok(Math.abs(s.q99_5 - 100.5) < 1e-9);
    assert.equal(quantileSorted([0, 10], 0.25), 2.5);
    for (const key of ['q2_5', 'q5', 'q20', 'q30', 'q50', 'q70', 'q80', 'q95'] as const) {
      assert.ok(Number.isFinite(s[key]));
    }
  });

  test("RABI's guard replaces values below -10000 (and NaN) by the median of the rest", () => {
    const g = guardOverflow([3, -20000, 1, NaN, 2, -5, 4]);
    // the rest is [-5, 1, 2, 3, 4]; its median is 2
    assert.deepEqual(Array.from(g.values), [3, 2, 1, 2, 2, -5, 4]);
    assert.equal(g.replaced, 2);
    const s = summarizeKl([1, -1e6, 3]);
    assert.equal(s.guarded, 1);
    assert.equal(s.min, 1);
    assert.equal(s.mean, 5 / 3);
  });
});

describe('expected coverage', () => {
  test('levels, cut index and endpoints', () => {
    const a = coverageLevels();
    assert.equal(a.length, 100);
    assert.equal(a[0], 0);
    assert.equal(a[99], 1);
    assert.equal(cutIndex(2000, 0.5), 1000);
    const counts = new Float64Array(a.length);
    // theta_true far below every sample: only alpha = 1 covers it
    accumulateCoverage(
      Float32Array.from({ length: 50 }, (_, i) => i),
      -1e9,
      a,
      counts,
    );
    assert.equal(counts[0], 0);
    assert.equal(counts[99], 1);
    assert.equal(
      counts.slice(1, 99).reduce((s, c) => s + c, 0),
      0,
    );
    // theta_true above every sample: covered at every alpha > 0
    accumulateCoverage(
      Float32Array.from({ length: 50 }, (_, i) => i),
      1e9,
      a,
      counts,
    );
    assert.equal(counts[0], 0);
    assert.ok(counts.slice(1).every((c) => c >= 1));
    // the threshold comparison is strict: log q equal to the threshold is not covered
    const c2 = new Float64Array(3);
    accumulateCoverage(Float32Array.from([0, 1, 2, 3]), 2, [0, 0.5, 1], c2);
    assert.deepEqual(Array.from(c2), [0, 0, 1]);
  });

  test('abs area: 0 on the diagonal, 1/2 for coverage 0 everywhere but alpha = 1', () => {
    const a = coverageLevels();
    assert.equal(coverageAbsArea(a, a), 0);
    const zero = a.map((x) => (x === 1 ? 1 : 0));
    assert.ok(Math.abs(coverageAbsArea(a, zero) - 0.5) < 0.011);
  });

  test('a well-specified Gaussian is on the diagonal, an over-confident one is below it as predicted', async () => {
    const est = new LinearGaussian(
      [
        [1, 0.5, -0.2],
        [0.3, -1, 0.4],
      ],
      [0.1, -0.3],
      [
        [0.6, 0],
        [0.2, 0.5],
      ],
    );
    const n = 600;
    const good = drawPairs(est, n, 1, 30);
    const before = tf.memory().numTensors;
    const cg = await expectedCoverage(est, good.x, good.theta, createRng(31));
    assert.equal(tf.memory().numTensors, before);
    // binomial sd of each level is at most sqrt(0.25 / 600) = 0.02
    cg.coverage.forEach((c, k) =>
      assert.ok(Math.abs(c - cg.alphas[k]!) < 0.09, `alpha ${cg.alphas[k]}: ${c}`),
    );
    assert.ok(cg.absArea < 0.04, `well-specified abs area ${cg.absArea}`);

    const k = 2;
    const bad = drawPairs(est, n, k, 40);
    const cb = await expectedCoverage(est, bad.x, bad.theta, createRng(41));
    const predicted = cb.alphas.map((a) => (a === 1 ? 1 : 1 - (1 - a) ** (1 / (k * k))));
    cb.coverage.forEach((c, i) => {
      assert.ok(
        Math.abs(c - predicted[i]!) < 0.09,
        `alpha ${cb.alphas[i]}: ${c} vs ${predicted[i]}`,
      );
    });
    const areaPredicted = coverageAbsArea(cb.alphas, predicted);
    assert.ok(
      Math.abs(cb.absArea - areaPredicted) < 0.04,
      `abs area ${cb.absArea} vs ${areaPredicted}`,
    );
    assert.ok(cb.coverage[50]! < 0.35, 'the over-confident model must cover less than its level');
    est.dispose();
  });
});

describe('NLL and KL under a fixed perturbation', () => {
  test('NLL equals the Gaussian closed form', async () => {
    const est = new LinearGaussian([[2, 0]], [1], [[0.5]]);
    // x = [1, 7] -> mean 3; theta 4 -> z = 2; NLL = 2 + log 0.5 + log(2 pi) / 2
    const x = new Float32Array([1, 7, 0, 0]);
    const theta = new Float32Array([4, 1]);
    const per = await nllPerPair(est, x, theta, 1);
    assert.ok(Math.abs(per[0]! - (2 + Math.log(0.5) + 0.5 * Math.log(2 * Math.PI))) < 1e-5);
    assert.ok(Math.abs(per[1]! - (Math.log(0.5) + 0.5 * Math.log(2 * Math.PI))) < 1e-5);
    assert.ok(Math.abs((await meanNll(est, x, theta)) - (per[0]! + per[1]!) / 2) < 1e-6);
    est.dispose();
  });

  test('klUnderAttack from 256 samples matches the closed form within MC error, in batches', async () => {
    const est = new LinearGaussian(
      [
        [1, 0.5],
        [0, 2],
      ],
      [0, 0],
      [
        [0.5, 0],
        [0, 0.5],
      ],
    );
    const n = 50;
    const x = new Float32Array(n * 2);
    createRng(50).fillNormal(x);
    const xAdv = x.map((v, i) => v + (i % 2 === 0 ? 0.3 : -0.2));
    const exact = est.klForDelta([0.3, -0.2]);
    for (const div of ['rkl', 'fkl'] as const) {
      const before = tf.memory().numTensors;
      const kl = await klUnderAttack(est, div, x, xAdv, createRng(51), { batchSize: 7 });
      assert.equal(tf.memory().numTensors, before);
      const s = summarizeKl(kl);
      // per-x sd is sqrt(2 KL / 256); the mean over 50 x is 7x tighter
      const sd = Math.sqrt((2 * exact) / 256);
      assert.ok(
        Math.abs(s.mean - exact) < (4 * sd) / Math.sqrt(n),
        `${div}: mean ${s.mean} vs ${exact}`,
      );
      assert.ok(s.std < 2 * sd && s.std > 0.5 * sd, `${div}: std ${s.std} vs ${sd}`);
    }
    est.dispose();
  });
});
