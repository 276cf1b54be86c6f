// RABI's pyloric task (rbibm/tasks/pyloric_stg.py, figures/pyloric_simulations; research/pyloric.md
// sections 2-3): the pyloric network of pyloric-network.ts with 31 parameters,
//   theta_0..23  membrane conductances in mS/cm^2 (AB/PD, LP, PY; Na CaT CaS A KCa Kd H Leak each),
//                times the area 0.628e-3 cm^2;
//   theta_24..30 synaptic conductances as ln(mS) (AB-LP, PD-LP, AB-PY, PD-PY, LP-PD, LP-PY, PY-LP),
// uniform on the package's "padded Prinz ranges", bounds in float32 as sbi's BoxUniform keeps them.
// One simulation: 2000 ms at dt = 0.025 ms and 283 K with N(0, 0.001^2) uA current noise per step;
// x = V at every 100th step (2.5 ms), neuron-major, 3 x 800 float32 values in mV.
// Validity (RABI keeps only these): on the 0.25 ms grid (every 10th step) each neuron has more than
// 5 points strictly above +20 mV. An invalid simulation is returned as a NaN row, which the dataset
// pipeline drops and counts (sbi/simulate.ts), as RABI discards it; about 91 % of prior draws are
// invalid, so a dataset of n simulations keeps about 0.09 n rows. `keepInvalid` returns every trace
// (RABI's on-the-fly simulator for posterior predictives does not filter).
// Rows run two at a time in the SIMD kernel (pyloric-wasm.ts); a row's x does not depend on the
// row beside it.
// Deviation: RABI seeds each simulation's numpy noise with randint(0, 10000), so its training set
// has only 10,000 noise realizations; here each row draws its own noise from the task's stream.
import type { RandomStream, Task } from '../types.js';
import { BoxUniformPrior } from './priors.js';
import {
  MEMBRANE_AREA,
  PYLORIC_CONDUCTANCES,
  pyloricSteps,
  recordedPoints,
} from './pyloric-network.js';
import { PyloricPairKernel, type NoiseFill, type PyloricLane } from './pyloric-wasm.js';

export const PYLORIC_T_MAX = 2000;
export const PYLORIC_NOISE_STD = 0.001;
/** x keeps every 100th step (2.5 ms). */
export const PYLORIC_X_EVERY = 100;
/** The validity count runs on every 10th step (0.25 ms) ... */
export const PYLORIC_VALID_EVERY = 10;
/** ... and counts points strictly above +20 mV ... */
export const PYLORIC_VALID_ABOVE = 20;
/** ... of which each neuron needs more than 5. */
export const PYLORIC_VALID_MIN_POINTS = 5;

const NEURONS = ['AB/PD', 'LP', 'PY'];
const CHANNELS = ['Na', 'CaT', 'CaS', 'A', 'KCa', 'Kd', 'H', 'Leak'];
const SYNAPSES = ['AB-LP', 'PD-LP', 'AB-PY', 'PD-PY', 'LP-PD', 'LP-PY', 'PY-LP'];

/** RABI's flat names (its "AB/PDK_Ca" typo written as AB/PD_KCa). */
export const PYLORIC_PARAM_NAMES: readonly string[] = [
  ...NEURONS.flatMap((n) => CHANNELS.map((c) => `${n}_${c}`)),
  ...SYNAPSES.map((s) => `Synapses${s}`),
];

/** Prinz's min and max per channel (prior.py:97-112), padded by PAD and clipped at 0 below. */
const PRINZ_MIN: readonly number[] = [
  100, 2.5, 2, 10, 5, 50, 0.01, 0, 100, 0, 4, 20, 0, 25, 0, 0.02, 100, 2.5, 0, 40, 0, 75, 0, 0,
];
const PRINZ_MAX: readonly number[] = [
  400, 5, 6, 50, 10, 125, 0.01, 0, 100, 0, 10, 50, 5, 100, 0.05, 0.03, 500, 10, 2, 50, 0, 125, 0.05,
  0.03,
];
const PAD: readonly number[] = [100, 2.5, 2, 10, 5, 25, 0.01, 0.01];
/** Synapses: uniform in ln(mS) on [ln 1e-8, ln 1e-3], AB-LP up to ln 1e-2 (prior.py:29, 129-135). */
const SYN_LOW = Math.log(1e-8);
const SYN_HIGH = Math.log(1e-3);
const SYN_HIGH_AB_LP = Math.log(1e-3 * 10);

/** The prior's bounds in float64, as the package computes them. */
export function pyloricPriorBounds(): { low: number[]; high: number[] } {
  const low: number[] = [];
  const high: number[] = [];
  for (let i = 0; i < 24; i++) {
    // The package subtracts and adds in float64; the float32 cast comes later, in BoxUniform.
    low.push(Math.max(0, PRINZ_MIN[i]! - PAD[i % 8]!));
    high.push(PRINZ_MAX[i]! + PAD[i % 8]!);
  }
  for (let k = 0; k < 7; k++) {
    low.push(SYN_LOW);
    high.push(k === 0 ? SYN_HIGH_AB_LP : SYN_HIGH);
  }
  return { low, high };
}

/** theta (prior units) -> the network's 31 absolute conductances in mS. */
export function pyloricConductances(
  theta: ArrayLike<number>,
  offset: number,
  out: Float64Array,
): void {
  for (let i = 0; i < 24; i++) out[i] = theta[offset + i]! * MEMBRANE_AREA;
  for (let k = 24; k < PYLORIC_CONDUCTANCES; k++) out[k] = Math.exp(theta[offset + k]!);
}

/** RABI's filter: each neuron more than 5 points above +20 mV on the 0.25 ms grid. */
export function pyloricValid(counts: ArrayLike<number>): boolean {
  return (
    counts[0]! > PYLORIC_VALID_MIN_POINTS &&
    counts[1]! > PYLORIC_VALID_MIN_POINTS &&
    counts[2]! > PYLORIC_VALID_MIN_POINTS
  );
}

export class PyloricTask implements Task {
  readonly name = 'pyloric';
  /** About 20 simulations per CPU-second (BENCHMARKS.md): a block is under a minute of a core. */
  readonly simulationBlock = 1000;
  /** Valid share of this task's own prior draws and noise: 193 of 2,000 (BENCHMARKS.md). */
  readonly keptShare = 0.097;
  readonly thetaDim = PYLORIC_CONDUCTANCES;
  readonly steps = pyloricSteps(PYLORIC_T_MAX);
  readonly xDim = 3 * recordedPoints(this.steps, PYLORIC_X_EVERY);
  readonly paramNames = [...PYLORIC_PARAM_NAMES];
  readonly xTraces = ['AB/PD', 'LP', 'PY'];
  readonly prior: BoxUniformPrior;
  /** Return invalid simulations too, instead of NaN rows (posterior predictives). */
  keepInvalid = false;
  /** Simulations run and found valid since construction (for valid-share figures). */
  readonly stats = { simulated: 0, valid: 0 };
  private pairKernel: PyloricPairKernel | undefined;

  constructor() {
    const { low, high } = pyloricPriorBounds();
    this.prior = new BoxUniformPrior(low.map(Math.fround), high.map(Math.fround));
  }

  /** Made on first use: a task object is often built only for its names and sizes. */
  private get kernel(): PyloricPairKernel {
    return (this.pairKernel ??= new PyloricPairKernel(
      this.steps,
      PYLORIC_X_EVERY,
      PYLORIC_VALID_EVERY,
      PYLORIC_VALID_ABOVE,
    ));
  }

  /**
   * Simulates rows `rows` of theta (31 values a row), row i with noise source noises[i], two at a
   * time, and writes each x (valid or not) at out[offsets[i] ...]. Returns the counts above +20 mV,
   * 3 per row; validity is pyloricValid of a row's three.
   */
  simulateRows(
    theta: ArrayLike<number>,
    rows: readonly number[],
    noises: readonly NoiseFill[],
    out: Float32Array,
    offsets: readonly number[],
  ): Int32Array {
    const counts = new Int32Array(3 * rows.length);
    const lane = (i: number): PyloricLane => {
      const g = new Float64Array(PYLORIC_CONDUCTANCES);
      pyloricConductances(theta, rows[i]! * this.thetaDim, g);
      return { g, noise: noises[i]! };
    };
    for (let i = 0; i < rows.length; i += 2) {
      const a = lane(i);
      // An odd last row runs beside a noise-free copy of itself; lanes do not interact.
      const b = i + 1 < rows.length ? lane(i + 1) : { g: a.g, noise: null };
      this.kernel.run(a, b, PYLORIC_NOISE_STD);
      for (let l = 0; l < 2 && i + l < rows.length; l++) {
        this.kernel.read(l, out, offsets[i + l]!);
        const c = this.kernel.counts(l);
        counts.set(c, 3 * (i + l));
        this.stats.simulated++;
        if (pyloricValid(c)) this.stats.valid++;
      }
    }
    return counts;
  }

  /** One row with its noise source; returns whether it is valid (its x is written either way). */
  simulateRow(
    theta: ArrayLike<number>,
    row: number,
    noise: NoiseFill,
    out: Float32Array,
    offset: number,
  ): boolean {
    return pyloricValid(this.simulateRows(theta, [row], [noise], out, [offset]));
  }

  simulateUnfiltered(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const keep = this.keepInvalid;
    this.keepInvalid = true;
    try {
      return this.simulate(theta, n, rng);
    } finally {
      this.keepInvalid = keep;
    }
  }

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const xd = this.xDim;
    const d = this.thetaDim;
    const out = new Float32Array(n * xd);
    // One draw advances the caller's stream; each row then has its own fork, so a row's noise
    // does not depend on the other rows.
    const batch = rng.fork(`batch-${rng.int(2 ** 30)}`);
    const rows: number[] = [];
    for (let r = 0; r < n; r++) {
      let finite = true;
      for (let i = 0; i < d; i++) finite &&= Number.isFinite(theta[r * d + i]!);
      if (finite) rows.push(r);
      else out.fill(NaN, r * xd, (r + 1) * xd);
    }
    const noises = rows.map((r) => (z: Float64Array) => batch.fork(r).fillNormal(z));
    const counts = this.simulateRows(
      theta,
      rows,
      noises,
      out,
      rows.map((r) => r * xd),
    );
    if (!this.keepInvalid)
      rows.forEach((r, i) => {
        if (!pyloricValid(counts.subarray(3 * i, 3 * i + 3))) out.fill(NaN, r * xd, (r + 1) * xd);
      });
    return out;
  }
}

export function pyloric(): PyloricTask {
  return new PyloricTask();
}
