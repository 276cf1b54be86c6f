// Ground-truth metrics against gaussian_linear's analytic posterior (sbi/metrics/ground-truth.ts):
// an estimator equal to the posterior scores KL 0 and C2ST 0.5; one whose mean is off by Delta scores
// KL = 1/2 Delta^T S^-1 Delta in both directions and the Bayes-optimal accuracy Phi(delta / 2),
// delta the Mahalanobis distance; each within 4 standard errors over the x.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import { cholesky } from '../../../sbi/tasks/linalg.js';
import { gaussianLinear } from '../../../sbi/tasks/gaussian_linear.js';
import { linearGaussianPosterior } from '../../../sbi/metrics/exact-posterior-attack.js';
import { groundTruthMetrics } from '../../../sbi/metrics/ground-truth.js';
import { linearPosteriorNet } from './gaussian-nets.js';

before(async () => {
  await initBackend('cpu');
});

/** Standard normal CDF (Abramowitz and Stegun 7.1.26, error < 1.5e-7). */
function phi(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

function meanAndSe(v: Float64Array): { mean: number; se: number } {
  const n = v.length;
  const mean = v.reduce((s, x) => s + x, 0) / n;
  const q = v.reduce((s, x) => s + (x - mean) ** 2, 0);
  return { mean, se: Math.sqrt(q / (n - 1) / n) };
}

describe('ground-truth metrics on gaussian_linear', () => {
  const task = gaussianLinear();
  const n = 150;
  const theta = task.prior.sample(n, createRng(1));
  const x = task.simulate(theta, n, createRng(2));
  const p = linearGaussianPosterior(
    (xo) => task.analyticPosterior(xo),
    task.xDim,
    x.subarray(0, task.xDim),
  );
  const post = (xo: Float32Array) => task.analyticPosterior(xo);

  test('the exact posterior: KL 0 both ways, C2ST 0.5', async () => {
    const est = linearPosteriorNet(p.m, p.c, p.cov);
    const r = await groundTruthMetrics(est, post, x, n, createRng(3), { batch: 40 });
    for (const [name, v, expected] of [
      ['c2st', r.perX.c2st, 0.5],
      ['klQP', r.perX.klQP, 0],
      ['klPQ', r.perX.klPQ, 0],
    ] as const) {
      const { mean, se } = meanAndSe(v);
      assert.ok(Math.abs(mean - expected) < 4 * se + 1e-3, `${name}: ${mean} (se ${se})`);
    }
    assert.ok(Math.abs(r.klQP) < 0.01 && Math.abs(r.c2st - 0.5) < 0.03);
    est.dispose();
  });

  test('a mean off by Delta (Mahalanobis 1.5): KL 1.125 both ways, C2ST Phi(0.75)', async () => {
    const c = cholesky(p.cov);
    const delta = c.map((row) => 1.5 * row[0]!); // 1.5 C e_1: Delta^T S^-1 Delta = 2.25
    const est = linearPosteriorNet(
      p.m,
      p.c.map((v, i) => v + delta[i]!),
      p.cov,
    );
    const r = await groundTruthMetrics(est, post, x, n, createRng(4));
    for (const [name, v, expected] of [
      ['c2st', r.perX.c2st, phi(0.75)],
      ['klQP', r.perX.klQP, 1.125],
      ['klPQ', r.perX.klPQ, 1.125],
    ] as const) {
      const { mean, se } = meanAndSe(v);
      assert.ok(
        Math.abs(mean - expected) < 4 * se + 2e-3,
        `${name}: ${mean} vs ${expected} (se ${se})`,
      );
      assert.ok(se < 0.02 * expected, `${name} resolved: se ${se}`);
    }
    est.dispose();
  });
});
