// The two prior families the tasks use: independent Gaussians and a box uniform.
import type { Prior, RandomStream, Support } from '../types.js';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** Independent N(mean_i, std_i^2) per dimension. */
export class DiagGaussianPrior implements Prior {
  readonly dim: number;
  readonly support: Support;
  readonly mean: number[];
  readonly std: number[];
  private readonly logNorm: number;

  constructor(mean: number[], std: number[]) {
    if (mean.length !== std.length)
      throw new Error('DiagGaussianPrior: mean and std lengths differ');
    this.dim = mean.length;
    this.mean = mean.slice();
    this.std = std.slice();
    this.support = {
      lower: mean.map(() => -Infinity),
      upper: mean.map(() => Infinity),
    };
    this.logNorm = -std.reduce((s, v) => s + Math.log(v) + HALF_LOG_2PI, 0);
  }

  sample(n: number, rng: RandomStream): Float32Array {
    const d = this.dim;
    const z = new Float64Array(n * d);
    rng.fillNormal(z);
    const out = new Float32Array(n * d);
    for (let i = 0; i < n * d; i++) {
      const j = i % d;
      out[i] = this.mean[j] + this.std[j] * z[i];
    }
    return out;
  }

  logProb(theta: Float32Array, n: number): Float64Array {
    const d = this.dim;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let q = 0;
      for (let j = 0; j < d; j++) {
        const u = (theta[i * d + j] - this.mean[j]) / this.std[j];
        q += u * u;
      }
      out[i] = this.logNorm - 0.5 * q;
    }
    return out;
  }
}

/**
 * Uniform on the box [low, high]. The box is closed (torch's Uniform is half-open) so that a float32
 * draw that rounds onto the upper edge still has finite density; the difference has measure zero.
 */
export class BoxUniformPrior implements Prior {
  readonly dim: number;
  readonly support: Support;
  private readonly logDensity: number;

  constructor(low: number[], high: number[]) {
    if (low.length !== high.length) throw new Error('BoxUniformPrior: low and high lengths differ');
    this.dim = low.length;
    this.support = { lower: low.slice(), upper: high.slice() };
    this.logDensity = -low.reduce((s, l, j) => s + Math.log(high[j] - l), 0);
  }

  sample(n: number, rng: RandomStream): Float32Array {
    const d = this.dim;
    const { lower, upper } = this.support;
    const u = new Float64Array(n * d);
    rng.fillUniform(u);
    const out = new Float32Array(n * d);
    for (let i = 0; i < n * d; i++) {
      const j = i % d;
      out[i] = lower[j] + (upper[j] - lower[j]) * u[i];
    }
    return out;
  }

  /** Density at one row given as plain numbers (used by samplers working in float64). */
  logProbRow(theta: ArrayLike<number>, offset = 0): number {
    const { lower, upper } = this.support;
    for (let j = 0; j < this.dim; j++) {
      const v = theta[offset + j];
      if (!(v >= lower[j] && v <= upper[j])) return -Infinity;
    }
    return this.logDensity;
  }

  logProb(theta: Float32Array, n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.logProbRow(theta, i * this.dim);
    return out;
  }
}

export function indexedNames(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
}

/** Independent LogNormal(mu_i, sigma_i) per dimension: log theta_i ~ N(mu_i, sigma_i^2), support (0, inf). */
export class LogNormalPrior implements Prior {
  readonly dim: number;
  readonly support: Support;
  readonly mu: number[];
  readonly sigma: number[];
  private readonly logNorm: number;

  constructor(mu: number[], sigma: number[]) {
    if (mu.length !== sigma.length) throw new Error('LogNormalPrior: mu and sigma lengths differ');
    this.dim = mu.length;
    this.mu = mu.slice();
    this.sigma = sigma.slice();
    this.support = { lower: mu.map(() => 0), upper: mu.map(() => Infinity) };
    this.logNorm = -sigma.reduce((s, v) => s + Math.log(v) + HALF_LOG_2PI, 0);
  }

  sample(n: number, rng: RandomStream): Float32Array {
    const d = this.dim;
    const z = new Float64Array(n * d);
    rng.fillNormal(z);
    const out = new Float32Array(n * d);
    for (let i = 0; i < n * d; i++) {
      const j = i % d;
      out[i] = Math.exp(this.mu[j] + this.sigma[j] * z[i]);
    }
    return out;
  }

  logProb(theta: Float32Array, n: number): Float64Array {
    const d = this.dim;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let lp = this.logNorm;
      for (let j = 0; j < d; j++) {
        const v = theta[i * d + j];
        if (!(v > 0) || v === Infinity) {
          lp = -Infinity;
          break;
        }
        const lv = Math.log(v);
        const u = (lv - this.mu[j]) / this.sigma[j];
        lp += -0.5 * u * u - lv;
      }
      out[i] = lp;
    }
    return out;
  }
}
