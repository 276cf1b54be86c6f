import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../../sbi/rng.js';
import { lotkaVolterra } from '../../../sbi/tasks/lotka_volterra.js';
import { sir } from '../../../sbi/tasks/sir.js';
import { cholesky } from '../../../sbi/tasks/linalg.js';
import type { RowLikelihoodTask } from '../../../sbi/tasks/ode-reference.js';
import type { Task } from '../../../sbi/types.js';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** x simulated at theta, and the standard normals simulate drew for it (the same seeded stream). */
function simulateWithNoise(
  task: Task,
  theta: number[],
  seed: number,
): { x: Float32Array; z: Float64Array } {
  const x = task.simulate(Float32Array.from(theta), 1, createRng(seed));
  const z = new Float64Array(task.xDim);
  createRng(seed).fillNormal(z);
  return { x, z };
}

type RefTask = Task &
  RowLikelihoodTask & {
    referencePosterior(
      xo: Float32Array,
      n: number,
      rng: ReturnType<typeof createRng>,
      opts?: { nChains?: number; burnIn?: number; thin?: number; initDraws?: number },
    ): Float32Array;
  };

function moments(s: ArrayLike<number>, n: number, d: number): { mean: number[]; cov: number[] } {
  const mean = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += s[i * d + j] / n;
  const cov = new Array<number>(d * d).fill(0);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++)
      for (let b = 0; b < d; b++)
        cov[a * d + b] += ((s[i * d + a] - mean[a]) * (s[i * d + b] - mean[b])) / (n - 1);
  return { mean, cov };
}

/**
 * Self-normalized importance sampling of the posterior's mean and sds, from a Gaussian proposal
 * twice as wide as the samples under test: an estimate that does not share the MCMC's errors.
 */
function importanceMoments(
  task: RefTask,
  xo: Float32Array,
  around: { mean: number[]; cov: number[] },
  m: number,
  seed: number,
): { mean: number[]; sd: number[]; ess: number } {
  const d = task.thetaDim;
  const L = cholesky(
    Array.from({ length: d }, (_, a) =>
      Array.from({ length: d }, (_, b) => 4 * around.cov[a * d + b]),
    ),
  );
  const rng = createRng(seed);
  const z = new Float64Array(d);
  const th = new Float64Array(d);
  const xo64 = Float64Array.from(xo);
  const lw = new Float64Array(m);
  const rows = new Float64Array(m * d);
  for (let i = 0; i < m; i++) {
    rng.fillNormal(z);
    let logQ = 0;
    for (let a = 0; a < d; a++) {
      let v = around.mean[a];
      for (let b = 0; b <= a; b++) v += L[a][b] * z[b];
      th[a] = v;
      logQ -= 0.5 * z[a] * z[a];
    }
    let logPrior = 0;
    for (let a = 0; a < d; a++) {
      const u = (th[a] - task.prior.mean[a]) / task.prior.std[a];
      logPrior -= 0.5 * u * u;
    }
    // log|L| is common to every draw and cancels in the normalization.
    lw[i] = logPrior + task.logLikelihoodRow(th, 0, xo64) - logQ;
    rows.set(th, i * d);
  }
  const max = Math.max(...lw);
  let wSum = 0;
  let w2 = 0;
  const s1 = new Array<number>(d).fill(0);
  const s2 = new Array<number>(d).fill(0);
  for (let i = 0; i < m; i++) {
    const w = Math.exp(lw[i] - max);
    wSum += w;
    w2 += w * w;
    for (let a = 0; a < d; a++) {
      s1[a] += w * rows[i * d + a];
      s2[a] += w * rows[i * d + a] ** 2;
    }
  }
  const mean = s1.map((v) => v / wSum);
  const sd = s2.map((v, a) => Math.sqrt(v / wSum - mean[a] ** 2));
  return { mean, sd, ess: (wSum * wSum) / w2 };
}

function checkReference(task: RefTask, theta: number[], seed: number): void {
  const { x: xo } = simulateWithNoise(task, theta, seed);
  const n = 2000;
  const d = task.thetaDim;
  const s = task.referencePosterior(xo, n, createRng(seed + 1), {
    nChains: 20,
    burnIn: 60,
    thin: 2,
    initDraws: 5000,
  });
  assert.deepEqual(
    s,
    task.referencePosterior(xo, n, createRng(seed + 1), {
      nChains: 20,
      burnIn: 60,
      thin: 2,
      initDraws: 5000,
    }),
    'seeded',
  );
  const mc = moments(s, n, d);
  const is = importanceMoments(task, xo, mc, 20000, seed + 2);
  assert.ok(is.ess > 2000, `importance ESS ${is.ess.toFixed(0)}`);
  for (let a = 0; a < d; a++) {
    const sd = Math.sqrt(mc.cov[a * d + a]);
    const dm = Math.abs(mc.mean[a] - is.mean[a]) / is.sd[a];
    assert.ok(
      dm < 0.15,
      `${task.name} theta ${a}: mean ${mc.mean[a]} vs ${is.mean[a]} (${dm.toFixed(3)} sd)`,
    );
    const r = sd / is.sd[a];
    assert.ok(r > 0.85 && r < 1.15, `${task.name} theta ${a}: sd ${sd} vs ${is.sd[a]}`);
    // The posterior concentrates around the theta that simulated xo.
    assert.ok(
      Math.abs(theta[a] - is.mean[a]) < 5 * is.sd[a],
      `${task.name} theta ${a} far from truth`,
    );
  }
}

describe('lotka_volterra likelihood and reference posterior', () => {
  const task = lotkaVolterra() as unknown as RefTask;
  const theta = [0.3, -0.2, 0.1, 0.4];

  test('log p(x | theta) is the density of the noise that simulated x', () => {
    const { x, z } = simulateWithNoise(task, theta, 3);
    let expected = 0;
    for (const v of z) expected += -0.5 * v * v - Math.log(0.05) - HALF_LOG_2PI;
    const ll = task.logLikelihood!(Float32Array.from(theta), 1, x)[0];
    assert.ok(Math.abs(ll - expected) < 1e-2, `${ll} vs ${expected}`);
    // Another theta explains the same x worse.
    const other = task.logLikelihood!(Float32Array.from([1.3, -0.2, 0.1, 0.4]), 1, x)[0];
    assert.ok(other < ll - 10, `${other} vs ${ll}`);
  });

  test('the slice-sampled reference agrees with importance sampling', () => {
    checkReference(task, theta, 40);
  });
});

describe('sir likelihood and reference posterior', () => {
  const task = sir() as unknown as RefTask;
  const theta = [0.5, -1.2];

  test('log p(x | theta) is the log-normal density of the noise that simulated x', () => {
    const { x, z } = simulateWithNoise(task, theta, 5);
    let expected = 0;
    for (let i = 0; i < z.length; i++)
      expected += -0.5 * z[i] * z[i] - Math.log(x[i]) - Math.log(0.2) - HALF_LOG_2PI;
    const ll = task.logLikelihood!(Float32Array.from(theta), 1, x)[0];
    assert.ok(Math.abs(ll - expected) < 1e-3, `${ll} vs ${expected}`);
    const other = task.logLikelihood!(Float32Array.from([0.7, -1.2]), 1, x)[0];
    assert.ok(other < ll - 10, `${other} vs ${ll}`);
  });

  test('the slice-sampled reference agrees with importance sampling', () => {
    checkReference(task, theta, 50);
  });
});
