// Small fixtures for the NPE training tests: a conditional diagonal Gaussian with a linear mean (fast,
// first-order only) and a linear-Gaussian data set it can fit.
import { tf } from '../../../sbi/backend.js';
import type {
  DensityEstimator,
  RandomStream,
  SerializedWeights,
  ZScore,
} from '../../../sbi/types.js';

const LOG_2PI = Math.log(2 * Math.PI);

export class LinearGaussian implements DensityEstimator {
  readonly kind = 'gaussian' as const;
  readonly config = { test: 'linear-gaussian' };
  private readonly w: tf.Variable;
  private readonly b: tf.Variable;
  private readonly logStd: tf.Variable;

  constructor(
    readonly thetaDim: number,
    readonly xDim: number,
    public zscore: ZScore,
    rng: RandomStream,
  ) {
    const init = new Float32Array(xDim * thetaDim);
    rng.fillNormal(init);
    for (let i = 0; i < init.length; i++) init[i]! *= 0.1;
    this.w = tf.tidy(() => tf.variable(tf.tensor2d(init, [xDim, thetaDim])));
    this.b = tf.tidy(() => tf.variable(tf.zeros([thetaDim])));
    this.logStd = tf.tidy(() => tf.variable(tf.zeros([thetaDim])));
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const xz = tf.div(tf.sub(x, this.zscore.xMean), this.zscore.xStd);
      const mean = tf.add(tf.matMul(xz, this.w), this.b);
      const z = tf.mul(tf.sub(theta, mean), tf.exp(tf.neg(this.logStd)));
      const perDim = tf.sub(tf.mul(tf.square(z), -0.5), tf.add(this.logStd, 0.5 * LOG_2PI));
      return tf.sum(perDim, 1) as tf.Tensor1D;
    });
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return tf.tidy(() => {
      const xz = tf.div(tf.sub(x, this.zscore.xMean), this.zscore.xStd);
      const mean = tf.add(tf.matMul(xz, this.w), this.b);
      const eps = rng.normalTensor([n, x.shape[0], this.thetaDim]);
      return tf.add(mean, tf.mul(eps, tf.exp(this.logStd))) as tf.Tensor3D;
    });
  }

  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    return this.rsample(x, n, rng);
  }

  trainableVariables(): tf.Variable[] {
    return [this.w, this.b, this.logStd];
  }

  getWeights(): SerializedWeights[] {
    return [
      ['w', this.w],
      ['b', this.b],
      ['logStd', this.logStd],
    ].map(([name, v]) => ({
      name: name as string,
      shape: [...(v as tf.Variable).shape],
      values: Array.from((v as tf.Variable).dataSync()),
    }));
  }

  setWeights(ws: SerializedWeights[]): void {
    const byName = new Map(ws.map((w) => [w.name, w]));
    for (const [name, v] of [
      ['w', this.w],
      ['b', this.b],
      ['logStd', this.logStd],
    ] as const) {
      const w = byName.get(name);
      if (!w) throw new Error(`missing ${name}`);
      tf.tidy(() => v.assign(tf.tensor(w.values, v.shape)));
    }
  }

  dispose(): void {
    this.w.dispose();
    this.b.dispose();
    this.logStd.dispose();
  }
}

/** theta ~ N(0, I_2), x = [theta1 + theta2, theta1 - theta2, 2 theta2] + 0.1 noise (3-dim). */
export function linearData(
  n: number,
  rng: RandomStream,
): { theta: Float32Array; x: Float32Array; n: number } {
  const theta = new Float32Array(n * 2);
  rng.fillNormal(theta);
  const noise = new Float32Array(n * 3);
  rng.fillNormal(noise);
  const x = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = theta[2 * i]!;
    const b = theta[2 * i + 1]!;
    x[3 * i] = a + b + 0.1 * noise[3 * i]!;
    x[3 * i + 1] = a - b + 0.1 * noise[3 * i + 1]!;
    x[3 * i + 2] = 2 * b + 0.1 * noise[3 * i + 2]!;
  }
  return { theta, x, n };
}

/** A minimal seeded stream for these tests (sbi/rng.ts is the real one). */
export class TestStream implements RandomStream {
  private s: number;
  constructor(private readonly seed: number) {
    this.s = seed >>> 0 || 1;
  }
  uniform(): number {
    // mulberry32
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = 1 - this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
  fillUniform(out: Float32Array | Float64Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform();
  }
  fillNormal(out: Float32Array | Float64Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
  }
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }
  gamma(): number {
    throw new Error('not needed');
  }
  beta(): number {
    throw new Error('not needed');
  }
  binomial(): number {
    throw new Error('not needed');
  }
  fork(key: string | number): RandomStream {
    let h = this.seed ^ 0x9e3779b9;
    for (const c of String(key)) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
    return new TestStream(h >>> 0);
  }
  normalTensor(shape: number[]): tf.Tensor {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    this.fillNormal(a);
    return tf.tensor(a, shape);
  }
  uniformTensor(shape: number[]): tf.Tensor {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    this.fillUniform(a);
    return tf.tensor(a, shape);
  }
}
