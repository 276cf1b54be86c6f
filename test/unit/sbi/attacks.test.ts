// Attacks against a conditional Gaussian whose answers are known in closed form (see
// linear-gaussian.ts): PGD must reach 1/2 eps^2 lambda_max, noise must stay at its expectation
// tr(F) eps^2 / (2 (d + 2)), power iteration must find the top FIM eigenvector.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import { rowNorms, uniformL2Ball } from '../../../sbi/attacks/ball.js';
import {
  absoluteEps,
  autoStepSize,
  clipBoxOf,
  meanPerSampleStd,
} from '../../../sbi/attacks/eps.js';
import { fimEigenAttack, scoresAt, topFisherEigen } from '../../../sbi/attacks/fim-eigen.js';
import { attackInBatches, runAttack } from '../../../sbi/attacks/index.js';
import { uniformNoise } from '../../../sbi/attacks/noise.js';
import { klPerRow } from '../../../sbi/attacks/objectives.js';
import { l2Pgd, linfPgd } from '../../../sbi/attacks/pgd.js';
import {
  HeteroscedasticGaussian,
  LinearGaussian,
  lowerInverse,
  matMul,
  symmetricEigen,
  transpose,
  type Matrix,
} from './linear-gaussian.js';

const A: Matrix = [
  [1.0, 0.5, 0.0, -0.3, 0.2],
  [0.0, 1.5, 0.4, 0.0, -0.6],
  [0.3, 0.0, 0.8, 1.2, 0.0],
];
const L: Matrix = [
  [0.5, 0, 0],
  [0.1, 0.4, 0],
  [-0.2, 0.1, 0.6],
];
const B = [0.3, -0.2, 0.1];
const WIDE_BOX = { min: -1e3, max: 1e3 };

let est: LinearGaussian;
let lambdaMax: number;
let vMax: number[];
let traceF: number;

before(async () => {
  await initBackend('cpu');
  est = new LinearGaussian(A, B, L);
  const eig = symmetricEigen(est.fisher());
  lambdaMax = eig.values[0]!;
  vMax = eig.vectors[0]!;
  traceF = eig.values.reduce((s, v) => s + v, 0);
});

function testXs(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * 5);
  createRng(seed).fillNormal(out);
  return out;
}

/** Closed-form KL for every row of x~ - x. */
function closedFormKls(x: Float32Array, xAdv: Float32Array, d: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length / d; i++) {
    const delta = Array.from({ length: d }, (_, j) => xAdv[i * d + j]! - x[i * d + j]!);
    out.push(est.klForDelta(delta));
  }
  return out;
}

/**
 * The global maximum over ||delta|| = eps of the NLL 1/2 |r - M delta|^2 + c, r = L^-1 (theta - A x - b),
 * M = L^-1 A: delta = (H - mu I)^-1 M^T r with H = M^T M and mu > lambda_max(H) fixed by the norm
 * (the trust-region secular equation, solved by bisection).
 */
function globalNllMax(xs: Float32Array, thetas: Float32Array, eps: number): number[] {
  const linv = lowerInverse(L);
  const m = matMul(linv, A);
  const eig = symmetricEigen(matMul(transpose(m), m));
  const logNorm = -L.reduce((s, row, i) => s + Math.log(row[i]!), 0) - 1.5 * Math.log(2 * Math.PI);
  const out: number[] = [];
  for (let i = 0; i < xs.length / 5; i++) {
    const x = Array.from(xs.subarray(i * 5, i * 5 + 5));
    const resid = [0, 1, 2].map(
      (k) => thetas[i * 3 + k]! - B[k]! - A[k]!.reduce((s, a, j) => s + a * x[j]!, 0),
    );
    const r = linv.map((row) => row.reduce((s, v, k) => s + v * resid[k]!, 0));
    const g = [0, 1, 2, 3, 4].map((j) => m.reduce((s, row, k) => s + row[j]! * r[k]!, 0));
    const coef = eig.vectors.map((v) => v.reduce((s, e, j) => s + e * g[j]!, 0));
    const deltaAt = (mu: number) => {
      const d = new Array<number>(5).fill(0);
      eig.values.forEach((lam, k) =>
        eig.vectors[k]!.forEach((e, j) => (d[j]! += (coef[k]! / (lam - mu)) * e)),
      );
      return d;
    };
    const norm = (d: number[]) => Math.hypot(...d);
    let lo = eig.values[0]! + 1e-12;
    let hi = eig.values[0]! + 1e6;
    for (let it = 0; it < 200; it++) {
      const mid = 0.5 * (lo + hi);
      if (norm(deltaAt(mid)) > eps) lo = mid;
      else hi = mid;
    }
    const d = deltaAt(hi);
    const md = m.map((row) => row.reduce((s, v, j) => s + v * d[j]!, 0));
    out.push(0.5 * r.reduce((s, v, k) => s + (v - md[k]!) ** 2, 0) - logNorm);
  }
  return out;
}

const mean = (v: number[]) => v.reduce((s, e) => s + e, 0) / v.length;

describe('relative epsilon and the clip box', () => {
  test('mean per-sample std (Bessel-corrected), absolute eps, box and auto step', () => {
    // row 1: [1, 2, 3] -> std 1; row 2: [0, 0, 4] -> sqrt(16/3)
    const xs = new Float32Array([1, 2, 3, 0, 0, 4]);
    const scale = meanPerSampleStd(xs, 2, 3);
    assert.ok(Math.abs(scale - (1 + Math.sqrt(16 / 3)) / 2) < 1e-6);
    assert.ok(Math.abs(absoluteEps(2, scale) - (1 + Math.sqrt(16 / 3))) < 1e-6);
    assert.deepEqual(clipBoxOf(xs), { min: 0, max: 4 });
    assert.equal(autoStepSize(1, 200), 0.1);
    assert.ok(Math.abs(autoStepSize(1, 120) - 1 / 6) < 1e-12);
    assert.equal(autoStepSize(1, 10), 1);
  });
});

describe('uniform L2 ball', () => {
  test('radius law r U^(1/d) and second moment r^2 d / (d + 2)', async () => {
    const n = 4000;
    const d = 5;
    const r = 2;
    const pts = uniformL2Ball(n, d, r, createRng(3));
    const norms = Array.from(await rowNorms(pts).data());
    const sq = Array.from(await tf.sum(tf.square(pts), 1).data());
    pts.dispose();
    assert.ok(Math.max(...norms) <= r * (1 + 1e-6));
    // E[||delta|| / r] = d / (d + 1); std of ||delta||/r is about 0.14, so the error is below 0.01
    assert.ok(Math.abs(mean(norms) / r - d / (d + 1)) < 0.01, `mean radius ${mean(norms)}`);
    assert.ok(Math.abs(mean(sq) / (r * r) - d / (d + 2)) < 0.015, `second moment ${mean(sq)}`);
  });
});

describe('Monte Carlo KL objectives', () => {
  test('rkl and fkl match the closed form of the linear Gaussian within MC error', async () => {
    const x = tf.tensor2d([
      [0.1, -0.4, 0.2, 0.0, 1.0],
      [1.0, 0.3, -0.5, 0.2, 0.0],
    ]);
    const deltas = [
      [0.2, -0.1, 0.3, 0.0, 0.1],
      [-0.3, 0.2, 0.0, 0.1, 0.2],
    ];
    const xAdv = tf.add(x, tf.tensor2d(deltas)) as tf.Tensor2D;
    const n = 4000;
    for (const div of ['rkl', 'fkl'] as const) {
      const kl = await klPerRow(est, div, xAdv, x, createRng(7), {
        samples: n,
        differentiable: true,
      }).data();
      deltas.forEach((dl, i) => {
        const exact = est.klForDelta(dl);
        // per-sample variance of the estimator is |L^-1 A delta|^2 = 2 KL
        const sd = Math.sqrt((2 * exact) / n);
        assert.ok(Math.abs(kl[i]! - exact) < 4 * sd, `${div} row ${i}: ${kl[i]} vs ${exact}`);
      });
    }
    tf.dispose([x, xAdv]);
  });

  test('rkl is KL(q(.|x~) || q(.|x)) and fkl is KL(q(.|x) || q(.|x~)), not swapped', async () => {
    const het = new HeteroscedasticGaussian();
    const xs = [0, 0.5, -0.3];
    const advs = [1.2, -0.8, 0.9];
    const x = tf.tensor2d(xs, [3, 1]);
    const xAdv = tf.tensor2d(advs, [3, 1]);
    const n = 20000;
    const rkl = await klPerRow(het, 'rkl', xAdv, x, createRng(1), {
      samples: n,
      differentiable: false,
    }).data();
    const fkl = await klPerRow(het, 'fkl', xAdv, x, createRng(2), {
      samples: n,
      differentiable: false,
    }).data();
    xs.forEach((xi, i) => {
      const rExact = HeteroscedasticGaussian.kl(advs[i]!, xi);
      const fExact = HeteroscedasticGaussian.kl(xi, advs[i]!);
      assert.ok(Math.abs(rExact - fExact) > 0.1, 'the case must tell the directions apart');
      assert.ok(Math.abs(rkl[i]! - rExact) < 0.05 * rExact + 0.02, `rkl ${rkl[i]} vs ${rExact}`);
      assert.ok(Math.abs(fkl[i]! - fExact) < 0.05 * fExact + 0.02, `fkl ${fkl[i]} vs ${fExact}`);
    });
    tf.dispose([x, xAdv]);
  });
});

describe('L2 PGD', () => {
  test('reaches the worst case 1/2 eps^2 lambda_max for both objectives; noise stays at its expectation', async () => {
    const n = 24;
    const xs = testXs(n, 11);
    // eps where the worst-case KL is 8, so the signal dominates the 5-sample gradient noise
    const eps = Math.sqrt((2 * 8) / lambdaMax);
    const worst = 0.5 * eps * eps * lambdaMax;
    for (const div of ['rkl', 'fkl'] as const) {
      const adv = await attackInBatches(
        'l2pgd',
        { estimator: est, epsAbs: eps, box: WIDE_BOX, rng: createRng(5) },
        xs,
        undefined,
        { divergence: div },
        10,
      );
      const kls = closedFormKls(xs, adv, 5);
      assert.ok(
        Math.min(...kls) > 0.97 * worst,
        `${div}: min KL ${Math.min(...kls)} vs worst case ${worst}`,
      );
      assert.ok(
        Math.max(...kls) < worst * (1 + 1e-4),
        `${div}: KL ${Math.max(...kls)} exceeds the worst case ${worst}`,
      );
    }
    // noise: E[delta delta^T] = eps^2 / (d + 2) I, so E[KL] = tr(F) eps^2 / (2 (d + 2))
    const nNoise = 3000;
    const xn = testXs(nNoise, 12);
    const noisy = await attackInBatches(
      'noise',
      { estimator: est, epsAbs: eps, box: WIDE_BOX, rng: createRng(6) },
      xn,
      undefined,
      { divergence: 'rkl' },
    );
    const noiseMean = mean(closedFormKls(xn, noisy, 5));
    const expected = (traceF * eps * eps) / (2 * 7);
    assert.ok(
      Math.abs(noiseMean - expected) < 0.05 * expected,
      `noise KL ${noiseMean} vs ${expected}`,
    );
    assert.ok(noiseMean < 0.5 * worst, `noise KL ${noiseMean} is not well below ${worst}`);
  });

  test('no iterate leaves the ball or the clip box; a tight box binds', async () => {
    const n = 16;
    // xs uniform in [-1, 1]: the box is nearly [-1, 1] and binds at eps 1.5
    const xs = testXs(n, 13).map((v) => Math.tanh(v));
    const box = clipBoxOf(xs);
    const x = tf.tensor2d(xs, [n, 5]);
    const eps = 1.5;
    let steps = 0;
    let worstNorm = 0;
    let outside = 0;
    const adv = l2Pgd(
      { estimator: est, x, epsAbs: eps, box, rng: createRng(8) },
      {
        objective: 'rkl',
        steps: 30,
        onIterate: (it) => {
          steps++;
          const v = it.dataSync();
          const norms = tf.tidy(() => rowNorms(tf.sub(it, x) as tf.Tensor2D).dataSync());
          worstNorm = Math.max(worstNorm, ...norms);
          for (const e of v) if (e < box.min - 1e-6 || e > box.max + 1e-6) outside++;
        },
      },
    );
    assert.equal(steps, 30);
    assert.ok(worstNorm <= eps * (1 + 1e-5), `an iterate left the ball: ${worstNorm}`);
    assert.equal(outside, 0);
    const a = adv.dataSync();
    assert.ok(
      a.some((v) => v === box.min || v === box.max),
      'the box should bind somewhere at this eps',
    );
    // Linf: every coordinate of delta within eps
    const advInf = linfPgd(
      { estimator: est, x, epsAbs: 0.4, box, rng: createRng(9) },
      { objective: 'fkl', steps: 20 },
    );
    const dInf = tf.tidy(() => tf.max(tf.abs(tf.sub(advInf, x))).dataSync()[0]!);
    assert.ok(dInf <= 0.4 * (1 + 1e-5));
    assert.ok(advInf.dataSync().every((v) => v >= box.min && v <= box.max));
    tf.dispose([x, adv, advInf]);
  });

  test('Linf PGD ends at a vertex of the cube, at or above the inscribed L2 worst case', async () => {
    const n = 8;
    const xs = testXs(n, 14);
    const eps = 0.8;
    // a convex quadratic is maximized over the cube at a vertex; other vertices can be local maxima
    let best = 0;
    for (let m = 0; m < 32; m++) {
      best = Math.max(
        best,
        est.klForDelta(Array.from({ length: 5 }, (_, j) => ((m >> j) & 1 ? eps : -eps))),
      );
    }
    const adv = await attackInBatches(
      'linfpgd',
      { estimator: est, epsAbs: eps, box: WIDE_BOX, rng: createRng(15) },
      xs,
      undefined,
      { divergence: 'rkl' },
    );
    for (let i = 0; i < xs.length; i++)
      assert.ok(Math.abs(Math.abs(adv[i]! - xs[i]!) - eps) < 1e-4, 'not at a vertex');
    const kls = closedFormKls(xs, adv, 5);
    // the cube contains the L2 ball of radius eps
    assert.ok(Math.min(...kls) >= 0.5 * eps * eps * lambdaMax, `Linf KL ${Math.min(...kls)}`);
    assert.ok(
      Math.max(...kls) > 0.999 * best,
      `no row found the best vertex ${best}: ${Math.max(...kls)}`,
    );
  });

  test('the targeted nll attack ends at a constrained local maximum, mostly the global one', async () => {
    const n = 12;
    const xs = testXs(n, 16);
    const x = tf.tensor2d(xs, [n, 5]);
    const theta = tf.tidy(() => tf.squeeze(est.sample(x, 1, createRng(17)), [0]) as tf.Tensor2D);
    const eps = 1;
    const adv = runAttack(
      'nll',
      { estimator: est, x, theta, epsAbs: eps, box: WIDE_BOX, rng: createRng(18) },
      { divergence: 'rkl' },
    );
    const nllAdv = await tf.neg(est.logProb(theta, adv)).data();
    const nllClean = await tf.neg(est.logProb(theta, x)).data();
    // KKT on the sphere: the NLL gradient at x~ points along delta, outward
    const g = tf.grad((xx: tf.Tensor) => tf.neg(tf.sum(est.logProb(theta, xx as tf.Tensor2D))))(
      adv,
    );
    const delta = tf.sub(adv, x);
    const cos = await tf
      .div(tf.sum(tf.mul(g, delta), 1), tf.mul(tf.norm(g, 2, 1), tf.norm(delta, 2, 1)))
      .data();
    const norms = await tf.norm(delta, 2, 1).data();
    const globals = globalNllMax(xs, (await theta.data()) as Float32Array, eps);
    let atGlobal = 0;
    for (let i = 0; i < n; i++) {
      assert.ok(nllAdv[i]! > nllClean[i]! + 1, `row ${i}: ${nllAdv[i]} vs clean ${nllClean[i]}`);
      assert.ok(Math.abs(norms[i]! - eps) < 1e-4, `row ${i} is not on the sphere`);
      assert.ok(cos[i]! > 0.999, `row ${i} is not a constrained stationary point (cos ${cos[i]})`);
      assert.ok(nllAdv[i]! <= globals[i]! * (1 + 1e-4), `row ${i} exceeds the global maximum`);
      if (nllAdv[i]! > globals[i]! * 0.99) atGlobal++;
    }
    // a single random start lands in the one non-global local maximum for some rows (as in RABI)
    assert.ok(atGlobal >= n / 2, `only ${atGlobal} of ${n} rows reached the global maximum`);
    tf.dispose([x, theta, adv, g, delta]);
  });

  test('deterministic given the seed and free of leaked tensors', () => {
    const x = tf.tensor2d(testXs(4, 19), [4, 5]);
    const setup = { estimator: est, x, epsAbs: 0.5, box: WIDE_BOX };
    const before = tf.memory().numTensors;
    const a = l2Pgd({ ...setup, rng: createRng(20) }, { objective: 'rkl', steps: 10 });
    assert.equal(tf.memory().numTensors, before + 1);
    const b = l2Pgd({ ...setup, rng: createRng(20) }, { objective: 'rkl', steps: 10 });
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    const c = fimEigenAttack(
      { ...setup, rng: createRng(21) },
      { divergence: 'rkl', fimSamples: 32 },
    );
    const nz = uniformNoise({ ...setup, rng: createRng(22) });
    assert.equal(tf.memory().numTensors, before + 4);
    tf.dispose([x, a, b, c, nz]);
  });
});

describe('FIM eigen-attack', () => {
  test('power iteration finds the known top eigenvector and eigenvalue', async () => {
    const x = tf.tensor2d(testXs(3, 23), [3, 5]);
    const scores = scoresAt(est, x, 8000, createRng(24));
    const top = topFisherEigen(scores, createRng(25));
    const v = await top.vector.array();
    const lam = await top.value.data();
    for (let i = 0; i < 3; i++) {
      const dot = Math.abs(v[i]!.reduce((s, e, j) => s + e * vMax[j]!, 0));
      assert.ok(dot > 0.995, `row ${i}: |v . v_max| = ${dot}`);
      // the Monte Carlo FIM from 8000 samples is within a few % of the exact one
      assert.ok(
        Math.abs(lam[i]! - lambdaMax) < 0.05 * lambdaMax,
        `row ${i}: ${lam[i]} vs ${lambdaMax}`,
      );
    }
    tf.dispose([x, scores, top.vector, top.value]);
  });

  test('x + eps v_max attains 1/2 eps^2 lambda_max', async () => {
    const n = 6;
    const xs = testXs(n, 26);
    const eps = 0.3;
    const adv = await attackInBatches(
      'fim-eigen',
      { estimator: est, epsAbs: eps, box: WIDE_BOX, rng: createRng(27) },
      xs,
      undefined,
      { divergence: 'rkl', fimSamples: 2000 },
    );
    const kls = closedFormKls(xs, adv, 5);
    const worst = 0.5 * eps * eps * lambdaMax;
    assert.ok(Math.min(...kls) > 0.97 * worst, `${Math.min(...kls)} vs ${worst}`);
  });
});
