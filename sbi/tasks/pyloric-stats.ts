// Prinz's burst statistics of a pyloric trace, as the reference package computes them
// (pyloric/summary_statistics.py, PrinzStats; research/pyloric.md section 5.1): used to check the
// simulator against the reference on long runs, where traces may drift apart but the rhythm must not.
// RABI itself feeds the network raw voltages, not these.
//
// Per neuron, after the burn-in: the trace is smoothed by a Savitzky-Golay filter (window 0.5 ms,
// order 3, polynomial fits at the edges); a spike is a local maximum of the smoothed trace above
// -10 mV; spikes split into bursts at gaps of 150 ms or more, and bursts of 40 ms or less are
// dropped. The network's period is the mean interval between AB/PD burst starts; a period is
// triphasic when each neuron starts exactly one burst in it, and the phase statistics need 90 % of
// the periods triphasic. Quirks kept as the package has them: spike times are read one sample early
// (t[i] for the maximum at i + 1), a plateau still running at the end of its window is not counted,
// and a plateau shorter than 200 samples is reported as 100 samples (2.5 ms).

const SPIKE_THRESHOLD = -10;
const IBI_THRESHOLD = 150;
const MIN_BURST_LENGTH = 40;
const PLATEAU_THRESHOLD = -30;
const PLATEAU_STEPPING = 10;
const TRIPHASIC_SHARE = 0.9;
const PYLORIC_SHARE = 0.7;

/** The statistics in the package's order; NaN where undefined (as the package). */
export interface PyloricStats {
  cyclePeriod: number;
  /** AB/PD, LP, PY. */
  burstDurations: number[];
  dutyCycles: number[];
  /** LP, PY. */
  startPhases: number[];
  /** AB/PD-LP, LP-PY. */
  startsToStarts: number[];
  endsToStarts: number[];
  phaseGaps: number[];
  plateauDurations: number[];
  numBursts: number[];
  numSpikes: number[];
  pyloricLike: boolean;
}

interface NeuronBursts {
  numSpikes: number;
  /** Burst start and end sample indices (spike indices into the smoothed trace, shifted as t). */
  starts: number[];
  ends: number[];
  avgBurstLength: number;
  avgCycleLength: number;
  plateau: number;
}

/** Least-squares cubic through (0..w-1, y) evaluated at the given abscissae (the filter's edges). */
function cubicFit(y: ArrayLike<number>, from: number, w: number, at: number[]): number[] {
  // Centered abscissa keeps the 4 x 4 normal equations well conditioned.
  const c = (w - 1) / 2;
  const ata = Array.from({ length: 4 }, () => new Float64Array(4));
  const atb = new Float64Array(4);
  for (let i = 0; i < w; i++) {
    const u = i - c;
    const p = [1, u, u * u, u * u * u];
    for (let r = 0; r < 4; r++) {
      atb[r] += p[r]! * y[from + i]!;
      for (let s = 0; s < 4; s++) ata[r]![s] += p[r]! * p[s]!;
    }
  }
  // Gaussian elimination with partial pivoting.
  for (let k = 0; k < 4; k++) {
    let piv = k;
    for (let r = k + 1; r < 4; r++) if (Math.abs(ata[r]![k]!) > Math.abs(ata[piv]![k]!)) piv = r;
    [ata[k], ata[piv]] = [ata[piv]!, ata[k]!];
    [atb[k], atb[piv]] = [atb[piv]!, atb[k]!];
    for (let r = k + 1; r < 4; r++) {
      const f = ata[r]![k]! / ata[k]![k]!;
      for (let s = k; s < 4; s++) ata[r]![s] -= f * ata[k]![s]!;
      atb[r] -= f * atb[k]!;
    }
  }
  const coef = new Float64Array(4);
  for (let k = 3; k >= 0; k--) {
    let s = atb[k]!;
    for (let j = k + 1; j < 4; j++) s -= ata[k]![j]! * coef[j]!;
    coef[k] = s / ata[k]![k]!;
  }
  return at.map((i) => {
    const u = i - c;
    return coef[0]! + u * (coef[1]! + u * (coef[2]! + u * coef[3]!));
  });
}

/**
 * scipy.signal.savgol_filter(v, window, 3) with mode 'interp'. For orders 2 and 3 the smoothing
 * weights of a window of 2m + 1 are 3 (3m^2 + 3m - 1 - 5k^2) / ((4m^2 - 1)(2m + 3)).
 */
export function savitzkyGolayCubic(v: ArrayLike<number>, window: number): Float64Array {
  const m = (window - 1) / 2;
  const n = v.length;
  if (!Number.isInteger(m) || m < 2 || n < window)
    throw new RangeError(`need an odd window of at least 5 and that many samples`);
  const w = new Float64Array(window);
  const den = (4 * m * m - 1) * (2 * m + 3);
  for (let k = -m; k <= m; k++) w[k + m] = (3 * (3 * m * m + 3 * m - 1 - 5 * k * k)) / den;
  const out = new Float64Array(n);
  for (let i = m; i < n - m; i++) {
    let s = 0;
    for (let k = 0; k < window; k++) s += w[k]! * v[i - m + k]!;
    out[i] = s;
  }
  const head = Array.from({ length: m }, (_, i) => i);
  cubicFit(v, 0, window, head).forEach((y, i) => (out[i] = y));
  const tail = Array.from({ length: m }, (_, i) => window - m + i);
  cubicFit(v, n - window, window, tail).forEach((y, i) => (out[n - m + i] = y));
  return out;
}

const mean = (a: number[]): number =>
  a.length === 0 ? NaN : a.reduce((s, x) => s + x, 0) / a.length;

function analyseNeuron(v: ArrayLike<number>, dt: number): NeuronBursts {
  const window = Math.trunc(0.5 / dt) % 2 === 0 ? Math.trunc(0.5 / dt) + 1 : Math.trunc(0.5 / dt);
  const s = savitzkyGolayCubic(v, window);
  const spikes: number[] = [];
  for (let i = 0; i + 2 < s.length; i++) {
    if (s[i + 1]! > SPIKE_THRESHOLD && s[i + 1]! - s[i]! >= 0 && s[i + 2]! - s[i + 1]! <= 0)
      spikes.push(i);
  }
  const t = (i: number): number => i * dt;
  const res: NeuronBursts = {
    numSpikes: spikes.length,
    starts: [],
    ends: [],
    avgBurstLength: NaN,
    avgCycleLength: NaN,
    plateau: NaN,
  };
  if (spikes.length === 0) return res;
  // Bursts: split at gaps >= 150 ms; the last burst ends at the last spike.
  let first = 0;
  for (let k = 0; k < spikes.length; k++) {
    if (k === spikes.length - 1 || t(spikes[k + 1]!) - t(spikes[k]!) >= IBI_THRESHOLD) {
      const a = spikes[first]!;
      const b = spikes[k]!;
      if (t(b) - t(a) > MIN_BURST_LENGTH) {
        res.starts.push(a);
        res.ends.push(b);
      }
      first = k + 1;
    }
  }
  // Plateaus: the longest run above -30 mV (every 10th sample) from each burst start to the next.
  const longest: number[] = [];
  for (let b = 0; b < res.starts.length; b++) {
    const end = b === res.starts.length - 1 ? spikes[spikes.length - 1]! : res.starts[b + 1]!;
    let best = 0;
    let run = 0;
    for (let i = res.starts[b]!; i < end; i += PLATEAU_STEPPING) {
      if (s[i]! > PLATEAU_THRESHOLD) run++;
      else {
        best = Math.max(best, run);
        run = 0;
      }
    }
    longest.push(best * PLATEAU_STEPPING);
  }
  let plateau = mean(longest);
  if (plateau < 200) plateau = 100;
  res.plateau = plateau * dt;
  res.avgBurstLength = mean(res.starts.map((a, k) => t(res.ends[k]!) - t(a)));
  if (res.starts.length !== 1)
    res.avgCycleLength = mean(res.starts.slice(1).map((a, k) => t(a) - t(res.starts[k]!)));
  return res;
}

/**
 * The statistics of a run: v holds the three neurons' voltages at every step, v[j * nsteps + i],
 * from t = 0; the first burnIn ms are dropped, as summary_stats(t_burn_in) does.
 */
export function pyloricStats(
  v: ArrayLike<number>,
  nsteps: number,
  dt: number,
  burnIn: number,
): PyloricStats {
  const from = Math.trunc(burnIn / dt);
  const neurons = [0, 1, 2].map((j) => {
    const a = Array.prototype.slice.call(v, j * nsteps + from, (j + 1) * nsteps) as number[];
    return analyseNeuron(a, dt);
  });
  const t = (i: number): number => i * dt;
  const pm = neurons[0]!;
  let cyclePeriod = NaN;
  let triphasic = false;
  // Per triphasic period: each neuron's burst (start, end) in ms.
  const periods: [number, number][][] = [];
  if (!Number.isNaN(pm.avgCycleLength)) {
    const starts = pm.starts.map(t);
    cyclePeriod = mean(starts.slice(1).map((a, k) => a - starts[k]!));
    let triphasicCount = 0;
    for (let p = 0; p + 1 < starts.length; p++) {
      const inPeriod = neurons.map((nb) =>
        nb.starts
          .map((a, k): [number, number] => [t(a), t(nb.ends[k]!)])
          .filter(([a]) => starts[p]! <= a && a < starts[p + 1]!),
      );
      if (inPeriod.every((b) => b.length === 1)) {
        triphasicCount++;
        periods.push(inPeriod.map((b) => b[0]!));
      }
    }
    triphasic = starts.length >= 2 && triphasicCount / (starts.length - 1) >= TRIPHASIC_SHARE;
  }
  const pair = (f: (p: [number, number][]) => number, a: number, b: number): number =>
    triphasic ? mean(periods.map((p) => f([p[a]!, p[b]!]))) : NaN;
  const startToStart = (a: number, b: number): number => pair(([x, y]) => y[0] - x[0], a, b);
  const endToStart = (a: number, b: number): number => pair(([x, y]) => y[0] - x[1], a, b);
  let pyloricLike = false;
  if (triphasic) {
    const ordered = periods.filter(
      ([ab, lp, py]) => lp![0] - py![0] <= 0 && lp![1] - py![1] <= 0 && ab![1] - lp![0] <= 0,
    ).length;
    pyloricLike = ordered / periods.length >= PYLORIC_SHARE;
  }
  const ends = [endToStart(0, 1), endToStart(1, 2)];
  return {
    cyclePeriod,
    burstDurations: neurons.map((n) => n.avgBurstLength),
    dutyCycles: neurons.map((n) => n.avgBurstLength / cyclePeriod),
    startPhases: [startToStart(0, 1) / cyclePeriod, startToStart(0, 2) / cyclePeriod],
    startsToStarts: [startToStart(0, 1), startToStart(1, 2)],
    endsToStarts: ends,
    phaseGaps: ends.map((e) => e / cyclePeriod),
    plateauDurations: neurons.map((n) => n.plateau),
    numBursts: neurons.map((n) => n.starts.length),
    numSpikes: neurons.map((n) => n.numSpikes),
    pyloricLike: pyloricLike,
  };
}
