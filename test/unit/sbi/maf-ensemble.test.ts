// RABI's maf_ensemble: the mixture density against its members', the component draws (one member
// per sample index, shared by the rows of x, shuffled), the mixture's moments against its members',
// per-member orders in the config, the shuffle op's derivatives, and a short training run.
// (The generic estimator suite, estimators.test.ts, covers it too: normalization, second order.)
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createDefense } from '../../../sbi/defenses/index.js';
import { createEstimator, restoreEstimator } from '../../../sbi/estimators/index.js';
import { MafEnsemble } from '../../../sbi/estimators/maf-ensemble.js';
import { identityZScore } from '../../../sbi/estimators/zscore.js';
import { trainNPE } from '../../../sbi/npe.js';
import { permuteRows } from '../../../sbi/ops.js';
import { createRng } from '../../../sbi/rng.js';
import type { ZScore } from '../../../sbi/types.js';
import { linearData } from './npe-fixtures.js';

before(async () => {
  await initBackend('cpu');
});

const ZS: ZScore = {
  thetaMean: [0.5, -1],
  thetaStd: [2, 0.5],
  xMean: [0.3, -0.2, 1],
  xStd: [1.5, 0.7, 2],
};

function ensemble(
  members: number,
  config: Record<string, unknown> = {},
  zscore = ZS,
  seed = 1,
): MafEnsemble {
  const e = createEstimator('maf_ensemble', {
    thetaDim: zscore.thetaMean.length,
    xDim: zscore.xMean.length,
    zscore,
    config: { members, hidden: [16, 16], ...config },
    rng: createRng(seed),
  });
  assert.ok(e instanceof MafEnsemble);
  return e;
}

/**
 * Member k made x-independent with known moments: every weight 0 but the last layer's bias, so
 * with one transform member k is N(mu_k, diag(exp(s_k))^2) in z-scored units (identity z-score here).
 */
function pinMembers(e: MafEnsemble, mu: (k: number) => number[], s: (k: number) => number[]): void {
  e.setWeights(
    e.getWeights().map((w) => {
      const m = /^m(\d+)\.t0\.out\.bias$/.exec(w.name);
      const values = m ? [...mu(Number(m[1])), ...s(Number(m[1]))] : w.values.map(() => 0);
      return { ...w, values };
    }),
  );
}

describe('maf_ensemble', () => {
  test('logProb is log mean exp of the members’ logProb, each member its own MAF', () => {
    const e = ensemble(4);
    assert.equal(e.size, 4);
    const rng = createRng(3);
    const lp = tf.tidy(() => {
      const theta = tf.mul(rng.normalTensor([6, 2]), 2) as tf.Tensor2D;
      const x = rng.normalTensor([6, 3]) as tf.Tensor2D;
      const mix = e.logProb(theta, x).dataSync();
      const parts = [0, 1, 2, 3].map((k) => e.member(k).logProb(theta, x).dataSync());
      return { mix, parts };
    });
    for (let r = 0; r < 6; r++) {
      const ls = lp.parts.map((p) => p[r]!);
      const m = Math.max(...ls);
      const expected = m + Math.log(ls.reduce((a, l) => a + Math.exp(l - m), 0) / 4);
      assert.ok(
        Math.abs(lp.mix[r]! - expected) <= 1e-5 * Math.max(1, Math.abs(expected)),
        `row ${r}: ${lp.mix[r]} vs ${expected}`,
      );
      // The members really differ (their own weights and orders).
      assert.ok(Math.max(...ls) - Math.min(...ls) > 1e-3, `row ${r}: members agree`);
    }
    e.dispose();
  });

  test('config: defaults, one order list per member drawn from the seed, bad settings refused', () => {
    const e = createEstimator('maf_ensemble', {
      thetaDim: 3,
      xDim: 2,
      zscore: identityZScore(3, 2),
      config: { hidden: [4] },
      rng: createRng(7),
    });
    assert.equal(e.config.members, 10);
    assert.equal(e.config.numTransforms, 3);
    const orders = e.config.orders as number[][][];
    assert.equal(orders.length, 10);
    for (const o of orders) assert.equal(o.length, 3);
    assert.ok(new Set(orders.map((o) => JSON.stringify(o))).size > 1, 'members share orders');
    const names = e.getWeights().map((w) => w.name);
    assert.ok(names.includes('m0.t0.out.bias') && names.includes('m9.t2.out.bias'));
    assert.equal(e.trainableVariables().length, names.length);
    e.dispose();
    const z = identityZScore(1, 1);
    const mk = (config: Record<string, unknown>) => () =>
      createEstimator('maf_ensemble', {
        thetaDim: 1,
        xDim: 1,
        zscore: z,
        config,
        rng: createRng(0),
      });
    assert.throws(mk({ members: 0 }), /"members" must be a positive integer/);
    assert.throws(mk({ members: 2.5 }), /"members" must be a positive integer/);
    assert.throws(mk({ affine: 'up' }), /"affine" must be one of robustsbi, pyro/);
    assert.throws(
      () => restoreEstimator('maf_ensemble', 1, 1, { members: 2, hidden: [4] }, z, []),
      /must hold its variable orders/,
    );
  });

  test('sampling: one member per sample index, counts from the stream, shared by rows, shuffled', () => {
    const K = 4;
    const e = ensemble(K, { numTransforms: 1 }, identityZScore(2, 3));
    // Member k sits at (10k, -10k) with std 0.1: each draw names its member.
    pinMembers(
      e,
      (k) => [10 * k, -10 * k],
      () => [Math.log(0.1), Math.log(0.1)],
    );
    const n = 4000;
    const B = 3;
    const x = tf.tensor2d([
      [0, 0, 0],
      [1, -1, 2],
      [-3, 0.5, 1],
    ]);
    for (const method of ['sample', 'rsample'] as const) {
      const s = tf.tidy(() => e[method](x, n, createRng(11)).dataSync());
      const label = (m: number, b: number): number => Math.round(s[(m * B + b) * 2]! / 10) + 0;
      const counts = new Array<number>(K).fill(0);
      const labels: number[] = [];
      for (let m = 0; m < n; m++) {
        const k = label(m, 0);
        assert.ok(k >= 0 && k < K, `draw ${m} is near no member`);
        for (let b = 1; b < B; b++) assert.equal(label(m, b), k, `draw ${m}: rows disagree`);
        assert.ok(Math.abs(s[m * B * 2 + 1]! + 10 * k) < 1, `draw ${m}: second coordinate`);
        counts[k]! += 1;
        labels.push(k);
      }
      // The counts are those of the stream's first n uniform member draws.
      const rng = createRng(11);
      const expected = new Array<number>(K).fill(0);
      for (let m = 0; m < n; m++) expected[rng.int(K)]! += 1;
      assert.deepEqual(counts, expected, method);
      // ~ n / K each: 5 binomial standard deviations.
      const sd = Math.sqrt((n * (1 / K) * (1 - 1 / K)) / 1);
      for (const c of counts) assert.ok(Math.abs(c - n / K) < 5 * sd, `${method} counts ${counts}`);
      // Shuffled: not in member order, and members alternate often (a sorted run would change K-1 times).
      let changes = 0;
      for (let m = 1; m < n; m++) if (labels[m] !== labels[m - 1]) changes++;
      assert.ok(changes > n / 2, `${method}: ${changes} member changes`);
    }
    // sample and rsample draw the same numbers from the same stream.
    const a = tf.tidy(() => e.sample(x, 50, createRng(4)).dataSync());
    const b = tf.tidy(() => e.rsample(x, 50, createRng(4)).dataSync());
    assert.deepEqual(Array.from(a), Array.from(b));
    x.dispose();
    e.dispose();
  });

  test('the mixture’s sample mean and variance are the members’ mixed', () => {
    const K = 3;
    const e = ensemble(K, { numTransforms: 1 }, { ...identityZScore(2, 3) });
    const mu = (k: number): number[] => [2 * k - 1, 0.5 * k];
    const sd = (k: number): number[] => [0.5 + 0.5 * k, 1.5 - 0.4 * k];
    pinMembers(e, mu, (k) => sd(k).map(Math.log));
    const n = 20000;
    const s = tf.tidy(() => e.sample(tf.tensor2d([[0.2, 0.1, -0.3]]), n, createRng(21)).dataSync());
    for (let j = 0; j < 2; j++) {
      const mean = [0, 1, 2].reduce((a, k) => a + mu(k)[j]!, 0) / K;
      const second = [0, 1, 2].reduce((a, k) => a + sd(k)[j]! ** 2 + mu(k)[j]! ** 2, 0) / K;
      const variance = second - mean * mean;
      let m = 0;
      for (let r = 0; r < n; r++) m += s[r * 2 + j]! / n;
      let v = 0;
      for (let r = 0; r < n; r++) v += (s[r * 2 + j]! - m) ** 2 / (n - 1);
      assert.ok(Math.abs(m - mean) < 5 * Math.sqrt(variance / n), `dim ${j} mean ${m} vs ${mean}`);
      assert.ok(Math.abs(v - variance) < 0.05 * variance, `dim ${j} variance ${v} vs ${variance}`);
    }
    e.dispose();
  });

  test('weights: member-prefixed names, one bad entry changes nothing, z-score shared', () => {
    const e = ensemble(2);
    const theta = tf.tensor2d([[0.3, -1.2]]);
    const x = tf.tensor2d([[0.8, -0.5, 2.2]]);
    const lp = tf.tidy(() => e.logProb(theta, x).dataSync()[0]!);
    const w = e.getWeights();
    const last = w.length - 1;
    const bad = w.map((v, i) =>
      i === last ? { ...v, shape: [1] } : { ...v, values: v.values.map(() => 0) },
    );
    assert.throws(() => e.setWeights(bad), /has shape/);
    assert.throws(
      () => e.setWeights([...w, { ...w[0]!, name: 'm2.t0.in.bias' }]),
      /unexpected weight/,
    );
    assert.throws(() => e.setWeights(w.slice(1)), /missing weight "m0\./);
    assert.equal(
      tf.tidy(() => e.logProb(theta, x).dataSync()[0]!),
      lp,
    );
    const z2 = { ...ZS, thetaStd: [4, 1] };
    e.zscore = z2;
    assert.deepEqual(e.zscore, z2);
    assert.deepEqual(e.member(1).zscore, z2);
    tf.dispose([theta, x]);
    e.dispose();
  });

  test('permuteRows: values, and first and second derivatives (the inverse reordering)', () => {
    const perm = [2, 0, 3, 1];
    const x = tf.tensor2d([
      [1, -2],
      [0.5, 3],
      [-1.5, 0.25],
      [2, -0.75],
    ]);
    const c = tf.tensor2d([
      [0.3, -1],
      [2, 0.7],
      [-0.4, 1.1],
      [0.9, -2.2],
    ]);
    const v = tf.tensor2d([
      [1, 0.5],
      [-2, 1],
      [0.25, -1],
      [3, 2],
    ]);
    assert.deepEqual(
      tf.tidy(() => permuteRows(x, perm).arraySync()),
      perm.map((p) => (x.arraySync() as number[][])[p]),
    );
    // g(x) = sum c * permuteRows(x)^3: dg/dx_j = 3 c_{inv j} x_j^2; d/dx_j sum(v * dg/dx) = 6 v_j c_{inv j} x_j.
    const g = (xx: tf.Tensor): tf.Scalar => tf.sum(tf.mul(c, tf.pow(permuteRows(xx, perm), 3)));
    const first = tf.tidy(() => tf.grad(g)(x).arraySync()) as number[][];
    const second = tf.tidy(() =>
      tf
        .grad((xx: tf.Tensor) => tf.sum(tf.mul(v, tf.grad(g)(xx))))(x)
        .arraySync(),
    ) as number[][];
    const inv = [1, 3, 0, 2];
    const X = x.arraySync() as number[][];
    const C = c.arraySync() as number[][];
    const V = v.arraySync() as number[][];
    for (let j = 0; j < 4; j++)
      for (let d = 0; d < 2; d++) {
        const cj = C[inv[j]!]![d]!;
        assert.ok(Math.abs(first[j]![d]! - 3 * cj * X[j]![d]! ** 2) < 1e-4);
        assert.ok(Math.abs(second[j]![d]! - 6 * V[j]![d]! * cj * X[j]![d]!) < 1e-4);
      }
    assert.throws(() => permuteRows(x, [0, 0, 1, 2]), /not a permutation/);
    tf.dispose([x, c, v]);
  });

  test('trainNPE lowers the validation loss and keeps the tensor count flat', async () => {
    const before = tf.memory().numTensors;
    const data = linearData(600, createRng(5));
    const counts: number[] = [];
    const r = await trainNPE({
      data,
      thetaDim: 2,
      xDim: 3,
      createModel: (z) =>
        createEstimator('maf_ensemble', {
          thetaDim: 2,
          xDim: 3,
          zscore: z,
          config: { members: 3, hidden: [16, 16], numTransforms: 2 },
          rng: createRng(9),
        }),
      rng: createRng(9),
      hyperparameters: { batchSize: 64, maxEpochs: 4, minEpochs: 4, learningRate: 3e-3 },
      onEpoch: () => void counts.push(tf.memory().numTensors),
    });
    assert.equal(r.fused, false);
    assert.equal(r.valLosses.length, 4);
    assert.ok(r.valLosses[3]! < r.valLosses[0]! - 0.1, `val ${r.valLosses.join(', ')}`);
    assert.ok(
      counts.every((c) => c === counts[0]),
      `tensors per epoch ${counts.join(', ')}`,
    );
    assert.equal(r.model.kind, 'maf_ensemble');
    r.model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test('the FIM defense trains it (second order through logsumexp and the shuffle), finite and leak-free', async () => {
    const before = tf.memory().numTensors;
    const defense = createDefense('fim', { beta: 0.01 })!;
    const r = await trainNPE({
      data: linearData(200, createRng(6)),
      thetaDim: 2,
      xDim: 3,
      createModel: (z) =>
        createEstimator('maf_ensemble', {
          thetaDim: 2,
          xDim: 3,
          zscore: z,
          config: { members: 2, hidden: [8, 8], numTransforms: 1 },
          rng: createRng(2),
        }),
      rng: createRng(2),
      defense,
      hyperparameters: { batchSize: 64, maxEpochs: 2, minEpochs: 2, learningRate: 1e-3 },
    });
    assert.ok(r.trainLosses.every(Number.isFinite) && r.valLosses.every(Number.isFinite));
    r.model.dispose();
    defense.dispose?.(); // its gradient EMA
    assert.equal(tf.memory().numTensors, before);
  });
});
