// Whether `robustsbi train` logs x, decided per dataset by a probe that costs no training: a
// linear-Gaussian q(theta | f(x)) = N(W f(x) + b, Sigma), fitted by least squares on 80% of the rows
// and scored by its NLL on the other 20%, once with f = identity and once with f = log on the
// positive dimensions. Where x spans decades (sir's counts under log-normal noise) theta is far more
// nearly linear, with even residuals, in log x; where log x gains little in the probe (lotka_volterra)
// the flows did not gain from it either, so x stays as it is. Training both flows both ways
// would double the default's cost.
import type { RandomStream } from './types.js';
import { fitLinearGaussian } from './least-squares.js';
import { cholesky, forwardSubstitute } from './tasks/linalg.js';
import { positiveLogTransform, transformRows, type XTransformSpec } from './x-transform.js';

/** Above this many x dimensions the probe's (xDim + 1)^3 solve is not worth it: x stays as it is. */
export const PROBE_MAX_XDIM = 256;
/**
 * What log x must gain in the probe's validation NLL, in nats per parameter dimension, to be taken.
 * Measured on the two tasks with positive x, at 1k and 10k with the parity bench's seeds 0 to 2:
 * sir's probe gains 0.40 to 0.57 per dimension and its flows gain 1 to 2 nats of held-out NLL
 * from log x; lotka_volterra's probe gains 0.035 to 0.086 and its flows lose 0.12 (10k). 0.2 sits
 * between them, about twice from each.
 */
export const PROBE_MARGIN_PER_DIM = 0.2;
/** Fewer finite rows than this leave the probe's validation NLL too noisy to act on. */
export const PROBE_MIN_ROWS = 50;

export interface XTransformChoice {
  /** The transform to train with; undefined: x as it is. */
  transform: XTransformSpec | undefined;
  /** The probe's validation NLL per candidate, where it ran. */
  probe?: { identity: number; log: number };
}

/**
 * Log on x's positive dimensions where the linear-Gaussian probe's validation NLL is lower with it
 * by more than PROBE_MARGIN_PER_DIM per parameter dimension;
 * x as it is where no dimension is positive, x is too wide, or the rows are too few to measure.
 */
export function chooseXTransform(
  theta: Float32Array,
  x: Float32Array,
  n: number,
  thetaDim: number,
  xDim: number,
  rng: RandomStream,
): XTransformChoice {
  const log = positiveLogTransform(x, n, xDim);
  if (log === undefined || xDim > PROBE_MAX_XDIM) return { transform: undefined };
  const rows: number[] = [];
  for (let i = 0; i < n; i++)
    if (
      theta.subarray(i * thetaDim, (i + 1) * thetaDim).every(Number.isFinite) &&
      x.subarray(i * xDim, (i + 1) * xDim).every(Number.isFinite)
    )
      rows.push(i);
  if (rows.length < PROBE_MIN_ROWS) return { transform: undefined };
  const perm = rng.permutation(rows.length);
  const nVal = Math.round(rows.length / 5);
  const val = Array.from(perm.subarray(0, nVal), (k) => rows[k]!);
  const train = Array.from(perm.subarray(nVal), (k) => rows[k]!);
  const identity = linearGaussianValNll(theta, x, thetaDim, xDim, train, val);
  const logged = linearGaussianValNll(theta, transformRows(log, x, n), thetaDim, xDim, train, val);
  return {
    transform: logged < identity - PROBE_MARGIN_PER_DIM * thetaDim ? log : undefined,
    probe: { identity, log: logged },
  };
}

/**
 * Mean -log N(theta | W f + b, Sigma) over the `val` rows, with W, b by ridge least squares on the
 * z-scored features of the `train` rows and Sigma their residual covariance. Exported for tests.
 */
export function linearGaussianValNll(
  theta: Float32Array,
  f: Float32Array,
  thetaDim: number,
  fDim: number,
  train: readonly number[],
  val: readonly number[],
): number {
  const p = fDim + 1;
  const mean = new Float64Array(fDim);
  const std = new Float64Array(fDim);
  for (const i of train) for (let j = 0; j < fDim; j++) mean[j]! += f[i * fDim + j]! / train.length;
  for (const i of train)
    for (let j = 0; j < fDim; j++) std[j]! += (f[i * fDim + j]! - mean[j]!) ** 2 / train.length;
  for (let j = 0; j < fDim; j++) std[j] = Math.sqrt(std[j]!) || 1;
  // Each row's z-scored features and its 1 for the intercept.
  const features = (rows: readonly number[]): Float64Array => {
    const out = new Float64Array(rows.length * p);
    rows.forEach((i, r) => {
      for (let j = 0; j < fDim; j++) out[r * p + j] = (f[i * fDim + j]! - mean[j]!) / std[j]!;
      out[r * p + fDim] = 1;
    });
    return out;
  };
  // A small ridge on the slopes (z-scored features, so one scale fits all).
  const { coef: w, cov } = fitLinearGaussian(
    features(train),
    gatherRows64(theta, thetaDim, train),
    train.length,
    p,
    thetaDim,
    1e-3,
  );
  // A floor for a theta the features predict exactly (a constant dimension), relative to its scale.
  const trace = cov.reduce((s, row, u) => s + row[u]!, 0);
  for (let u = 0; u < thetaDim; u++) cov[u]![u]! += 1e-9 * (trace / thetaDim) + 1e-12;
  // e' Sigma^-1 e = |L^-1 e|^2 with Sigma = L L': one factor gives the quadratic and log det.
  const l = cholesky(cov);
  const logDet = 2 * l.reduce((s, row, u) => s + Math.log(row[u]!), 0);
  const fVal = features(val);
  const eVal = new Float64Array(val.length * thetaDim);
  val.forEach((i, r) => {
    for (let d = 0; d < thetaDim; d++) {
      let pred = 0;
      for (let k = 0; k < p; k++) pred += fVal[r * p + k]! * w[d]![k]!;
      eVal[r * thetaDim + d] = theta[i * thetaDim + d]! - pred;
    }
  });
  let sum = 0;
  for (let r = 0; r < val.length; r++) {
    const z = forwardSubstitute(l, eVal.subarray(r * thetaDim, (r + 1) * thetaDim));
    const q = z.reduce((s, v) => s + v * v, 0);
    sum += 0.5 * (q + logDet + thetaDim * Math.log(2 * Math.PI));
  }
  return sum / val.length;
}

/**
 * What the probe chose and why, for train's line and the parity bench's note; undefined where the
 * probe did not run.
 */
export function describeXChoice(choice: XTransformChoice, thetaDim: number): string | undefined {
  if (!choice.probe) return undefined;
  const gain = choice.probe.identity - choice.probe.log;
  const needed = PROBE_MARGIN_PER_DIM * thetaDim;
  return (
    `${choice.transform ? `x -> log x on ${describeLogged(choice.transform)}` : 'x kept as simulated'}: ` +
    `log x gains ${gain.toFixed(3)} nats of a linear-Gaussian probe's validation NLL, ` +
    `${choice.transform ? 'over' : 'under'} the ${needed.toFixed(3)} it needs ` +
    `(x ${choice.probe.identity.toFixed(4)}, log x ${choice.probe.log.toFixed(4)})`
  );
}

/** "every dimension", or which dimensions a transform logs. */
export function describeLogged(spec: XTransformSpec): string {
  const dims = spec.kinds.flatMap((k, j) => (k === 'log' ? [j] : []));
  return dims.length === spec.kinds.length
    ? `every dimension`
    : `dimension${dims.length > 1 ? 's' : ''} ${dims.join(', ')}`;
}

/** Rows of a [., dim] array, in float64. */
function gatherRows64(a: Float32Array, dim: number, rows: readonly number[]): Float64Array {
  const out = new Float64Array(rows.length * dim);
  rows.forEach((i, r) => {
    for (let d = 0; d < dim; d++) out[r * dim + d] = a[i * dim + d]!;
  });
  return out;
}
