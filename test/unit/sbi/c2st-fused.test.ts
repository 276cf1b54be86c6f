import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FusedMlpClassifier, type DenseLayer } from '../../../sbi/metrics/c2st-fused.js';
import { createRng } from '../../../sbi/rng.js';

// d = 3 and width 5 make every padding of the layout matter: input to 4, hidden to 8, logit to 8,
// and batches of 7 rows to 8.
const DIM = 3;
const WIDTH = 5;
const ALPHA = 0.3;

function randomLayers(seed: number): DenseLayer[] {
  const rng = createRng(seed);
  const layer = (fanIn: number, fanOut: number): DenseLayer => {
    const w = new Float32Array(fanIn * fanOut);
    const b = new Float32Array(fanOut);
    rng.fillNormal(w);
    rng.fillNormal(b);
    return { w: w.map((v) => 0.7 * v), b: b.map((v) => 0.3 * v) };
  };
  return [layer(DIM, WIDTH), layer(WIDTH, WIDTH), layer(WIDTH, 1)];
}

function problem(nRows: number) {
  const data = new Float32Array(nRows * DIM);
  createRng(11).fillNormal(data);
  const labels = Float32Array.from({ length: nRows }, (_, i) => i % 2);
  return { data, labels };
}

/** The logit of one row in float64, read straight off the layers (the reference network). */
function logit64(layers: DenseLayer[], x: ArrayLike<number>): number {
  let h = Array.from(x);
  layers.forEach((l, i) => {
    const fanOut = l.b.length;
    const out = Array.from(l.b, Number);
    for (let j = 0; j < fanOut; j++)
      for (let k = 0; k < h.length; k++) out[j]! += h[k]! * l.w[k * fanOut + j]!;
    h = i < layers.length - 1 ? out.map((v) => Math.max(0, v)) : out;
  });
  return h[0]!;
}

/** sklearn's batch loss in float64: mean log-loss plus alpha / 2 / n * sum ||W||^2. */
function loss64(layers: DenseLayer[], data: Float32Array, labels: Float32Array, rows: Int32Array) {
  let bce = 0;
  for (const r of rows) {
    const z = logit64(layers, data.subarray(r * DIM, (r + 1) * DIM));
    bce += Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - labels[r]! * z;
  }
  let sq = 0;
  for (const l of layers) for (const w of l.w) sq += w * w;
  return bce / rows.length + (0.5 * ALPHA * sq) / rows.length;
}

describe('FusedMlpClassifier', () => {
  const { data, labels } = problem(40);
  const rows = Int32Array.from([3, 17, 0, 29, 8, 11, 38]);

  test('the batch loss is the float64 reference and its gradient the central differences of it', () => {
    const layers = randomLayers(1);
    const clf = new FusedMlpClassifier(data, labels, DIM, WIDTH, 16);
    clf.reset(layers);
    const { loss, gradient } = clf.lossAndGradient(rows, ALPHA);
    assert.ok(Math.abs(loss - loss64(layers, data, labels, rows)) < 1e-5, `loss ${loss}`);

    // Perturb weights and biases as float64 copies so the differences see no float32 rounding.
    const h = 1e-5;
    let checked = 0;
    layers.forEach((l, li) => {
      for (const key of ['w', 'b'] as const) {
        for (let e = 0; e < l[key].length; e++) {
          const at = (delta: number): number => {
            const copy = layers.map((m) => ({
              w: Float64Array.from(m.w),
              b: Float64Array.from(m.b),
            }));
            copy[li]![key][e]! += delta;
            return loss64(copy as unknown as DenseLayer[], data, labels, rows);
          };
          const fd = (at(h) - at(-h)) / (2 * h);
          const g = gradient[li]![key][e]!;
          assert.ok(
            Math.abs(g - fd) < 1e-4 + 1e-3 * Math.abs(fd),
            `layer ${li + 1} ${key}[${e}]: ${g} vs ${fd}`,
          );
          checked++;
        }
      }
    });
    assert.equal(checked, DIM * WIDTH + WIDTH + WIDTH * WIDTH + WIDTH + WIDTH + 1);
  });

  test("a first Adam step moves each parameter by the learning rate against its gradient's sign", () => {
    // Step 1: m = (1 - b1) g and v = (1 - b2) g^2 bias-correct to g and g^2, so the update is
    // lr g / (|g| + eps).
    const layers = randomLayers(2);
    const clf = new FusedMlpClassifier(data, labels, DIM, WIDTH, 16);
    clf.reset(layers);
    const { gradient } = clf.lossAndGradient(rows, ALPHA);
    const lr = 0.01;
    const loss = clf.step(rows, ALPHA, {
      learningRate: lr,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
    });
    assert.ok(Math.abs(loss - loss64(layers, data, labels, rows)) < 1e-5);
    const after = clf.layers();
    layers.forEach((l, li) => {
      for (const key of ['w', 'b'] as const)
        l[key].forEach((p0, e) => {
          const g = gradient[li]![key][e]!;
          const want = p0 - (lr * g) / (Math.abs(g) + 1e-8);
          assert.ok(Math.abs(after[li]![key][e]! - want) < 1e-6, `layer ${li + 1} ${key}[${e}]`);
        });
    });
  });

  test('after many steps the padded network is still the unpadded one, and reset starts over', () => {
    const layers = randomLayers(3);
    const clf = new FusedMlpClassifier(data, labels, DIM, WIDTH, 16);
    clf.reset(layers);
    const adam = { learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
    const firstTwo = [clf.step(rows, ALPHA, adam), clf.step(rows, ALPHA, adam)];
    for (let s = 0; s < 60; s++)
      clf.step(
        Int32Array.from({ length: 13 }, (_, i) => (s + 3 * i) % 40),
        ALPHA,
        adam,
      );
    const trained = clf.layers();
    // If a padded weight had moved, the logits would not be those of the unpadded layers.
    const all = Int32Array.from({ length: 40 }, (_, i) => i);
    const z = clf.logits(all);
    all.forEach((r) => {
      const want = logit64(trained, data.subarray(r * DIM, (r + 1) * DIM));
      assert.ok(
        Math.abs(z[r]! - want) < 1e-4 * (1 + Math.abs(want)),
        `row ${r}: ${z[r]} vs ${want}`,
      );
    });
    assert.ok(loss64(trained, data, labels, all) < loss64(layers, data, labels, all));
    // A reset restores the weights and Adam's moments and count: the same two steps again.
    clf.reset(layers);
    assert.deepEqual([clf.step(rows, ALPHA, adam), clf.step(rows, ALPHA, adam)], firstTwo);
  });

  test('prediction covers more rows than one batch, and bad shapes are refused', () => {
    const clf = new FusedMlpClassifier(data, labels, DIM, WIDTH, 6);
    const layers = randomLayers(4);
    clf.reset(layers);
    const all = Int32Array.from({ length: 40 }, (_, i) => 39 - i);
    const z = clf.logits(all);
    all.forEach((r, i) => {
      const want = logit64(layers, data.subarray(r * DIM, (r + 1) * DIM));
      assert.ok(Math.abs(z[i]! - want) < 1e-4 * (1 + Math.abs(want)));
    });
    assert.throws(
      () =>
        clf.step(rows.subarray(0, 0), ALPHA, {
          learningRate: 1,
          beta1: 0.9,
          beta2: 0.999,
          epsilon: 1e-8,
        }),
      /1 to 8 rows/,
    );
    assert.throws(() => clf.reset(layers.slice(0, 2)), /three layers/);
    assert.throws(
      () => new FusedMlpClassifier(data, labels.subarray(1), DIM, WIDTH, 6),
      /one label per row/,
    );
  });
});
