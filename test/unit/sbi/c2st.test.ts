import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../sbi/backend.js';
import { c2st } from '../../../sbi/metrics/c2st.js';
import { createRng } from '../../../sbi/rng.js';

/** n rows of d standard normals, the first coordinate shifted by `shift`. */
function gaussians(n: number, d: number, shift: number, seed: number): Float32Array {
  const out = new Float32Array(n * d);
  createRng(seed).fillNormal(out);
  for (let i = 0; i < n; i++) out[i * d]! += shift;
  return out;
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 on erf, |error| < 1.5e-7). */
function phi(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

describe('c2st', () => {
  before(async () => {
    await initBackend();
  });

  test('samples from one distribution score about 0.5', () => {
    // 2 x 500 held-out predictions: a chance classifier's accuracy has sd 0.5 / sqrt(1000) = 0.016;
    // 0.06 allows ~4 sd for chance plus the small bias an overfitted MLP can add either way.
    const r = c2st(gaussians(500, 2, 0, 1), gaussians(500, 2, 0, 2), 2, createRng(7));
    assert.equal(r.foldAccuracies.length, 5);
    assert.ok(Math.abs(r.accuracy - 0.5) < 0.06, `accuracy ${r.accuracy}`);
  });

  test('well-separated Gaussians score above 0.95', () => {
    // Shift 6 sd: the Bayes accuracy is Phi(3) = 0.9987.
    // Separable data keep lowering the loss for long; 60 epochs are plenty for the threshold.
    const r = c2st(gaussians(300, 2, 0, 3), gaussians(300, 2, 6, 4), 2, createRng(7), {
      maxEpochs: 60,
    });
    assert.ok(r.accuracy > 0.95, `accuracy ${r.accuracy}`);
  });

  for (const kernels of ['fused', 'tfjs'] as const) {
    test(`N(0,1) vs N(1,1) lands near the Bayes-optimal accuracy Phi(1/2) (${kernels})`, () => {
      // Equal priors, threshold at d/2: the best any classifier can do is Phi(d/2) = 0.6915 for d = 1.
      // 4000 held-out predictions give sd 0.0073; a fitted MLP sits slightly below the Bayes rate.
      const bayes = phi(0.5);
      assert.ok(Math.abs(bayes - 0.69146) < 1e-4);
      const r = c2st(gaussians(2000, 1, 0, 5), gaussians(2000, 1, 1, 6), 1, createRng(7), {
        kernels,
      });
      assert.ok(Math.abs(r.accuracy - bayes) < 0.03, `accuracy ${r.accuracy} vs Bayes ${bayes}`);
    });
  }

  test('the fused and tfjs classifiers score the same sets alike', () => {
    // Same network, initial weights, batches and Adam; only float rounding differs, which can move
    // a fold's stopping epoch (the loss plateaus), so folds may differ by a little, the mean less.
    // d = 5 is off every padding of the fused layout (input 8, hidden 56).
    const a = gaussians(600, 5, 0, 14);
    const b = gaussians(600, 5, 0.8, 15);
    const fused = c2st(a, b, 5, createRng(5), { kernels: 'fused', maxEpochs: 40 });
    const plain = c2st(a, b, 5, createRng(5), { kernels: 'tfjs', maxEpochs: 40 });
    assert.ok(
      Math.abs(fused.accuracy - plain.accuracy) < 0.01,
      `fused ${fused.accuracy} vs tfjs ${plain.accuracy}`,
    );
    fused.foldAccuracies.forEach((f, i) =>
      assert.ok(
        Math.abs(f - plain.foldAccuracies[i]!) < 0.03,
        `fold ${i}: ${f} vs ${plain.foldAccuracies[i]}`,
      ),
    );
  });

  test('z-scoring by the reference makes the score invariant to a common affine map', () => {
    // Same draws in other units: after z-scoring with the reference's statistics the data agree to
    // float rounding, so the scores agree closely (not bit-for-bit: the rounding differs).
    const a = gaussians(200, 2, 0, 8);
    const b = gaussians(200, 2, 1.5, 9);
    const scale = (v: Float32Array) => v.map((t) => 1000 * t + 50);
    const r1 = c2st(a, b, 2, createRng(7));
    const r2 = c2st(scale(a), scale(b), 2, createRng(7));
    assert.ok(Math.abs(r1.accuracy - r2.accuracy) < 0.02, `${r1.accuracy} vs ${r2.accuracy}`);
  });

  test('deterministic given the stream, and the tfjs path leaks no tensors', () => {
    const a = gaussians(150, 2, 0, 10);
    const b = gaussians(150, 2, 1, 11);
    const opts = { maxEpochs: 25, kernels: 'tfjs' as const };
    const before = tf.memory().numTensors;
    const r1 = c2st(a, b, 2, createRng(3), opts);
    const after = tf.memory().numTensors;
    const r2 = c2st(a, b, 2, createRng(3), opts);
    const r3 = c2st(a, b, 2, createRng(4), opts);
    assert.deepEqual(r1, r2);
    assert.notDeepEqual(r1.foldAccuracies, r3.foldAccuracies);
    assert.equal(after, before);
    // The stopping rule fires only after more than nIterNoChange = 10 epochs without improvement.
    assert.ok(
      r1.foldEpochs.every((e) => e > 11 && e <= 25),
      `epochs ${r1.foldEpochs}`,
    );
  });

  test("the fused path is deterministic given the stream and keeps sklearn's stopping rule", () => {
    const a = gaussians(150, 2, 0, 10);
    const b = gaussians(150, 2, 1, 11);
    const r1 = c2st(a, b, 2, createRng(3), { maxEpochs: 25 });
    const r2 = c2st(a, b, 2, createRng(3), { maxEpochs: 25 });
    const r3 = c2st(a, b, 2, createRng(4), { maxEpochs: 25 });
    assert.deepEqual(r1, r2);
    assert.notDeepEqual(r1.foldAccuracies, r3.foldAccuracies);
    assert.ok(
      r1.foldEpochs.every((e) => e > 11 && e <= 25),
      `epochs ${r1.foldEpochs}`,
    );
    // A tolerance no epoch can meet: the first epoch sets the best loss, the next four fail to beat
    // it by tol, and more than nIterNoChange = 3 failures stop every fold at epoch 5.
    const quick = c2st(a, b, 2, createRng(3), { tol: 10, nIterNoChange: 3 });
    assert.deepEqual(quick.foldEpochs, [5, 5, 5, 5, 5]);
  });

  test('maxSamples subsamples each set and rejects malformed input', () => {
    const r = c2st(gaussians(400, 2, 0, 12), gaussians(300, 2, 0, 13), 2, createRng(3), {
      maxSamples: 100,
      maxEpochs: 5,
    });
    assert.equal(r.nReference, 100);
    assert.equal(r.nEstimate, 100);
    assert.throws(
      () => c2st(new Float32Array(5), new Float32Array(4), 2, createRng(1)),
      /whole rows/,
    );
  });
});
