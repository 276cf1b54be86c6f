// RABI's lotka_volterra (rbibm/tasks/lv_task.py, config/task/lotka_volterra.yaml). Not sbibm's task of
// the same name. theta ~ N(0, 0.5^2 I_4); (alpha, beta, gamma, delta) = exp(sigmoid(theta)) in (1, e);
//   prey' = alpha prey - beta prey pred,  pred' = delta prey pred - gamma pred,  (prey, pred)(0) = (1, 1);
// observed at linspace(0, 20, 50): x = [prey(t_1..t_50), pred(t_1..t_50)] + N(0, 0.05^2) noise.
// Solved by dopri5 at atol = rtol = 1e-6; on solver failure RABI re-solves with Euler, step 1e-3.
// Deviation: where RABI replaces non-finite states by 0, this task returns a NaN row (the Task contract).
import type { RandomStream, Task } from '../types.js';
import { Dopri5, eulerFixed, linspace, type OdeRhs } from './ode.js';
import { DiagGaussianPrior } from './priors.js';

export const LV_TIMES = 50;
export const LV_T_MAX = 20;
export const LV_NOISE = 0.05;
const TOL = 1e-6;
const EULER_STEP = 1e-3;

/** params = (alpha, beta, gamma, delta); y = (prey, predator). */
export const lotkaVolterraRhs: OdeRhs = (_t, y, dy, p) => {
  const prey = y[0];
  const pred = y[1];
  dy[0] = p[0] * prey - p[1] * prey * pred;
  dy[1] = p[3] * prey * pred - p[2] * pred;
};

/** The rates RABI feeds the ODE: exp(sigmoid(theta)). */
export function lvRates(theta: ArrayLike<number>, offset: number, out: Float64Array): void {
  for (let j = 0; j < 4; j++) out[j] = Math.exp(1 / (1 + Math.exp(-theta[offset + j])));
}

export class LotkaVolterraTask implements Task {
  readonly name = 'lotka_volterra';
  readonly thetaDim = 4;
  readonly xDim = 2 * LV_TIMES;
  /** Labels of the unconstrained theta whose exp(sigmoid(.)) are the ODE rates. */
  readonly paramNames = ['alpha', 'beta', 'gamma', 'delta'];
  readonly prior = new DiagGaussianPrior([0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]);
  readonly times = linspace(0, LV_T_MAX, LV_TIMES);
  /** Solver steps limit per row before the Euler fallback. */
  maxSteps = 100000;
  private readonly solver = new Dopri5(2);
  private readonly rates = new Float64Array(4);
  private readonly traj = new Float64Array(2 * LV_TIMES);
  private readonly euler = {
    y: new Float64Array(2),
    yNext: new Float64Array(2),
    dy: new Float64Array(2),
  };
  /** Rows that needed the Euler fallback / came out non-finite, since construction. */
  readonly stats = { eulerFallbacks: 0, failures: 0 };

  /**
   * The noise-free trajectory for one theta row, time-major (prey, pred) pairs in a buffer that
   * the next call overwrites. Returns false if both solvers failed.
   */
  solveRow(theta: ArrayLike<number>, offset: number): boolean {
    lvRates(theta, offset, this.rates);
    const res = this.solver.solve(lotkaVolterraRhs, this.rates, [1, 1], this.times, this.traj, {
      atol: TOL,
      rtol: TOL,
      maxSteps: this.maxSteps,
    });
    let ok = res.status === 'ok';
    if (!ok) {
      this.stats.eulerFallbacks++;
      ok = eulerFixed(
        lotkaVolterraRhs,
        this.rates,
        [1, 1],
        this.times,
        EULER_STEP,
        this.traj,
        this.euler,
      );
    }
    if (ok) {
      for (let i = 0; i < this.traj.length; i++) {
        if (!Number.isFinite(this.traj[i])) {
          ok = false;
          break;
        }
      }
    }
    return ok;
  }

  /** The buffer solveRow filled. */
  get trajectory(): Float64Array {
    return this.traj;
  }

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const xd = this.xDim;
    const out = new Float32Array(n * xd);
    const z = new Float64Array(xd);
    for (let r = 0; r < n; r++) {
      // Noise is drawn for every row, failed or not, so row r's noise does not depend on other rows.
      rng.fillNormal(z);
      const o = r * xd;
      if (!this.solveRow(theta, r * 4)) {
        this.stats.failures++;
        out.fill(NaN, o, o + xd);
        continue;
      }
      for (let i = 0; i < LV_TIMES; i++) {
        out[o + i] = this.traj[2 * i] + LV_NOISE * z[i];
        out[o + LV_TIMES + i] = this.traj[2 * i + 1] + LV_NOISE * z[LV_TIMES + i];
      }
    }
    return out;
  }
}

export function lotkaVolterra(): LotkaVolterraTask {
  return new LotkaVolterraTask();
}
