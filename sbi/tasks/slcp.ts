// sbibm's slcp (sbibm/tasks/slcp/task.py): theta ~ U(-3, 3)^5, m = (theta1, theta2),
// s1 = theta3^2, s2 = theta4^2, rho = tanh(theta5), S = [[s1^2, rho s1 s2], [rho s1 s2, s2^2]] + 1e-6 I,
// x = 4 iid draws from N(m, S) flattened as (x1, y1, ..., x4, y4).
import type { RandomStream, Task } from '../types.js';
import { BoxUniformPrior, indexedNames } from './priors.js';
import { resampleStarts, sliceSampleBox } from './slice.js';

const N_DATA = 4;
const EPS = 1e-6;
const LOG_2PI = Math.log(2 * Math.PI);

/** The 2x2 covariance of one row: [S00, S01, S11]. */
function slcpCov(t2: number, t3: number, t4: number, out: Float64Array): void {
  const s1 = t2 * t2;
  const s2 = t3 * t3;
  out[0] = s1 * s1 + EPS;
  out[1] = Math.tanh(t4) * s1 * s2;
  out[2] = s2 * s2 + EPS;
}

export class SlcpTask implements Task {
  readonly name = 'slcp';
  readonly thetaDim = 5;
  readonly xDim = 2 * N_DATA;
  readonly paramNames = indexedNames('theta', 5);
  readonly prior = new BoxUniformPrior([-3, -3, -3, -3, -3], [3, 3, 3, 3, 3]);
  private readonly cov = new Float64Array(3);

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const out = new Float32Array(n * 8);
    const z = new Float64Array(8);
    const c = this.cov;
    for (let i = 0; i < n; i++) {
      const o = i * 5;
      slcpCov(theta[o + 2], theta[o + 3], theta[o + 4], c);
      const l00 = Math.sqrt(c[0]);
      const l10 = c[1] / l00;
      const l11 = Math.sqrt(Math.max(0, c[2] - l10 * l10));
      rng.fillNormal(z);
      for (let k = 0; k < N_DATA; k++) {
        const z0 = z[2 * k];
        const z1 = z[2 * k + 1];
        out[i * 8 + 2 * k] = theta[o] + l00 * z0;
        out[i * 8 + 2 * k + 1] = theta[o + 1] + l10 * z0 + l11 * z1;
      }
    }
    return out;
  }

  /** log p(xo | theta) for one float64 row (the likelihood is 4 bivariate Gaussians). */
  logLikelihoodRow(theta: ArrayLike<number>, offset: number, xo: ArrayLike<number>): number {
    const c = this.cov;
    slcpCov(theta[offset + 2], theta[offset + 3], theta[offset + 4], c);
    const det = c[0] * c[2] - c[1] * c[1];
    if (!(det > 0)) return -Infinity;
    const m0 = theta[offset];
    const m1 = theta[offset + 1];
    let q = 0;
    for (let k = 0; k < N_DATA; k++) {
      const d0 = xo[2 * k] - m0;
      const d1 = xo[2 * k + 1] - m1;
      q += (c[2] * d0 * d0 - 2 * c[1] * d0 * d1 + c[0] * d1 * d1) / det;
    }
    return -0.5 * q - 0.5 * N_DATA * (2 * LOG_2PI + Math.log(det));
  }

  logLikelihood(theta: Float32Array, n: number, xo: Float32Array): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.logLikelihoodRow(theta, i * 5, xo);
    return out;
  }

  /**
   * An MCMC approximation of sbibm's reference posterior (sbibm used importance resampling, an NSF
   * proposal and rejection sampling). Chains start from sampling-importance-resampling over prior
   * draws, run coordinate-wise slice sampling (burn-in 300 sweeps, thinning 5), and each sample's
   * theta3 and theta4 signs are then flipped at random: the likelihood depends on them only through
   * their squares and the prior is symmetric, so this is exact and covers all four modes.
   */
  referencePosterior(
    xo: Float32Array,
    n: number,
    rng: RandomStream,
    opts: { nChains?: number; burnIn?: number; thin?: number; initDraws?: number } = {},
  ): Float32Array {
    const nChains = Math.min(n, opts.nChains ?? 100);
    const initDraws = opts.initDraws ?? 50000;
    const xo64 = Float64Array.from(xo);
    // Sampling-importance-resampling for the chains' starting points.
    const cand = this.prior.sample(initDraws, rng);
    const init = resampleStarts(
      cand,
      this.logLikelihood(cand, initDraws, xo),
      5,
      nChains,
      rng,
      'slcp',
    );
    const { lower, upper } = this.prior.support;
    const samples = sliceSampleBox(
      (th) => this.logLikelihoodRow(th, 0, xo64),
      init,
      lower,
      upper,
      n,
      rng,
      { nChains, burnIn: opts.burnIn ?? 300, thin: opts.thin ?? 5, width: 0.5 },
    );
    const out = new Float32Array(n * 5);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 5; j++) out[i * 5 + j] = samples[i * 5 + j];
      if (rng.uniform() < 0.5) out[i * 5 + 2] = -out[i * 5 + 2];
      if (rng.uniform() < 0.5) out[i * 5 + 3] = -out[i * 5 + 3];
    }
    return out;
  }
}

export function slcp(): SlcpTask {
  return new SlcpTask();
}
