// Posterior draws restricted to the prior's support (sbi/posterior-samples.ts), on a Gaussian
// q(theta | x) with hand-set weights and a box prior, whose mass inside the box is a product of
// one-dimensional normal integrals: rejection keeps exactly the estimator's own draws that fall in
// the box, in order; its acceptance and supportMass estimate that mass; a posterior that lies outside
// the box is refused in one sentence rather than sampled for ever.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend } from '../../../sbi/backend.js';
import {
  LeakageError,
  MIN_ACCEPTANCE,
  samplePosterior,
  supportMass,
} from '../../../sbi/posterior-samples.js';
import { createRng } from '../../../sbi/rng.js';
import { BoxUniformPrior, DiagGaussianPrior } from '../../../sbi/tasks/priors.js';
import { LinearGaussian } from './linear-gaussian.js';

before(async () => {
  await initBackend('cpu');
});

/** Integral of N(mean, sd^2) over [a, b] by composite Simpson's rule (error far below 1e-9 here). */
function normalMass(mean: number, sd: number, a: number, b: number): number {
  const m = 2000;
  const h = (b - a) / m;
  const f = (t: number): number =>
    Math.exp(-0.5 * ((t - mean) / sd) ** 2) / (sd * Math.sqrt(2 * Math.PI));
  let s = f(a) + f(b);
  for (let i = 1; i < m; i++) s += (i % 2 === 1 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

// q(theta | x) = N(x, diag(1, 4)); the box [-1, 2] x [-3, 3].
const model = new LinearGaussian(
  [
    [1, 0],
    [0, 1],
  ],
  [0, 0],
  [
    [1, 0],
    [0, 2],
  ],
);
const box = new BoxUniformPrior([-1, -3], [2, 3]);
const xo = [0.5, 0];
const mass = normalMass(0.5, 1, -1, 2) * normalMass(0, 2, -3, 3);

function inBox(s: Float32Array, i: number): boolean {
  return s[2 * i]! >= -1 && s[2 * i]! <= 2 && s[2 * i + 1]! >= -3 && s[2 * i + 1]! <= 3;
}

describe('samplePosterior', () => {
  test('keeps the estimator’s own draws that fall inside the support, in order', () => {
    const n = 5000;
    const rejected = samplePosterior(model, xo, n, createRng(7), box);
    // Round 0 asks for 1.2 n + 16 rows from the stream's fork draw-0: the same rows as the
    // unrestricted sampler's when it is asked for that many.
    const firstRound = Math.ceil(n * 1.2) + 16;
    const all = samplePosterior(model, xo, firstRound, createRng(7)).samples;
    const inside: number[] = [];
    for (let i = 0; i < firstRound; i++) if (inBox(all, i)) inside.push(i);
    assert.ok(inside.length < n, 'the mass (0.75) leaves round 0 short, so round 1 runs too');
    inside.forEach((row, k) => {
      assert.equal(rejected.samples[2 * k], all[2 * row]);
      assert.equal(rejected.samples[2 * k + 1], all[2 * row + 1]);
    });
    for (let i = 0; i < n; i++) assert.ok(inBox(rejected.samples, i), `row ${i} outside the box`);
    assert.ok(rejected.drawn > firstRound);
    // n / drawn estimates the mass in the box: within four standard errors.
    const se = Math.sqrt((mass * (1 - mass)) / rejected.drawn);
    assert.ok(Math.abs(rejected.acceptance - mass) < 4 * se, `${rejected.acceptance} vs ${mass}`);
    assert.equal(rejected.acceptance, n / rejected.drawn);
  });

  test('without a prior, or with one of full support, takes the draws as they are', () => {
    const kept = samplePosterior(model, xo, 3000, createRng(3));
    assert.equal(kept.drawn, 3000);
    assert.equal(kept.acceptance, 1);
    let outside = 0;
    for (let i = 0; i < 3000; i++) if (!inBox(kept.samples, i)) outside++;
    assert.ok(outside > 500, `${outside} of 3000 draws outside the box (expected about 750)`);
    const gaussianPrior = new DiagGaussianPrior([0, 0], [1, 1]);
    const full = samplePosterior(model, xo, 3000, createRng(3), gaussianPrior);
    assert.equal(full.drawn, 3000);
    assert.deepEqual(full.samples.subarray(0, 20), kept.samples.subarray(0, 20));
    assert.equal(supportMass(model, xo, gaussianPrior, createRng(3)), 1);
  });

  test('supportMass estimates the mass inside the support', () => {
    const m = supportMass(model, xo, box, createRng(11), 20_000);
    const se = Math.sqrt((mass * (1 - mass)) / 20_000);
    assert.ok(Math.abs(m - mass) < 4 * se, `${m} vs ${mass}`);
  });

  test('a posterior outside the support is refused, not sampled for ever', () => {
    assert.throws(
      () => samplePosterior(model, [40, 0], 100, createRng(1), box),
      (e: unknown) =>
        e instanceof LeakageError &&
        e.kept === 0 &&
        e.drawn >= 100_000 &&
        /^Only 0 of \d+ draws from the estimator fell inside the prior's support at this observation \(below 1 in 1000\)/.test(
          e.message,
        ),
    );
    assert.equal(MIN_ACCEPTANCE, 1e-3);
  });

  test('refuses a prior of another dimension', () => {
    assert.throws(
      () => samplePosterior(model, xo, 10, createRng(1), new BoxUniformPrior([0], [1])),
      /The prior has 1 dimensions, the estimator 2/,
    );
  });
});
