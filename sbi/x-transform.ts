// A fixed transform of the observation before the estimator sees it: log on the dimensions whose
// training values are all positive. sir's counts under log-normal noise span five decades
// (6e-5 to 7), which z-scoring leaves piled up near 0; q(theta | log x) is far easier to fit there
// (held-out NLL at 1,000 simulations 1.57 -> -0.04 nats). sbi/x-transform-choice.ts decides it.
// XTransformedEstimator keeps every caller in raw x: logProb, sample and rsample take raw x, so
// attacks measure eps where they always did and their gradients pass through the log. The price is
// robustness: a small change of a small x is a large change of log x (BENCHMARKS.md, "log x").
import { tf } from './backend.js';
import { WrappedEstimator } from './estimators/wrapped.js';
import type { DensityEstimator, RandomStream } from './types.js';

export type XDimTransform = 'identity' | 'log';

/** JSON-serializable, saved in the model's config as `xTransform`. */
export interface XTransformSpec {
  kinds: XDimTransform[];
  /**
   * Per dimension, the least value log sees (ignored where the kind is identity): half the smallest
   * training value. An x pushed below it (an attack, a value never simulated) is read as the floor
   * instead of running off to log 0 = -inf, so the conditioner stays near its training range.
   */
  floor: number[];
}

export function isIdentityXTransform(spec: XTransformSpec): boolean {
  return spec.kinds.every((k) => k === 'identity');
}

export function validateXTransformSpec(spec: unknown, xDim: number): XTransformSpec {
  const s = spec as Partial<XTransformSpec> | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    !Array.isArray(s.kinds) ||
    s.kinds.length !== xDim ||
    s.kinds.some((k) => k !== 'identity' && k !== 'log') ||
    !Array.isArray(s.floor) ||
    s.floor.length !== xDim ||
    s.floor.some((f, j) => !(typeof f === 'number' && (s.kinds![j] !== 'log' || f > 0)))
  )
    throw new Error(
      `xTransform must be {"kinds": [...], "floor": [...]} with ${xDim} entries each ("identity" or "log"; a positive floor where log), got ${JSON.stringify(spec)}`,
    );
  return { kinds: [...s.kinds], floor: [...s.floor] };
}

/**
 * Log on every dimension whose finite values over the rows are all positive (rows with a
 * non-finite entry are skipped: training drops them); undefined where no dimension qualifies.
 */
export function positiveLogTransform(
  x: Float32Array,
  n: number,
  xDim: number,
): XTransformSpec | undefined {
  const positive = new Array<boolean>(xDim).fill(true);
  const least = new Array<number>(xDim).fill(Infinity);
  let rows = 0;
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * xDim, (i + 1) * xDim);
    if (!row.every(Number.isFinite)) continue;
    rows++;
    for (let j = 0; j < xDim; j++) {
      if (!(row[j]! > 0)) positive[j] = false;
      least[j] = Math.min(least[j]!, row[j]!);
    }
  }
  if (rows === 0 || !positive.some(Boolean)) return undefined;
  return {
    kinds: positive.map((p) => (p ? 'log' : 'identity')),
    floor: positive.map((p, j) => (p ? least[j]! / 2 : 0)),
  };
}

/** The transformed copy of rows x [n, xDim] (non-finite values stay non-finite). */
export function transformRows(spec: XTransformSpec, x: Float32Array, n: number): Float32Array {
  const d = spec.kinds.length;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) {
    const v = x[i]!;
    const j = i % d;
    out[i] =
      spec.kinds[j] === 'log' && Number.isFinite(v) ? Math.log(Math.max(v, spec.floor[j]!)) : v;
  }
  return out;
}

/** The transform on a tensor of rows, differentiable in x (d log x / dx = 1 / x above the floor, 0 below). */
export function transformTensor(spec: XTransformSpec, x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const m = tf.tensor2d(
      spec.kinds.map((k) => (k === 'log' ? 1 : 0)),
      [1, spec.kinds.length],
    );
    const keep = tf.sub(1, m);
    const floor = tf.tensor2d(
      spec.kinds.map((k, j) => (k === 'log' ? spec.floor[j]! : 1)),
      [1, spec.kinds.length],
    );
    // Dimensions not logged enter the log as 1 (log 1 = 0, times 0), so no NaN reaches either term.
    const logged = tf.log(tf.maximum(tf.add(tf.mul(x, m), keep), floor));
    return tf.add(tf.mul(m, logged), tf.mul(keep, x)) as tf.Tensor2D;
  });
}

/** An estimator of theta given the transformed x, seen from outside as one of theta given x. */
export class XTransformedEstimator extends WrappedEstimator {
  readonly transform: XTransformSpec;

  constructor(inner: DensityEstimator, transform: XTransformSpec) {
    const spec = validateXTransformSpec(transform, inner.xDim);
    super(inner, 'xTransform', spec);
    this.transform = spec;
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => this.inner.logProb(theta, transformTensor(this.transform, x)));
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return tf.tidy(() => this.inner.rsample(transformTensor(this.transform, x), n, rng));
  }

  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return tf.tidy(() => this.inner.sample(transformTensor(this.transform, x), n, rng));
  }
}
