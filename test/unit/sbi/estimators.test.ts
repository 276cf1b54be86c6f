// The conditional density estimators (MAF, NSF, diagonal Gaussian, MDN): normalization by quadrature,
// sampling against logProb, flow inverses and log-determinants against finite-difference Jacobians,
// the theta z-score bijection, gradients of rsample w.r.t. x and the second-order gradient the FIM
// regularizer takes, against central finite differences; weights round trips; tensor leaks; and a
// short fit of a conditional Gaussian.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import type { DensityEstimator, EstimatorKind, ZScore } from '../../../sbi/types.js';
import {
  ESTIMATOR_KINDS,
  createEstimator,
  defaultEstimatorConfig,
  restoreEstimator,
} from '../../../sbi/estimators/index.js';
import { AutoregressiveFlow } from '../../../sbi/estimators/autoregressive.js';
import { DiagonalGaussian } from '../../../sbi/estimators/gaussian.js';
import { madeMasks } from '../../../sbi/estimators/made.js';
import { computeZScore } from '../../../sbi/estimators/zscore.js';

const SMALL: Record<EstimatorKind, Record<string, unknown>> = {
  maf: { hidden: [16, 16] },
  nsf: { hidden: [16, 16], bins: 6, tailBound: 3 },
  gaussian: { hidden: [16, 16] },
  mdn: { hidden: [16, 16], components: 3 },
  multivariate_gaussian: { hidden: [16, 16] },
  maf_ensemble: { members: 3, hidden: [16, 16] },
  linear_gaussian: {},
};

const ZS2: ZScore = {
  thetaMean: [0.5, -1],
  thetaStd: [2, 0.5],
  xMean: [0.3, -0.2, 1],
  xStd: [1.5, 0.7, 2],
};
const ZS1: ZScore = { thetaMean: [1], thetaStd: [0.5], xMean: [0.3, -0.2, 1], xStd: [1.5, 0.7, 2] };
const X0 = [0.8, -0.5, 2.2];

function make(
  kind: EstimatorKind,
  zscore: ZScore,
  seed = 1,
  extra: Record<string, unknown> = {},
): DensityEstimator {
  return createEstimator(kind, {
    thetaDim: zscore.thetaMean.length,
    xDim: zscore.xMean.length,
    zscore,
    config: { ...SMALL[kind], ...extra },
    rng: createRng(seed),
  });
}

function logProbAt(
  est: DensityEstimator,
  theta: Float32Array,
  rows: number,
  x: number[],
): Float32Array {
  return tf.tidy(() => {
    const t = tf.tensor2d(theta, [rows, est.thetaDim]);
    const xx = tf.tile(tf.tensor2d([x]), [rows, 1]) as tf.Tensor2D;
    return est.logProb(t, xx).dataSync() as Float32Array;
  });
}

/**
 * Mass, mean and covariance of q(.|x) by a Riemann sum on a sinh-stretched grid: theta_j = m_j +
 * s_j c sinh(t_j), t in [-T, T], so the grid is fine near the bulk and reaches c sinh(T) (~90) stds,
 * enough for an untrained flow's heavier tails.
 */
function quadrature(
  est: DensityEstimator,
  x: number[],
  h = 0.04,
  T = 4.5,
  c = 2,
): { mass: number; mean: number[]; cov: number[][] } {
  const D = est.thetaDim;
  const { thetaMean: m, thetaStd: s } = est.zscore;
  const k = Math.round((2 * T) / h) + 1;
  const rows = D === 1 ? k : k * k;
  const theta = new Float32Array(rows * D);
  const jac = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const idx = D === 1 ? [r] : [Math.floor(r / k), r % k];
    jac[r] = 1;
    for (let j = 0; j < D; j++) {
      const t = -T + h * idx[j]!;
      theta[r * D + j] = m[j]! + s[j]! * c * Math.sinh(t);
      jac[r]! *= s[j]! * c * Math.cosh(t) * h;
    }
  }
  const lp = logProbAt(est, theta, rows, x);
  let mass = 0;
  const mean = new Array<number>(D).fill(0);
  const second = Array.from({ length: D }, () => new Array<number>(D).fill(0));
  for (let r = 0; r < rows; r++) {
    const w = Math.exp(lp[r]!) * jac[r]!;
    mass += w;
    for (let i = 0; i < D; i++) {
      mean[i]! += w * theta[r * D + i]!;
      for (let j = 0; j < D; j++) second[i]![j]! += w * theta[r * D + i]! * theta[r * D + j]!;
    }
  }
  for (let i = 0; i < D; i++) mean[i]! /= mass;
  const cov = second.map((row, i) => row.map((v, j) => v / mass - mean[i]! * mean[j]!));
  return { mass, mean, cov };
}

function sampleMoments(
  est: DensityEstimator,
  x: number[],
  n: number,
): { mean: number[]; cov: number[][] } {
  const D = est.thetaDim;
  const s = tf.tidy(() => est.sample(tf.tensor2d([x]), n, createRng(99)).dataSync());
  const mean = new Array<number>(D).fill(0);
  for (let r = 0; r < n; r++) for (let i = 0; i < D; i++) mean[i]! += s[r * D + i]! / n;
  const cov = Array.from({ length: D }, (_, i) =>
    Array.from({ length: D }, (_, j) => {
      let acc = 0;
      for (let r = 0; r < n; r++) acc += (s[r * D + i]! - mean[i]!) * (s[r * D + j]! - mean[j]!);
      return acc / (n - 1);
    }),
  );
  return { mean, cov };
}

function close(actual: number, expected: number, atol: number, rtol: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= atol + rtol * Math.abs(expected),
    `${what}: got ${actual}, expected ${expected}`,
  );
}

/**
 * analytic vs finite differences of f at 0. Central differences, except that a ReLU kink inside one
 * step makes the two one-sided differences disagree; then the analytic value must match the kink-free
 * side's one-sided difference.
 */
function checkDerivative(
  analytic: number,
  f: (d: number) => number,
  eps: number,
  atol: number,
  rtol: number,
  what: string,
): void {
  const f0 = f(0);
  const fp = f(eps);
  const fm = f(-eps);
  const candidates = [(fp - fm) / (2 * eps), (fp - f0) / eps, (f0 - fm) / eps];
  const ok = (v: number): boolean => Math.abs(analytic - v) <= atol + rtol * Math.abs(v);
  assert.ok(Number.isFinite(analytic), `${what}: not finite`);
  assert.ok(
    candidates.some(ok),
    `${what}: analytic ${analytic}, central/right/left differences ${candidates.join(' / ')}`,
  );
}

before(async () => {
  await initBackend();
});

describe('estimator registry', () => {
  test('unknown names and settings get one clear sentence', () => {
    assert.throws(
      () => createEstimator('flow', { thetaDim: 1, xDim: 1, zscore: ZS1, rng: createRng(0) }),
      {
        message:
          'Unknown estimator "flow"; known: maf, nsf, gaussian, mdn, multivariate_gaussian, maf_ensemble, linear_gaussian',
      },
    );
    assert.throws(() => defaultEstimatorConfig('nope'), /Unknown estimator "nope"/);
    assert.throws(() => make('maf', ZS2, 1, { hiden: [3] }), /Unknown maf setting "hiden"/);
    assert.deepEqual(defaultEstimatorConfig('maf'), {
      hidden: [100, 100],
      numTransforms: 3,
      logScaleMin: -7,
      logScaleMax: 5,
    });
    assert.equal(defaultEstimatorConfig('nsf').bins, 12);
    assert.equal(defaultEstimatorConfig('mdn').components, 10);
    assert.deepEqual(ESTIMATOR_KINDS, [
      'maf',
      'nsf',
      'gaussian',
      'mdn',
      'multivariate_gaussian',
      'maf_ensemble',
      'linear_gaussian',
    ]);
  });

  test('MADE masks are autoregressive in the given order, context reaches every output', () => {
    const spec = {
      thetaDim: 3,
      ctxDim: 2,
      hidden: [5, 4],
      paramsPerDim: 2,
      order: [2, 0, 1],
      layout: 'paramMajor' as const,
    };
    const m = madeMasks(spec);
    // Paths from input j to output column c through both hidden layers.
    const paths = (j: number, c: number): number => {
      let total = 0;
      for (let a = 0; a < 5; a++)
        for (let b = 0; b < 4; b++)
          total += m.input[j * 5 + a]! * m.hidden[0]![a * 4 + b]! * m.output[b * 6 + c]!;
      return total;
    };
    // The context feeds every first-layer unit, so it reaches output c iff some hidden path does.
    const fromContext = (c: number): number => {
      let total = 0;
      for (let a = 0; a < 5; a++)
        for (let b = 0; b < 4; b++) total += m.hidden[0]![a * 4 + b]! * m.output[b * 6 + c]!;
      return total;
    };
    for (let c = 0; c < 6; c++) assert.ok(fromContext(c) > 0, `output ${c} must see the context`);
    const pos = [1, 2, 0]; // position of each dimension in the order
    for (let c = 0; c < 6; c++) {
      const dim = c % 3;
      for (let j = 0; j < 3; j++) {
        if (pos[j]! >= pos[dim]!)
          assert.equal(paths(j, c), 0, `output ${c} must not see theta ${j}`);
        else assert.ok(paths(j, c) > 0, `output ${c} should see theta ${j}`);
      }
    }
  });

  test('computeZScore: unbiased std, floors, non-finite rows excluded', () => {
    const theta = new Float32Array([1, 2, 3, NaN, 5]);
    const x = new Float32Array([0, 1, 0, 1, 10, 10, 0, 1, 7, 7]);
    const z = computeZScore(theta, x, 5, 1, 2);
    // Rows 0, 1, 2, 4: theta 1, 2, 3, 5; x col0 0, 0, 10, 7; col1 1, 1, 10, 7.
    close(z.thetaMean[0]!, 2.75, 1e-6, 0, 'theta mean');
    close(
      z.thetaStd[0]!,
      Math.sqrt((1.75 ** 2 + 0.75 ** 2 + 0.25 ** 2 + 2.25 ** 2) / 3),
      1e-6,
      0,
      'theta std',
    );
    close(z.xMean[0]!, 4.25, 1e-6, 0, 'x mean');
    const c = computeZScore(new Float32Array([1, 1, 1]), new Float32Array([2, 2, 2]), 3, 1, 1);
    assert.equal(c.xStd[0], 0.05); // RABI's floor for x
    assert.ok(c.thetaStd[0]! > 0 && c.thetaStd[0]! < 1e-6);
  });
});

describe('estimators', () => {
  for (const kind of ESTIMATOR_KINDS) {
    describe(kind, () => {
      test('density integrates to 1 (2-D and 1-D) and sample moments match quadrature', () => {
        const est = make(kind, ZS2);
        const q = quadrature(est, X0);
        close(q.mass, 1, 1e-2, 0, `${kind} 2-D mass`);
        const n = 20000;
        const s = sampleMoments(est, X0, n);
        for (let i = 0; i < 2; i++) {
          const se = Math.sqrt(q.cov[i]![i]! / n);
          close(s.mean[i]!, q.mean[i]!, 5 * se, 0, `${kind} mean ${i}`);
          for (let j = 0; j < 2; j++) {
            const scale = Math.sqrt(q.cov[i]![i]! * q.cov[j]![j]!);
            close(s.cov[i]![j]!, q.cov[i]![j]!, 0.06 * scale, 0, `${kind} cov ${i}${j}`);
          }
        }
        est.dispose();
        const est1 = make(kind, ZS1, 3);
        close(quadrature(est1, X0, 0.01).mass, 1, 1e-2, 0, `${kind} 1-D mass`);
        est1.dispose();
      });

      test('z-scoring theta is a bijection: theta * c shifts logProb by -D log c', () => {
        const est = make(kind, ZS2);
        const theta = new Float32Array([0.3, -1.2, 2.5, 0.1, -3, -0.7]);
        const x = [X0, [0, 0, 0], [-1, 2, 1]];
        const lp = tf.tidy(() =>
          est.logProb(tf.tensor2d(theta, [3, 2]), tf.tensor2d(x)).dataSync(),
        );
        const c = 3;
        est.zscore = {
          ...ZS2,
          thetaMean: ZS2.thetaMean.map((v) => v * c),
          thetaStd: ZS2.thetaStd.map((v) => v * c),
        };
        const scaled = theta.map((v) => v * c);
        const lp2 = tf.tidy(() =>
          est.logProb(tf.tensor2d(scaled, [3, 2]), tf.tensor2d(x)).dataSync(),
        );
        for (let r = 0; r < 3; r++)
          close(lp2[r]!, lp[r]! - 2 * Math.log(c), 1e-4, 1e-5, `row ${r}`);
        est.dispose();
      });

      test('rsample gradient w.r.t. x matches central finite differences for fixed noise', () => {
        const est = make(kind, ZS2);
        const x0 = [X0, [-1, 0.5, 0]];
        const w = tf.tensor3d(
          Array.from({ length: 3 * 2 * 2 }, (_, i) => Math.sin(i + 1)),
          [3, 2, 2],
        );
        const f = (x: tf.Tensor): tf.Scalar =>
          tf.sum(tf.mul(est.rsample(x as tf.Tensor2D, 3, createRng(7)), w));
        const g = tf.tidy(() => tf.grad(f)(tf.tensor2d(x0)).arraySync()) as number[][];
        // Small steps: a larger one may cross a ReLU kink, where the derivative jumps.
        const eps = 2e-3;
        for (let b = 0; b < 2; b++) {
          for (let j = 0; j < 3; j++) {
            const at = (d: number): number => {
              const xs = x0.map((r) => [...r]);
              xs[b]![j]! += d;
              return tf.tidy(() => f(tf.tensor2d(xs)).dataSync()[0]!);
            };
            checkDerivative(g[b]![j]!, at, eps, 3e-3, 2e-2, `${kind} d/dx[${b}][${j}]`);
          }
        }
        w.dispose();
        est.dispose();
      });

      test('second order: d/dweight ||d logProb / dx||^2 matches finite differences', () => {
        const est = make(kind, ZS2);
        const theta = tf.tensor2d([
          [0.3, -1.2],
          [2.5, 0.1],
        ]);
        const x = tf.tensor2d([X0, [-1, 0.5, 0]]);
        // sum_b ||d log q(theta_b | x_b) / d x_b||^2: what the FIM trace regularizer differentiates.
        const h = (): tf.Scalar =>
          tf.sum(
            tf.square(tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(theta, xx as tf.Tensor2D)))(x)),
          );
        const vars = est.trainableVariables();
        const { grads } = tf.variableGrads(h, vars);
        // In the first, a middle and the last-but-one variable, the entry with the largest gradient.
        const picks = [0, Math.floor(vars.length / 2), vars.length - 2];
        for (const vi of picks) {
          const v = vars[vi]!;
          const vals = v.dataSync().slice();
          const g = grads[v.name]!.dataSync();
          let k = 0;
          for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
          const analytic = g[k]!;
          assert.ok(
            analytic !== 0,
            `${kind} var ${vi}: some entry has a nonzero second-order gradient`,
          );
          const eps = 1e-3;
          const at = (d: number): number => {
            const moved = vals.slice();
            moved[k] = vals[k]! + d;
            tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
            return tf.tidy(() => h().dataSync()[0]!);
          };
          const scale = Math.max(1, at(0));
          checkDerivative(analytic, at, eps, 2e-4 * scale, 5e-3, `${kind} var ${vi} entry ${k}`);
          tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
        }
        tf.dispose(grads);
        tf.dispose([theta, x]);
        est.dispose();
      });

      test('the FIM-trace estimate through rsample (theta not detached) has FD-exact weight gradients', () => {
        const est = make(kind, ZS2);
        const x = tf.tensor2d([X0, [-1, 0.5, 0]]);
        // RABI's estimator: theta = rsample(x) keeps its graph to the weights; the score is taken
        // w.r.t. a separate copy of x (x_rep), so it does not differentiate through the sample.
        const xRep = tf.tensor2d([X0, [-1, 0.5, 0]]);
        const h = (): tf.Scalar => {
          const theta = tf.reshape(est.rsample(x, 1, createRng(5)), [2, 2]) as tf.Tensor2D;
          const score = tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(theta, xx as tf.Tensor2D)))(
            xRep,
          );
          return tf.sum(tf.square(score));
        };
        const vars = est.trainableVariables();
        const { grads } = tf.variableGrads(h, vars);
        // A linear-Gaussian's bias moves the sample and the mean alike, so the score at a sample
        // does not depend on it: its slopes and its factor instead.
        const picks =
          kind === 'linear_gaussian' ? [0, 2] : [0, Math.floor(vars.length / 2), vars.length - 2];
        for (const vi of picks) {
          const v = vars[vi]!;
          const vals = v.dataSync().slice();
          const g = grads[v.name]!.dataSync();
          let k = 0;
          for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
          assert.ok(g[k] !== 0, `${kind} var ${vi}: some entry has a nonzero gradient`);
          const at = (d: number): number => {
            const moved = vals.slice();
            moved[k] = vals[k]! + d;
            tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
            return tf.tidy(() => h().dataSync()[0]!);
          };
          const scale = Math.max(1, at(0));
          checkDerivative(g[k]!, at, 1e-3, 2e-4 * scale, 5e-3, `${kind} FIM var ${vi} entry ${k}`);
          tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
        }
        tf.dispose(grads);
        tf.dispose([x, xRep]);
        est.dispose();
      });

      test('get/setWeights and restoreEstimator give identical logProb', () => {
        const a = make(kind, ZS2, 1);
        const theta = tf.tensor2d([
          [0.3, -1.2],
          [2.5, 0.1],
        ]);
        const x = tf.tensor2d([X0, [-1, 0.5, 0]]);
        const lpA = tf.tidy(() => a.logProb(theta, x).dataSync());
        const saved = JSON.parse(
          JSON.stringify({ config: a.config, zscore: a.zscore, weights: a.getWeights() }),
        );
        const b = restoreEstimator(kind, 2, 3, saved.config, saved.zscore, saved.weights);
        assert.deepEqual(
          tf.tidy(() => b.logProb(theta, x).dataSync()),
          lpA,
        );
        const c = createEstimator(kind, {
          thetaDim: 2,
          xDim: 3,
          zscore: ZS2,
          config: a.config,
          rng: createRng(5),
        });
        assert.notDeepEqual(
          tf.tidy(() => c.logProb(theta, x).dataSync()),
          lpA,
        );
        c.setWeights(a.getWeights());
        assert.deepEqual(
          tf.tidy(() => c.logProb(theta, x).dataSync()),
          lpA,
        );
        const w = a.getWeights();
        w[0] = { ...w[0]!, shape: [1] };
        assert.throws(() => c.setWeights(w), /has shape/);
        assert.deepEqual(
          tf.tidy(() => c.logProb(theta, x).dataSync()),
          lpA,
        );
        tf.dispose([theta, x]);
        [a, b, c].forEach((e) => e.dispose());
      });

      test('no tensor leaks from logProb, sample, rsample and dispose', () => {
        const before = tf.memory().numTensors;
        const est = make(kind, ZS2);
        const theta = tf.tensor2d([[0.3, -1.2]]);
        const x = tf.tensor2d([X0]);
        const held = tf.memory().numTensors;
        tf.tidy(() => {
          est.logProb(theta, x);
          est.sample(x, 4, createRng(1));
        });
        const r = est.rsample(x, 4, createRng(1));
        assert.deepEqual(r.shape, [4, 1, 2]);
        r.dispose();
        const lp = est.logProb(theta, x);
        lp.dispose();
        assert.equal(tf.memory().numTensors, held);
        tf.dispose([theta, x]);
        est.zscore = { ...ZS2 };
        est.dispose();
        assert.equal(tf.memory().numTensors, before);
      });
    });
  }
});

describe('flows', () => {
  for (const kind of ['maf', 'nsf'] as const) {
    test(`${kind}: inverse(forward(u)) = u and log-det matches the finite-difference Jacobian`, () => {
      const est = make(kind, ZS2) as AutoregressiveFlow;
      // Covers the spline's identity tails (|u| > tailBound = 3) as well as its interior.
      const u0 = [
        [0.1, -0.4],
        [1.5, 2.2],
        [-3.5, 0.7],
        [4, -5],
      ];
      const xz = tf.tensor2d([
        [0.2, 0.1, -1],
        [1, -1, 0.5],
        [-0.3, 0.8, 2],
        [0, 0, 0],
      ]);
      const fwd = (u: number[][]): { z: number[][]; logDet: number[] } =>
        tf.tidy(() => {
          const r = est.toBase(tf.tensor2d(u), xz);
          return { z: r.z.arraySync() as number[][], logDet: Array.from(r.logDet.dataSync()) };
        });
      const { z, logDet } = fwd(u0);
      const back = tf.tidy(() => est.fromBase(tf.tensor2d(z), xz).arraySync()) as number[][];
      for (let r = 0; r < 4; r++)
        for (let j = 0; j < 2; j++)
          close(back[r]![j]!, u0[r]![j]!, 1e-4, 1e-5, `round trip ${r},${j}`);
      const eps = 1e-3;
      const J = [0, 1].map((j) => {
        const plus = fwd(u0.map((r) => r.map((v, i) => (i === j ? v + eps : v)))).z;
        const minus = fwd(u0.map((r) => r.map((v, i) => (i === j ? v - eps : v)))).z;
        return plus.map((row, r) => row.map((v, i) => (v - minus[r]![i]!) / (2 * eps))); // J[j][r][i] = dz_i/du_j
      });
      for (let r = 0; r < 4; r++) {
        const det = J[0]![r]![0]! * J[1]![r]![1]! - J[1]![r]![0]! * J[0]![r]![1]!;
        close(logDet[r]!, Math.log(Math.abs(det)), 1e-2, 0, `log-det row ${r}`);
      }
      xz.dispose();
      est.dispose();
    });
  }

  for (const kind of ['maf', 'nsf'] as const) {
    test(`${kind}: sample draws exactly what rsample draws, with a fraction of its peak memory`, async () => {
      const d = 8;
      const zs: ZScore = {
        thetaMean: new Array(d).fill(0.1),
        thetaStd: new Array(d).fill(1.5),
        xMean: [0, 1, -1],
        xStd: [1, 2, 0.5],
      };
      const est = make(kind, zs, 3);
      const x = tf.tensor2d([
        [0.2, 0.1, -1],
        [1, -1, 0.5],
      ]);
      const held = tf.memory().numTensors;
      const draw = async (how: 'sample' | 'rsample') => {
        let shape: number[] = [];
        let values: number[] = [];
        const profile = await tf.profile(() => {
          const t = est[how](x, 300, createRng(9));
          shape = t.shape;
          values = Array.from(t.dataSync());
          t.dispose();
          return [];
        });
        // tf.profile returns the engine's one profile object: read the figure before the next call.
        return { shape, values, peak: profile.peakBytes };
      };
      const viaSample = await draw('sample');
      const viaRsample = await draw('rsample');
      assert.equal(tf.memory().numTensors, held);
      assert.deepEqual(viaSample.shape, [300, 2, d]);
      assert.deepEqual(viaSample.values, viaRsample.values);
      x.dispose();
      // rsample keeps numTransforms * d passes' intermediates alive; sample one pass's.
      assert.ok(
        viaSample.peak * 3 < viaRsample.peak,
        `peak ${viaSample.peak} vs ${viaRsample.peak} bytes`,
      );
      est.dispose();
    });
  }

  test('maf: the log-scale is clipped to [-7, 5]', () => {
    // With tiny clip bounds every transform scales by exactly exp(+-0.01) or less.
    const est = make('maf', ZS2, 1, {
      logScaleMin: -0.01,
      logScaleMax: 0.01,
    }) as AutoregressiveFlow;
    const ld = tf.tidy(
      () => est.toBase(tf.tensor2d([[5, -5]]), tf.tensor2d([[3, 3, 3]])).logDet.dataSync()[0]!,
    );
    assert.ok(Math.abs(ld) <= 3 * 2 * 0.01 + 1e-6, `log-det ${ld}`);
    est.dispose();
  });
});

describe('training sanity', () => {
  for (const kind of ['gaussian', 'maf'] as const) {
    test(`${kind} fits theta | x ~ N(2x, 0.5^2) with plain Adam`, () => {
      const rng = createRng(11);
      const n = 2000;
      const x = new Float32Array(n);
      rng.fillNormal(x);
      const theta = x.map((v) => 2 * v + 0.5 * rng.normal());
      const zscore = computeZScore(theta, x, n, 1, 1);
      const est = createEstimator(kind, {
        thetaDim: 1,
        xDim: 1,
        zscore,
        config: { hidden: [32, 32] },
        rng: createRng(3),
      });
      const thT = tf.tensor2d(theta, [n, 1]);
      const xT = tf.tensor2d(x, [n, 1]);
      const opt = tf.train.adam(3e-3);
      const batch = 200;
      const start = tf.memory().numTensors;
      let afterFirst = -1;
      for (let step = 0; step < 300; step++) {
        tf.tidy(() => {
          const idx = tf.tensor1d(Array.from(rng.permutation(n).subarray(0, batch)), 'int32');
          const tb = tf.gather(thT, idx) as tf.Tensor2D;
          const xb = tf.gather(xT, idx) as tf.Tensor2D;
          opt.minimize(
            () => tf.neg(tf.mean(est.logProb(tb, xb))) as tf.Scalar,
            false,
            est.trainableVariables(),
          );
        });
        if (step === 0) afterFirst = tf.memory().numTensors;
      }
      assert.equal(tf.memory().numTensors, afterFirst, 'no growth across steps');
      assert.ok(afterFirst >= start);
      // Held-out: true mean log density is -0.5 log(2 pi 0.25) - 0.5.
      const m = 1000;
      const xt = new Float32Array(m);
      rng.fillNormal(xt);
      const tt = xt.map((v) => 2 * v + 0.5 * rng.normal());
      const learned = tf.tidy(
        () => tf.mean(est.logProb(tf.tensor2d(tt, [m, 1]), tf.tensor2d(xt, [m, 1]))).dataSync()[0]!,
      );
      const truth = -0.5 * Math.log(2 * Math.PI * 0.25) - 0.5;
      close(learned, truth, 0.1, 0, `${kind} held-out mean log q`);
      if (est instanceof DiagonalGaussian) {
        const [mean, scale] = tf.tidy(() => {
          const r = est.meanAndScale(tf.tensor2d([[1]]));
          return [r.mean.dataSync()[0]!, r.scale.dataSync()[0]!];
        });
        close(mean!, 2, 0.15, 0, 'mean at x = 1');
        close(scale!, 0.5, 0.1, 0, 'scale at x = 1');
      }
      opt.dispose();
      tf.dispose([thT, xT]);
      est.dispose();
    });
  }
});
