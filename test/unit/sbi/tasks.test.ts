import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '../../../sbi/types.js';
import { createRng } from '../../../sbi/rng.js';
import { TASK_NAMES, getTask } from '../../../sbi/tasks/index.js';
import { GAUSSIAN_LINEAR_A_DIAG, gaussianLinear } from '../../../sbi/tasks/gaussian_linear.js';
import { lotkaVolterra, lvRates } from '../../../sbi/tasks/lotka_volterra.js';
import { sir } from '../../../sbi/tasks/sir.js';
import { TwoMoonsTask, twoMoons } from '../../../sbi/tasks/two_moons.js';
import { slcp } from '../../../sbi/tasks/slcp.js';
import { PyloricTask } from '../../../sbi/tasks/pyloric.js';
import { sliceSampleBox } from '../../../sbi/tasks/slice.js';
import { cholesky } from '../../../sbi/tasks/linalg.js';

function meanStd(v: ArrayLike<number>, stride = 1, offset = 0): [number, number] {
  let s = 0;
  let s2 = 0;
  let n = 0;
  for (let i = offset; i < v.length; i += stride) {
    s += v[i];
    s2 += v[i] * v[i];
    n++;
  }
  const m = s / n;
  return [m, Math.sqrt(Math.max(0, s2 / n - m * m))];
}

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tol ${tol})`);
}

describe('task registry', () => {
  test('lists the nine tasks and builds each with consistent dimensions', () => {
    assert.deepEqual([...TASK_NAMES].sort(), [
      'gaussian_linear',
      'hodgkin_huxley',
      'lotka_volterra',
      'pyloric',
      'sir',
      'slcp',
      'spatial_sir',
      'two_moons',
      'vae',
    ]);
    const dims: Record<string, [number, number]> = {
      gaussian_linear: [10, 10],
      lotka_volterra: [4, 100],
      sir: [2, 50],
      two_moons: [2, 2],
      slcp: [5, 8],
      hodgkin_huxley: [7, 200],
      spatial_sir: [2, 900],
      vae: [3, 784],
      pyloric: [31, 2400],
    };
    for (const name of TASK_NAMES) {
      const t = getTask(name);
      assert.equal(t.name, name);
      assert.deepEqual([t.thetaDim, t.xDim], dims[name]);
      assert.equal(t.prior.dim, t.thetaDim);
      assert.equal(t.paramNames.length, t.thetaDim);
      assert.equal(new Set(t.paramNames).size, t.thetaDim);
      assert.equal(t.prior.support.lower.length, t.thetaDim);
    }
  });

  test('a wrong name throws one sentence naming the known tasks', () => {
    assert.throws(() => getTask('two_moon'), {
      message:
        'Unknown task "two_moon"; known tasks: gaussian_linear, lotka_volterra, sir, two_moons, slcp, hodgkin_huxley, spatial_sir, vae, pyloric',
    });
    assert.throws(() => getTask('toString'), /Unknown task "toString"/);
  });
});

describe('every task', () => {
  // pyloric costs about 0.1 s per simulation and returns its invalid ones (about 90 %) as NaN rows;
  // here it keeps them, so that every row can be checked (the filter has its own tests).
  const fresh = (name: string): Task => {
    const t = getTask(name);
    if (t instanceof PyloricTask) t.keepInvalid = true;
    return t;
  };
  for (const name of TASK_NAMES) {
    const n =
      name === 'pyloric'
        ? 3
        : ['lotka_volterra', 'sir', 'hodgkin_huxley', 'spatial_sir'].includes(name)
          ? 40
          : 200;
    // spatial_sir's float32 Beta draws round to exactly 0 or 1 for a few percent of cells under any
    // seed; pyloric's first sample of each neuron is the initial -50 mV whatever the seed.
    const minChanged = name === 'spatial_sir' ? 0.9 : name === 'pyloric' ? 0.98 : 0.99;
    test(`${name}: shapes, finiteness, seeded determinism, different seeds differ`, () => {
      const task = fresh(name);
      const theta = task.prior.sample(n, createRng(1));
      assert.ok(theta instanceof Float32Array);
      assert.equal(theta.length, n * task.thetaDim);
      assert.deepEqual(theta, task.prior.sample(n, createRng(1)));
      assert.notDeepEqual(theta, task.prior.sample(n, createRng(2)));
      const x1 = task.simulate(theta, n, createRng(7));
      const x2 = fresh(name).simulate(theta, n, createRng(7));
      const x3 = task.simulate(theta, n, createRng(8));
      assert.ok(x1 instanceof Float32Array);
      assert.equal(x1.length, n * task.xDim);
      assert.ok(x1.every(Number.isFinite), 'a prior draw gave a non-finite simulation');
      assert.deepEqual(x1, x2);
      let differ = 0;
      for (let i = 0; i < x1.length; i++) if (x1[i] !== x3[i]) differ++;
      assert.ok(
        differ > minChanged * x1.length,
        `only ${differ} of ${x1.length} values changed with the seed`,
      );
      // Prior draws lie in the support and have finite density.
      const lp = task.prior.logProb(theta, n);
      assert.ok(lp.every(Number.isFinite));
      for (let i = 0; i < n * task.thetaDim; i++) {
        const j = i % task.thetaDim;
        assert.ok(
          theta[i] >= task.prior.support.lower[j] && theta[i] <= task.prior.support.upper[j],
        );
      }
    });
  }
});

describe('priors', () => {
  test('Gaussian priors: analytic log-density and moments', () => {
    const cases: [Task, number][] = [
      [gaussianLinear(), 1],
      [lotkaVolterra(), 0.5],
      [sir(), 2],
    ];
    for (const [task, sd] of cases) {
      const d = task.thetaDim;
      const th = new Float32Array(d).map((_, j) => 0.25 * (j - 1));
      let q = 0;
      for (const v of th) q += (v / sd) ** 2;
      const expected = -0.5 * q - d * Math.log(sd) - 0.5 * d * Math.log(2 * Math.PI);
      close(task.prior.logProb(th, 1)[0], expected, 1e-9, `${task.name} logProb`);
      assert.deepEqual(task.prior.support.lower, new Array(d).fill(-Infinity));
      const s = task.prior.sample(20000, createRng('prior'));
      for (let j = 0; j < d; j++) {
        const [m, st] = meanStd(s, d, j);
        close(m, 0, (5 * sd) / Math.sqrt(20000), `${task.name} mean ${j}`);
        close(st, sd, 0.03 * sd, `${task.name} std ${j}`);
      }
    }
  });

  test('box priors: constant density inside, -Infinity outside, mass 1 by quadrature', () => {
    const tm = twoMoons();
    assert.deepEqual(tm.prior.support, { lower: [-1, -1], upper: [1, 1] });
    const inside = tm.prior.logProb(Float32Array.of(0.3, -0.99, 1, -1), 2);
    close(inside[0], -Math.log(4), 1e-12, 'two_moons inside');
    close(inside[1], -Math.log(4), 1e-12, 'two_moons on the closed edge');
    const outside = tm.prior.logProb(Float32Array.of(1.001, 0, 0, -1.5, NaN, 0), 3);
    assert.deepEqual([...outside], [-Infinity, -Infinity, -Infinity]);
    // Midpoint rule over a box larger than the support integrates exp(logProb) to 1.
    const g = 300; // cell edges fall on +-1
    const grid = new Float32Array(g * g * 2);
    for (let a = 0; a < g; a++) {
      for (let b = 0; b < g; b++) {
        grid[2 * (a * g + b)] = -1.5 + (3 * (a + 0.5)) / g;
        grid[2 * (a * g + b) + 1] = -1.5 + (3 * (b + 0.5)) / g;
      }
    }
    const mass = tm.prior.logProb(grid, g * g).reduce((s, v) => s + Math.exp(v), 0) * (3 / g) ** 2;
    close(mass, 1, 1e-9, 'two_moons prior mass');
    const sl = slcp();
    assert.deepEqual(sl.prior.support, { lower: [-3, -3, -3, -3, -3], upper: [3, 3, 3, 3, 3] });
    close(sl.prior.logProb(new Float32Array(5), 1)[0], -5 * Math.log(6), 1e-12, 'slcp inside');
    assert.equal(sl.prior.logProb(Float32Array.of(0, 0, 0, 0, -3.01), 1)[0], -Infinity);
  });
});

describe('gaussian_linear', () => {
  const task = gaussianLinear();
  const xo = Float32Array.of(0.5, -1.2, 2.0, 0.1, 0.05, -0.7, 0.02, 0.3, 1.0, -2.5);

  test("uses RABI's A and N(A theta, 0.1^2) noise", () => {
    assert.deepEqual(GAUSSIAN_LINEAR_A_DIAG.slice(0, 3), [-0.2633, -1.9402, 1.6822]);
    const n = 20000;
    const th = new Float32Array(n * 10);
    for (let i = 0; i < th.length; i++) th[i] = 0.1 * ((i % 10) - 4);
    const x = task.simulate(th, n, createRng(3));
    for (let j = 0; j < 10; j++) {
      const [m, s] = meanStd(x, 10, j);
      close(m, GAUSSIAN_LINEAR_A_DIAG[j] * th[j], (5 * 0.1) / Math.sqrt(n), `mean ${j}`);
      close(s, 0.1, 0.003, `std ${j}`);
    }
  });

  test('analytic posterior equals 1-D Bayes by quadrature in every dimension', () => {
    const post = task.analyticPosterior(xo);
    assert.equal(post.cov.length, 10);
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) {
        if (i !== j) close(post.cov[i][j], 0, 1e-12, `cov[${i}][${j}]`);
      }
      // Posterior on a grid: N(theta; 0, 1) * N(xo; a theta, 0.01), normalized numerically.
      const a = GAUSSIAN_LINEAR_A_DIAG[i];
      const lo = -8;
      const hi = 8;
      const g = 40001;
      const dt = (hi - lo) / (g - 1);
      let z = 0;
      let m1 = 0;
      let m2 = 0;
      for (let k = 0; k < g; k++) {
        const t = lo + k * dt;
        const w = Math.exp(-0.5 * t * t - (0.5 * (xo[i] - a * t) ** 2) / 0.01);
        z += w;
        m1 += w * t;
        m2 += w * t * t;
      }
      const mean = m1 / z;
      const variance = m2 / z - mean * mean;
      close(post.mean[i], mean, 1e-6, `mean ${i}`);
      close(post.cov[i][i], variance, 1e-6 * Math.max(1, variance), `var ${i}`);
    }
  });

  test('logLikelihood plus log prior differs from the analytic log posterior by a constant', () => {
    const post = task.analyticPosterior(xo);
    const th = task.prior.sample(5, createRng(11));
    const ll = task.logLikelihood(th, 5, xo);
    const lp = task.prior.logProb(th, 5);
    const diffs = [...ll].map((v, r) => {
      let q = 0;
      for (let j = 0; j < 10; j++) q += (th[r * 10 + j] - post.mean[j]) ** 2 / post.cov[j][j];
      return v + lp[r] + 0.5 * q;
    });
    for (const d of diffs) close(d, diffs[0], 1e-6, 'log-posterior offset');
  });

  test('reference samples have the analytic mean and covariance', () => {
    const post = task.analyticPosterior(xo);
    const n = 20000;
    const s = task.referencePosterior(xo, n, createRng(5));
    for (let j = 0; j < 10; j++) {
      const [m, sd] = meanStd(s, 10, j);
      const tsd = Math.sqrt(post.cov[j][j]);
      close(m, post.mean[j], (5 * tsd) / Math.sqrt(n), `mean ${j}`);
      close(sd, tsd, 0.03 * tsd, `sd ${j}`);
    }
  });
});

describe('lotka_volterra', () => {
  test('the first integral V = delta x - gamma ln x + beta y - alpha ln y is conserved', () => {
    const task = lotkaVolterra();
    const theta = task.prior.sample(20, createRng(21));
    const rates = new Float64Array(4);
    for (let r = 0; r < 20; r++) {
      assert.ok(task.solveRow(theta, r * 4));
      lvRates(theta, r * 4, rates);
      const [al, be, ga, de] = rates;
      for (const v of rates) assert.ok(v > 1 && v < Math.E);
      const tr = task.trajectory;
      assert.equal(tr[0], 1);
      assert.equal(tr[1], 1);
      const v0 = de - 0 + be - 0; // at (1, 1)
      for (let i = 0; i < 50; i++) {
        const x = tr[2 * i];
        const y = tr[2 * i + 1];
        assert.ok(x > 0 && y > 0);
        const v = de * x - ga * Math.log(x) + be * y - al * Math.log(y);
        close(v, v0, 1e-4 * v0, `row ${r} t=${task.times[i]}`);
      }
    }
  });

  test('x is prey at 50 times then predator at 50 times, plus N(0, 0.05^2)', () => {
    const task = lotkaVolterra();
    const n = 400;
    const theta = new Float32Array(n * 4).map((_, i) => [0.3, -0.2, 0.1, -0.4][i % 4]);
    const x = task.simulate(theta, n, createRng(4));
    assert.ok(task.solveRow(theta, 0));
    const tr = task.trajectory;
    const resid = new Float64Array(n * 100);
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < 50; i++) {
        resid[r * 100 + i] = x[r * 100 + i] - tr[2 * i];
        resid[r * 100 + 50 + i] = x[r * 100 + 50 + i] - tr[2 * i + 1];
      }
    }
    const [m, s] = meanStd(resid);
    close(m, 0, 0.002, 'noise mean');
    close(s, 0.05, 0.001, 'noise std');
  });

  test('the Euler fallback agrees with dopri and is counted; a failed row is NaN', () => {
    const task = lotkaVolterra();
    const theta = Float32Array.of(0.3, -0.2, 0.1, -0.4);
    assert.ok(task.solveRow(theta, 0));
    const exact = Float64Array.from(task.trajectory);
    task.maxSteps = 3;
    assert.ok(task.solveRow(theta, 0));
    assert.equal(task.stats.eulerFallbacks, 1);
    let maxDiff = 0;
    for (let i = 0; i < exact.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(exact[i] - task.trajectory[i]));
    assert.ok(maxDiff < 0.05 && maxDiff > 0, `Euler(1e-3) vs dopri: ${maxDiff}`);
    task.maxSteps = 100000;
    const x = task.simulate(Float32Array.of(0, 0, 0, 0, NaN, 0, 0, 0), 2, createRng(1));
    assert.ok(x.subarray(0, 100).every(Number.isFinite));
    assert.ok(x.subarray(100).every(Number.isNaN));
    assert.equal(task.stats.failures, 1);
  });
});

describe('sir', () => {
  test('S + I + R is conserved, 0 <= I <= 5.25, S falls and R rises', () => {
    const task = sir();
    const theta = task.prior.sample(30, createRng(31));
    for (let r = 0; r < 30; r++) {
      assert.ok(task.solveRow(theta, r * 2));
      const tr = task.trajectory;
      assert.deepEqual([tr[0], tr[1], tr[2]], [5, 0.25, 0]);
      for (let i = 0; i < 50; i++) {
        const [s, inf, rec] = [tr[3 * i], tr[3 * i + 1], tr[3 * i + 2]];
        close(s + inf + rec, 5.25, 1e-6, `row ${r} total`);
        assert.ok(inf >= -1e-5 && inf <= 5.25, `I=${inf}`);
        if (i > 0) {
          assert.ok(s <= tr[3 * (i - 1)] + 1e-5, 'S must not grow (up to the solver tolerance)');
          assert.ok(
            rec >= tr[3 * (i - 1) + 2] - 1e-5,
            'R must not fall (up to the solver tolerance)',
          );
        }
      }
    }
  });

  test('the second invariant ln(S/S0) + (beta/gamma) R/N = 0 holds along a large epidemic', () => {
    const task = sir();
    const logit = (p: number): number => Math.log(p / (1 - p));
    const beta = 1 / (1 + Math.exp(-Math.fround(logit(0.9))));
    const gamma = 1 / (1 + Math.exp(-Math.fround(logit(0.1))));
    assert.ok(task.solveRow(Float32Array.of(logit(0.9), logit(0.1)), 0));
    const tr = task.trajectory;
    for (let i = 0; i < 50; i++) {
      const s = tr[3 * i];
      const inv = Math.log(s / 5) + ((beta / gamma) * tr[3 * i + 2]) / 5;
      close(inv, 0, 2e-5 / s + 1e-4, `t=${task.times[i]}`);
    }
    // Most of S gets infected: S(50) is a tiny fraction of S0.
    assert.ok(tr[3 * 49] < 0.01);
  });

  test('x ~ LogNormal(log(I + 1e-4), 0.2)', () => {
    const task = sir();
    const n = 300;
    const theta = new Float32Array(n * 2).map((_, i) => (i % 2 === 0 ? 1.0 : -1.5));
    const x = task.simulate(theta, n, createRng(6));
    assert.ok(task.solveRow(theta, 0));
    const z = new Float64Array(n * 50);
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < 50; i++)
        z[r * 50 + i] = Math.log(x[r * 50 + i]) - Math.log(task.trajectory[3 * i + 1] + 1e-4);
    }
    const [m, s] = meanStd(z);
    close(m, 0, 0.005, 'log-noise mean');
    close(s, 0.2, 0.003, 'log-noise std');
  });
});

describe('two_moons', () => {
  const task = twoMoons();
  const shift = new Float64Array(2);
  // The crescent point p = x - g(theta) relative to the offset (0.25, 0), in polar form.
  const crescent = (x0: number, x1: number, t0: number, t1: number): [number, number] => {
    TwoMoonsTask.shift(t0, t1, shift);
    const u = x0 - shift[0] - 0.25;
    const v = x1 - shift[1];
    return [Math.hypot(u, v), Math.atan2(v, u)];
  };

  test('the simulator is the sbibm crescent shifted by (-|z0|, z1)', () => {
    const n = 20000;
    const theta = new Float32Array(n * 2).map((_, i) => (i % 2 === 0 ? 0.4 : -0.1));
    const x = task.simulate(theta, n, createRng(9));
    const radii = new Float64Array(n);
    const angles = new Float64Array(n);
    for (let i = 0; i < n; i++) [radii[i], angles[i]] = crescent(x[2 * i], x[2 * i + 1], 0.4, -0.1);
    const [rm, rs] = meanStd(radii);
    close(rm, 0.1, 0.0005, 'radius mean');
    close(rs, 0.01, 0.0005, 'radius std');
    for (const a of angles) assert.ok(Math.abs(a) <= Math.PI / 2 + 1e-4);
    const [am, as] = meanStd(angles);
    close(am, 0, 0.03, 'angle mean');
    close(as, Math.PI / Math.sqrt(12), 0.02, 'angle std (uniform on a half circle)');
  });

  const xo = Float32Array.of(-0.35, 0.12);

  test('every reference sample maps back onto the crescent at xo (the inversion is exact)', () => {
    const s = task.referencePosterior(xo, 5000, createRng(12));
    assert.equal(s.length, 10000);
    for (let i = 0; i < 5000; i++) {
      const [r, a] = crescent(xo[0], xo[1], s[2 * i], s[2 * i + 1]);
      assert.ok(Math.abs(r - 0.1) < 0.06, `radius ${r}`);
      assert.ok(Math.abs(a) <= Math.PI / 2 + 1e-5, `angle ${a}`);
      assert.ok(Math.abs(s[2 * i]) <= 1 && Math.abs(s[2 * i + 1]) <= 1);
    }
    const ll = task.logLikelihood(s, 5000, xo);
    assert.ok(ll.every(Number.isFinite));
  });

  test('two mirror-image modes of equal mass, related by (t1, t2) -> (-t2, -t1)', () => {
    const n = 20000;
    const s = task.referencePosterior(xo, n, createRng(13));
    let k = 0;
    const a = [0, 0];
    const b = [0, 0];
    for (let i = 0; i < n; i++) {
      if (s[2 * i] + s[2 * i + 1] > 0) {
        k++;
        a[0] += s[2 * i];
        a[1] += s[2 * i + 1];
      } else {
        b[0] += s[2 * i];
        b[1] += s[2 * i + 1];
      }
    }
    close(k / n, 0.5, 4 * Math.sqrt(0.25 / n), 'mode mass');
    // The mirror of mode A's mean is mode B's mean.
    close(-a[1] / k, b[0] / (n - k), 0.01, 'mirror x');
    close(-a[0] / k, b[1] / (n - k), 0.01, 'mirror y');
    // The two modes are well separated at this xo.
    assert.ok(Math.abs(a[0] / k - b[0] / (n - k)) > 0.2);
  });

  test('reference moments match self-normalized importance sampling from the prior', () => {
    const m = 400000;
    const prop = task.prior.sample(m, createRng(14));
    const lw = task.logLikelihood(prop, m, xo);
    let wSum = 0;
    let w2 = 0;
    const mom = [0, 0, 0, 0];
    for (let i = 0; i < m; i++) {
      const w = Math.exp(lw[i]);
      if (w === 0) continue;
      const t0 = prop[2 * i];
      const t1 = prop[2 * i + 1];
      wSum += w;
      w2 += w * w;
      mom[0] += w * t0;
      mom[1] += w * t1;
      mom[2] += w * t0 * t0;
      mom[3] += w * t1 * t1;
    }
    const ess = (wSum * wSum) / w2;
    assert.ok(ess > 1000, `ESS ${ess}`);
    const n = 20000;
    const s = task.referencePosterior(xo, n, createRng(15));
    const ref = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      ref[0] += s[2 * i] / n;
      ref[1] += s[2 * i + 1] / n;
      ref[2] += s[2 * i] ** 2 / n;
      ref[3] += s[2 * i + 1] ** 2 / n;
    }
    for (let j = 0; j < 4; j++) close(ref[j], mom[j] / wSum, 0.02, `moment ${j}`);
  });
});

describe('slcp', () => {
  const task = slcp();

  test('four iid draws per row from N(m, S) with S built from theta3^2, theta4^2, tanh(theta5)', () => {
    const n = 20000;
    const th = [0.5, -1.0, 1.1, -0.8, 0.7];
    const theta = new Float32Array(n * 5).map((_, i) => th[i % 5]);
    const x = task.simulate(Float32Array.from(theta), n, createRng(16));
    const s1 = Math.fround(1.1) ** 2;
    const s2 = Math.fround(-0.8) ** 2;
    const rho = Math.tanh(Math.fround(0.7));
    for (let k = 0; k < 4; k++) {
      const [mx, sx] = meanStd(x, 8, 2 * k);
      const [my, sy] = meanStd(x, 8, 2 * k + 1);
      close(mx, 0.5, 0.03, `mean x${k}`);
      close(my, -1.0, 0.03, `mean y${k}`);
      close(sx, s1, 0.02 * s1, `sd x${k}`);
      close(sy, s2, 0.02 * s2, `sd y${k}`);
      let c = 0;
      for (let i = 0; i < n; i++) c += (x[i * 8 + 2 * k] - mx) * (x[i * 8 + 2 * k + 1] - my);
      close(c / n / (sx * sy), rho, 0.02, `corr ${k}`);
    }
  });

  test('logLikelihood is the sum of four bivariate normal log-densities', () => {
    const xo = Float32Array.of(0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.0);
    // rho = 0: it factorizes into 1-D normals.
    const th = Float32Array.of(0.2, -0.1, 1.2, -0.9, 0);
    const s1 = Math.fround(1.2) ** 2;
    const sd1 = Math.sqrt(s1 * s1 + 1e-6);
    const s2 = Math.fround(-0.9) ** 2;
    const sd2 = Math.sqrt(s2 * s2 + 1e-6);
    const lnN = (v: number, m: number, sd: number): number =>
      -0.5 * ((v - m) / sd) ** 2 - Math.log(sd) - 0.5 * Math.log(2 * Math.PI);
    let expected = 0;
    for (let k = 0; k < 4; k++)
      expected += lnN(xo[2 * k], th[0], sd1) + lnN(xo[2 * k + 1], th[1], sd2);
    close(task.logLikelihood(th, 1, xo)[0], expected, 1e-9, 'rho = 0');
    // rho != 0: conditional decomposition p(x) p(y | x).
    const th2 = Float32Array.of(0.2, -0.1, 1.2, -0.9, -0.8);
    const rho = Math.tanh(Math.fround(-0.8));
    const c01 = rho * s1 * s2;
    let e2 = 0;
    for (let k = 0; k < 4; k++) {
      const dx = xo[2 * k] - th2[0];
      const condMean = th2[1] + (c01 / (sd1 * sd1)) * dx;
      const condSd = Math.sqrt(sd2 * sd2 - (c01 * c01) / (sd1 * sd1));
      e2 += lnN(xo[2 * k], th2[0], sd1) + lnN(xo[2 * k + 1], condMean, condSd);
    }
    close(task.logLikelihood(th2, 1, xo)[0], e2, 1e-9, 'rho != 0');
    // Depends on theta3, theta4 only through their squares.
    const flipped = Float32Array.of(0.2, -0.1, -1.2, 0.9, -0.8);
    close(task.logLikelihood(flipped, 1, xo)[0], e2, 1e-12, 'sign symmetry');
  });

  test('reference samples: in the box, all four sign modes, moments confirmed by importance sampling', () => {
    const truth = Float32Array.of(0.7, -2.0, -1.0, -0.9, 0.6);
    const xo = task.simulate(truth, 1, createRng(17));
    const n = 4000;
    const s = task.referencePosterior(xo, n, createRng(18));
    assert.deepEqual(s, task.referencePosterior(xo, n, createRng(18)));
    assert.ok(task.prior.logProb(s, n).every(Number.isFinite));
    assert.ok(task.logLikelihood(s, n, xo).every(Number.isFinite));
    const quad = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) quad[(s[i * 5 + 2] > 0 ? 1 : 0) + (s[i * 5 + 3] > 0 ? 2 : 0)]++;
    for (const q of quad) close(q / n, 0.25, 0.04, 'sign-mode mass');
    // Independent check: importance sampling with a wide Gaussian fitted to the folded samples
    // (|theta3|, |theta4|; the posterior is symmetric in their signs) must agree with the MCMC moments.
    const folded = Float64Array.from(s, (v, i) => (i % 5 === 2 || i % 5 === 3 ? Math.abs(v) : v));
    const mean = [0, 1, 2, 3, 4].map((j) => meanStd(folded, 5, j)[0]);
    const sds = [0, 1, 2, 3, 4].map((j) => meanStd(folded, 5, j)[1]);
    const cov = mean.map((_, i) =>
      mean.map((_, j) => {
        let c = 0;
        for (let r = 0; r < n; r++)
          c += (folded[r * 5 + i] - mean[i]) * (folded[r * 5 + j] - mean[j]);
        return (2.25 * c) / n; // proposal std 1.5x the posterior's
      }),
    );
    const l = cholesky(cov);
    let logDetL = 0;
    for (let i = 0; i < 5; i++) logDetL += Math.log(l[i][i]);
    const m = 40000;
    const rng = createRng(22);
    const z = new Float64Array(5);
    const th = new Float32Array(5);
    let wSum = 0;
    let w2 = 0;
    const mom = [0, 0, 0, 0, 0];
    const logW = new Float64Array(m);
    const props = new Float64Array(m * 5);
    for (let r = 0; r < m; r++) {
      rng.fillNormal(z);
      let q = 0;
      for (let i = 0; i < 5; i++) {
        let v = mean[i];
        for (let k = 0; k <= i; k++) v += l[i][k] * z[k];
        props[r * 5 + i] = v;
        th[i] = v;
        q += z[i] * z[i];
      }
      const inside = th[2] >= 0 && th[3] >= 0 && Number.isFinite(task.prior.logProb(th, 1)[0]);
      logW[r] = inside ? task.logLikelihood(th, 1, xo)[0] + 0.5 * q + logDetL : -Infinity;
    }
    const maxLw = Math.max(...logW);
    for (let r = 0; r < m; r++) {
      const w = Math.exp(logW[r] - maxLw);
      wSum += w;
      w2 += w * w;
      for (let i = 0; i < 5; i++) mom[i] += w * props[r * 5 + i];
    }
    const ess = (wSum * wSum) / w2;
    assert.ok(ess > 500, `importance-sampling ESS ${ess}`);
    for (let i = 0; i < 5; i++) close(mom[i] / wSum, mean[i], 0.12 * sds[i], `folded mean ${i}`); // ~3 standard errors
  });
});

describe('sliceSampleBox', () => {
  test('recovers the moments of a correlated 2-D Gaussian', () => {
    const rho = 0.8;
    const logp = (t: Float64Array): number =>
      (-0.5 * (t[0] * t[0] - 2 * rho * t[0] * (t[1] - 1) + (t[1] - 1) ** 2)) / (1 - rho * rho);
    const nChains = 20;
    const init = new Float64Array(nChains * 2).fill(0.5);
    const n = 8000;
    const s = sliceSampleBox(logp, init, [-10, -10], [10, 10], n, createRng(19), {
      nChains,
      burnIn: 100,
      thin: 3,
      width: 1,
    });
    const [m0, s0] = meanStd(s, 2, 0);
    const [m1, s1] = meanStd(s, 2, 1);
    close(m0, 0, 0.08, 'mean 0');
    close(m1, 1, 0.08, 'mean 1');
    close(s0, 1, 0.05, 'sd 0');
    close(s1, 1, 0.05, 'sd 1');
    let c = 0;
    for (let i = 0; i < n; i++) c += (s[2 * i] - m0) * (s[2 * i + 1] - m1);
    close(c / n / (s0 * s1), rho, 0.04, 'correlation');
  });

  test('a flat density gives the uniform distribution on the box', () => {
    const nChains = 10;
    const init = new Float64Array(nChains).fill(0);
    const s = sliceSampleBox(() => 0, init, [-2], [1], 6000, createRng(20), {
      nChains,
      burnIn: 10,
      thin: 1,
      width: 0.5,
    });
    for (const v of s) assert.ok(v >= -2 && v <= 1);
    const [m, sd] = meanStd(s);
    close(m, -0.5, 0.05, 'uniform mean');
    close(sd, 3 / Math.sqrt(12), 0.03, 'uniform sd');
  });
});
