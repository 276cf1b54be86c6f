// RABI's lotka_volterra (rbibm/tasks/lv_task.py, config/task/lotka_volterra.yaml). Not sbibm's task of
// the same name. theta ~ N(0, 0.5^2 I_4); (alpha, beta, gamma, delta) = exp(sigmoid(theta)) in (1, e);
//   prey' = alpha prey - beta prey pred,  pred' = delta prey pred - gamma pred,  (prey, pred)(0) = (1, 1);
// observed at linspace(0, 20, 50): x = [prey(t_1..t_50), pred(t_1..t_50)] + N(0, 0.05^2) noise.
// Solved by dopri5 at atol = rtol = 1e-6; on solver failure RABI re-solves with Euler, step 1e-3.
// Deviation: where RABI replaces non-finite states by 0, this task returns a NaN row (the Task contract).
import type { Task } from '../types.js';
import { Dopri5, linspace, type OdeRhs } from './ode.js';
import { observeWithGaussianNoise } from './ode-task.js';
import { LikelihoodOdeTask } from './ode-reference.js';
import { DiagGaussianPrior } from './priors.js';

export const LV_TIMES = 50;
export const LV_T_MAX = 20;
export const LV_NOISE = 0.05;
const TOL = 1e-6;
const EULER_STEP = 1e-3;
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

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

export class LotkaVolterraTask extends LikelihoodOdeTask implements Task {
  readonly name = 'lotka_volterra';
  readonly thetaDim = 4;
  readonly xDim = 2 * LV_TIMES;
  /** Labels of the unconstrained theta whose exp(sigmoid(.)) are the ODE rates. */
  readonly paramNames = ['alpha', 'beta', 'gamma', 'delta'];
  readonly prior = new DiagGaussianPrior([0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]);

  constructor() {
    super({
      solver: new Dopri5(2),
      rhs: lotkaVolterraRhs,
      y0: [1, 1],
      times: linspace(0, LV_T_MAX, LV_TIMES),
      atol: TOL,
      rtol: TOL,
      eulerStep: EULER_STEP,
      nParams: 4,
      finite: [0, 1],
    });
  }

  protected setParams(theta: ArrayLike<number>, offset: number, params: Float64Array): void {
    lvRates(theta, offset, params);
  }

  /** x = [prey(t_1..t_50), pred(t_1..t_50)] + N(0, LV_NOISE^2). */
  protected observe(
    traj: Float64Array,
    z: Float64Array,
    out: Float32Array,
    offset: number,
  ): boolean {
    observeWithGaussianNoise(traj, 2, [0, 1], LV_NOISE, z, out, offset);
    return true;
  }

  /** log p(xo | theta): independent N(state, LV_NOISE^2) around the solved prey and predator. */
  logLikelihoodRow(theta: ArrayLike<number>, offset: number, xo: ArrayLike<number>): number {
    if (!this.solveRow(theta, offset)) return -Infinity;
    const traj = this.trajectory;
    let q = 0;
    for (let k = 0; k < 2; k++) {
      for (let i = 0; i < LV_TIMES; i++) {
        const r = (xo[k * LV_TIMES + i] - traj[2 * i + k]) / LV_NOISE;
        q += r * r;
      }
    }
    return -0.5 * q - this.xDim * (Math.log(LV_NOISE) + HALF_LOG_2PI);
  }
}

export function lotkaVolterra(): LotkaVolterraTask {
  return new LotkaVolterraTask();
}
