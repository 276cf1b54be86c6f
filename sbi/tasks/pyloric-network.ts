// The pyloric network of the crab stomatogastric ganglion (Prinz, Bucher & Marder 2004), as the
// reference package mackelab/pyloric integrates it (simulator.pyx; research/pyloric.md section 1):
// three single-compartment neurons (AB/PD, LP, PY), each with 8 membrane conductances (Na, CaT, CaS,
// A, KCa, Kd, H, leak), intracellular calcium with a Nernst reversal, and 7 graded chemical synapses.
//
// The scheme is the package's explicit map, every right-hand side read at step i-1:
//   V, Ca and the 11 gates: exponential Euler (the exact exponential of each linear ODE with frozen
//   coefficients), so the stiff Na gate and the fast membrane stay stable at dt = 0.025 ms;
//   synapses: forward Euler, snapped to s_inf when dt exceeds their time constant.
// The noise is a current I[j, i] added to the membrane equation of neuron j at step i, constant over
// the step and not scaled with dt; I is laid out as numpy draws it, (3, nsteps) row-major.
// Initial state: V = -50 mV, Ca = 0.05 uM, every gate and synapse 0 (the package overwrites its h = 1
// with its start value 0). The arithmetic follows the package operation by operation, so double
// precision reproduces its voltages up to the last bits of exp and log (pyloric.md section 5.5).
//
// Units: mV, ms, mS (absolute, not per area), uA, uF, uM.

/** Membrane area (cm^2) that turns the prior's mS/cm^2 into mS (circuit_parameters.py:57). */
export const MEMBRANE_AREA = 0.628e-3;
/** Capacitance in uF; 0.6283, not the area's 0.628 (simulator.pyx:134). */
const C = 0.6283e-3;
const E_NA = 50;
const E_K = -80;
const E_H = -20;
const E_LEAK = -50;
const TAU_CA = 200;
/** uM of Ca per uA of Ca current. */
const CA_PER_CURRENT = 14961;
const CA_EXT = 3000;
const CA_REST = 0.05;
const GAS_CONSTANT = 8.31451e3;
const FARADAY = 96485.3415;
/** The package's reference temperature: every Q10 factor is 1 here. */
export const REFERENCE_TEMPERATURE = 283;
export const PYLORIC_DT = 0.025;

/** Synapses in the package's order: AB-LP, PD-LP, AB-PY, PD-PY, LP-PD, LP-PY, PY-LP. */
export const SYNAPSE_PRE: readonly number[] = [0, 0, 0, 0, 1, 1, 2];
export const SYNAPSE_POST: readonly number[] = [1, 1, 2, 2, 0, 2, 1];
/** Glutamatergic (AB, LP, PY) or cholinergic (PD) transmitter. */
const SYNAPSE_CHOLINERGIC: readonly boolean[] = [false, true, false, true, false, false, false];
const E_GLUT = -70;
const E_CHOL = -80;
const K_MINUS_GLUT = 40;
const K_MINUS_CHOL = 100;

/** Q10 values of the package's defaults (interface.py:183-195, 215-219). */
const Q10_GBAR = 1.5;
const Q10_TAU_M = 2.4;
const Q10_TAU_M_CAS = 2.0;
const Q10_TAU_M_KCA = 1.6;
const Q10_TAU_H = 2.8;
const Q10_TAU_CA = 2.0;
const Q10_TAU_SYN = 1.7;

export const PYLORIC_NEURONS = 3;
export const PYLORIC_SYNAPSES = 7;
/** 24 membrane conductances (neuron-major, Na CaT CaS A KCa Kd H Leak) + 7 synapses. */
export const PYLORIC_CONDUCTANCES = 31;

/** The run's constants that depend on temperature and dt (all Q10 factors are 1 at 283 K). */
export interface PyloricConstants {
  dt: number;
  /** Factors of the membrane and synaptic conductances. */
  gFactor: number;
  gSynFactor: number;
  /** -dt times each gate group's tau factor: the numerators of exp(-dt q / tau). */
  ndtM: number;
  ndtMCaS: number;
  ndtMKCa: number;
  ndtH: number;
  /** exp(-dt q / tau_Ca). */
  caDecay: number;
  /** RT / zF in mV. */
  rtOverZF: number;
  /** The synapses' tau factor. */
  qSynTau: number;
}

export function pyloricConstants(
  temperature = REFERENCE_TEMPERATURE,
  dt = PYLORIC_DT,
): PyloricConstants {
  const x = (temperature - REFERENCE_TEMPERATURE) / 10;
  return {
    dt,
    gFactor: Q10_GBAR ** x,
    gSynFactor: Q10_GBAR ** x,
    ndtM: -dt * Q10_TAU_M ** x,
    ndtMCaS: -dt * Q10_TAU_M_CAS ** x,
    ndtMKCa: -dt * Q10_TAU_M_KCA ** x,
    ndtH: -dt * Q10_TAU_H ** x,
    caDecay: Math.exp((-dt * Q10_TAU_CA ** x) / TAU_CA),
    rtOverZF: (GAS_CONSTANT * temperature) / (2 * FARADAY),
    qSynTau: Q10_TAU_SYN ** x,
  };
}

/** Steps of a run of tMax ms: len(np.arange(0, tMax, dt)). */
export function pyloricSteps(tMax: number, dt = PYLORIC_DT): number {
  return Math.ceil(tMax / dt - 1e-9);
}

/** Where a run writes its voltages and counts its points above a threshold. */
export interface PyloricRecording {
  /** Keep V at steps 0, every, 2 every, ...: out[offset + j * kept + n], kept = ceil(nsteps / every). */
  every: number;
  out: Float32Array | Float64Array;
  offset?: number;
  /** Count, per neuron, the steps 0, countEvery, ... whose V is above countAbove (strictly). */
  countEvery?: number;
  countAbove?: number;
  counts?: Int32Array;
}

/** The recorded points of a run of nsteps steps, every `every`th step from step 0. */
export function recordedPoints(nsteps: number, every: number): number {
  return Math.ceil(nsteps / every);
}

/**
 * One network, integrated step by step. Holds its state and constants; not shared across threads.
 * Conductances are absolute (mS): g[j * 8 + c] for the membrane, g[24 + k] for synapse k.
 */
export class PyloricNetwork {
  readonly dt: number;
  readonly temperature: number;
  // State, one entry per neuron.
  private readonly v = new Float64Array(3);
  private readonly ca = new Float64Array(3);
  private readonly mNa = new Float64Array(3);
  private readonly hNa = new Float64Array(3);
  private readonly mCaT = new Float64Array(3);
  private readonly hCaT = new Float64Array(3);
  private readonly mCaS = new Float64Array(3);
  private readonly hCaS = new Float64Array(3);
  private readonly mA = new Float64Array(3);
  private readonly hA = new Float64Array(3);
  private readonly mKCa = new Float64Array(3);
  private readonly mKd = new Float64Array(3);
  private readonly mH = new Float64Array(3);
  private readonly s = new Float64Array(7);
  // Per-step scratch.
  private readonly synG = new Float64Array(3);
  private readonly synGE = new Float64Array(3);
  private readonly sInf = new Float64Array(3);
  // Constants of the run.
  private readonly gMem = new Float64Array(24);
  private readonly gSyn = new Float64Array(7);
  private readonly eSyn = new Float64Array(7);
  private readonly kMinus = new Float64Array(7);
  private readonly qSynTau = new Float64Array(7);
  private readonly gFactor: number;
  private readonly gSynFactor: number;
  /** -dt * Q10 factor, per gate group: the numerators of exp(-dt q / tau). */
  private readonly ndtM: number;
  private readonly ndtMCaS: number;
  private readonly ndtMKCa: number;
  private readonly ndtH: number;
  private readonly caDecay: number;
  private readonly rtOverZF: number;

  constructor(temperature = REFERENCE_TEMPERATURE, dt = PYLORIC_DT) {
    this.dt = dt;
    this.temperature = temperature;
    const k = pyloricConstants(temperature, dt);
    this.gFactor = k.gFactor;
    this.gSynFactor = k.gSynFactor;
    this.ndtM = k.ndtM;
    this.ndtMCaS = k.ndtMCaS;
    this.ndtMKCa = k.ndtMKCa;
    this.ndtH = k.ndtH;
    this.caDecay = k.caDecay;
    this.rtOverZF = k.rtOverZF;
    for (let s = 0; s < 7; s++) {
      const chol = SYNAPSE_CHOLINERGIC[s]!;
      this.eSyn[s] = chol ? E_CHOL : E_GLUT;
      this.kMinus[s] = chol ? K_MINUS_CHOL : K_MINUS_GLUT;
      this.qSynTau[s] = k.qSynTau;
    }
  }

  /** Sets the 31 absolute conductances (mS) and resets the state to the package's start. */
  reset(g: ArrayLike<number>, offset = 0): void {
    for (let c = 0; c < 24; c++) this.gMem[c] = g[offset + c]! * this.gFactor;
    for (let k = 0; k < 7; k++) this.gSyn[k] = g[offset + 24 + k]! * this.gSynFactor;
    this.v.fill(E_LEAK);
    this.ca.fill(CA_REST);
    for (const a of [
      this.mNa,
      this.hNa,
      this.mCaT,
      this.hCaT,
      this.mCaS,
      this.hCaS,
      this.mA,
      this.hA,
      this.mKCa,
      this.mKd,
      this.mH,
      this.s,
    ])
      a.fill(0);
  }

  /**
   * Runs nsteps steps from the reset state (step 0 is the initial state). noise holds standard
   * normals, noise[j * nsteps + i] for neuron j at step i (column 0 unused, as in the package), and
   * is scaled by noiseStd (uA); null or noiseStd 0 runs noise-free. Returns false if V or Ca stopped
   * being finite (the rest of the recording is then NaN).
   */
  run(
    nsteps: number,
    noise: Float64Array | null,
    noiseStd: number,
    rec: PyloricRecording,
  ): boolean {
    const { every, out } = rec;
    const outOffset = rec.offset ?? 0;
    const kept = recordedPoints(nsteps, every);
    const counts = rec.counts;
    const countEvery = rec.countEvery ?? 0;
    const countAbove = rec.countAbove ?? Infinity;
    if (counts) counts.fill(0);
    if (noise !== null && noise.length < 3 * nsteps)
      throw new RangeError(`noise needs ${3 * nsteps} values, got ${noise.length}`);
    const useNoise = noise !== null && noiseStd !== 0;
    const { v, ca, mNa, hNa, mCaT, hCaT, mCaS, hCaS, mA, hA, mKCa, mKd, mH, s } = this;
    const { synG, synGE, sInf, gMem, gSyn, eSyn, kMinus, qSynTau } = this;
    const { ndtM, ndtMCaS, ndtMKCa, ndtH, caDecay, rtOverZF, dt } = this;

    for (let j = 0; j < 3; j++) out[outOffset + j * kept] = v[j]!;
    let nextRecord = every;
    let recordIndex = 1;
    let nextCount = countEvery > 0 ? countEvery : nsteps;
    let finite = true;

    for (let i = 1; i < nsteps; i++) {
      // (a) synaptic conductance and its reversal-weighted sum per postsynaptic neuron, from s_{i-1}
      synG[0] = synG[1] = synG[2] = 0;
      synGE[0] = synGE[1] = synGE[2] = 0;
      for (let k = 0; k < 7; k++) {
        const post = SYNAPSE_POST[k]!;
        const gs = gSyn[k]! * s[k]!;
        synG[post] += gs;
        synGE[post] += gs * eSyn[k]!;
      }
      for (let j = 0; j < 3; j++) {
        const vj = v[j]!;
        const caj = ca[j]!;
        const g = j * 8;
        // (b) channel conductances from the gates of step i-1
        const m1 = mNa[j]!;
        const cNa = gMem[g]! * (m1 * m1 * m1) * hNa[j]!;
        const m2 = mCaT[j]!;
        const cCaT = gMem[g + 1]! * (m2 * m2 * m2) * hCaT[j]!;
        const m3 = mCaS[j]!;
        const cCaS = gMem[g + 2]! * (m3 * m3 * m3) * hCaS[j]!;
        const m4 = mA[j]!;
        const cA = gMem[g + 3]! * (m4 * m4 * m4) * hA[j]!;
        const m5 = mKCa[j]!;
        const m5s = m5 * m5;
        const cKCa = gMem[g + 4]! * (m5s * m5s);
        const m6 = mKd[j]!;
        const m6s = m6 * m6;
        const cKd = gMem[g + 5]! * (m6s * m6s);
        const cH = gMem[g + 6]! * mH[j]!;
        const cLeak = gMem[g + 7]!;
        // (c) calcium: Nernst reversal from Ca_{i-1}, relaxation towards Ca_inf
        const eCa = rtOverZF * Math.log(CA_EXT / caj);
        const iCa = (cCaT + cCaS) * (vj - eCa);
        const caInf = CA_REST - CA_PER_CURRENT * iCa;
        ca[j] = caInf + (caj - caInf) * caDecay;
        // (d) voltage by exponential Euler
        const gTotal = synG[j]! + cNa + cCaT + cCaS + cA + cKCa + cKd + cH + cLeak;
        let iTotal =
          synGE[j]! +
          cNa * E_NA +
          cCaT * eCa +
          cCaS * eCa +
          cA * E_K +
          cKCa * E_K +
          cKd * E_K +
          cH * E_H +
          cLeak * E_LEAK;
        if (useNoise) iTotal += noiseStd * noise![j * nsteps + i]!;
        if (gTotal === 0) {
          v[j] = vj + (dt * iTotal) / C;
        } else {
          const vInf = iTotal / gTotal;
          v[j] = vInf + (vj - vInf) * Math.exp((-dt * gTotal) / C);
        }
        // (e) gates: x_inf + (x - x_inf) exp(-dt q / tau_x), all at V_{i-1} (and Ca_{i-1} for KCa)
        let xInf = 1.0 / (1 + Math.exp((vj + 25.5) / -5.29));
        let tau = 2.64 + -2.52 * (1.0 / (1 + Math.exp((vj + 120) / -25)));
        mNa[j] = xInf + (m1 - xInf) * Math.exp(ndtM / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 27.1) / -7.2));
        tau = 43.4 + -42.6 * (1.0 / (1 + Math.exp((vj + 68.1) / -20.5)));
        mCaT[j] = xInf + (m2 - xInf) * Math.exp(ndtM / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 33) / -8.1));
        tau = 2.8 + 14 * (1.0 / (Math.exp((vj + 27) / 10) + Math.exp((vj + 70) / -13)));
        mCaS[j] = xInf + (m3 - xInf) * Math.exp(ndtMCaS / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 27.2) / -8.7));
        tau = 23.2 + -20.8 * (1.0 / (1 + Math.exp((vj + 32.9) / -15.2)));
        mA[j] = xInf + (m4 - xInf) * Math.exp(ndtM / tau);

        xInf = (caj / (caj + 3)) * (1.0 / (1 + Math.exp((vj + 28.3) / -12.6)));
        tau = 180.6 + -150.2 * (1.0 / (1 + Math.exp((vj + 46) / -22.7)));
        mKCa[j] = xInf + (m5 - xInf) * Math.exp(ndtMKCa / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 12.3) / -11.8));
        tau = 14.4 + -12.8 * (1.0 / (1 + Math.exp((vj + 28.3) / -19.2)));
        mKd[j] = xInf + (m6 - xInf) * Math.exp(ndtM / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 75) / 5.5));
        tau = 2.0 / (Math.exp(-14.59 - 0.086 * vj) + Math.exp(-1.87 + 0.0701 * vj));
        mH[j] = xInf + (mH[j]! - xInf) * Math.exp(ndtM / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 48.9) / 5.18));
        tau =
          (1.34 / (1 + Math.exp((vj + 62.9) / -10))) *
          (1.5 + 1 / (1 + Math.exp((vj + 34.9) / 3.6)));
        hNa[j] = xInf + (hNa[j]! - xInf) * Math.exp(ndtH / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 32.1) / 5.5));
        tau = 210 + -179.6 * (1.0 / (1 + Math.exp((vj + 55) / -16.9)));
        hCaT[j] = xInf + (hCaT[j]! - xInf) * Math.exp(ndtH / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 60) / 6.2));
        tau = 120 + 300 * (1.0 / (Math.exp((vj + 55) / 9) + Math.exp((vj + 65) / -16)));
        hCaS[j] = xInf + (hCaS[j]! - xInf) * Math.exp(ndtH / tau);

        xInf = 1.0 / (1 + Math.exp((vj + 56.9) / 4.9));
        tau = 77.2 + -58.4 * (1.0 / (1 + Math.exp((vj + 38.9) / -26.5)));
        hA[j] = xInf + (hA[j]! - xInf) * Math.exp(ndtH / tau);

        // The synapses' s_inf depends on the presynaptic V_{i-1} only: once per neuron.
        sInf[j] = 1 / (1 + Math.exp((-35.0 - vj) / 5.0));
      }
      // (f) synapses: forward Euler, snapped to s_inf when dt > tau_s
      for (let k = 0; k < 7; k++) {
        const si = sInf[SYNAPSE_PRE[k]!]!;
        const tauS = (kMinus[k]! * (1 - si)) / qSynTau[k]!;
        const sk = s[k]!;
        s[k] = dt > tauS ? si : sk + ((si - sk) * dt) / tauS;
      }
      if (i === nextRecord) {
        for (let j = 0; j < 3; j++) out[outOffset + j * kept + recordIndex] = v[j]!;
        recordIndex++;
        nextRecord += every;
      }
      if (i === nextCount) {
        for (let j = 0; j < 3; j++) if (v[j]! > countAbove) counts![j]!++;
        nextCount += countEvery;
      }
      if (!(Number.isFinite(v[0]!) && Number.isFinite(v[1]!) && Number.isFinite(v[2]!))) {
        finite = false;
        break;
      }
    }
    if (!finite)
      for (let j = 0; j < 3; j++)
        out.fill(NaN, outOffset + j * kept + recordIndex, outOffset + (j + 1) * kept);
    return finite;
  }

  /** Neuron j's V after the last run (mV). */
  voltage(j: number): number {
    return this.v[j]!;
  }

  /** Neuron j's Ca after the last run (uM). */
  calcium(j: number): number {
    return this.ca[j]!;
  }
}
