// The linear-rational spline (sbi/estimators/linear-rational-spline.ts), RABI's NSF element: values
// and log|det| against pyro's own implementation (test/fixtures/pyro-linear-rational.json, written
// by bench/torch/pyro_linear_rational_fixture.py), continuity and slope matching at the knots and
// split points, monotonicity, the analytic inverse, log|det| against finite differences, an NSF of
// such splines normalized and differentiated at second order (the FIM regularizer), and its
// training under the rabi preset without tensor leaks.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { readFixture } from '../read-fixture.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator, restoreEstimator } from '../../../sbi/estimators/index.js';
import { AutoregressiveFlow } from '../../../sbi/estimators/autoregressive.js';
import {
  LinearRationalSpline,
  MIN_LAMBDA,
} from '../../../sbi/estimators/linear-rational-spline.js';
import { Nsf, RationalQuadraticSpline, SplineBijection } from '../../../sbi/estimators/nsf.js';
import { fitModel, type FitConfig } from '../../../sbi/fit.js';
import { modelFromJson, modelToJson } from '../../../sbi/model-file.js';
import { PRESET_SETTINGS } from '../../../sbi/presets.js';
import { createRng } from '../../../sbi/rng.js';
import { simulateDataset } from '../../../sbi/simulate.js';
import { getTask } from '../../../sbi/tasks/index.js';
import type { DensityEstimator, ZScore } from '../../../sbi/types.js';
import { savedModelStub } from './saved-model-stub.js';

before(async () => {
  await initBackend('cpu');
});

interface Fixture {
  source: string;
  bins: number;
  tailBound: number;
  minBinWidth: number;
  minBinHeight: number;
  minDerivative: number;
  raw: number[][];
  x: number[];
  y: number[][];
  logDet: number[][];
  inverseY: number[];
  inverseX: number[][];
}

const fixture = readFixture<Fixture>('pyro-linear-rational.json');

function close(a: number, b: number, atol: number, rtol: number, what: string): void {
  assert.ok(
    Number.isFinite(a) && Math.abs(a - b) <= atol + rtol * Math.abs(b),
    `${what}: got ${a}, expected ${b}`,
  );
}

/** Pseudo-random unconstrained parameters of one spline (4K - 1). */
function rawRow(K: number, seed: number, scale = 1.5): number[] {
  return Array.from({ length: 4 * K - 1 }, (_, i) => scale * Math.sin(seed * 7.31 + i * 2.17));
}

function spline(K: number, B: number, minDerivative = 1e-3): LinearRationalSpline {
  return new LinearRationalSpline({
    bins: K,
    tailBound: B,
    minBinWidth: 1e-3,
    minBinHeight: 1e-3,
    minDerivative,
  });
}

/** forward at each point of u with one spline's parameters: y and log dy/du. */
function fwd(s: LinearRationalSpline, raw: number[], u: number[]): { y: number[]; ld: number[] } {
  return tf.tidy(() => {
    const r = s.forward(
      tf.tensor2d(u, [u.length, 1]),
      tf.tile(tf.tensor2d([raw]), [u.length, 1]) as tf.Tensor2D,
    );
    return { y: Array.from(r.y.dataSync()), ld: Array.from(r.logDet.dataSync()) };
  });
}

function inv(s: LinearRationalSpline, raw: number[], y: number[]): number[] {
  return tf.tidy(() =>
    Array.from(
      s
        .inverse(
          tf.tensor2d(y, [y.length, 1]),
          tf.tile(tf.tensor2d([raw]), [y.length, 1]) as tf.Tensor2D,
        )
        .dataSync(),
    ),
  );
}

/** The knots, interior derivatives and split points in float64, from the construction pyro documents. */
function knots(
  raw: number[],
  K: number,
  B: number,
  minDerivative = 1e-3,
): { xs: number[]; ys: number[]; d: number[]; lambda: number[] } {
  const sizes = (u: number[]): number[] => {
    const m = Math.max(...u);
    const e = u.map((v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((v) => (1e-3 + (1 - 1e-3 * K) * (v / z)) * 2 * B);
  };
  const cum = (s: number[]): number[] => s.reduce((acc, v) => [...acc, acc.at(-1)! + v], [-B]);
  const softplus = (v: number): number => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
  const edge = 1 - minDerivative;
  return {
    xs: cum(sizes(raw.slice(0, K))),
    ys: cum(sizes(raw.slice(K, 2 * K))),
    d: [edge, ...raw.slice(2 * K, 3 * K - 1).map((v) => softplus(v) + minDerivative), edge],
    lambda: raw.slice(3 * K - 1).map((v) => MIN_LAMBDA + (1 - 2 * MIN_LAMBDA) / (1 + Math.exp(-v))),
  };
}

describe('linear-rational spline', () => {
  test("matches pyro's order='linear' spline: values, log|det| and inverse, tails included", () => {
    const s = spline(fixture.bins, fixture.tailBound, fixture.minDerivative);
    assert.equal(s.paramsPerDim, 4 * fixture.bins - 1);
    fixture.raw.forEach((raw, r) => {
      const { y, ld } = fwd(s, raw, fixture.x);
      fixture.x.forEach((x, i) => {
        close(y[i]!, fixture.y[r]![i]!, 5e-5, 2e-6, `spline ${r}: y(${x})`);
        close(ld[i]!, fixture.logDet[r]![i]!, 2e-4, 1e-4, `spline ${r}: log|det|(${x})`);
      });
      const u = inv(s, raw, fixture.inverseY);
      fixture.inverseY.forEach((y, i) =>
        close(u[i]!, fixture.inverseX[r]![i]!, 5e-5, 2e-6, `spline ${r}: inverse(${y})`),
      );
    });
    s.dispose();
  });

  for (const [K, B] of [
    [6, 3],
    [12, 30],
  ] as const) {
    test(`K = ${K}, B = ${B}: knots hit, slopes match at knots and split points, C1 inside`, () => {
      const s = spline(K, B);
      for (const seed of [1, 2, 3]) {
        const raw = rawRow(K, seed);
        const k = knots(raw, K, B);
        // At each knot (the right bin, or the last bin at B): the knot's y and its derivative.
        const at = fwd(s, raw, k.xs);
        k.xs.forEach((_, i) => {
          close(at.y[i]!, k.ys[i]!, 2e-5 * B, 0, `seed ${seed}: y at knot ${i}`);
          close(at.ld[i]!, Math.log(k.d[i]!), 2e-3, 0, `seed ${seed}: slope at knot ${i}`);
        });
        // The slope's limit from either side, extrapolated linearly from two points at delta and
        // 2 delta (error O(delta^2)): the pieces are C1 but can bend sharply (lambda near its minimum).
        const delta = 3e-6 * B;
        const limits = (pts: number[]): { left: number[]; right: number[]; y: number[] } => {
          const l1 = fwd(
            s,
            raw,
            pts.map((x) => x - delta),
          ).ld;
          const l2 = fwd(
            s,
            raw,
            pts.map((x) => x - 2 * delta),
          ).ld;
          const r1 = fwd(
            s,
            raw,
            pts.map((x) => x + delta),
          ).ld;
          const r2 = fwd(
            s,
            raw,
            pts.map((x) => x + 2 * delta),
          ).ld;
          return {
            left: l1.map((v, i) => 2 * v - l2[i]!),
            right: r1.map((v, i) => 2 * v - r2[i]!),
            y: fwd(s, raw, pts).y,
          };
        };
        const inner = limits(k.xs.slice(1, -1));
        k.xs.slice(1, -1).forEach((_, j) => {
          const d = Math.log(k.d[j + 1]!);
          close(inner.left[j]!, d, 5e-3, 0, `seed ${seed}: slope left of knot ${j + 1}`);
          close(inner.right[j]!, d, 5e-3, 0, `seed ${seed}: slope right of knot ${j + 1}`);
        });
        // Split points x0 + lambda w: value and slope continuous.
        const splits = k.lambda.map((l, b) => k.xs[b]! + l * (k.xs[b + 1]! - k.xs[b]!));
        const at2 = limits(splits);
        const below = fwd(
          s,
          raw,
          splits.map((x) => x - delta),
        ).y;
        const above = fwd(
          s,
          raw,
          splits.map((x) => x + delta),
        ).y;
        splits.forEach((x, b) => {
          assert.ok(below[b]! <= at2.y[b]! && at2.y[b]! <= above[b]!, `split ${b}: ordered`);
          close(above[b]! - below[b]!, 0, 1e-3 * B, 0, `seed ${seed}: split ${b} value jump`);
          close(at2.left[b]!, at2.right[b]!, 5e-3, 0, `seed ${seed}: split ${b} at ${x}: slopes`);
        });
        // The bounds: y(+-B) = +-B with pyro's edge slope 1 - minDerivative, identity beyond.
        const ends = fwd(s, raw, [-B, B, -B - 1, B + 2]);
        // (The last knot is a float32 sum of the bin sizes: B to a few ulps; pyro pins it to B.)
        [-B, B, -B - 1, B + 2].forEach((v, i) => close(ends.y[i]!, v, 1e-6 * B, 0, `y(${v})`));
        close(ends.ld[0]!, Math.log(1 - 1e-3), 1e-4, 0, 'slope at -B');
        close(ends.ld[1]!, Math.log(1 - 1e-3), 1e-4, 0, 'slope at B');
        assert.ok(
          ends.ld.slice(2).every((v) => v === 0),
          'log|det| 0 in the tails',
        );
      }
      s.dispose();
    });

    test(`K = ${K}, B = ${B}: monotone; inverse(forward(u)) = u at knots, splits, bounds and tails`, () => {
      const s = spline(K, B);
      for (const seed of [4, 5]) {
        // Extreme derivatives and lambdas too (scale 4: softplus up to ~4, lambdas near their limits).
        const raw = rawRow(K, seed, seed === 5 ? 4 : 1.5);
        const k = knots(raw, K, B);
        const grid = Array.from({ length: 2001 }, (_, i) => -B - 2 + ((2 * B + 4) * i) / 2000);
        const g = fwd(s, raw, grid);
        for (let i = 1; i < grid.length; i++)
          assert.ok(g.y[i]! > g.y[i - 1]!, `seed ${seed}: increasing at ${grid[i]}`);
        assert.ok(g.ld.every(Number.isFinite), 'finite log|det|');
        const splits = k.lambda.map((l, b) => k.xs[b]! + l * (k.xs[b + 1]! - k.xs[b]!));
        const pts = [...grid, ...k.xs, ...splits, -B, B, -B - 1e-3, B + 1e-3];
        const back = inv(s, raw, fwd(s, raw, pts).y);
        pts.forEach((u, i) => close(back[i]!, u, 2e-5 * B, 1e-5, `seed ${seed}: round trip ${u}`));
        // And forward(inverse(y)) = y over the image, the y knots included.
        const ys = [...grid, ...k.ys];
        const again = fwd(s, raw, inv(s, raw, ys)).y;
        ys.forEach((y, i) =>
          close(again[i]!, y, 2e-5 * B, 1e-5, `seed ${seed}: y round trip ${y}`),
        );
      }
      s.dispose();
    });

    test(`K = ${K}, B = ${B}: log|det| matches finite differences of the forward`, () => {
      const s = spline(K, B);
      const raw = rawRow(K, 6);
      const grid = Array.from({ length: 97 }, (_, i) => -B - 0.5 + ((2 * B + 1) * (i + 0.5)) / 97);
      // Small steps: the spline bends sharply where lambda nears its minimum.
      const h = 1e-4 * B;
      const { ld } = fwd(s, raw, grid);
      const p = fwd(
        s,
        raw,
        grid.map((u) => u + h),
      ).y;
      const m = fwd(
        s,
        raw,
        grid.map((u) => u - h),
      ).y;
      grid.forEach((u, i) => {
        const fd = (p[i]! - m[i]!) / (2 * h);
        close(Math.exp(ld[i]!), fd, 2e-3, 1e-2, `dy/du at ${u}`);
      });
      s.dispose();
    });
  }

  test('bad options get one clear sentence', () => {
    assert.throws(() => spline(1, 3), /bins must be an integer >= 2, got 1/);
    assert.throws(() => spline(4, 0), /tailBound must be positive, got 0/);
    assert.throws(() => spline(4, 3, 1), /minDerivative must be < 1/);
  });
});

// ---- the NSF made of them ----

const ZS: ZScore = {
  thetaMean: [0.5, -1],
  thetaStd: [2, 0.5],
  xMean: [0.3, -0.2, 1],
  xStd: [1.5, 0.7, 2],
};
const X0 = [0.8, -0.5, 2.2];

function nsf(zscore = ZS, extra: Record<string, unknown> = {}): DensityEstimator {
  return createEstimator('nsf', {
    thetaDim: zscore.thetaMean.length,
    xDim: zscore.xMean.length,
    zscore,
    config: { hidden: [16, 16], bins: 5, tailBound: 3, spline: 'linear-rational', ...extra },
    rng: createRng(1),
  });
}

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

describe('NSF with linear-rational splines', () => {
  test('builds the linear-rational spline; configs without `spline` keep the rational-quadratic', () => {
    const lr = nsf() as Nsf;
    const rq = nsf(ZS, { spline: undefined }) as Nsf;
    const bij = (m: Nsf): SplineBijection =>
      (m as unknown as { bijection: SplineBijection }).bijection;
    assert.ok(bij(lr).spline instanceof LinearRationalSpline);
    assert.equal(bij(lr).paramsPerDim, 4 * 5 - 1);
    assert.ok(bij(rq).spline instanceof RationalQuadraticSpline);
    assert.equal(rq.config.spline, undefined);
    assert.throws(
      () => nsf(ZS, { spline: 'cubic' }),
      /nsf setting "spline" must be one of rational-quadratic, linear-rational, got "cubic"/,
    );
    lr.dispose();
    rq.dispose();
  });

  test('a 1-D NSF density integrates to 1 over the interior and the tails', () => {
    const zs: ZScore = { thetaMean: [0.3], thetaStd: [0.5], xMean: [0, 0, 0], xStd: [1, 1, 1] };
    const est = nsf(zs, { numTransforms: 2 });
    // theta on [-6, 6] holds z-scored u in [-12.6, 11.4]; the splines act on [-3, 3].
    const n = 24001;
    const lo = -6;
    const step = 12 / (n - 1);
    const lp = tf.tidy(() =>
      est
        .logProb(
          tf.tensor2d(
            Array.from({ length: n }, (_, i) => lo + i * step),
            [n, 1],
          ),
          tf.tile(tf.tensor2d([X0]), [n, 1]) as tf.Tensor2D,
        )
        .dataSync(),
    );
    let mass = 0;
    for (let i = 0; i < n; i++)
      mass += Math.exp(lp[i]!) * step * (i === 0 || i === n - 1 ? 0.5 : 1);
    close(mass, 1, 2e-3, 0, 'mass');
    est.dispose();
  });

  test('inverse(forward(u)) = u through the flow, sample draws what rsample draws', () => {
    const est = nsf() as AutoregressiveFlow;
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
    const z = tf.tidy(() => est.toBase(tf.tensor2d(u0), xz).z.arraySync()) as number[][];
    const back = tf.tidy(() => est.fromBase(tf.tensor2d(z), xz).arraySync()) as number[][];
    u0.forEach((row, r) =>
      row.forEach((v, j) => close(back[r]![j]!, v, 1e-4, 1e-5, `round trip ${r},${j}`)),
    );
    const x = tf.tensor2d([X0]);
    const a = tf.tidy(() => Array.from(est.rsample(x, 50, createRng(3)).dataSync()));
    const sampled = est.sample(x, 50, createRng(3));
    const b = Array.from(sampled.dataSync());
    a.forEach((v, i) => close(b[i]!, v, 1e-5, 1e-5, `draw ${i}`));
    tf.dispose([xz, x, sampled]);
    est.dispose();
  });

  test('second order: d/dweight ||d logProb / dx||^2 matches finite differences', () => {
    const est = nsf();
    // One row inside the splines' interval, one in a tail (|u| > 3 in z-scored units).
    const theta = tf.tensor2d([
      [0.3, -1.2],
      [7.5, 0.1],
    ]);
    const x = tf.tensor2d([X0, [-1, 0.5, 0]]);
    const h = (): tf.Scalar =>
      tf.sum(
        tf.square(tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(theta, xx as tf.Tensor2D)))(x)),
      );
    const vars = est.trainableVariables();
    const { grads } = tf.variableGrads(h, vars);
    for (const vi of [0, 1, Math.floor(vars.length / 2), vars.length - 2, vars.length - 1]) {
      const v = vars[vi]!;
      const vals = v.dataSync().slice();
      const g = grads[v.name]!.dataSync();
      let k = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
      assert.ok(g[k] !== 0, `var ${vi}: some entry has a nonzero second-order gradient`);
      const at = (d: number): number => {
        const moved = vals.slice();
        moved[k] = vals[k]! + d;
        tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
        return tf.tidy(() => h().dataSync()[0]!);
      };
      const scale = Math.max(1, at(0));
      checkDerivative(g[k]!, at, 1e-3, 2e-4 * scale, 5e-3, `var ${vi} (${v.name}) entry ${k}`);
      tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
    }
    tf.dispose(grads);
    tf.dispose([theta, x]);
    est.dispose();
  });

  test('model files round-trip the spline; one saved without it loads as rational-quadratic', () => {
    const theta = tf.tensor2d([
      [0.3, -1.2],
      [7.5, 0.1],
    ]);
    const x = tf.tensor2d([X0, [-1, 0.5, 0]]);
    const lp = (m: DensityEstimator): Float32Array =>
      tf.tidy(() => m.logProb(theta, x).dataSync() as Float32Array);
    for (const spline of ['linear-rational', undefined]) {
      const a = nsf(ZS, { spline });
      const text = modelToJson(savedModelStub(a));
      const b = modelFromJson(text).estimator;
      assert.equal(b.config.spline, spline);
      assert.deepEqual(lp(b), lp(a));
      b.dispose();
      a.dispose();
    }
    // A file written before the option existed: its config has no `spline` key.
    const old = nsf(ZS, { spline: undefined });
    const doc = JSON.parse(modelToJson(savedModelStub(old)));
    assert.ok(!('spline' in doc.estimator.config));
    const loaded = modelFromJson(JSON.stringify(doc)).estimator as Nsf;
    assert.ok(
      (loaded as unknown as { bijection: SplineBijection }).bijection.spline instanceof
        RationalQuadraticSpline,
    );
    assert.deepEqual(lp(loaded), lp(old));
    // The weights of one spline kind do not fit the other (3K - 1 vs 4K - 1 outputs per dimension).
    const lrWeights = nsf().getWeights();
    assert.throws(() =>
      restoreEstimator('nsf', 2, 3, { ...(old.config as object) }, ZS, lrWeights),
    );
    loaded.dispose();
    old.dispose();
    tf.dispose([theta, x]);
  });

  test("the rabi preset's NSF: linear-rational, bound 30 on raw theta; FIM training leaks nothing", async () => {
    const rabi = PRESET_SETTINGS.rabi.architecture.nsf!;
    assert.deepEqual(rabi, {
      spline: 'linear-rational',
      tailBound: 30,
      degrees: 'linspace',
      biasInit: 'torch',
    });
    assert.equal(PRESET_SETTINGS.robustsbi.architecture.nsf, undefined);
    const task = getTask('gaussian_linear');
    const extra = PRESET_SETTINGS.rabi.extraValidationRows;
    const data = { ...simulateDataset(task, 200 + extra, createRng(4)), dropped: 0 };
    const config: FitConfig = {
      task: 'gaussian_linear',
      estimator: 'nsf',
      architecture: { hidden: [8, 8], numTransforms: 1, bins: 4 },
      defense: 'fim',
      defenseOptions: { beta: 0.01 },
      hyperparameters: { maxEpochs: 2, minEpochs: 2, batchSize: 100 },
      seed: 3,
      preset: 'rabi',
    };
    const provenance = {
      code: { version: 'test', commit: null, dirty: false },
      backend: 'cpu',
    } as never;
    const before = tf.memory().numTensors;
    const fitted = await fitModel(config, data, {}, provenance);
    const cfg = fitted.saved.estimator.config;
    assert.deepEqual(
      [cfg.spline, cfg.tailBound, cfg.degrees, cfg.biasInit],
      ['linear-rational', 30, 'linspace', 'torch'],
    );
    assert.deepEqual(fitted.saved.estimator.zscore.thetaStd, Array(10).fill(1));
    assert.equal(fitted.result.epochs, 2);
    assert.ok(fitted.result.trainLosses.every(Number.isFinite));
    assert.ok(Number.isFinite(fitted.result.bestValLoss));
    fitted.saved.estimator.dispose();
    assert.equal(tf.memory().numTensors, before);
    // Without the preset: robustsbi's own rational-quadratic NSF.
    const own = await fitModel(
      { ...config, preset: undefined, defense: 'none', defenseOptions: undefined },
      data,
      {},
      provenance,
    );
    assert.equal(own.saved.estimator.config.spline, undefined);
    assert.equal(own.saved.estimator.config.tailBound, 5);
    own.saved.estimator.dispose();
  });
});
