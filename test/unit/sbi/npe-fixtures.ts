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
