// The accuracy diagnostics a sweep can ask for beside the robustness evaluation (spec
// evaluation.metrics), computed on the trial's clean test set:
//   sbc:  simulation-based calibration (metrics/sbc.ts) over the first `pairs` test pairs, `samples`
//         posterior draws each: per theta dimension the rank histogram and the chi-square p-value;
//   c2st: the trained posterior against the task's reference one. Where the task has an analytic
//         posterior (gaussian_linear) that is the Bayes-optimal C2ST the evaluation computes on
//         every test x anyway (metrics/ground-truth.ts), passed in, not recomputed; otherwise
//         sbibm's classifier C2ST (metrics/c2st.ts) on the first `observations` test x, `samples`
//         draws of each side, the reference from the task's sampler (two_moons: simulator
//         inversion; slcp), averaged over the observations.
import { tf } from './backend.js';
import { c2st as classifierC2st, type C2STOptions } from './metrics/c2st.js';
import { defaultSbcBins, sbcRanks, sbcTest, type SbcResult } from './metrics/sbc.js';
import type { DensityEstimator, RandomStream, Task } from './types.js';

export const DIAGNOSTIC_METRICS = ['c2st', 'sbc'] as const;
export type DiagnosticMetric = (typeof DIAGNOSTIC_METRICS)[number];

export interface DiagnosticsOptions {
  metrics: readonly DiagnosticMetric[];
  sbc?: { pairs?: number; samples?: number; bins?: number };
  c2st?: { observations?: number; samples?: number };
  /** Settings of the C2ST classifier (sbibm's by default); tests shorten its training. */
  classifier?: C2STOptions;
}

/** Defaults: sbi's check_sbc uses 1,000 pairs x 1,000 draws; these fit a sweep's evaluate step. */
export const DIAGNOSTICS_DEFAULTS = {
  sbc: { pairs: 200, samples: 100 },
  c2st: { observations: 3, samples: 1000 },
} as const;

/** SBC as stored: per-dimension arrays, the histogram flattened (dimension-major) to avoid nested arrays. */
export interface SbcDiagnostic {
  pairs: number;
  samples: number;
  bins: number;
  pValues: number[];
  chi2: number[];
  /** Rank counts, dimensions x bins, row-major: dimension d's bin b at d * bins + b. */
  histogram: number[];
  minPValue: number;
}

export interface C2stDiagnostic {
  /** Mean accuracy: 0.5 is indistinguishable from the reference, 1 separable. */
  value: number;
  method: 'bayes-optimal' | 'classifier';
  /** Test x scored (every test x for bayes-optimal). */
  observations: number;
  /** Draws per x of each side. */
  samples: number;
  /** Per observation (classifier only). */
  perObservation?: number[];
}

export interface Diagnostics {
  sbc?: SbcDiagnostic;
  c2st?: C2stDiagnostic;
}

export function sbcDiagnostic(r: SbcResult): SbcDiagnostic {
  return {
    pairs: r.pairs,
    samples: r.samples,
    bins: r.bins,
    pValues: r.dimensions.map((d) => d.pValue),
    chi2: r.dimensions.map((d) => d.chi2),
    histogram: r.dimensions.flatMap((d) => d.histogram),
    minPValue: r.minPValue,
  };
}

/** Rows of x per sample() call, so [L, rows, D] stays small whatever N is. */
const SBC_ROWS = 256;

/** SBC of `est` over the first `pairs` rows of (theta, x). */
export function runSbc(
  est: DensityEstimator,
  theta: Float32Array,
  x: Float32Array,
  n: number,
  opts: { pairs: number; samples: number; bins?: number },
  rng: RandomStream,
): SbcResult {
  const N = Math.min(opts.pairs, n);
  const L = opts.samples;
  const D = est.thetaDim;
  if (N < 2) throw new RangeError(`SBC needs at least 2 test pairs (got ${N}).`);
  const ranks = new Int32Array(N * D);
  for (let from = 0; from < N; from += SBC_ROWS) {
    const rows = Math.min(SBC_ROWS, N - from);
    const xs = tf.tensor2d(x.subarray(from * est.xDim, (from + rows) * est.xDim), [rows, est.xDim]);
    let draws: Float32Array;
    try {
      const s = est.sample(xs, L, rng.fork(`sbc/${from}`));
      draws = s.dataSync() as Float32Array;
      s.dispose();
    } finally {
      xs.dispose();
    }
    ranks.set(sbcRanks(theta.subarray(from * D, (from + rows) * D), draws, rows, L, D), from * D);
  }
  return sbcTest(ranks, N, L, D, opts.bins ?? defaultSbcBins(N, L));
}

/** Classifier C2ST of `est` against the task's reference sampler at the first `observations` x. */
export function runClassifierC2st(
  est: DensityEstimator,
  task: Task,
  x: Float32Array,
  n: number,
  opts: { observations: number; samples: number },
  rng: RandomStream,
  classifier: C2STOptions = {},
): C2stDiagnostic {
  if (!task.referencePosterior)
    throw new Error(`Task ${task.name} has no reference posterior to score C2ST against.`);
  const K = Math.min(opts.observations, n);
  const D = est.thetaDim;
  const perObservation: number[] = [];
  for (let k = 0; k < K; k++) {
    const xo = x.slice(k * est.xDim, (k + 1) * est.xDim);
    const ref = task.referencePosterior(xo, opts.samples, rng.fork(`c2st/reference/${k}`));
    const xs = tf.tensor2d(xo, [1, est.xDim]);
    let q: Float32Array;
    try {
      const s = est.sample(xs, opts.samples, rng.fork(`c2st/estimate/${k}`));
      q = s.dataSync() as Float32Array;
      s.dispose();
    } finally {
      xs.dispose();
    }
    perObservation.push(
      classifierC2st(ref, q, D, rng.fork(`c2st/classifier/${k}`), classifier).accuracy,
    );
  }
  return {
    value: perObservation.reduce((a, b) => a + b, 0) / K,
    method: 'classifier',
    observations: K,
    samples: opts.samples,
    perObservation,
  };
}

/**
 * The diagnostics `opts.metrics` asks for. `bayesOptimalC2st`: the evaluation's ground-truth C2ST
 * over the test set (tasks with an analytic posterior), used as the c2st diagnostic instead of a
 * classifier. Deterministic given `rng` (each part draws from a fork of its own).
 */
export function computeDiagnostics(
  est: DensityEstimator,
  task: Task,
  test: { theta: Float32Array; x: Float32Array; n: number },
  opts: DiagnosticsOptions,
  rng: RandomStream,
  bayesOptimalC2st?: { value: number; observations: number; samples: number },
): Diagnostics {
  const out: Diagnostics = {};
  if (opts.metrics.includes('sbc')) {
    const o = { ...DIAGNOSTICS_DEFAULTS.sbc, ...opts.sbc };
    out.sbc = sbcDiagnostic(runSbc(est, test.theta, test.x, test.n, o, rng.fork('sbc')));
  }
  if (opts.metrics.includes('c2st')) {
    if (bayesOptimalC2st) out.c2st = { ...bayesOptimalC2st, method: 'bayes-optimal' };
    else {
      const o = { ...DIAGNOSTICS_DEFAULTS.c2st, ...opts.c2st };
      out.c2st = runClassifierC2st(est, task, test.x, test.n, o, rng.fork('c2st'), opts.classifier);
    }
  }
  return out;
}
