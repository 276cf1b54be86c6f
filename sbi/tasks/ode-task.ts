// The row loop the ODE tasks (lotka_volterra, sir, hodgkin_huxley) share: per theta row, map theta
// to the right-hand side's parameters, solve on the output grid with the task's adaptive method,
// re-solve with fixed-step Euler if that fails (as RABI does), and write a NaN row when both fail
// or the observation model refuses the trajectory; otherwise the observation model writes x.
import type { RandomStream } from '../types.js';
import type { EmbeddedRk, OdeRhs } from './embedded-rk.js';
import { eulerFixed } from './ode.js';

export interface OdeTaskSetup {
  /** The adaptive solver, sized to the state. */
  solver: EmbeddedRk;
  rhs: OdeRhs;
  /** State at times[0]. */
  y0: ArrayLike<number>;
  /** The output grid, strictly increasing. */
  times: Float64Array;
  atol: number;
  rtol: number;
  /** Step of the Euler fallback. */
  eulerStep: number;
  /** Length of the parameter vector the right-hand side reads. */
  nParams: number;
  /** State components that must come out finite for a row to count as solved. */
  finite: readonly number[];
}

export abstract class OdeTask {
  abstract readonly thetaDim: number;
  abstract readonly xDim: number;
  readonly times: Float64Array;
  /** Solver steps limit per row before the Euler fallback. */
  maxSteps = 100000;
  /** Rows that needed the Euler fallback / came out NaN, and accepted adaptive steps, since construction. */
  readonly stats = { eulerFallbacks: 0, failures: 0, steps: 0 };
  private readonly setup: OdeTaskSetup;
  private readonly params: Float64Array;
  private readonly traj: Float64Array;
  private readonly euler: { y: Float64Array; yNext: Float64Array; dy: Float64Array };

  constructor(setup: OdeTaskSetup) {
    this.setup = setup;
    this.times = setup.times;
    const dim = setup.solver.dim;
    this.params = new Float64Array(setup.nParams);
    this.traj = new Float64Array(dim * setup.times.length);
    this.euler = {
      y: new Float64Array(dim),
      yNext: new Float64Array(dim),
      dy: new Float64Array(dim),
    };
  }

  /** Writes the right-hand side's parameters for the theta row starting at offset. */
  protected abstract setParams(
    theta: ArrayLike<number>,
    offset: number,
    params: Float64Array,
  ): void;

  /**
   * Writes one row of x at out[offset .. offset + xDim) from a solved trajectory and xDim standard
   * normals z; false if the trajectory admits no valid observation (the row becomes NaN).
   */
  protected abstract observe(
    traj: Float64Array,
    z: Float64Array,
    out: Float32Array,
    offset: number,
  ): boolean;

  /**
   * Fills `trajectory` (time-major states) for the theta row starting at offset; false if both
   * solvers failed or a component in setup.finite came out non-finite.
   */
  solveRow(theta: ArrayLike<number>, offset: number): boolean {
    const { solver, rhs, y0, times, atol, rtol, eulerStep, finite } = this.setup;
    const { params, traj } = this;
    this.setParams(theta, offset, params);
    const res = solver.solve(rhs, params, y0, times, traj, { atol, rtol, maxSteps: this.maxSteps });
    this.stats.steps += res.steps;
    if (res.status !== 'ok') {
      this.stats.eulerFallbacks++;
      if (!eulerFixed(rhs, params, y0, times, eulerStep, traj, this.euler)) return false;
    }
    const dim = solver.dim;
    for (let i = 0; i < times.length; i++) {
      for (const c of finite) if (!Number.isFinite(traj[dim * i + c])) return false;
    }
    return true;
  }

  /** The buffer solveRow filled; the next call overwrites it. */
  get trajectory(): Float64Array {
    return this.traj;
  }

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const xd = this.xDim;
    const td = this.thetaDim;
    const out = new Float32Array(n * xd);
    const z = new Float64Array(xd);
    for (let r = 0; r < n; r++) {
      // Noise is drawn for every row, failed or not, so row r's noise does not depend on other rows.
      rng.fillNormal(z);
      const o = r * xd;
      if (!this.solveRow(theta, r * td) || !this.observe(this.traj, z, out, o)) {
        this.stats.failures++;
        out.fill(NaN, o, o + xd);
      }
    }
    return out;
  }
}

/**
 * Additive Gaussian observation of some state components: for the k-th listed component c,
 * out[offset + k * nT + i] = y_c(t_i) + sd * z[k * nT + i], nT = number of grid times.
 */
export function observeWithGaussianNoise(
  traj: Float64Array,
  dim: number,
  components: readonly number[],
  sd: number,
  z: Float64Array,
  out: Float32Array,
  offset: number,
): void {
  const nT = traj.length / dim;
  for (let k = 0; k < components.length; k++) {
    const c = components[k];
    const o = offset + k * nT;
    for (let i = 0; i < nT; i++) out[o + i] = traj[dim * i + c] + sd * z[k * nT + i];
  }
}
