// Reference posteriors for the ODE tasks whose likelihood is tractable (lotka_volterra and sir).
// These are RABI's tasks, not sbibm's of the same names, so sbibm's reference files do not apply;
// this builds them the way sbibm built its own for tasks with a likelihood, by MCMC: chains start
// from sampling-importance-resampling over prior draws and run coordinate-wise slice sampling, in
// coordinates whitened by the chains' covariance, on log prior + log likelihood, every likelihood
// evaluation one ODE solve.
import type { RandomStream } from '../types.js';
import { OdeTask } from './ode-task.js';
import type { DiagGaussianPrior } from './priors.js';
import { cholesky } from './linalg.js';
import { resampleStarts, sliceSampleBox } from './slice.js';

/** A task with a Gaussian prior and a row-wise log likelihood. */
export interface RowLikelihoodTask {
  readonly name: string;
  readonly thetaDim: number;
  readonly prior: DiagGaussianPrior;
  /** log p(xo | theta row); -Infinity where the simulator has no valid trajectory. */
  logLikelihoodRow(theta: ArrayLike<number>, offset: number, xo: ArrayLike<number>): number;
}

export interface OdeReferenceOptions {
  nChains?: number;
  burnIn?: number;
  thin?: number;
  initDraws?: number;
}

/** The prior box the chains move in, in prior standard deviations: its outside mass is below 1e-22. */
const BOX_SDS = 10;

export function logLikelihoodRows(
  task: RowLikelihoodTask,
  theta: Float32Array,
  n: number,
  xo: Float32Array,
): Float64Array {
  const xo64 = Float64Array.from(xo);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = task.logLikelihoodRow(theta, i * task.thetaDim, xo64);
  return out;
}

/** mean and lower Cholesky factor of the covariance of n rows of d (the chains' current states). */
function meanAndFactor(rows: Float64Array, n: number, d: number): { m: number[]; L: number[][] } {
  const m = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) m[j] += rows[i * d + j] / n;
  const c = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++)
      for (let b = 0; b <= a; b++)
        c[a][b] += ((rows[i * d + a] - m[a]) * (rows[i * d + b] - m[b])) / (n - 1);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < a; b++) c[b][a] = c[a][b];
    c[a][a] += 1e-10;
  }
  return { m, L: cholesky(c) };
}

export function odeReferencePosterior(
  task: RowLikelihoodTask,
  xo: Float32Array,
  n: number,
  rng: RandomStream,
  opts: OdeReferenceOptions = {},
): Float32Array {
  const d = task.thetaDim;
  const { mean, std } = task.prior;
  const nChains = Math.min(n, opts.nChains ?? 100);
  if (nChains <= d) throw new Error(`${task.name}: the reference needs more than ${d} chains`);
  const initDraws = opts.initDraws ?? 20000;
  const burnIn = opts.burnIn ?? 200;
  const xo64 = Float64Array.from(xo);
  const cand = task.prior.sample(initDraws, rng);
  // Prior draws weighted by the likelihood alone: resampling them targets the posterior.
  const lw = logLikelihoodRows(task, cand, initDraws, xo);
  let states = resampleStarts(cand, lw, d, nChains, rng, task.name);
  const lower = mean.map((m, j) => m - BOX_SDS * std[j]);
  const upper = mean.map((m, j) => m + BOX_SDS * std[j]);
  const theta = new Float64Array(d);
  // The posteriors of these tasks are narrow ridges (parameters that trade off along the
  // trajectory), on which coordinate-wise slice sampling barely moves: chains move in coordinates
  // whitened by the covariance of all chains' states, re-estimated after each burn-in stage and
  // then frozen, so the kept samples come from one fixed, valid kernel.
  const run = (
    w: { m: number[]; L: number[][] },
    init: Float64Array,
    count: number,
    stage: number,
    thin: number,
  ) => {
    const toTheta = (u: ArrayLike<number>): void => {
      for (let a = 0; a < d; a++) {
        let v = w.m[a];
        for (let b = 0; b <= a; b++) v += w.L[a][b] * u[b];
        theta[a] = v;
      }
    };
    const logDensity = (u: Float64Array): number => {
      toTheta(u);
      let q = 0;
      for (let j = 0; j < d; j++) {
        if (!(theta[j] >= lower[j] && theta[j] <= upper[j])) return -Infinity;
        const z = (theta[j] - mean[j]) / std[j];
        q += z * z;
      }
      return -0.5 * q + task.logLikelihoodRow(theta, 0, xo64);
    };
    const u0 = new Float64Array(nChains * d);
    for (let c = 0; c < nChains; c++) {
      // Forward substitution: u = L^-1 (theta - m).
      for (let a = 0; a < d; a++) {
        let v = init[c * d + a] - w.m[a];
        for (let b = 0; b < a; b++) v -= w.L[a][b] * u0[c * d + b];
        u0[c * d + a] = v / w.L[a][a];
      }
    }
    // The box lives in theta; in u the density is -Infinity outside it, so u itself is unbounded.
    const wide = new Array<number>(d).fill(1e6);
    const u = sliceSampleBox(
      logDensity,
      u0,
      wide.map((v) => -v),
      wide,
      count,
      rng,
      {
        nChains,
        burnIn: stage,
        thin,
        width: 2,
      },
    );
    const out = new Float64Array(count * d);
    for (let i = 0; i < count; i++) {
      toTheta(u.subarray(i * d, (i + 1) * d));
      out.set(theta, i * d);
    }
    return out;
  };
  // Burn-in in stages of a quarter each, whitening anew before each; one row per chain comes back.
  const stage = Math.max(1, Math.ceil(burnIn / 4));
  for (let k = 0; k < 4; k++)
    states = run(meanAndFactor(states, nChains, d), states, nChains, stage - 1, 1);
  const s = run(meanAndFactor(states, nChains, d), states, n, 0, opts.thin ?? 5);
  return Float32Array.from(s);
}

/** An ODE task with an exact likelihood: its log likelihood over rows and its reference posterior. */
export abstract class LikelihoodOdeTask extends OdeTask implements RowLikelihoodTask {
  abstract readonly name: string;
  abstract readonly prior: DiagGaussianPrior;
  abstract logLikelihoodRow(
    theta: ArrayLike<number>,
    offset: number,
    xo: ArrayLike<number>,
  ): number;

  logLikelihood(theta: Float32Array, n: number, xo: Float32Array): Float64Array {
    return logLikelihoodRows(this, theta, n, xo);
  }

  referencePosterior(
    xo: Float32Array,
    n: number,
    rng: RandomStream,
    opts?: OdeReferenceOptions,
  ): Float32Array {
    return odeReferencePosterior(this, xo, n, rng, opts);
  }
}
