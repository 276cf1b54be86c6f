// RABI's gaussian_linear (rbibm/tasks/gaussian_linear.py, config/task/gaussian_linear.yaml):
// theta ~ N(0, I_10), x ~ N(A theta, 0.1^2 I) with A diagonal. Not sbibm's task of the same name
// (there A = I and the prior is N(0, 0.1 I)).
import type { GaussianPosterior, RandomStream, Task } from '../types.js';
import { cholesky, matVec, spdInverse } from './linalg.js';
import { DiagGaussianPrior, indexedNames } from './priors.js';

/** The first 10 entries of RABI's `_A_diag` (torch constants, printed to 5 significant digits). */
export const GAUSSIAN_LINEAR_A_DIAG: readonly number[] = [
  -2.633e-1, -1.9402, 1.6822, -2.9684e-1, -3.1292e-2, -1.025, 5.6811e-2, 2.9649e-1, 1.2073, -1.7704,
];

const DIM = 10;
const LIKELIHOOD_SCALE = 0.1;

export class GaussianLinearTask implements Task {
  readonly name = 'gaussian_linear';
  readonly thetaDim = DIM;
  readonly xDim = DIM;
  readonly paramNames = indexedNames('theta', DIM);
  readonly prior = new DiagGaussianPrior(new Array(DIM).fill(0), new Array(DIM).fill(1));
  readonly a = GAUSSIAN_LINEAR_A_DIAG;
  readonly likelihoodScale = LIKELIHOOD_SCALE;

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const z = new Float64Array(n * DIM);
    rng.fillNormal(z);
    const out = new Float32Array(n * DIM);
    for (let i = 0; i < n * DIM; i++) {
      out[i] = this.a[i % DIM] * theta[i] + LIKELIHOOD_SCALE * z[i];
    }
    return out;
  }

  logLikelihood(theta: Float32Array, n: number, xo: Float32Array): Float64Array {
    const out = new Float64Array(n);
    const logNorm = -DIM * (Math.log(LIKELIHOOD_SCALE) + 0.5 * Math.log(2 * Math.PI));
    for (let i = 0; i < n; i++) {
      let q = 0;
      for (let j = 0; j < DIM; j++) {
        const e = (xo[j] - this.a[j] * theta[i * DIM + j]) / LIKELIHOOD_SCALE;
        q += e * e;
      }
      out[i] = logNorm - 0.5 * q;
    }
    return out;
  }

  /**
   * Exact Bayes for a linear-Gaussian model, written for a general matrix A (here diagonal):
   * cov = (Sp^-1 + A^T Sl^-1 A)^-1, mean = cov (Sp^-1 mp + A^T Sl^-1 xo). RABI adds a 1e-6 nugget
   * to A Sp A^T + Sl before its Cholesky; that numerical guard is left out here.
   */
  analyticPosterior(xo: Float32Array): GaussianPosterior {
    if (xo.length !== DIM)
      throw new Error(`gaussian_linear: xo has ${xo.length} values, expected ${DIM}`);
    const s2 = LIKELIHOOD_SCALE * LIKELIHOOD_SCALE;
    const aMat = Array.from({ length: DIM }, (_, i) =>
      Array.from({ length: DIM }, (_, j) => (i === j ? this.a[i] : 0)),
    );
    const precision = aMat.map((_, i) =>
      aMat.map((_, j) => {
        let s = i === j ? 1 : 0; // prior precision: I
        for (let k = 0; k < DIM; k++) s += (aMat[k][i] * aMat[k][j]) / s2;
        return s;
      }),
    );
    const cov = spdInverse(precision);
    const rhs = aMat.map((_, i) => {
      let s = 0;
      for (let k = 0; k < DIM; k++) s += (aMat[k][i] * xo[k]) / s2;
      return s;
    });
    return { mean: matVec(cov, rhs), cov };
  }

  referencePosterior(xo: Float32Array, n: number, rng: RandomStream): Float32Array {
    const { mean, cov } = this.analyticPosterior(xo);
    const l = cholesky(cov);
    const z = new Float64Array(DIM);
    const out = new Float32Array(n * DIM);
    for (let r = 0; r < n; r++) {
      rng.fillNormal(z);
      for (let i = 0; i < DIM; i++) {
        let s = mean[i];
        for (let k = 0; k <= i; k++) s += l[i][k] * z[k];
        out[r * DIM + i] = s;
      }
    }
    return out;
  }
}

export function gaussianLinear(): GaussianLinearTask {
  return new GaussianLinearTask();
}
