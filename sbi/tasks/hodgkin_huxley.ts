// RABI's hodgkin_huxley (rbibm/tasks/hh_task.py "HHTask", config/task/hudgkin_huxley.yaml): a
// single-compartment Hodgkin-Huxley neuron with a slow M-current (Pospischil et al. 2008 rates).
// theta = (gbar_Na, gbar_K, gbar_M, C, E_leak, E_Na, E_K) ~ Uniform on the box
//   low  [1, 1e-4, 1e-4, 0.9, -80, 10, -120],  high [100, 5, 0.5, 1.2, -50, 80, -90];
// fixed g_leak 0.1, Vt -60, tau_max 600, V0 -70 with every gate at its steady state at V0;
// step current I = 5e-4 / (pi (70e-4)^2) for 10 < t < 50 ms, 0 otherwise;
//   V' = C * (gNa m^3 h (E_Na - V) + gK n^4 (E_K - V) + gM p (E_K - V) + g_leak (E_leak - V) + I)
// (RABI multiplies by C where the textbook divides; kept as RABI has it), gates x' = (x_inf - x) / tau_x.
// x = V at linspace(0, 60, 200) + N(0, 0.5^2) noise. Solved by Bogacki-Shampine 3(2) at atol 1e-4,
// rtol 1e-3; Euler with step 1e-3 on solver failure, as RABI.
// At RABI's tolerances the voltage is coarse: against a 1e-10 reference, over 50 prior draws the
// max |dV| per trace had median ~6 mV and max ~55 mV (spike times shift by a fraction of a ms);
// that is RABI's simulator as it is, and the noise model sits on top of it.
// Deviations: (1) RABI solves a whole batch as one ODE system, so its step sizes (and, within the
// tolerance, its values) depend on the other rows; here each row is solved on its own. (2) Where
// RABI replaces non-finite voltages by -70, this task returns a NaN row (the Task contract).
import type { Task } from '../types.js';
import { Bosh3 } from './bosh3.js';
import { linspace, type OdeRhs } from './ode.js';
import { OdeTask, observeWithGaussianNoise } from './ode-task.js';
import { BoxUniformPrior } from './priors.js';

export const HH_TIMES = 200;
export const HH_T_MAX = 60;
export const HH_NOISE = 0.5;
export const HH_PRIOR_LOW: readonly number[] = [1, 1e-4, 1e-4, 0.9, -80, 10, -120];
export const HH_PRIOR_HIGH: readonly number[] = [100, 5, 0.5, 1.2, -50, 80, -90];
export const HH_V0 = -70;
const G_LEAK = 0.1;
const VT = -60;
const TAU_MAX = 600;
const I_ON = 10;
const I_OFF = 50;
/** Injected current density: 5e-4 uA over a soma of radius 70 um (area in cm^2). */
export const HH_CURRENT = 5e-4 / (Math.PI * 70e-4 ** 2);
const ATOL = 1e-4;
const RTOL = 1e-3;
const EULER_STEP = 1e-3;

/** z / (exp(z) - 1), with its limit near 0. */
function efun(z: number): number {
  return Math.abs(z) < 1e-4 ? 1 - z / 2 : z / Math.expm1(z);
}

const alphaM = (v: number): number => (0.32 * efun(-0.25 * (v - VT - 13))) / 0.25;
const betaM = (v: number): number => (0.28 * efun(0.2 * (v - VT - 40))) / 0.2;
const alphaH = (v: number): number => 0.128 * Math.exp(-(v - VT - 17) / 18);
const betaH = (v: number): number => 4 / (1 + Math.exp(-0.2 * (v - VT - 40)));
const alphaN = (v: number): number => (0.032 * efun(-0.2 * (v - VT - 15))) / 0.2;
const betaN = (v: number): number => 0.5 * Math.exp(-(v - VT - 10) / 40);
const pInf = (v: number): number => 1 / (1 + Math.exp(-0.1 * (v + 35)));
const tauP = (v: number): number =>
  TAU_MAX / (3.3 * Math.exp(0.05 * (v + 35)) + Math.exp(-0.05 * (v + 35)));

/** Steady-state gates (n, m, h, p) at voltage v. */
export function hhSteadyGates(v: number): [number, number, number, number] {
  const an = alphaN(v);
  const am = alphaM(v);
  const ah = alphaH(v);
  return [an / (an + betaN(v)), am / (am + betaM(v)), ah / (ah + betaH(v)), pInf(v)];
}

/**
 * The right-hand side; params = (gNa, gK, gM, C, E_leak, E_Na, E_K, I), the 8th entry being the
 * step current's amplitude (HH_CURRENT for the task; 0 gives the unstimulated neuron).
 * y = (V, n, m, h, p).
 */
export const hodgkinHuxleyRhs: OdeRhs = (t, y, dy, p) => {
  const v = y[0];
  const n = y[1];
  const m = y[2];
  const h = y[3];
  const q = y[4];
  const current = t > I_ON && t < I_OFF ? p[7] : 0;
  const n2 = n * n;
  dy[0] =
    p[3] *
    (m * m * m * p[0] * h * (p[5] - v) +
      n2 * n2 * p[1] * (p[6] - v) +
      p[2] * q * (p[6] - v) +
      G_LEAK * (p[4] - v) +
      current);
  const an = alphaN(v);
  const bn = betaN(v);
  const am = alphaM(v);
  const bm = betaM(v);
  const ah = alphaH(v);
  const bh = betaH(v);
  // (x_inf - x) / tau_x = alpha - (alpha + beta) x
  dy[1] = an - (an + bn) * n;
  dy[2] = am - (am + bm) * m;
  dy[3] = ah - (ah + bh) * h;
  dy[4] = (pInf(v) - q) / tauP(v);
};

export class HodgkinHuxleyTask extends OdeTask implements Task {
  readonly name = 'hodgkin_huxley';
  /** About 1,000 to 3,000 simulations per CPU-second (BENCHMARKS.md): a block is a minute or so. */
  readonly simulationBlock = 100_000;
  readonly thetaDim = 7;
  readonly xDim = HH_TIMES;
  readonly paramNames = ['gbar_Na', 'gbar_K', 'gbar_M', 'C', 'E_leak', 'E_Na', 'E_K'];
  readonly prior = new BoxUniformPrior([...HH_PRIOR_LOW], [...HH_PRIOR_HIGH]);
  /** The step current's amplitude; tests set 0 to see the resting neuron. */
  current = HH_CURRENT;

  constructor() {
    super({
      solver: new Bosh3(5),
      rhs: hodgkinHuxleyRhs,
      y0: [HH_V0, ...hhSteadyGates(HH_V0)],
      times: linspace(0, HH_T_MAX, HH_TIMES),
      atol: ATOL,
      rtol: RTOL,
      eulerStep: EULER_STEP,
      nParams: 8,
      finite: [0],
    });
  }

  protected setParams(theta: ArrayLike<number>, offset: number, params: Float64Array): void {
    for (let j = 0; j < 7; j++) params[j] = theta[offset + j];
    params[7] = this.current;
  }

  /** x = V(t) + N(0, HH_NOISE^2). */
  protected observe(
    traj: Float64Array,
    z: Float64Array,
    out: Float32Array,
    offset: number,
  ): boolean {
    observeWithGaussianNoise(traj, 5, [0], HH_NOISE, z, out, offset);
    return true;
  }
}

export function hodgkinHuxley(): HodgkinHuxleyTask {
  return new HodgkinHuxleyTask();
}
