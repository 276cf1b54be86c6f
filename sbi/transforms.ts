// Training in unconstrained space for priors with bounded support (research/paper.md section 7,
// "Output transform"): RABI's biject_to(prior.support), dimension by dimension:
//   both bounds finite -> sigmoid-affine  theta = l + (h - l) sigmoid(u)   (hodgkin_huxley's box)
//   lower bound only   -> shifted exp     theta = l + exp(u)               (spatial_sir's (0, inf))
//   no bounds          -> identity.
// trainNPE fits q(u | x) on u = T^-1(theta); ConstrainedEstimator re-attaches T, so that logProb,
// sample and rsample are in theta space (logProb includes log |d u / d theta|) and attacks and
// metrics use the model unchanged. Only the twice-differentiable ops of ops.ts (and the safe tf ops)
// are used: the FIM regularizer differentiates rsample -> logProb through T.
import { tf } from './backend.js';
import { clip, exp, sigmoid } from './ops.js';
import { WrappedEstimator } from './estimators/wrapped.js';
import type { DensityEstimator, RandomStream, Support } from './types.js';

export type DimTransform = 'identity' | 'exp' | 'sigmoid';

/** JSON-serializable (no Infinity): low/high are read only where the kind uses them. */
export interface ThetaTransformSpec {
  kinds: DimTransform[];
  low: number[];
  high: number[];
}

/**
 * sigmoid-affine keeps p = (theta - l) / (h - l) inside [P_EPS, 1 - P_EPS]: a float32 theta on the
 * box's edge (a closed-box prior draw can round onto it) gets a finite log-density instead of -inf.
 */
export const P_EPS = 1e-6;

/** biject_to(support), per dimension. */
export function transformForSupport(support: Support): ThetaTransformSpec {
  const kinds: DimTransform[] = [];
  const low: number[] = [];
  const high: number[] = [];
  support.lower.forEach((l, j) => {
    const h = support.upper[j]!;
    if (Number.isFinite(l) && Number.isFinite(h)) kinds.push('sigmoid');
    else if (Number.isFinite(l) && h === Infinity) kinds.push('exp');
    else if (l === -Infinity && h === Infinity) kinds.push('identity');
    else throw new Error(`no bijection onto (${l}, ${h}) in dimension ${j}`);
    low.push(Number.isFinite(l) ? l : 0);
    high.push(Number.isFinite(h) ? h : 0);
  });
  return { kinds, low, high };
}

export function isIdentityTransform(spec: ThetaTransformSpec): boolean {
  return spec.kinds.every((k) => k === 'identity');
}

export function validateTransformSpec(spec: unknown, dim: number): ThetaTransformSpec {
  const s = spec as Partial<ThetaTransformSpec> | null;
  const ok =
    s !== null &&
    typeof s === 'object' &&
    Array.isArray(s.kinds) &&
    Array.isArray(s.low) &&
    Array.isArray(s.high) &&
    s.kinds.length === dim &&
    s.low.length === dim &&
    s.high.length === dim &&
    s.kinds.every((k) => k === 'identity' || k === 'exp' || k === 'sigmoid') &&
    s.low.every(Number.isFinite) &&
    s.high.every(Number.isFinite) &&
    s.kinds.every((k, j) => k !== 'sigmoid' || s.high![j]! > s.low![j]!);
  if (!ok)
    throw new Error(`invalid theta transform for ${dim} dimensions: ${JSON.stringify(spec)}`);
  return s as ThetaTransformSpec;
}

/** theta -> u for n rows (float64 arithmetic); values outside the support give NaN. */
export function toUnconstrained(
  spec: ThetaTransformSpec,
  theta: Float32Array,
  n: number,
): Float32Array {
  const d = spec.kinds.length;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) {
    const j = i % d;
    const v = theta[i]!;
    const l = spec.low[j]!;
    switch (spec.kinds[j]) {
      case 'identity':
        out[i] = v;
        break;
      case 'exp':
        out[i] = v > l ? Math.log(v - l) : NaN;
        break;
      case 'sigmoid': {
        const h = spec.high[j]!;
        if (!(v >= l && v <= h)) {
          out[i] = NaN;
          break;
        }
        const p = Math.min(Math.max((v - l) / (h - l), P_EPS), 1 - P_EPS);
        out[i] = Math.log(p) - Math.log1p(-p);
      }
    }
  }
  return out;
}

/** u -> theta for n rows. */
export function toConstrained(spec: ThetaTransformSpec, u: Float32Array, n: number): Float32Array {
  const d = spec.kinds.length;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) {
    const j = i % d;
    const v = u[i]!;
    const l = spec.low[j]!;
    switch (spec.kinds[j]) {
      case 'identity':
        out[i] = v;
        break;
      case 'exp':
        out[i] = l + Math.exp(v);
        break;
      case 'sigmoid':
        out[i] = l + (spec.high[j]! - l) / (1 + Math.exp(-v));
    }
  }
  return out;
}

function columns(t: tf.Tensor2D): tf.Tensor2D[] {
  const [B, D] = t.shape;
  return Array.from({ length: D }, (_, j) => tf.slice(t, [0, j], [B, 1]));
}

/** u [B, D] -> theta [B, D], differentiable (twice) in u. */
export function forwardTensor(spec: ThetaTransformSpec, u: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() =>
    tf.concat(
      columns(u).map((c, j) => {
        const l = spec.low[j]!;
        switch (spec.kinds[j]!) {
          case 'identity':
            return c;
          case 'exp':
            return tf.add(exp(c), l);
          case 'sigmoid':
            return tf.add(tf.mul(sigmoid(c), spec.high[j]! - l), l);
        }
      }),
      1,
    ),
  ) as tf.Tensor2D;
}

/**
 * theta [B, D] -> u = T^-1(theta) [B, D] and log |d theta / d u| summed over dimensions [B], both
 * differentiable (twice) in theta.
 */
export function inverseTensor(
  spec: ThetaTransformSpec,
  theta: tf.Tensor2D,
): { u: tf.Tensor2D; logDet: tf.Tensor1D } {
  return tf.tidy(() => {
    const us: tf.Tensor[] = [];
    let logDet: tf.Tensor = tf.zeros([theta.shape[0]]);
    columns(theta).forEach((c, j) => {
      const l = spec.low[j]!;
      switch (spec.kinds[j]!) {
        case 'identity':
          us.push(c);
          break;
        case 'exp': {
          const u = tf.log(tf.sub(c, l));
          us.push(u);
          logDet = tf.add(logDet, tf.reshape(u, [-1]));
          break;
        }
        case 'sigmoid': {
          const w = spec.high[j]! - l;
          const p = clip(tf.div(tf.sub(c, l), w), P_EPS, 1 - P_EPS);
          const logP = tf.log(p);
          const log1mP = tf.log1p(tf.neg(p));
          us.push(tf.sub(logP, log1mP));
          // d theta / d u = w p (1 - p)
          logDet = tf.add(logDet, tf.reshape(tf.add(tf.add(logP, log1mP), Math.log(w)), [-1]));
        }
      }
    });
    return { u: tf.concat(us, 1) as tf.Tensor2D, logDet: logDet as tf.Tensor1D };
  });
}

/**
 * q(theta | x) = q_u(T^-1(theta) | x) |d u / d theta| for a model q_u trained on unconstrained u.
 * Its config is the inner config plus `thetaTransform`, which restoreEstimator reads to re-wrap, so
 * a saved model comes back constrained. Weights, z-score (of u) and variables are the inner model's.
 */
export class ConstrainedEstimator extends WrappedEstimator {
  readonly transform: ThetaTransformSpec;

  constructor(inner: DensityEstimator, transform: ThetaTransformSpec) {
    const spec = validateTransformSpec(transform, inner.thetaDim);
    super(inner, 'thetaTransform', transform);
    this.transform = spec;
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const { u, logDet } = inverseTensor(this.transform, theta);
      return tf.sub(this.inner.logProb(u, x), logDet) as tf.Tensor1D;
    });
  }

  private constrain(u: tf.Tensor3D): tf.Tensor3D {
    const [n, B, D] = u.shape;
    return tf.reshape(forwardTensor(this.transform, tf.reshape(u, [n * B, D]) as tf.Tensor2D), [
      n,
      B,
      D,
    ]) as tf.Tensor3D;
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return tf.tidy(() => this.constrain(this.inner.rsample(x, n, rng)));
  }

  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return tf.tidy(() => this.constrain(this.inner.sample(x, n, rng)));
  }
}

/** Tasks RABI trains with train_in_unconstrained_space (paper.md section 7). */
export const UNCONSTRAINED_TRAINING_TASKS: readonly string[] = [
  'hodgkin_huxley',
  'spatial_sir',
  'pyloric',
];

/** The transform trainNPE should use for a task by default; undefined: train on theta as it is. */
export function defaultThetaTransform(task: {
  name: string;
  prior: { support: Support };
}): ThetaTransformSpec | undefined {
  return UNCONSTRAINED_TRAINING_TASKS.includes(task.name)
    ? transformForSupport(task.prior.support)
    : undefined;
}
