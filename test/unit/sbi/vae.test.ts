import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { join } from 'node:path';
import { MNIST_PIXELS, loadMnistDigits } from '../../../bench/mnist-digits.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import {
  decodeFloat16,
  encodeFloat16,
  fromHalfBits,
  toHalfBits,
} from '../../../sbi/tasks/float16.js';
import { TASK_NAMES, getTask } from '../../../sbi/tasks/index.js';
import { VAE_NOISE, VaeTask } from '../../../sbi/tasks/vae.js';
import {
  decodeLatents,
  loadVaeDecoder,
  parseVaeDecoder,
  vaeDecoderPath,
} from '../../../sbi/tasks/vae-decoder.js';
import { parseSweepSpec } from '../../../sweeps/validate.js';
import { root } from '../sweeps/fixtures.js';

describe('float16 packing', () => {
  test('exact halves round-trip; others round to the nearest half', () => {
    for (const v of [0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 1 + 2 ** -10])
      assert.equal(fromHalfBits(toHalfBits(v)), v, String(v));
    assert.equal(fromHalfBits(toHalfBits(0.1)), 0.0999755859375);
    // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even gives 1.
    assert.equal(fromHalfBits(toHalfBits(1 + 2 ** -11)), 1);
    assert.equal(fromHalfBits(toHalfBits(1e5)), Infinity);
    assert.equal(fromHalfBits(toHalfBits(2 ** -26)), 0);
    assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
  });

  test('relative error below 2^-11 over normal values, base64 round trip', () => {
    const rng = createRng(3);
    const v = new Float32Array(2000);
    rng.fillNormal(v);
    const back = decodeFloat16(encodeFloat16(v), v.length);
    for (let i = 0; i < v.length; i++) {
      if (Math.abs(v[i]!) < 2 ** -14) continue;
      assert.ok(Math.abs(back[i]! - v[i]!) <= Math.abs(v[i]!) * 2 ** -11, `${v[i]} -> ${back[i]}`);
    }
  });
});

describe('vae task', () => {
  let task: VaeTask;
  before(async () => {
    await initBackend();
    task = new VaeTask();
  });

  test('registered, 3 -> 784, N(0, I_3) prior log-density', () => {
    assert.ok((TASK_NAMES as readonly string[]).includes('vae'));
    const t = getTask('vae');
    assert.equal(t.thetaDim, 3);
    assert.equal(t.xDim, 784);
    const theta = Float32Array.from([0, 0, 0, 1, -2, 0.5]);
    const lp = t.prior.logProb(theta, 2);
    const c = -1.5 * Math.log(2 * Math.PI);
    assert.ok(Math.abs(lp[0]! - c) < 1e-12);
    assert.ok(Math.abs(lp[1]! - (c - 0.5 * (1 + 4 + 0.25))) < 1e-6);
  });

  test('decoder means are pixels in [0, 1]; shapes', () => {
    const rng = createRng(1);
    const theta = task.prior.sample(40, rng);
    const mu = task.mean(theta, 40);
    assert.equal(mu.length, 40 * 784);
    for (const v of mu) assert.ok(v >= 0 && v <= 1);
    assert.equal(task.simulate(theta, 40, rng).length, 40 * 784);
  });

  test('the plain-JS decoder equals a tfjs forward pass of the same weights', () => {
    const dec = loadVaeDecoder();
    const rng = createRng(2);
    const n = 37; // not a multiple of the block size
    const z = task.prior.sample(n, rng);
    const ours = decodeLatents(dec, z, n);
    const ref = tf.tidy(() => {
      let h: tf.Tensor2D = tf.tensor2d(z, [n, 3]);
      for (const l of dec.layers) {
        const pre = tf.add(
          tf.matMul(h, tf.tensor2d(l.weight, [l.inDim, l.outDim])),
          tf.tensor1d(l.bias),
        );
        h = (l.relu ? tf.relu(pre) : tf.sigmoid(pre)) as tf.Tensor2D;
      }
      return h.dataSync() as Float32Array;
    });
    let maxDiff = 0;
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - ref[i]!));
    assert.ok(maxDiff < 1e-4, `max |JS - tfjs| = ${maxDiff}`);
  });

  test('noise is N(0, 0.05^2) around the decoder mean, fresh per row', () => {
    const rng = createRng(4);
    const n = 25;
    const theta = task.prior.sample(n, rng);
    const x = task.simulate(theta, n, createRng(5));
    const mu = task.mean(theta, n);
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < x.length; i++) {
      const e = x[i]! - mu[i]!;
      s += e;
      s2 += e * e;
    }
    const m = s / x.length;
    const sd = Math.sqrt(s2 / x.length - m * m);
    assert.equal(VAE_NOISE, 0.05);
    // 19,600 residuals: the sd of the sample sd is about 0.05 / sqrt(2 * 19600) = 2.5e-4.
    assert.ok(Math.abs(sd - 0.05) < 1.5e-3, `residual sd ${sd}`);
    assert.ok(Math.abs(m) < 1.5e-3, `residual mean ${m}`);
    // Two rows with the same theta get different noise.
    const twice = task.simulate(
      Float32Array.from([0.3, -0.2, 0.1, 0.3, -0.2, 0.1]),
      2,
      createRng(6),
    );
    assert.notDeepEqual(twice.subarray(0, 784), twice.subarray(784));
  });

  test('deterministic under a seed', () => {
    const theta = task.prior.sample(5, createRng(7));
    const a = task.simulate(theta, 5, createRng(8));
    assert.deepEqual(a, task.simulate(theta, 5, createRng(8)));
    assert.notDeepEqual(a, task.simulate(theta, 5, createRng(9)));
  });

  test('log-likelihood is the Gaussian density around the decoder mean', () => {
    const theta = Float32Array.from([0.4, -1.1, 0.7]);
    const mu = task.mean(theta, 1);
    const logNorm = -784 * (Math.log(0.05) + 0.5 * Math.log(2 * Math.PI));
    assert.ok(Math.abs(task.logLikelihood(theta, 1, mu)[0]! - logNorm) < 1e-6);
    const xo = mu.slice();
    xo[100] += 0.1;
    xo[500] -= 0.05;
    const expected = logNorm - 0.5 * (4 + 1);
    assert.ok(Math.abs(task.logLikelihood(theta, 1, xo)[0]! - expected) < 1e-3);
  });

  test('decodes held-out digits: encoder means reconstruct them better than the mean image', () => {
    const dec = loadVaeDecoder();
    const { train, heldOut } = loadMnistDigits();
    const meanImage = new Float64Array(MNIST_PIXELS);
    for (let i = 0; i < train.pixels.length; i++)
      meanImage[i % MNIST_PIXELS] += train.pixels[i]! / train.n;
    assert.ok(dec.heldOut.length >= 10);
    const z = Float32Array.from(dec.heldOut.flatMap((h) => h.encoderMean));
    const recon = decodeLatents(dec, z, dec.heldOut.length);
    let reconSse = 0;
    let meanSse = 0;
    dec.heldOut.forEach((h, k) => {
      // The recorded digit is held out: find it by class and index in the held-out split.
      const row = [...heldOut.labels.keys()].find(
        (i) => heldOut.labels[i] === h.digit && heldOut.indices[i] === h.index,
      );
      assert.ok(row !== undefined, `digit ${h.digit} #${h.index} is in the held-out split`);
      for (let p = 0; p < MNIST_PIXELS; p++) {
        const x = heldOut.pixels[row * MNIST_PIXELS + p]!;
        reconSse += (x - recon[k * MNIST_PIXELS + p]!) ** 2;
        meanSse += (x - meanImage[p]!) ** 2;
      }
    });
    assert.ok(
      reconSse < 0.75 * meanSse,
      `reconstruction SSE ${reconSse} vs mean-image SSE ${meanSse}`,
    );
  });

  test('the weights file is small and says where it came from; a wrong format is refused', () => {
    const text = readFileSync(vaeDecoderPath(), 'utf8');
    assert.ok(text.length < 4e6, `${text.length} bytes`);
    const dec = parseVaeDecoder(text);
    assert.deepEqual(
      dec.layers.map((l) => [l.inDim, l.outDim]),
      [
        [3, 500],
        [500, 500],
        [500, 500],
        [500, 784],
      ],
    );
    for (const key of ['dataset', 'epochs', 'seed', 'finalTrainElbo', 'date', 'script'])
      assert.ok(key in dec.provenance, key);
    assert.throws(
      () => parseVaeDecoder(JSON.stringify({ format: 'x', layers: [] })),
      /not a VAE decoder/,
    );
  });

  test("paper-vae.json carries RABI's grids", () => {
    const spec = parseSweepSpec(readFileSync(join(root, 'sweeps', 'paper-vae.json'), 'utf8'));
    assert.deepEqual(spec.tasks, ['vae']);
    assert.deepEqual(spec.budgets, [1000, 10000, 100000]);
    assert.deepEqual(
      spec.estimators.map((e) => e.kind),
      ['maf', 'nsf'],
    );
    assert.deepEqual(spec.defenses.find((d) => d.name === 'fim')?.betas, [1e-4, 1e-3, 1e-2, 1e-1]);
    for (const name of ['adversarial', 'trades'] as const)
      assert.deepEqual(spec.defenses.find((d) => d.name === name)?.trainEps, [0.1, 0.5, 1]);
    assert.deepEqual(spec.defenses.find((d) => d.name === 'noise')?.trainEps, [1]);
    assert.deepEqual(spec.evaluation.eps, [0.1, 0.2, 0.3, 0.5, 1, 2]);
  });
});
