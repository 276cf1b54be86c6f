// The full-covariance Gaussian estimator (sbi/estimators/multivariate-gaussian.ts) on hand-set weights:
// logProb against the closed-form multivariate normal density (strong correlations, theta z-scored),
// rsample's moments against the covariance, its gradient in x through the precision factor, the
// triangular helpers against dense arithmetic, and a save/restore round trip through the registry.
// (The generic estimator suite in estimators.test.ts covers it too: mass, moments, second order.)
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import { cholesky } from '../../../sbi/tasks/linalg.js';
import { restoreEstimator } from '../../../sbi/estimators/index.js';
import { batchMatMul, lowerInverse, lowerTriangular } from '../../../sbi/estimators/triangular.js';
import type { ZScore } from '../../../sbi/types.js';
import { fixedGaussian, linearPosteriorNet } from './gaussian-nets.js';
import { lowerInverse as denseLowerInverse, matMul, type Matrix } from './linear-gaussian.js';

before(async () => {
  await initBackend('cpu');
});

const MU = [1.0, -2.0, 0.5];
const COV: Matrix = [
  [2.0, 1.2, -0.4],
  [1.2, 1.5, 0.3],
  [-0.4, 0.3, 0.8],
];
const ZS: ZScore = {
  thetaMean: [0.5, -1, 0],
  thetaStd: [2, 0.5, 1.5],
  xMean: [0, 1],
  xStd: [1, 2],
};

function mvnLogDensity(theta: number[], mu: number[], cov: Matrix): number {
  const c = cholesky(cov);
  const D = mu.length;
  const z: number[] = [];
  for (let i = 0; i < D; i++) {
    let s = theta[i]! - mu[i]!;
    for (let k = 0; k < i; k++) s -= c[i]![k]! * z[k]!;
    z.push(s / c[i]![i]!);
  }
  const logDet = c.reduce((s, row, i) => s + 2 * Math.log(row[i]!), 0);
  return -0.5 * z.reduce((s, v) => s + v * v, 0) - 0.5 * logDet - 0.5 * D * Math.log(2 * Math.PI);
}

describe('multivariate_gaussian', () => {
  test('logProb is the closed-form multivariate normal density (raw theta, z-scored inside)', () => {
    const est = fixedGaussian(MU, COV, 2, ZS);
    const thetas = [
      [1, -2, 0.5],
      [3, 0, -1],
      [-1.5, -3.2, 1.4],
      [0, 0, 0],
    ];
    const xs = [
      [0, 0],
      [1, -1],
      [5, 2],
      [-3, 0.5],
    ];
    const lp = tf.tidy(() => est.logProb(tf.tensor2d(thetas), tf.tensor2d(xs)).arraySync());
    thetas.forEach((t, r) => {
      const exact = mvnLogDensity(t, MU, COV);
      assert.ok(
        Math.abs(lp[r]! - exact) < 2e-4 * Math.max(1, Math.abs(exact)),
        `${lp[r]} vs ${exact}`,
      );
    });
    est.dispose();
  });

  test('rsample draws have the mean and covariance of the density', () => {
    const est = fixedGaussian(MU, COV, 2, ZS);
    const n = 40000;
    const s = tf.tidy(() => est.rsample(tf.tensor2d([[0.3, 0.1]]), n, createRng(5)).dataSync());
    const D = 3;
    const mean = [0, 0, 0];
    for (let r = 0; r < n; r++) for (let i = 0; i < D; i++) mean[i]! += s[r * D + i]! / n;
    const cov = COV.map((row, i) =>
      row.map((_, j) => {
        let acc = 0;
        for (let r = 0; r < n; r++) acc += (s[r * D + i]! - mean[i]!) * (s[r * D + j]! - mean[j]!);
        return acc / (n - 1);
      }),
    );
    for (let i = 0; i < D; i++) {
      const se = Math.sqrt(COV[i]![i]! / n);
      assert.ok(Math.abs(mean[i]! - MU[i]!) < 5 * se, `mean ${i}: ${mean[i]} vs ${MU[i]}`);
      for (let j = 0; j < D; j++) {
        // The sample covariance's standard error is sqrt((S_ii S_jj + S_ij^2) / n).
        const seC = Math.sqrt((COV[i]![i]! * COV[j]![j]! + COV[i]![j]! ** 2) / n);
        assert.ok(Math.abs(cov[i]![j]! - COV[i]![j]!) < 5 * seC, `cov ${i}${j}: ${cov[i]![j]}`);
      }
    }
    est.dispose();
  });

  test('an exact linear-Gaussian posterior: mean M x + c, and draws move with x as M does', () => {
    const m = [
      [0.5, -1, 0.2],
      [0, 0.3, 1.1],
    ];
    const c = [0.1, -0.4];
    const cov = [
      [0.2, 0.05],
      [0.05, 0.1],
    ];
    const est = linearPosteriorNet(m, c, cov);
    const x = [0.7, -1.3, 2.0];
    const theta = [0.3, 1.9];
    const lp = tf.tidy(() => est.logProb(tf.tensor2d([theta]), tf.tensor2d([x])).arraySync()[0]!);
    const mean = m.map((row, i) => c[i]! + row.reduce((s, v, j) => s + v * x[j]!, 0));
    assert.ok(Math.abs(lp - mvnLogDensity(theta, mean, cov)) < 1e-3, `${lp}`);
    // Same noise, x moved by delta: every draw moves by exactly M delta.
    const delta = [0.2, 0.1, -0.3];
    const draw = (xx: number[]) =>
      tf.tidy(() => est.rsample(tf.tensor2d([xx]), 4, createRng(3)).dataSync());
    const a = draw(x);
    const b = draw(x.map((v, j) => v + delta[j]!));
    const shift = m.map((row) => row.reduce((s, v, j) => s + v * delta[j]!, 0));
    for (let r = 0; r < 4; r++)
      for (let i = 0; i < 2; i++)
        assert.ok(Math.abs(b[r * 2 + i]! - a[r * 2 + i]! - shift[i]!) < 1e-3, `draw ${r} dim ${i}`);
    est.dispose();
  });

  test('triangular helpers: L^-1 and batch products against dense arithmetic', () => {
    const L: Matrix = [
      [1.5, 0, 0],
      [0.4, 0.7, 0],
      [-1.2, 0.3, 2.0],
    ];
    const N: Matrix = [
      [0.5, 0, 0],
      [2.0, 1.1, 0],
      [0.1, -0.6, 0.9],
    ];
    const out = tf.tidy(() => {
      const diag = tf.tensor2d([
        [1.5, 0.7, 2.0],
        [0.5, 1.1, 0.9],
      ]);
      const off = tf.tensor2d([
        [0.4, -1.2, 0.3],
        [2.0, 0.1, -0.6],
      ]);
      const l = lowerTriangular(diag, off, 3);
      return {
        l: l.arraySync(),
        inv: lowerInverse(l).arraySync(),
        prod: batchMatMul(
          tf.slice(l, [0, 0, 0], [1, 3, 3]) as tf.Tensor3D,
          tf.slice(l, [1, 0, 0], [1, 3, 3]) as tf.Tensor3D,
        ).arraySync(),
      };
    });
    const near = (a: number[][], b: Matrix, what: string) =>
      a.forEach((row, i) =>
        row.forEach((v, j) => assert.ok(Math.abs(v - b[i]![j]!) < 1e-5, `${what} ${i}${j}: ${v}`)),
      );
    near(out.l[0]!, L, 'L');
    near(out.l[1]!, N, 'N');
    near(out.inv[0]!, denseLowerInverse(L), 'L^-1');
    near(out.inv[1]!, denseLowerInverse(N), 'N^-1');
    near(out.prod[0]!, matMul(L, N), 'L N');
  });

  test('saved and restored through the registry, it gives the same densities', () => {
    const est = fixedGaussian(MU, COV, 2, ZS);
    const copy = restoreEstimator(
      'multivariate_gaussian',
      3,
      2,
      est.config,
      est.zscore,
      est.getWeights(),
    );
    const [a, b] = tf.tidy(() => {
      const t = tf.tensor2d([[0.2, -1, 1]]);
      const x = tf.tensor2d([[1, 2]]);
      return [est.logProb(t, x).arraySync()[0]!, copy.logProb(t, x).arraySync()[0]!];
    });
    assert.equal(a, b);
    est.dispose();
    copy.dispose();
  });
});
