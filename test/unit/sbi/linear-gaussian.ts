// A conditional Gaussian q(theta | x) = N(A x + b, L L^T) with hand-set weights, for tests with
// closed-form answers: KL(q(.|x) || q(.|x + delta)) = 1/2 (A delta)^T S^-1 (A delta) in both
// directions, the FIM with respect to x is A^T S^-1 A for every x, and the worst L2 perturbation of
// size eps has KL = 1/2 eps^2 lambda_max exactly.
import { tf } from '../../../sbi/backend.js';
import type {
  DensityEstimator,
  RandomStream,
  SerializedWeights,
  ZScore,
} from '../../../sbi/types.js';

export type Matrix = number[][];

export function matMul(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
}

export function transpose(a: Matrix): Matrix {
  return a[0]!.map((_, j) => a.map((row) => row[j]!));
}

/** Inverse of a lower-triangular matrix by forward substitution. */
export function lowerInverse(l: Matrix): Matrix {
  const n = l.length;
  const inv: Matrix = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    for (let i = j; i < n; i++) {
      let s = i === j ? 1 : 0;
      for (let k = j; k < i; k++) s -= l[i]![k]! * inv[k]![j]!;
      inv[i]![j] = s / l[i]![i]!;
    }
  }
  return inv;
}

/** Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations (descending). */
export function symmetricEigen(m: Matrix): { values: number[]; vectors: Matrix } {
  const n = m.length;
  const a = m.map((r) => r.slice());
  const v: Matrix = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)),
  );
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p]![q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p]![q]!) < 1e-300) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * a[p]![q]!);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k]![p]!;
          const akq = a[k]![q]!;
          a[k]![p] = c * akp - s * akq;
          a[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p]![k]!;
          const aqk = a[q]![k]!;
          a[p]![k] = c * apk - s * aqk;
          a[q]![k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k]![p]!;
          const vkq = v[k]![q]!;
          v[k]![p] = c * vkp - s * vkq;
          v[k]![q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j]![j]! - a[i]![i]!);
  return {
    values: order.map((i) => a[i]![i]!),
    vectors: order.map((i) => v.map((row) => row[i]!)),
  };
}

export class LinearGaussian implements DensityEstimator {
  readonly kind = 'gaussian' as const;
  readonly thetaDim: number;
  readonly xDim: number;
  readonly config: Record<string, unknown> = {};
  zscore: ZScore;
  private readonly at: tf.Tensor2D; // A^T [xDim, thetaDim]
  private readonly bias: tf.Tensor1D;
  private readonly lt: tf.Tensor2D; // L^T
  private readonly linvT: tf.Tensor2D; // (L^-1)^T
  private readonly logNorm: number;

  /** a: [thetaDim][xDim], b: [thetaDim], l: lower Cholesky factor of the covariance. */
  constructor(
    readonly a: Matrix,
    readonly b: number[],
    readonly l: Matrix,
  ) {
    this.thetaDim = a.length;
    this.xDim = a[0]!.length;
    this.zscore = {
      thetaMean: new Array<number>(this.thetaDim).fill(0),
      thetaStd: new Array<number>(this.thetaDim).fill(1),
      xMean: new Array<number>(this.xDim).fill(0),
      xStd: new Array<number>(this.xDim).fill(1),
    };
    this.at = tf.tensor2d(transpose(a));
    this.bias = tf.tensor1d(b);
    this.lt = tf.tensor2d(transpose(l));
    this.linvT = tf.tensor2d(transpose(lowerInverse(l)));
    const logDet = l.reduce((s, row, i) => s + Math.log(row[i]!), 0);
    this.logNorm = -logDet - 0.5 * this.thetaDim * Math.log(2 * Math.PI);
  }

  /** The covariance L L^T. */
  get cov(): Matrix {
    return matMul(this.l, transpose(this.l));
  }

  /** The FIM with respect to x, A^T S^-1 A (the same for every x). */
  fisher(): Matrix {
    const linvA = matMul(lowerInverse(this.l), this.a);
    return matMul(transpose(linvA), linvA);
  }

  /** Closed-form KL between q(.|x) and q(.|x + delta) (symmetric here): 1/2 |L^-1 A delta|^2. */
  klForDelta(delta: ArrayLike<number>): number {
    const linvA = matMul(lowerInverse(this.l), this.a);
    let s = 0;
    for (const row of linvA) {
      const r = row.reduce((acc, v, j) => acc + v * delta[j]!, 0);
      s += r * r;
    }
    return 0.5 * s;
  }

  private mean(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.at), this.bias) as tf.Tensor2D;
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const z = tf.matMul(tf.sub(theta, this.mean(x)), this.linvT);
      return tf.add(tf.mul(tf.sum(tf.square(z), 1), -0.5), this.logNorm) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return tf.tidy(() => {
      const b = x.shape[0];
      const eps = tf.reshape(rng.normalTensor([n * b, this.thetaDim]), [
        n * b,
        this.thetaDim,
      ]) as tf.Tensor2D;
      const noise = tf.reshape(tf.matMul(eps, this.lt), [n, b, this.thetaDim]);
      return tf.add(noise, this.mean(x)) as tf.Tensor3D;
    });
  }

  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return this.rsample(x, n, rng);
  }

  trainableVariables(): tf.Variable[] {
    return [];
  }

  getWeights(): SerializedWeights[] {
    return [];
  }

  setWeights(): void {}

  dispose(): void {
    tf.dispose([this.at, this.bias, this.lt, this.linvT]);
  }
}

/**
 * q(theta | x) = N(x, exp(x)) in one dimension: its variance depends on x, so KL(q(.|x) || q(.|x'))
 * differs from KL(q(.|x') || q(.|x)) and a swapped direction shows.
 */
export class HeteroscedasticGaussian implements DensityEstimator {
  readonly kind = 'gaussian' as const;
  readonly thetaDim = 1;
  readonly xDim = 1;
  readonly config: Record<string, unknown> = {};
  zscore: ZScore = { thetaMean: [0], thetaStd: [1], xMean: [0], xStd: [1] };

  /** KL(N(x1, exp(x1)) || N(x2, exp(x2))) in closed form. */
  static kl(x1: number, x2: number): number {
    const v1 = Math.exp(x1);
    const v2 = Math.exp(x2);
    return 0.5 * Math.log(v2 / v1) + (v1 + (x1 - x2) ** 2) / (2 * v2) - 0.5;
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const r = tf.sub(theta, x);
      const lp = tf.sub(
        tf.mul(tf.div(tf.square(r), tf.exp(x)), -0.5),
        tf.add(tf.mul(x, 0.5), 0.5 * Math.log(2 * Math.PI)),
      );
      return tf.reshape(lp, [-1]) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return tf.tidy(() => {
      const b = x.shape[0];
      const eps = tf.reshape(rng.normalTensor([n * b]), [n, b, 1]);
      return tf.add(tf.mul(eps, tf.exp(tf.mul(x, 0.5))), x) as tf.Tensor3D;
    });
  }

  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return this.rsample(x, n, rng);
  }

  trainableVariables(): tf.Variable[] {
    return [];
  }

  getWeights(): SerializedWeights[] {
    return [];
  }

  setWeights(): void {}

  dispose(): void {}
}
