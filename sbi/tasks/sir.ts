// RABI's sir (rbibm/tasks/sir_task.py, config/task/sir.yaml). Not sbibm's task of the same name.
// theta ~ N(0, 2^2 I_2); (beta, gamma) = sigmoid(theta);
//   S' = -beta S I / N,  I' = beta S I / N - gamma I,  R' = gamma I,  N = 5, (S, I, R)(0) = (5, 0.25, 0)
// (RABI sets S0 = N, so S + I + R = 5.25, not N). Observed at linspace(0, 50, 50):
// x_t ~ LogNormal(log(I(t) + 1e-4), 0.2). Solved by dopri5 at atol 1e-6, rtol 1e-5 (the SIRTask
// defaults; the yaml does not override them), Euler with step 1e-3 on solver failure.
// Deviation: where RABI replaces a non-finite I by 0, this task returns a NaN row (the Task contract).
import type { RandomStream, Task } from '../types.js';
import { Dopri5, eulerFixed, linspace, type OdeRhs } from './ode.js';
import { DiagGaussianPrior } from './priors.js';

export const SIR_TIMES = 50;
export const SIR_T_MAX = 50;
export const SIR_N = 5;
export const SIR_Y0: readonly number[] = [SIR_N, 0.25, 0];
export const SIR_NOISE = 0.2;
const ATOL = 1e-6;
const RTOL = 1e-5;
const EULER_STEP = 1e-3;
const I_OFFSET = 1e-4;

/** params = (beta, gamma); y = (S, I, R). */
export const sirRhs: OdeRhs = (_t, y, dy, p) => {
  const infection = (p[0] * y[0] * y[1]) / SIR_N;
  const recovery = p[1] * y[1];
  dy[0] = -infection;
  dy[1] = infection - recovery;
  dy[2] = recovery;
};

export class SirTask implements Task {
  readonly name = 'sir';
  readonly thetaDim = 2;
  readonly xDim = SIR_TIMES;
  /** Labels of the unconstrained theta whose sigmoids are the ODE rates. */
  readonly paramNames = ['beta', 'gamma'];
  readonly prior = new DiagGaussianPrior([0, 0], [2, 2]);
  readonly times = linspace(0, SIR_T_MAX, SIR_TIMES);
  maxSteps = 100000;
  private readonly solver = new Dopri5(3);
  private readonly rates = new Float64Array(2);
  private readonly traj = new Float64Array(3 * SIR_TIMES);
  private readonly euler = {
    y: new Float64Array(3),
    yNext: new Float64Array(3),
    dy: new Float64Array(3),
  };
  readonly stats = { eulerFallbacks: 0, failures: 0 };

  /** Fills `trajectory` (time-major S, I, R) for one theta row; false if both solvers failed. */
  solveRow(theta: ArrayLike<number>, offset: number): boolean {
    this.rates[0] = 1 / (1 + Math.exp(-theta[offset]));
    this.rates[1] = 1 / (1 + Math.exp(-theta[offset + 1]));
    const res = this.solver.solve(sirRhs, this.rates, SIR_Y0, this.times, this.traj, {
      atol: ATOL,
      rtol: RTOL,
      maxSteps: this.maxSteps,
    });
    let ok = res.status === 'ok';
    if (!ok) {
      this.stats.eulerFallbacks++;
      ok = eulerFixed(sirRhs, this.rates, SIR_Y0, this.times, EULER_STEP, this.traj, this.euler);
    }
    return ok;
  }

  get trajectory(): Float64Array {
    return this.traj;
  }

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const xd = this.xDim;
    const out = new Float32Array(n * xd);
    const z = new Float64Array(xd);
    for (let r = 0; r < n; r++) {
      rng.fillNormal(z);
      const o = r * xd;
      let ok = this.solveRow(theta, r * 2);
      if (ok) {
        for (let i = 0; i < SIR_TIMES; i++) {
          // LogNormal(log m, s) = m * exp(s z); m <= 0 (a solver undershoot below -1e-4) is a failure.
          const m = this.traj[3 * i + 1] + I_OFFSET;
          const v = m * Math.exp(SIR_NOISE * z[i]);
          if (!(m > 0) || !Number.isFinite(v)) {
            ok = false;
            break;
          }
          out[o + i] = v;
        }
      }
      if (!ok) {
        this.stats.failures++;
        out.fill(NaN, o, o + xd);
      }
    }
    return out;
  }
}

export function sir(): SirTask {
  return new SirTask();
}
