// The exact FIM regularizers (sbi/defenses/fim-exact.ts): the closed-form FIM of the Gaussian
// estimators against the analytic I_x of gaussian_linear's posterior (M^T S^-1 M) and against the
// Monte Carlo trace of fim-trace.ts (squaredScores) within Monte Carlo error; the top eigenvalue by
// power iteration against a dense eigen decomposition; both regularizers' weight gradients (double
// backprop) against central finite differences; and training with either defense.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { squaredScores } from '../../../sbi/defenses/fim-trace.js';
import {
  FimEigenvalueDefense,
  FimExactDefense,
  fimFromFactors,
  fisherFactors,
  topEigenvalueFromFactors,
  traceFromFactors,
} from '../../../sbi/defenses/fim-exact.js';
import { createDefense } from '../../../sbi/defenses/index.js';
import { trainNPE } from '../../../sbi/npe.js';
import { gaussianLinear } from '../../../sbi/tasks/gaussian_linear.js';
import { klMetric, linearGaussianPosterior } from '../../../sbi/metrics/exact-posterior-attack.js';
import type { DensityEstimator, ZScore } from '../../../sbi/types.js';
import { linearPosteriorNet } from './gaussian-nets.js';
import { symmetricEigen } from './linear-gaussian.js';

before(async () => {
  await initBackend('cpu');
});

const ZS: ZScore = {
  thetaMean: [0.5, -1, 0.2],
  thetaStd: [2, 0.5, 1],
  xMean: [0.3, -0.2],
  xStd: [1.5, 0.7],
};
const XS = [
  [0.8, -0.5],
  [-1, 0.5],
  [2, 1],
];

/**
 * A small Gaussian estimator whose covariance depends on x strongly: the head's weights scaled up,
 * and for the full-covariance kind its off-diagonal columns by 50 more (they are scaled by 0.01).
 */
function model(kind: 'gaussian' | 'multivariate_gaussian', seed = 1): DensityEstimator {
  const est = createEstimator(kind, {
    thetaDim: 3,
    xDim: 2,
    zscore: ZS,
    config: { hidden: [16, 16] },
    rng: createRng(seed),
  });
  est.setWeights(
    est.getWeights().map((w) => {
      if (w.name !== 'net.l3.weight') return w;
      const cols = w.shape[1]!;
      return {
        ...w,
        values: w.values.map(
          (v, k) => v * (kind === 'multivariate_gaussian' && k % cols >= 6 ? 100 : 2),
        ),
      };
    }),
  );
  return est;
}

function meanAndSe(v: ArrayLike<number>): { mean: number; se: number } {
  const n = v.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i]!;
  const mean = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (v[i]! - mean) ** 2;
  return { mean, se: Math.sqrt(q / (n - 1) / n) };
}

describe('closed-form FIM', () => {
  test('gaussian_linear: the exact posterior as an estimator has I_x = M^T S^-1 M', () => {
    const task = gaussianLinear();
    const check = task.simulate(task.prior.sample(1, createRng(1)), 1, createRng(2));
    const p = linearGaussianPosterior((x) => task.analyticPosterior(x), task.xDim, check);
    const est = linearPosteriorNet(p.m, p.c, p.cov);
    const theta = task.prior.sample(3, createRng(3));
    const x = task.simulate(theta, 3, createRng(4));
    const fim = tf.tidy(() =>
      fimFromFactors(
        fisherFactors(est, tf.tensor2d(x, [3, task.xDim]), 1, createRng(5)),
      ).arraySync(),
    );
    const exact = klMetric(p);
    const scale = Math.max(...exact.map((row) => Math.max(...row.map(Math.abs))));
    for (const f of fim)
      f.forEach((row, i) =>
        row.forEach((v, j) =>
          assert.ok(
            Math.abs(v - exact[i]![j]!) < 2e-3 * scale,
            `I[${i}][${j}] ${v} vs ${exact[i]![j]}`,
          ),
        ),
      );
    est.dispose();
  });

  for (const kind of ['gaussian', 'multivariate_gaussian'] as const) {
    test(`${kind}: the closed-form trace equals the Monte Carlo trace (squaredScores) within MC error`, () => {
      const est = model(kind);
      const x = tf.tensor2d(XS);
      const M = 6000;
      const exact = tf.tidy(() =>
        traceFromFactors(fisherFactors(est, x, 1, createRng(1))).arraySync(),
      );
      const mc = tf.tidy(() => squaredScores(est, x, M, createRng(2)).arraySync());
      XS.forEach((_, b) => {
        const { mean, se } = meanAndSe(mc.map((row) => row[b]!));
        assert.ok(
          Math.abs(mean - exact[b]!) < 4 * se,
          `row ${b}: MC ${mean} (se ${se}), exact ${exact[b]}`,
        );
        assert.ok(se < 0.1 * exact[b]!, `row ${b}: resolved (se ${se}, value ${exact[b]})`);
      });
      x.dispose();
      est.dispose();
    });
  }

  test('the covariance terms matter: the mean-only part of the trace is visibly smaller', () => {
    // Guards against a closed form that drops the covariance block (the MC test would catch it too).
    const est = model('multivariate_gaussian');
    const x = tf.tensor2d(XS);
    const [full, meanOnly] = tf.tidy(() => {
      const f = fisherFactors(est, x, 1, createRng(1)); // [K, B, d], first D = 3 the mean's
      const K = f.shape[0];
      const mean = tf.mul(tf.slice(f, [0, 0, 0], [3, -1, -1]), Math.sqrt(3 / K));
      return [traceFromFactors(f).arraySync(), traceFromFactors(mean as tf.Tensor3D).arraySync()];
    });
    full.forEach((t, b) => assert.ok(t > 1.2 * meanOnly[b]!, `row ${b}: ${t} vs ${meanOnly[b]}`));
    x.dispose();
    est.dispose();
  });
});

describe('largest eigenvalue', () => {
  test('power iteration on the factors equals a dense eigen decomposition (closed form and MC)', () => {
    const cases: [string, DensityEstimator][] = [
      ['multivariate_gaussian', model('multivariate_gaussian')],
      [
        'maf (Monte Carlo)',
        createEstimator('maf', {
          thetaDim: 3,
          xDim: 2,
          zscore: ZS,
          config: { hidden: [8, 8] },
          rng: createRng(4),
        }),
      ],
    ];
    for (const [name, est] of cases) {
      const x = tf.tensor2d(XS);
      const { lambda, fim } = tf.tidy(() => {
        const f = fisherFactors(est, x, 50, createRng(6));
        return {
          lambda: topEigenvalueFromFactors(f, createRng(7), 100).arraySync(),
          fim: fimFromFactors(f).arraySync(),
        };
      });
      fim.forEach((m, b) => {
        const dense = symmetricEigen(m).values[0]!;
        assert.ok(
          Math.abs(lambda[b]! - dense) < 1e-3 * dense,
          `${name} row ${b}: ${lambda[b]} vs ${dense}`,
        );
      });
      x.dispose();
      est.dispose();
    }
  });
});

/** Central finite differences of f in the entry of v with the largest |gradient|. */
function checkWeightGradient(
  v: tf.Variable,
  grad: ArrayLike<number>,
  f: () => number,
  what: string,
  h = 1e-3,
  rtol = 2e-2,
): void {
  let k = 0;
  for (let i = 1; i < grad.length; i++) if (Math.abs(grad[i]!) > Math.abs(grad[k]!)) k = i;
  assert.ok(grad[k] !== 0, `${what}: a nonzero gradient`);
  const vals = v.dataSync().slice();
  const at = (delta: number): number => {
    const moved = vals.slice();
    moved[k] = vals[k]! + delta;
    tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
    return f();
  };
  const fd = (at(h) - at(-h)) / (2 * h);
  tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
  assert.ok(
    Math.abs(grad[k]! - fd) <= 1e-4 + rtol * Math.abs(fd),
    `${what} entry ${k}: analytic ${grad[k]}, finite differences ${fd}`,
  );
}

describe('regularizer gradients (double backprop)', () => {
  for (const kind of ['gaussian', 'multivariate_gaussian'] as const) {
    test(`${kind}: d/dweight of the closed-form trace and of lambda_max = finite differences`, () => {
      const est = model(kind, 3);
      const x = tf.tensor2d(XS);
      const vars = est.trainableVariables();
      const trace = (): tf.Scalar =>
        tf.tidy(
          () => tf.mean(traceFromFactors(fisherFactors(est, x, 1, createRng(1)))) as tf.Scalar,
        );
      const lambda = (): tf.Scalar =>
        tf.tidy(
          () =>
            tf.mean(
              topEigenvalueFromFactors(fisherFactors(est, x, 1, createRng(1)), createRng(2), 200),
            ) as tf.Scalar,
        );
      // lambda_max from a dense eigen decomposition: what the gradient must differentiate.
      const denseLambda = (): number => {
        const fim = tf.tidy(() =>
          fimFromFactors(fisherFactors(est, x, 1, createRng(1))).arraySync(),
        );
        return fim.reduce((s, m) => s + symmetricEigen(m).values[0]!, 0) / fim.length;
      };
      for (const [what, f, value] of [
        ['trace', trace, () => tf.tidy(() => trace().dataSync()[0]!)],
        ['lambda_max', lambda, denseLambda],
      ] as const) {
        const { value: v0, grads } = tf.variableGrads(f, vars);
        v0.dispose();
        for (const vi of [0, vars.length - 2, vars.length - 1]) {
          const v = vars[vi]!;
          checkWeightGradient(v, grads[v.name]!.dataSync(), value, `${kind} ${what} var ${vi}`);
        }
        tf.dispose(Object.values(grads));
      }
      x.dispose();
      est.dispose();
    });
  }
});

describe('training with the exact defenses', () => {
  test('fim-exact and fim-eigenvalue train (closed form and MC fallback), numTensors flat', async () => {
    const rng = createRng(30);
    const n = 96;
    const theta = new Float32Array(n * 3);
    rng.fillNormal(theta);
    const x = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      x[i * 2] = theta[i * 3]! + 0.3 * theta[i * 3 + 2]! + 0.1 * rng.normal();
      x[i * 2 + 1] = theta[i * 3 + 1]! - theta[i * 3]! + 0.1 * rng.normal();
    }
    for (const [kind, name] of [
      ['multivariate_gaussian', 'fim-exact'],
      ['multivariate_gaussian', 'fim-eigenvalue'],
      ['maf', 'fim-exact'],
    ] as const) {
      const defense = createDefense(name, { beta: 0.01, mcSamples: 3 })!;
      assert.ok(defense instanceof (name === 'fim-exact' ? FimExactDefense : FimEigenvalueDefense));
      const before = tf.memory().numTensors;
      const counts: number[] = [];
      const result = await trainNPE({
        data: { theta, x, n },
        thetaDim: 3,
        xDim: 2,
        rng: createRng(31),
        hyperparameters: { maxEpochs: 3, batchSize: 32, valSize: 16 },
        createModel: (zscore) =>
          createEstimator(kind, {
            thetaDim: 3,
            xDim: 2,
            zscore,
            config: { hidden: [8, 8] },
            rng: createRng(32),
          }),
        defense,
        onEpoch: () => {
          counts.push(tf.memory().numTensors);
        },
      });
      assert.equal(counts.length, 3);
      assert.ok(
        counts.every((c) => c === counts[0]),
        `${kind} ${name}: numTensors ${counts}`,
      );
      assert.ok(Number.isFinite(result.bestValLoss));
      result.model.dispose();
      defense.dispose();
      assert.equal(tf.memory().numTensors, before, `${kind} ${name}: everything released`);
    }
  });
});
