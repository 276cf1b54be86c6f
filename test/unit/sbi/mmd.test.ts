// The MMD metric and attack (sbi/metrics/mmd.ts, attacks/objectives.ts mmdPerRow): the Gaussian
// closed form against quadrature, the linear-time estimate against the closed form (unbiased: the
// mean of many independent estimates lands on it; consistent: its variance falls as 1/pairs), the
// attack objective's gradient in x~ through rsample against finite differences, PGD on the MMD
// reaching the closed-form optimum of a conditional Gaussian, and the evaluation record it yields.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import { cholesky } from '../../../sbi/tasks/linalg.js';
import {
  RBF_DEFAULTS,
  gaussianMmdSquared,
  mmdSquaredLinear,
  type GaussianMoments,
  type RbfKernel,
} from '../../../sbi/metrics/mmd.js';
import { discrepancyUnderAttack } from '../../../sbi/metrics/robustness.js';
import { mmdPerRow, type AttackObjective } from '../../../sbi/attacks/objectives.js';
import { l2Pgd } from '../../../sbi/attacks/pgd.js';
import { createEstimator, identityZScore } from '../../../sbi/estimators/index.js';
import { evaluateRobustness } from '../../../sbi/evaluation.js';
import type { RandomStream } from '../../../sbi/types.js';
import {
  LinearGaussian,
  matMul,
  symmetricEigen,
  transpose,
  type Matrix,
} from './linear-gaussian.js';

before(async () => {
  await initBackend('cpu');
});

/** n draws of B rows from N(g.mean, g.cov): [n, B, D]. */
function draw(g: GaussianMoments, n: number, B: number, rng: RandomStream): tf.Tensor3D {
  const D = g.mean.length;
  const c = cholesky(g.cov);
  const eps = new Float64Array(n * B * D);
  rng.fillNormal(eps);
  const out = new Float32Array(n * B * D);
  for (let r = 0; r < n * B; r++)
    for (let i = 0; i < D; i++) {
      let v = g.mean[i]!;
      for (let k = 0; k <= i; k++) v += c[i]![k]! * eps[r * D + k]!;
      out[r * D + i] = v;
    }
  return tf.tensor3d(out, [n, B, D]);
}

function meanAndVar(v: ArrayLike<number>): { mean: number; variance: number } {
  const n = v.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i]!;
  const mean = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (v[i]! - mean) ** 2;
  return { mean, variance: q / (n - 1) };
}

const P: GaussianMoments = {
  mean: [0.5, -1, 2],
  cov: [
    [2.0, 0.6, 0.1],
    [0.6, 1.0, -0.3],
    [0.1, -0.3, 0.5],
  ],
};
const Q: GaussianMoments = {
  mean: [-0.5, 0.5, 1],
  cov: [
    [1.0, -0.2, 0.0],
    [-0.2, 3.0, 0.4],
    [0.0, 0.4, 0.7],
  ],
};

describe('MMD^2 between Gaussians in closed form', () => {
  test('matches a quadrature of the kernel expectations in one dimension', () => {
    const kernel: RbfKernel = { sigma: 1.3, l: 2.5 };
    const p = { mean: [0.4], cov: [[0.8]] };
    const q = { mean: [-1.1], cov: [[2.2]] };
    // E k(X, Y) by a 2-D midpoint rule over +-10 std.
    const ek = (a: GaussianMoments, b: GaussianMoments): number => {
      const grid = (g: GaussianMoments) => {
        const s = Math.sqrt(g.cov[0]![0]!);
        const m = 1600;
        const h = (20 * s) / m;
        return Array.from({ length: m }, (_, i) => {
          const x = g.mean[0]! - 10 * s + (i + 0.5) * h;
          const w =
            (h * Math.exp(-0.5 * ((x - g.mean[0]!) / s) ** 2)) / (s * Math.sqrt(2 * Math.PI));
          return [x, w] as const;
        });
      };
      const ga = grid(a);
      const gb = grid(b);
      let s = 0;
      for (const [x, wx] of ga)
        for (const [y, wy] of gb) s += wx * wy * Math.exp((-0.5 * (x - y) ** 2) / kernel.l);
      return kernel.sigma ** 2 * s;
    };
    const quad = ek(p, p) + ek(q, q) - 2 * ek(p, q);
    const closed = gaussianMmdSquared(p, q, kernel);
    assert.ok(Math.abs(closed - quad) < 1e-6 * Math.max(1, quad), `${closed} vs ${quad}`);
    assert.ok(closed > 0.05, `a clear difference: ${closed}`);
  });

  test('is zero for equal Gaussians and symmetric', () => {
    assert.ok(Math.abs(gaussianMmdSquared(P, P)) < 1e-12);
    assert.ok(Math.abs(gaussianMmdSquared(P, Q) - gaussianMmdSquared(Q, P)) < 1e-12);
  });
});

describe('the linear-time MMD^2 estimate', () => {
  const B = 3000;
  let perRow2: Float32Array;
  let perRow32: Float32Array;
  const exact = gaussianMmdSquared(P, Q, RBF_DEFAULTS);

  before(() => {
    // Every row is an independent estimate from its own draws of P and Q.
    const run = (n: number, seed: number) =>
      tf.tidy(() => {
        const rng = createRng(seed);
        return mmdSquaredLinear(draw(P, n, B, rng), draw(Q, n, B, rng)).dataSync() as Float32Array;
      });
    perRow2 = run(2, 11);
    perRow32 = run(32, 12);
  });

  test('is unbiased: the mean of many estimates lies within 4 standard errors of the closed form', () => {
    for (const [name, v] of [
      ['1 pair', perRow2],
      ['16 pairs', perRow32],
    ] as const) {
      const { mean, variance } = meanAndVar(v);
      const se = Math.sqrt(variance / v.length);
      assert.ok(Math.abs(mean - exact) < 4 * se, `${name}: ${mean} vs ${exact} (se ${se})`);
    }
    // Not a vacuous check: the standard error is small against the value.
    assert.ok(Math.sqrt(meanAndVar(perRow32).variance / B) < 0.05 * exact);
  });

  test('converges: its variance falls as 1 / pairs (16 pairs: 1/16 of one pair)', () => {
    const ratio = meanAndVar(perRow32).variance / meanAndVar(perRow2).variance;
    // Variance estimates from 3000 rows each have ~3% relative error; allow 25%.
    assert.ok(ratio > 0.75 / 16 && ratio < 1.25 / 16, `variance ratio ${ratio}, expected 1/16`);
  });

  test('odd sample counts drop the last draw; fewer than 2 is an error', () => {
    const a = tf.tidy(() => {
      const rng = createRng(3);
      const p = draw(P, 5, 4, rng);
      const q = draw(Q, 5, 4, rng);
      const five = mmdSquaredLinear(p, q).arraySync();
      const four = mmdSquaredLinear(
        tf.slice(p, [0, 0, 0], [4, 4, 3]) as tf.Tensor3D,
        tf.slice(q, [0, 0, 0], [4, 4, 3]) as tf.Tensor3D,
      ).arraySync();
      return { five, four };
    });
    assert.deepEqual(a.five, a.four);
    const one = tf.zeros([1, 2, 3]) as tf.Tensor3D;
    assert.throws(() => mmdSquaredLinear(one, one), /at least 2 samples/);
    one.dispose();
  });
});

// A conditional Gaussian q(theta | x) = N(A x + b, L L^T): q(.|x~) and q(.|x) differ in their mean by
// A (x~ - x), so MMD^2 = 2 det(I + 2S/l)^-1/2 (1 - exp(-1/2 d^T (2S + l I)^-1 d)), d = A (x~ - x).
const A: Matrix = [
  [1.0, 0.5, 0.0, -0.3],
  [0.0, 1.5, 0.4, 0.0],
  [0.3, 0.0, 0.8, 1.2],
];
const L: Matrix = [
  [0.5, 0, 0],
  [0.1, 0.4, 0],
  [-0.2, 0.1, 0.6],
];
const BIAS = [0.3, -0.2, 0.1];

function closedMmd(est: LinearGaussian, x: number[], xAdv: number[]): number {
  const mean = (v: number[]) =>
    matMul(
      A,
      v.map((e) => [e]),
    ).map((r, i) => r[0]! + BIAS[i]!);
  return gaussianMmdSquared({ mean: mean(xAdv), cov: est.cov }, { mean: mean(x), cov: est.cov });
}

describe('the MMD attack objective', () => {
  let est: LinearGaussian;
  before(() => {
    est = new LinearGaussian(A, BIAS, L);
  });

  test('its gradient in x~ (through rsample, same draws) matches central finite differences', () => {
    const x = [0.2, -0.4, 1.0, 0.5];
    const xAdv = [1.2, 0.3, 0.1, -0.6];
    const f = (xa: tf.Tensor2D) =>
      tf.sum(
        mmdPerRow(est, xa, tf.tensor2d([x]), createRng(9), { samples: 8, differentiable: true }),
      );
    const g = tf.tidy(() =>
      tf
        .grad(f as (t: tf.Tensor) => tf.Tensor)(tf.tensor2d([xAdv]))
        .arraySync(),
    ) as number[][];
    const h = 1e-2;
    for (let j = 0; j < 4; j++) {
      const at = (s: number) =>
        tf.tidy(() =>
          f(tf.tensor2d([xAdv.map((v, k) => (k === j ? v + s * h : v))])).arraySync(),
        ) as number;
      const fd = (at(1) - at(-1)) / (2 * h);
      assert.ok(
        Math.abs(g[0]![j]! - fd) < 2e-3 + 2e-2 * Math.abs(fd),
        `dim ${j}: ${g[0]![j]} vs ${fd}`,
      );
    }
    assert.ok(
      g[0]!.some((v) => Math.abs(v) > 1e-3),
      'a gradient that is not zero',
    );
  });

  test('discrepancyUnderAttack("mmd") averages to the closed form over many x', async () => {
    const n = 400;
    const x = new Float32Array(n * 4);
    createRng(4).fillNormal(x);
    const xAdv = x.map((v, i) => v + (i % 4 === 1 ? 0.8 : -0.3));
    const values = await discrepancyUnderAttack(est, 'mmd', x, xAdv, createRng(5), {
      samples: 64,
      batchSize: 97,
    });
    const exact = closedMmd(est, [0, 0, 0, 0], [-0.3, 0.8, -0.3, -0.3]);
    const { mean, variance } = meanAndVar(values);
    const se = Math.sqrt(variance / n);
    assert.ok(Math.abs(mean - exact) < 4 * se, `${mean} vs ${exact} (se ${se})`);
    assert.ok(exact > 10 * se, 'the value is resolved');
  });

  test('L2 PGD on the MMD reaches the closed-form optimum over the ball', () => {
    // The optimum of a monotone function of d^T (2S + l I)^-1 d over |delta| = eps: delta along the
    // top eigenvector of A^T (2S + l I)^-1 A.
    const eps = 1.5;
    const m = est.cov.map((r, i) => r.map((v, j) => 2 * v + (i === j ? RBF_DEFAULTS.l : 0)));
    const mInv = (() => {
      // 3x3 inverse through the FIM helper: A^T M^-1 A with M = C C^T.
      const c = cholesky(m);
      const li = new LinearGaussian(
        [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ],
        [0, 0, 0],
        c,
      );
      return li.fisher();
    })();
    const top = symmetricEigen(matMul(transpose(A), matMul(mInv, A))).vectors[0]!;
    const best = closedMmd(
      est,
      [0, 0, 0, 0],
      top.map((v) => v * eps),
    );
    const x = [
      [0.1, 0.2, -0.3, 0.4],
      [-1, 0.5, 0.2, 0],
    ];
    const adv = tf.tidy(() =>
      l2Pgd(
        {
          estimator: est,
          x: tf.tensor2d(x),
          epsAbs: eps,
          box: { min: -1e3, max: 1e3 },
          rng: createRng(21),
        },
        { objective: 'mmd', steps: 60, mcSamples: 32 },
      ).arraySync(),
    ) as number[][];
    adv.forEach((row, r) => {
      const got = closedMmd(est, x[r]!, row);
      const norm = Math.hypot(...row.map((v, j) => v - x[r]![j]!));
      assert.ok(norm <= eps * (1 + 1e-5), `inside the ball: ${norm}`);
      assert.ok(got > 0.97 * best, `row ${r}: MMD^2 ${got} against the optimum ${best}`);
    });
  });

  test('a MAF with fused inference runs the MMD attack on tfjs, and the KL one on the kernels', () => {
    const maf = createEstimator('maf', {
      thetaDim: 2,
      xDim: 3,
      zscore: identityZScore(2, 3),
      config: { hidden: [8], numTransforms: 2 },
      rng: createRng(1),
    });
    let fusedCalls = 0;
    const original = maf.fusedInference?.bind(maf);
    assert.ok(original, 'the MAF offers fused inference');
    maf.fusedInference = () => {
      fusedCalls++;
      return original();
    };
    const run = (objective: AttackObjective) =>
      tf.tidy(() =>
        l2Pgd(
          {
            estimator: maf,
            x: tf.tensor2d([[0.1, 0.2, 0.3]]),
            epsAbs: 0.5,
            box: { min: -1e3, max: 1e3 },
            rng: createRng(2),
          },
          { objective, steps: 2 },
        ).arraySync(),
      ) as number[][];
    const before = tf.memory().numTensors;
    const out = run('mmd');
    assert.equal(fusedCalls, 0);
    assert.ok(out[0]!.every(Number.isFinite));
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    run('rkl');
    assert.equal(fusedCalls, 1);
    maf.dispose();
  });
});

describe('an evaluation with the mmd objective', () => {
  test('attacks and scores MMD^2 (record objective mmd), larger under PGD than under noise', async () => {
    const est = new LinearGaussian(A, BIAS, L);
    const n = 12;
    const theta = new Float32Array(n * 3);
    const x = new Float32Array(n * 4);
    createRng(30).fillNormal(x);
    const records = await evaluateRobustness(
      est,
      { theta, x, n },
      {
        attacks: ['l2pgd', 'noise'],
        divergences: ['mmd'],
        eps: [1],
        steps: 20,
        mcSamples: 16,
        evalSamples: 64,
        coverageSamples: 20,
        coverageLevels: 5,
      },
      createRng(31),
    );
    assert.deepEqual(
      records.map((r) => [r.attack, r.objective]),
      [
        ['l2pgd', 'mmd'],
        ['noise', 'mmd'],
      ],
    );
    const [pgd, noise] = records;
    assert.ok(pgd!.kl.mean > 2 * noise!.kl.mean, `${pgd!.kl.mean} vs ${noise!.kl.mean}`);
    est.dispose();
  });
});
