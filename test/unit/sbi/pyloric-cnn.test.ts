// RABI's pyloric embedding (per-neuron CNN + MLP): the conv and pool blocks against direct loops,
// the architecture's sizes and parameter count, the second order the FIM regularizer takes through
// it (against finite differences) and flat tensor counts over a short FIM-regularized training.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import type { ZScore } from '../../../sbi/types.js';
import { createEstimator, taskEstimatorDefaults } from '../../../sbi/estimators/index.js';
import { ParamStore } from '../../../sbi/estimators/params.js';
import { PyloricCnn, conv1d, maxPool1d } from '../../../sbi/estimators/pyloric-cnn.js';
import { convFamily } from '../../../sbi/estimators/conv1d-ops.js';
import { trainNPE } from '../../../sbi/npe.js';
import { FimTraceDefense } from '../../../sbi/defenses/fim-trace.js';

before(async () => {
  await initBackend();
});

function uniform(n: number, seed: number): number[] {
  const a = new Float32Array(n);
  createRng(seed).fillUniform(a);
  return Array.from(a, (v) => Math.fround(2 * v - 1));
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

describe('pyloric-cnn building blocks', () => {
  test('conv1d equals a direct loop with zero padding', () => {
    const [B, L, Cin, Cout, K, P] = [2, 7, 2, 3, 5, 1];
    const h = uniform(B * L * Cin, 1);
    const w = uniform(K * Cin * Cout, 2);
    const bias = uniform(Cout, 3);
    const Lout = L + 2 * P - K + 1;
    const want: number[] = [];
    for (let b = 0; b < B; b++)
      for (let t = 0; t < Lout; t++)
        for (let o = 0; o < Cout; o++) {
          let s = bias[o]!;
          for (let j = 0; j < K; j++) {
            const pos = t + j - P;
            if (pos < 0 || pos >= L) continue;
            for (let c = 0; c < Cin; c++)
              s += h[(b * L + pos) * Cin + c]! * w[(j * Cin + c) * Cout + o]!;
          }
          want.push(s);
        }
    for (const act of ['linear', 'relu'] as const) {
      const got = tf.tidy(() =>
        conv1d(
          tf.tensor3d(h, [B, L, Cin]),
          tf.tensor2d(w, [K * Cin, Cout]),
          tf.tensor1d(bias),
          K,
          P,
          act,
        ).dataSync(),
      );
      close(got, act === 'relu' ? want.map((v) => Math.max(v, 0)) : want, 1e-5, act);
    }
  });

  test('maxPool1d equals a direct loop (floor mode) and routes the gradient to the first maximum', () => {
    const [B, L, C, K] = [2, 8, 3, 3];
    const h = uniform(B * L * C, 4);
    h[0] = h[C] = Math.fround(0.9); // a tie in the first window of channel 0: the first position takes dy
    const Lp = Math.floor(L / K);
    const want: number[] = [];
    const grad = new Array<number>(h.length).fill(0);
    for (let b = 0; b < B; b++)
      for (let p = 0; p < Lp; p++)
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let arg = -1;
          for (let j = 0; j < K; j++) {
            const i = (b * L + p * K + j) * C + c;
            if (h[i]! > best) [best, arg] = [h[i]!, i];
          }
          want.push(best);
          grad[arg] = 1 + want.length; // d/dh of sum(pooled * weights), weights 2, 3, ...
        }
    const weights = want.map((_, i) => 2 + i);
    const x = tf.tensor3d(h, [B, L, C]);
    const got = tf.tidy(() => maxPool1d(x, K).dataSync());
    close(got, want, 0, 'pooled');
    const g = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) =>
          tf.sum(tf.mul(maxPool1d(v as tf.Tensor3D, K), tf.tensor3d(weights, [B, Lp, C]))),
        )(x)
        .dataSync(),
    );
    close(g, grad, 0, 'gradient');
    x.dispose();
  });

  test('second order through conv + ReLU + max pool matches finite differences', () => {
    // f(w) = || d/dh sum(q * pool(conv(h; w))^2) ||^2; its w-gradient needs the pool's gradient of
    // a gradient, where tf.max would throw.
    const [B, L, Cin, Cout, K, P] = [2, 9, 2, 2, 3, 1];
    const h = tf.tensor3d(uniform(B * L * Cin, 5), [B, L, Cin]);
    const w0 = uniform(K * Cin * Cout, 6);
    const bias = tf.tensor1d([0.1, -0.05]);
    const q = tf.tensor3d(uniform(B * 3 * Cout, 7), [B, 3, Cout]);
    const f = (w: tf.Tensor): tf.Scalar =>
      tf.sum(
        tf.square(
          tf.grad((hh: tf.Tensor) =>
            tf.sum(
              tf.mul(
                q,
                tf.square(maxPool1d(conv1d(hh as tf.Tensor3D, w as tf.Tensor2D, bias, K, P), 3)),
              ),
            ),
          )(h),
        ),
      );
    const w = tf.tensor2d(w0, [K * Cin, Cout]);
    const g = tf.tidy(() => tf.grad(f)(w).dataSync());
    const at = (i: number, d: number): number =>
      tf.tidy(() => {
        const moved = w0.slice();
        moved[i] = w0[i]! + d;
        return f(tf.tensor2d(moved, [K * Cin, Cout])).dataSync()[0]!;
      });
    const eps = 1e-2;
    for (let i = 0; i < w0.length; i++) {
      const fd = (at(i, eps) - at(i, -eps)) / (2 * eps);
      assert.ok(
        Math.abs(fd - g[i]!) <= 2e-3 + 1e-2 * Math.abs(fd),
        `w[${i}]: analytic ${g[i]}, finite differences ${fd}`,
      );
    }
    tf.dispose([h, bias, q, w]);
  });
});

describe('conv1d-ops: the convolution family', () => {
  const dot = (a: tf.Tensor, b: tf.Tensor): number =>
    tf.tidy(() => tf.sum(tf.mul(a, b)).dataSync()[0]!);

  test('convT and convW are the adjoints of conv in x and in w, for paddings 0 to 2', () => {
    const [B, L, Ci, Co, K] = [2, 9, 3, 2, 3];
    for (const p of [0, 1, 2]) {
      const { conv, convT, convW } = convFamily(p);
      const lo = L + 2 * p - K + 1;
      const x = tf.tensor3d(uniform(B * L * Ci, 10 + p), [B, L, Ci]);
      const w = tf.tensor3d(uniform(K * Ci * Co, 20 + p), [K, Ci, Co]);
      const g = tf.tensor3d(uniform(B * lo * Co, 30 + p), [B, lo, Co]);
      const y = conv(x, w);
      assert.deepEqual(y.shape, [B, lo, Co]);
      const lhs = dot(y, g);
      assert.ok(Math.abs(lhs - dot(x, convT(g, w))) < 1e-4, `x adjoint, p ${p}`);
      assert.ok(Math.abs(lhs - dot(w, convW(x, g))) < 1e-4, `w adjoint, p ${p}`);
      tf.dispose([x, w, g, y]);
    }
  });

  test('second order through the weight gradient: d/dx ||d/dw sum(q * conv(x, w)^2)||^2 matches finite differences', () => {
    // Differentiates convW (the weight gradient) with respect to x, which conv1d's first test does not.
    const [B, L, Ci, Co, K, P] = [2, 7, 2, 2, 3, 1];
    const { conv } = convFamily(P);
    const x0 = uniform(B * L * Ci, 40);
    const w = tf.tensor3d(uniform(K * Ci * Co, 41), [K, Ci, Co]);
    const q = tf.tensor3d(uniform(B * L * Co, 42), [B, L, Co]);
    const f = (x: tf.Tensor): tf.Scalar =>
      tf.sum(
        tf.square(
          tf.grad((ww: tf.Tensor) =>
            tf.sum(tf.mul(q, tf.square(conv(x as tf.Tensor3D, ww as tf.Tensor3D)))),
          )(w),
        ),
      );
    const x = tf.tensor3d(x0, [B, L, Ci]);
    const g = tf.tidy(() => tf.grad(f)(x).dataSync());
    const at = (i: number, d: number): number =>
      tf.tidy(() => {
        const moved = x0.slice();
        moved[i] = x0[i]! + d;
        return f(tf.tensor3d(moved, [B, L, Ci])).dataSync()[0]!;
      });
    const eps = 1e-2;
    for (let i = 0; i < x0.length; i++) {
      const fd = (at(i, eps) - at(i, -eps)) / (2 * eps);
      assert.ok(
        Math.abs(fd - g[i]!) <= 2e-3 + 1e-2 * Math.abs(fd),
        `x[${i}]: analytic ${g[i]}, finite differences ${fd}`,
      );
    }
    tf.dispose([x, w, q]);
  });
});

describe('pyloric-cnn embedding', () => {
  test('is the pyloric task default', () => {
    assert.deepEqual(taskEstimatorDefaults('pyloric'), { embedding: 'pyloric-cnn' });
  });

  test("RABI's sizes: 2400 -> [B, 100], 22 817 weights per CNN, 158 851 in all", () => {
    const store = new ParamStore();
    const net = new PyloricCnn(store, 'embedding', 2400, createRng(1));
    const sizes = store.get().map((w) => ({ name: w.name, n: w.shape.reduce((a, b) => a * b, 1) }));
    const total = (prefix: string): number =>
      sizes.filter((s) => s.name.startsWith(prefix)).reduce((a, s) => a + s.n, 0);
    assert.equal(total('embedding.cnn0.'), 22817);
    assert.equal(total('embedding.mlp.'), 90400);
    assert.equal(total('embedding.'), 158851);
    assert.equal(net.outputDim, 100);
    const y = tf.tidy(() => {
      const out = net.forward(tf.tensor2d(uniform(2 * 2400, 8), [2, 2400]));
      return { shape: out.shape, finite: out.isFinite().all().dataSync()[0] };
    });
    assert.deepEqual(y.shape, [2, 100]);
    assert.equal(y.finite, 1);
    store.dispose();
  });

  test('x must split into equal series', () => {
    assert.throws(
      () => new PyloricCnn(new ParamStore(), 'e', 2401, createRng(1)),
      /2401 values, not 3 series/,
    );
    assert.throws(
      () => new PyloricCnn(new ParamStore(), 'e', 30, createRng(1)),
      /too short for the conv stack/,
    );
  });

  // Small x (3 series of 60: 58 -> 19 -> 17 -> 5 -> 3 -> 1) with RABI's channels and widths.
  const XDIM = 180;
  const ZS: ZScore = {
    thetaMean: [0.1, -0.2],
    thetaStd: [1.2, 0.8],
    xMean: new Array<number>(XDIM).fill(0.1),
    xStd: new Array<number>(XDIM).fill(1.3),
  };

  test('second order through a MAF with the embedding: d/dW ||d logProb / dx||^2 matches finite differences', () => {
    const est = createEstimator('maf', {
      thetaDim: 2,
      xDim: XDIM,
      zscore: ZS,
      config: { hidden: [16, 16], embedding: 'pyloric-cnn' },
      rng: createRng(3),
    });
    const theta = tf.tensor2d([
      [0.3, -0.4],
      [-1.2, 0.5],
    ]);
    const x = tf.tensor2d(
      uniform(2 * XDIM, 9).map((v) => 2 * v),
      [2, XDIM],
    );
    const h = (): tf.Scalar =>
      tf.sum(
        tf.square(tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(theta, xx as tf.Tensor2D)))(x)),
      );
    const vars = est.trainableVariables();
    const names = est.getWeights().map((w) => w.name);
    // The first conv layer's weight and bias: the far end of the chain the regularizer differentiates.
    for (const name of ['embedding.cnn1.conv1.weight', 'embedding.cnn0.conv2.bias']) {
      const v = vars[names.indexOf(name)]!;
      const { value, grads } = tf.variableGrads(h, [v]);
      value.dispose();
      const g = grads[v.name]!.dataSync();
      let k = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
      assert.ok(g[k] !== 0, name);
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
      const scale = Math.max(1, Math.abs(f0));
      assert.ok(
        c.some((fd) => Math.abs(fd - g[k]!) <= 2e-4 * scale + 1e-2 * Math.abs(fd)),
        `${name}: analytic ${g[k]}, finite differences ${c.join(' / ')}`,
      );
      tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
      tf.dispose(grads);
    }
    tf.dispose([theta, x]);
    est.dispose();
  });

  test('a short FIM-regularized trainNPE keeps the tensor count flat', async () => {
    const n = 24;
    const rng = createRng(11);
    const theta = new Float32Array(n * 2);
    const xs = new Float32Array(n * XDIM);
    rng.fillUniform(theta);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < XDIM; j++)
        xs[i * XDIM + j] = Math.sin(0.2 * j * (1 + theta[2 * i]!)) + theta[2 * i + 1]!;
    const counts: number[] = [];
    const start = tf.memory().numTensors;
    const defense = new FimTraceDefense({ beta: 1 });
    const result = await trainNPE({
      data: { theta, x: xs, n },
      thetaDim: 2,
      xDim: XDIM,
      createModel: (z) =>
        createEstimator('maf', {
          thetaDim: 2,
          xDim: XDIM,
          zscore: z,
          config: { hidden: [8, 8], numTransforms: 1, embedding: 'pyloric-cnn' },
          rng: createRng(12),
        }),
      rng: createRng(13),
      defense,
      hyperparameters: { batchSize: 16, maxEpochs: 3, learningRate: 1e-3, patience: 100 },
      onEpoch: () => void counts.push(tf.memory().numTensors),
    });
    assert.equal(counts.length, 3);
    assert.ok(
      counts.every((c) => c === counts[0]),
      `tensor counts per epoch ${counts.join(', ')}`,
    );
    assert.ok(result.trainLosses.every((l) => Number.isFinite(l)));
    result.model.dispose();
    defense.dispose(); // its EMA of the regularizer's gradient, one tensor per weight
    assert.equal(tf.memory().numTensors, start);
  });
});
