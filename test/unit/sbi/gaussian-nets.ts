// Full-covariance Gaussian estimators with hand-set weights, for tests with closed-form answers:
// one whose outputs do not depend on x (a fixed N(mu, Lambda^-1)), and one that represents an exact
// linear-Gaussian posterior N(M x + c, S) (gaussian_linear's), through a ReLU MLP that passes x on
// exactly: relu(x) - relu(-x) = x in the first layer, relu(x + C) = x + C in the second.
import { createRng } from '../../../sbi/rng.js';
import { cholesky, spdInverse } from '../../../sbi/tasks/linalg.js';
import { MultivariateGaussian } from '../../../sbi/estimators/multivariate-gaussian.js';
import { identityZScore } from '../../../sbi/estimators/index.js';
import type { SerializedWeights, ZScore } from '../../../sbi/types.js';

const MIN_SCALE = 1e-5;
const SHIFT = 100;

/** The raw head outputs [mean, diag raw, off raw] that give mean mu and precision factor P. */
export function rawHead(mu: number[], p: number[][]): number[] {
  const D = mu.length;
  // P_aa = sqrt((2 softplus(r))^2 + minScale), P_ab = 0.01 r.
  const diag = p.map((row, a) => {
    const y = Math.sqrt(row[a]! ** 2 - MIN_SCALE) / 2;
    return Math.log(Math.expm1(y));
  });
  const off: number[] = [];
  for (let a = 1; a < D; a++) for (let b = 0; b < a; b++) off.push(p[a]![b]! / 0.01);
  return [...mu, ...diag, ...off];
}

function weights(
  model: MultivariateGaussian,
  fill: (name: string, shape: number[]) => number[],
): SerializedWeights[] {
  return model.getWeights().map((w) => ({ ...w, values: fill(w.name, w.shape) }));
}

/** A MultivariateGaussian (hidden [4, 4]) whose output is N(mu, cov) in raw theta for every x. */
export function fixedGaussian(
  mu: number[],
  cov: number[][],
  xDim: number,
  zscore: ZScore,
): MultivariateGaussian {
  const D = mu.length;
  const model = new MultivariateGaussian(
    D,
    xDim,
    { hidden: [4, 4], minScale: MIN_SCALE },
    zscore,
    createRng(0),
  );
  // In z-scored units: u = (theta - m) / s has mean (mu - m) / s and covariance cov / (s s^T).
  const { thetaMean: m, thetaStd: s } = zscore;
  const muZ = mu.map((v, i) => (v - m[i]!) / s[i]!);
  const covZ = cov.map((row, i) => row.map((v, j) => v / (s[i]! * s[j]!)));
  const head = rawHead(muZ, cholesky(spdInverse(covZ)));
  model.setWeights(
    weights(model, (name, shape) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return name === 'net.l3.bias' ? head : new Array<number>(size).fill(0);
    }),
  );
  return model;
}

/**
 * A MultivariateGaussian (identity z-score, hidden [2 xDim, xDim]) equal to N(M x + c, S) for
 * |x_j| < 100: the exact posterior of a linear-Gaussian task.
 */
export function linearPosteriorNet(
  m: number[][],
  c: number[],
  cov: number[][],
): MultivariateGaussian {
  const D = c.length;
  const d = m[0]!.length;
  const model = new MultivariateGaussian(
    D,
    d,
    { hidden: [2 * d, d], minScale: MIN_SCALE },
    identityZScore(D, d),
    createRng(0),
  );
  const p = cholesky(spdInverse(cov));
  const head = rawHead(new Array<number>(D).fill(0), p);
  const K = head.length;
  model.setWeights(
    weights(model, (name) => {
      switch (name) {
        case 'net.l1.weight': // [d, 2d]: [I, -I]
          return Array.from({ length: d * 2 * d }, (_, k) => {
            const i = Math.floor(k / (2 * d));
            const j = k % (2 * d);
            return j === i ? 1 : j === i + d ? -1 : 0;
          });
        case 'net.l1.bias':
          return new Array<number>(2 * d).fill(0);
        case 'net.l2.weight': // [2d, d]: [[I], [-I]]
          return Array.from({ length: 2 * d * d }, (_, k) => {
            const i = Math.floor(k / d);
            const j = k % d;
            return i === j ? 1 : i === j + d ? -1 : 0;
          });
        case 'net.l2.bias':
          return new Array<number>(d).fill(SHIFT);
        case 'net.l3.weight': // [d, K]: the mean columns are M^T
          return Array.from({ length: d * K }, (_, k) => {
            const j = Math.floor(k / K);
            const o = k % K;
            return o < D ? m[o]![j]! : 0;
          });
        case 'net.l3.bias':
          return head.map((v, o) =>
            o < D ? c[o]! - SHIFT * m[o]!.reduce((s, mij) => s + mij, 0) : v,
          );
        default:
          throw new Error(`unexpected weight ${name}`);
      }
    }),
  );
  return model;
}
