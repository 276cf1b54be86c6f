// RABI's sir (rbibm/tasks/sir_task.py, config/task/sir.yaml). Not sbibm's task of the same name.
// theta ~ N(0, 2^2 I_2); (beta, gamma) = sigmoid(theta);
//   S' = -beta S I / N,  I' = beta S I / N - gamma I,  R' = gamma I,  N = 5, (S, I, R)(0) = (5, 0.25, 0)
// (RABI sets S0 = N, so S + I + R = 5.25, not N). Observed at linspace(0, 50, 50):
// x_t ~ LogNormal(log(I(t) + 1e-4), 0.2). Solved by dopri5 at atol 1e-6, rtol 1e-5 (the SIRTask
// defaults; the yaml does not override them), Euler with step 1e-3 on solver failure.
// Deviation: where RABI replaces a non-finite I by 0, this task returns a NaN row (the Task contract).
import type { Task } from '../types.js';
import { Dopri5, linspace, type OdeRhs } from './ode.js';
import { LikelihoodOdeTask } from './ode-reference.js';
import { DiagGaussianPrior } from './priors.js';

export const SIR_TIMES = 50;
export const SIR_T_MAX = 50;
export const SIR_N = 5;
export const SIR_Y0: readonly number[] = [SIR_N, 0.25, 0];
export const SIR_NOISE = 0.2;
const ATOL = 1e-6;
const RTOL = 1e-5;
const EULER_STEP = 1e-3;
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
const I_OFFSET = 1e-4;

/** params = (beta, gamma); y = (S, I, R). */
export const sirRhs: OdeRhs = (_t, y, dy, p) => {
  const infection = (p[0] * y[0] * y[1]) / SIR_N;
  const recovery = p[1] * y[1];
  dy[0] = -infection;
  dy[1] = infection - recovery;
  dy[2] = recovery;
};

export class SirTask extends LikelihoodOdeTask implements Task {
  readonly name = 'sir';
  readonly thetaDim = 2;
  readonly xDim = SIR_TIMES;
  /** Labels of the unconstrained theta whose sigmoids are the ODE rates. */
  readonly paramNames = ['beta', 'gamma'];
  readonly prior = new DiagGaussianPrior([0, 0], [2, 2]);

  constructor() {
    super({
      solver: new Dopri5(3),
      rhs: sirRhs,
      y0: SIR_Y0,
      times: linspace(0, SIR_T_MAX, SIR_TIMES),
      atol: ATOL,
      rtol: RTOL,
      eulerStep: EULER_STEP,
      nParams: 2,
      // observe checks I itself.
      finite: [],
    });
  }

  protected setParams(theta: ArrayLike<number>, offset: number, params: Float64Array): void {
    params[0] = 1 / (1 + Math.exp(-theta[offset]));
    params[1] = 1 / (1 + Math.exp(-theta[offset + 1]));
  }

  /** x_t ~ LogNormal(log(I(t) + 1e-4), SIR_NOISE). */
  protected observe(
    traj: Float64Array,
    z: Float64Array,
    out: Float32Array,
    offset: number,
  ): boolean {
    for (let i = 0; i < SIR_TIMES; i++) {
      // LogNormal(log m, s) = m * exp(s z); m <= 0 (a solver undershoot below -1e-4) is a failure.
      const m = traj[3 * i + 1] + I_OFFSET;
      const v = m * Math.exp(SIR_NOISE * z[i]);
      if (!(m > 0) || !Number.isFinite(v)) return false;
      out[offset + i] = v;
    }
    return true;
  }

  /** log p(xo | theta): independent LogNormal(log(I(t) + 1e-4), SIR_NOISE) per time. */
  logLikelihoodRow(theta: ArrayLike<number>, offset: number, xo: ArrayLike<number>): number {
    if (!this.solveRow(theta, offset)) return -Infinity;
    const traj = this.trajectory;
    let lp = 0;
    for (let i = 0; i < SIR_TIMES; i++) {
      const m = traj[3 * i + 1] + I_OFFSET;
      if (!(m > 0)) return -Infinity;
      const lx = Math.log(xo[i]);
      const u = (lx - Math.log(m)) / SIR_NOISE;
      lp += -0.5 * u * u - lx;
    }
    return lp - SIR_TIMES * (Math.log(SIR_NOISE) + HALF_LOG_2PI);
  }
}

export function sir(): SirTask {
  return new SirTask();
}
