import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  attackExactPosterior,
  klMetric,
  linearGaussianPosterior,
} from '../../../sbi/metrics/exact-posterior-attack.js';
import { createRng } from '../../../sbi/rng.js';
import { simulateDataset } from '../../../sbi/simulate.js';
import { GaussianLinearTask } from '../../../sbi/tasks/gaussian_linear.js';
import { symmetricEigen } from '../../../sbi/tasks/linalg.js';

describe('symmetricEigen', () => {
  test('[[2, 1], [1, 2]] has eigenvalues 3 and 1 with eigenvectors (1, 1) and (1, -1) / sqrt 2', () => {
    const { values, vectors } = symmetricEigen([
      [2, 1],
      [1, 2],
    ]);
    assert.ok(Math.abs(values[0]! - 3) < 1e-12 && Math.abs(values[1]! - 1) < 1e-12);
    assert.ok(Math.abs(Math.abs(vectors[0]![0]!) - Math.SQRT1_2) < 1e-12);
    assert.ok(Math.abs(vectors[0]![0]! - vectors[1]![0]!) < 1e-12);
    assert.ok(Math.abs(vectors[0]![1]! + vectors[1]![1]!) < 1e-12);
  });

  test('a random symmetric 7 x 7 matrix is V diag(values) V^T with V orthonormal, values descending', () => {
    const rng = createRng(3);
    const n = 7;
    const b = new Float64Array(n * n);
    rng.fillNormal(b);
    const a = Array.from({ length: n }, (_, i) =>
      Array.from({ length: n }, (_, j) => b[i * n + j]! + b[j * n + i]!),
    );
    const { values, vectors: v } = symmetricEigen(a);
    for (let k = 1; k < n; k++) assert.ok(values[k - 1]! >= values[k]!);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let rec = 0;
        let orth = 0;
        for (let k = 0; k < n; k++) {
          rec += v[i]![k]! * values[k]! * v[j]![k]!;
          orth += v[k]![i]! * v[k]![j]!;
        }
        assert.ok(Math.abs(rec - a[i]![j]!) < 1e-10, `A[${i}][${j}]`);
        assert.ok(Math.abs(orth - (i === j ? 1 : 0)) < 1e-12, `V^T V [${i}][${j}]`);
      }
    }
  });
});

describe('the exact gaussian_linear posterior under attack', () => {
  const task = new GaussianLinearTask();
  const s2 = task.likelihoodScale ** 2;
  const test1 = simulateDataset(task, 400, createRng(5).fork('test'));
  const post = linearGaussianPosterior(
    (x) => task.analyticPosterior(x),
    task.xDim,
    test1.x.subarray(0, task.xDim),
  );

  test('M, S and G = M^T S^-1 M match the closed forms of a diagonal A', () => {
    task.a.forEach((a, i) => {
      const prec = 1 + (a * a) / s2;
      assert.ok(Math.abs(post.cov[i]![i]! - 1 / prec) < 1e-12);
      assert.ok(Math.abs(post.m[i]![i]! - a / s2 / prec) < 1e-6 * Math.abs(a / s2 / prec) + 1e-12);
      const g = klMetric(post);
      const want = (a * a) / (s2 * (s2 + a * a));
      assert.ok(Math.abs(g[i]![i]! - want) < 1e-5 * want + 1e-9, `G[${i}][${i}]`);
    });
  });

  test('a mean that is not linear in x is refused', () => {
    assert.throws(
      () =>
        linearGaussianPosterior(
          (x) => ({
            mean: Array.from(x, (v) => v * v),
            cov: [
              [1, 0],
              [0, 1],
            ],
          }),
          2,
          Float32Array.of(2, 3),
        ),
      /not linear in x/,
    );
  });

  test('unattacked, the exact posterior is calibrated: coverage on the diagonal', () => {
    const r = attackExactPosterior(post, test1, 0, 0, createRng(6), { samples: 1000 });
    assert.equal(r.klMean, 0);
    // 400 test pairs: the observed coverage is a binomial proportion, sd <= 0.025.
    assert.ok(r.coverageAbsArea < 0.03, `area ${r.coverageAbsArea}`);
  });

  test('with no box in the way the KL is the bound 0.5 eps^2 lambda_max, and coverage collapses', () => {
    const epsAbs = 2;
    const r = attackExactPosterior(post, test1, 2, epsAbs, createRng(7), {
      samples: 500,
      box: { min: -1e9, max: 1e9 },
    });
    const amax = Math.max(...task.a.map((a) => (a * a) / (s2 * (s2 + a * a))));
    assert.ok(Math.abs(r.klBound - 0.5 * epsAbs ** 2 * amax) < 1e-6 * r.klBound);
    for (const v of r.kl) assert.ok(Math.abs(v - r.klBound) < 1e-9 * r.klBound);
    // A mean shift of sqrt(2 KL) ~ 20 posterior standard deviations: nothing is covered below 1.
    assert.ok(r.coverage.slice(0, -1).every((c) => c === 0));
  });
});
