// `fim-fast`: the FIM trace of fim-trace.ts without double backprop and without differentiating
// through the flow's sampler (beyond the paper). Two changes:
//  1. Hutchinson probes with central finite differences: for v with E[v v^T] = I,
//       tr I_x = E_theta E_v (v . s)^2,  v . s ~ (log q(theta | x + h v) - log q(theta | x - h v)) / 2h,
//     so R is a plain function of log q and its weight gradient is first order (one backward pass
//     through the density evaluations, batched into one call).
//  2. Where theta comes from (`samples`):
//     - 'data' (the default): the batch's own theta, one per x. No sampling at all, so the cost is two
//       density evaluations of the batch. The expectation is over the true posterior p(theta | x)
//       instead of q(theta | x) (RABI's EmpiricalFIMTraceRegularizer flavour); the two agree as q
//       approaches p, and early in training the value differs (bench: +49% after one epoch).
//     - 'model': detached draws from q, plus a score-function term (REINFORCE, leave-one-out baseline)
//       for the pathwise gradient through the sampler that detaching drops. Unbiased, but the squared
//       score is heavy-tailed, so that term is noisy. Without it (scoreFunction false) an untrained
//       MAF's gradient can point away from the exact one (test/unit/sbi/fim.test.ts).
//     - 'rsample': reparameterized draws kept on the tape: pathwise term exact, first order only, but
//       the sequential sampler is differentiated, which is most of the exact estimator's cost.
// A difference from the exact estimator that is not noise: with ReLU networks the score is piecewise
// constant in the hidden biases, so the double-backprop gradient misses what moving the kinks does to
// E||s||^2; the difference over [x - hv, x + hv] sees it (fim.test.ts; bench/defense-cost.ts).
// Chosen by bench/defense-cost.ts: all variants lower the held-out trace alike; 'data' costs least,
// and on half the batch (batchFraction) training with it costs about 2x none.
// The weight gradient goes through the same EMA as `fim`.
import { tf } from '../backend.js';
import type { DefenseContext } from '../npe.js';
import type {
  DensityEstimator,
  FusedPass,
  FusedPlan,
  FusedStepContext,
  HostEma,
  RandomStream,
} from '../types.js';
import {
  EmaRegularizerDefense,
  checkFimOptions,
  finiteMeanTrace,
  type FimOptions,
} from './fim-trace.js';

/**
 * Where theta comes from: 'model' detached draws from q (+ score-function term), 'rsample'
 * reparameterized draws kept on the tape (pathwise term exact, first order only, but the sequential
 * sampler is differentiated), 'data' the batch's own theta.
 */
export type FastSampleSource = 'model' | 'rsample' | 'data';
export const FAST_SAMPLE_SOURCES: readonly FastSampleSource[] = ['model', 'rsample', 'data'];
export type ProbeKind = 'rademacher' | 'gaussian';

export const FIM_FAST_DEFAULTS = Object.freeze({
  samples: 'data' as FastSampleSource,
  probes: 1,
  probe: 'rademacher' as ProbeKind,
  /** h = relStep * min_j xStd_j (raw x units: the probe is isotropic in raw x, as the FIM is). */
  relStep: 1e-2,
  scoreFunction: true,
  /**
   * Half the batch: the regularizer then costs about one NLL step (two density evaluations of B/2
   * rows), so training costs about 2x none (bench/defense-cost.ts); the mean over a random half is
   * an unbiased estimate of the batch mean.
   */
  batchFraction: 0.5,
});

export interface FimFastOptions extends FimOptions {
  samples?: FastSampleSource;
  /** Probe directions per sample. */
  probes?: number;
  probe?: ProbeKind;
  relStep?: number;
  /**
   * Add the score-function term for the dropped pathwise gradient (model samples only; needs
   * mcSamples >= 2). Without it the weight gradient of an untrained MAF can point away from the exact
   * one (test/unit/sbi/fim.test.ts).
   */
  scoreFunction?: boolean;
}

/** Probe vectors [n, d] with E[v v^T] = I: Rademacher signs (lower variance) or standard normals. */
export function probeVectors(
  n: number,
  d: number,
  kind: ProbeKind,
  rng: RandomStream,
): tf.Tensor2D {
  return tf.tidy(() => {
    if (kind === 'gaussian') return rng.normalTensor([n, d]) as tf.Tensor2D;
    return tf.sub(
      tf.mul(tf.cast(tf.less(rng.uniformTensor([n, d]), 0.5), 'float32'), 2),
      1,
    ) as tf.Tensor2D;
  });
}

/** The finite-difference step in raw x units for a model: relStep times its smallest x std. */
export function finiteDifferenceStep(model: DensityEstimator, relStep: number): number {
  return relStep * Math.min(...model.zscore.xStd);
}

export interface ProbeSetup {
  /** theta tiled to [kN, thetaDim]: the N rows, k = 2 or 3 times. */
  theta: tf.Tensor2D;
  /** [x + h v; x - h v] and, with the centre, x: [kN, xDim]. */
  x: tf.Tensor2D;
  /** Whether the centre rows (x itself) are there, for the score-function term. */
  centre: boolean;
  /** Rows per batch row: N = perRow * B, sample-major (row k*B + b belongs to x_b). */
  perRow: number;
  /** Samples per batch row (perRow = samples * probes). */
  samples: number;
  h: number;
}

/**
 * The detached inputs of the estimator: samples [S, B, thetaDim] (any S >= 1) times `probes`
 * directions each, laid out for one logProb call (the centre rows serve the score-function term).
 */
export function probeSetup(
  x: tf.Tensor2D,
  samples: tf.Tensor3D,
  probes: number,
  probe: ProbeKind,
  h: number,
  rng: RandomStream,
  centre = false,
): ProbeSetup {
  const [s, b, dt] = samples.shape;
  const d = x.shape[1];
  const perRow = s * probes;
  const n = perRow * b;
  return tf.tidy(() => {
    const theta = tf.tile(tf.reshape(samples, [s * b, dt]), [probes, 1]) as tf.Tensor2D;
    const xr = tf.tile(x, [perRow, 1]) as tf.Tensor2D;
    const hv = tf.mul(probeVectors(n, d, probe, rng), h);
    const xs = [tf.add(xr, hv), tf.sub(xr, hv), ...(centre ? [xr] : [])];
    return {
      theta: tf.concat(
        xs.map(() => theta),
        0,
      ) as tf.Tensor2D,
      x: tf.concat(xs, 0) as tf.Tensor2D,
      centre,
      perRow,
      samples: s,
      h,
    };
  });
}

/** The value of t with a zero gradient (tfjs has no stopGradient; a customGrad forward is not taped). */
export function detach<T extends tf.Tensor>(t: T): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return op(t) as T;
}

/**
 * (v . s)^2 per (sample, probe) and row, [perRow, B], and log q(theta | x) at the centre, [perRow, B].
 * Differentiable in the weights (first order).
 */
export function directionalTerms(
  model: DensityEstimator,
  setup: ProbeSetup,
): { sq: tf.Tensor2D; logq?: tf.Tensor2D } {
  return tf.tidy(() => {
    const lp = model.logProb(setup.theta, setup.x);
    const n = setup.theta.shape[0] / (setup.centre ? 3 : 2);
    const shape: [number, number] = [setup.perRow, n / setup.perRow];
    const dir = tf.div(tf.sub(tf.slice(lp, [0], [n]), tf.slice(lp, [n], [n])), 2 * setup.h);
    const sq = tf.reshape(tf.square(dir), shape) as tf.Tensor2D;
    if (!setup.centre) return { sq };
    return { sq, logq: tf.reshape(tf.slice(lp, [2 * n], [n]), shape) as tf.Tensor2D };
  });
}

/** (v . s)^2 per (sample, probe) and row: [perRow, B]. */
export function squaredDirectionalScores(model: DensityEstimator, setup: ProbeSetup): tf.Tensor2D {
  return tf.tidy(() => directionalTerms(model, setup).sq);
}

/**
 * A surrogate whose weight gradient estimates d/dphi of beta * mean_b E_{theta ~ q_phi(.|x_b)} f, with
 * f = (v . s)^2, from detached samples: the direct term E[d f / dphi] plus the score-function term
 * E[(f - baseline) d log q_phi(theta | x) / dphi] that stands in for the pathwise term through the
 * sampler. The baseline is the leave-one-out mean of f over the other samples of the same x (needs at
 * least 2 samples; it keeps the estimate unbiased and cuts its variance). Its value is not the trace.
 */
export function scoreFunctionSurrogate(
  model: DensityEstimator,
  setup: ProbeSetup,
  beta: number,
): tf.Scalar {
  if (setup.samples < 2 || !setup.centre)
    throw new RangeError(
      'the score-function term needs at least 2 samples per x and the centre rows.',
    );
  return tf.tidy(() => {
    const { sq, logq } = directionalTerms(model, setup) as { sq: tf.Tensor2D; logq: tf.Tensor2D };
    const [perRow, b] = sq.shape;
    const probes = perRow / setup.samples;
    // f per sample (mean over its probes) and log q per sample (equal over its probes): [S, B].
    const fs = tf.mean(tf.reshape(detach(sq), [probes, setup.samples, b]), 0);
    const lq = tf.mean(tf.reshape(logq, [probes, setup.samples, b]), 0);
    const total = tf.sum(fs, 0, true);
    const baseline = tf.div(tf.sub(total, fs), setup.samples - 1);
    const weights = tf.sub(fs, baseline);
    const perRowSurrogate = tf.add(tf.mean(sq, 0), tf.mean(tf.mul(weights, lq), 0)); // [B]
    return finiteMeanTrace(tf.reshape(perRowSurrogate, [1, b]) as tf.Tensor2D, beta);
  });
}

/**
 * Draws from q(.|x) with no gradient: [M, B, thetaDim]. tfjs has no stopGradient; a customGrad's
 * forward pass is not taped and its gradient here is zero, so even under a tape nothing of the
 * sampler is recorded.
 */
export function detachedSamples(
  model: DensityEstimator,
  x: tf.Tensor2D,
  m: number,
  rng: RandomStream,
): tf.Tensor3D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: model.sample(args[0] as tf.Tensor2D, m, rng),
    gradFunc: () => tf.zerosLike(x),
  }));
  return op(x) as tf.Tensor3D;
}

export class FimFastDefense extends EmaRegularizerDefense {
  readonly name = 'fim-fast';
  readonly samples: FastSampleSource;
  readonly probes: number;
  readonly probe: ProbeKind;
  readonly relStep: number;
  readonly scoreFunction: boolean;

  constructor(opts: FimFastOptions = {}) {
    const samples = opts.samples ?? FIM_FAST_DEFAULTS.samples;
    super(
      { ...opts, mcSamples: opts.mcSamples ?? (samples === 'data' ? 1 : undefined) },
      FIM_FAST_DEFAULTS.batchFraction,
    );
    this.samples = samples;
    this.probes = opts.probes ?? FIM_FAST_DEFAULTS.probes;
    this.probe = opts.probe ?? FIM_FAST_DEFAULTS.probe;
    this.relStep = opts.relStep ?? FIM_FAST_DEFAULTS.relStep;
    this.scoreFunction =
      this.samples === 'model' && (opts.scoreFunction ?? FIM_FAST_DEFAULTS.scoreFunction);
    checkFimOptions('fim-fast', this.beta, this.mcSamples);
    if (!FAST_SAMPLE_SOURCES.includes(this.samples))
      throw new RangeError(
        `fim-fast: samples must be one of ${FAST_SAMPLE_SOURCES.join(', ')}, got "${String(this.samples)}".`,
      );
    if (this.samples === 'data' && this.mcSamples !== 1)
      throw new RangeError(
        'fim-fast: with samples "data" there is one theta per x (mcSamples must be 1).',
      );
    if (!Number.isInteger(this.probes) || this.probes < 1)
      throw new RangeError(`fim-fast: probes must be a positive integer, got ${this.probes}.`);
    if (this.scoreFunction && this.mcSamples < 2)
      throw new RangeError(
        'fim-fast: the score-function term needs mcSamples >= 2 (or scoreFunction false).',
      );
    if (!(this.relStep > 0))
      throw new RangeError(`fim-fast: relStep must be positive, got ${this.relStep}.`);
  }

  /** Batch theta without the score-function term has a fused form (FusedFimFast, below). */
  fusedPlan(): FusedPlan | null {
    if (this.samples !== 'data' || this.scoreFunction) return null;
    return new FusedFimFast(this, this.ema);
  }

  protected override prepare(
    theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
  ): ProbeSetup | undefined {
    // Outside the tape: nothing here is differentiated. rsample'd samples are drawn under the tape.
    if (this.samples === 'rsample') return undefined;
    const samples =
      this.samples === 'data'
        ? (tf.expandDims(theta, 0) as tf.Tensor3D)
        : detachedSamples(ctx.model, x, this.mcSamples, ctx.rng);
    const h = finiteDifferenceStep(ctx.model, this.relStep);
    return probeSetup(x, samples, this.probes, this.probe, h, ctx.rng, this.scoreFunction);
  }

  protected regularizer(
    _theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
    prepared: unknown,
  ): tf.Scalar {
    if (this.samples === 'rsample') {
      const h = finiteDifferenceStep(ctx.model, this.relStep);
      const samples = ctx.model.rsample(x, this.mcSamples, ctx.rng);
      const setup = probeSetup(x, samples, this.probes, this.probe, h, ctx.rng);
      return finiteMeanTrace(squaredDirectionalScores(ctx.model, setup), this.beta);
    }
    const setup = prepared as ProbeSetup;
    if (this.scoreFunction) return scoreFunctionSurrogate(ctx.model, setup, this.beta);
    return finiteMeanTrace(squaredDirectionalScores(ctx.model, setup), this.beta);
  }
}

/**
 * FimFastDefense.extraGrads with the batch's theta (no score-function term) in a fused trainer, on
 * the batch's first m = ceil(batchFraction n) rows: probes v from rng, directional scores
 * (log q(theta | x + h v) - log q(theta | x - h v)) / 2h, R = beta * mean over finite rows of their
 * mean square; its weight gradient goes through the EMA into the step's gradient.
 */
class FusedFimFast implements FusedPlan {
  constructor(
    private readonly o: Pick<
      FimFastDefense,
      'beta' | 'relStep' | 'batchFraction' | 'probes' | 'probe'
    >,
    readonly ema: HostEma,
  ) {}

  probeRows(maxBatch: number): number {
    return 2 * this.o.probes * Math.max(1, Math.ceil(this.o.batchFraction * maxBatch));
  }

  addGradients(pass: FusedPass, n: number, ctx: FusedStepContext): number | null {
    const { beta, relStep, batchFraction, probes: P, probe } = this.o;
    // beta = 0 adds exactly nothing (FimFastDefense skips it too, EMA included).
    if (beta === 0) return null;
    const [D, C] = [pass.thetaDim, pass.xDim];
    const h = relStep * Math.min(...pass.xStd);
    const hz = Float32Array.from(pass.xStd, (sd) => h / sd);
    const m = Math.max(1, Math.ceil(batchFraction * n));
    const N = P * m;
    // Probe rows as probeSetup lays them out: row i = k m + b (probe k of batch row b), v_i from rng.
    const v = new Float32Array(N * C);
    if (probe === 'gaussian') ctx.rng.fillNormal(v);
    else {
      ctx.rng.fillUniform(v);
      for (let j = 0; j < v.length; j++) v[j] = v[j]! < 0.5 ? 1 : -1;
    }
    const batch = pass.batch();
    const reg = pass.probes();
    for (let i = 0; i < N; i++) {
      const b = i % m;
      for (const [row, sign] of [
        [i, 1],
        [N + i, -1],
      ] as const) {
        reg.u.set(batch.u.subarray(b * batch.ldU, b * batch.ldU + D), row * reg.ldU);
        for (let j = 0; j < C; j++) {
          reg.x[row * reg.ldX + j] = batch.x[b * batch.ldX + j]! + sign * hz[j]! * v[i * C + j]!;
        }
      }
    }
    const nll = pass.probeNLL(2 * N);
    // log q = -nll - const, so the directional score is (nll(x - hv) - nll(x + hv)) / 2h.
    const dir = new Float64Array(N);
    const perRow = new Float64Array(m);
    for (let i = 0; i < N; i++) {
      dir[i] = (nll[N + i]! - nll[i]!) / (2 * h);
      perRow[i % m] += (dir[i]! * dir[i]!) / P;
    }
    let count = 0;
    for (const t of perRow) if (Number.isFinite(t)) count++;
    count = Math.max(count, 1);
    // dR/dnll for the + and - rows of probe i: -/+ beta dir_i / (count P h); 0 off the finite rows.
    const coef = new Float32Array(2 * N);
    for (let i = 0; i < N; i++) {
      const c = Number.isFinite(perRow[i % m]!) ? (beta * dir[i]!) / (count * P * h) : 0;
      coef[i] = -c;
      coef[N + i] = c;
    }
    return pass.addProbeGradientEma(coef);
  }
}
