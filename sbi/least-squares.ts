// The least-squares fit of a linear-Gaussian conditional, shared by the x-transform probe
// (x-transform-choice.ts) and the closed-form linear_gaussian estimator: each builds its own
// features and targets and adds its own covariance floor.
import { cholesky, choleskySolve } from './tasks/linalg.js';

export interface LinearGaussianFit {
  /** coef[d]: target d's weights on the p features (the last one the intercept). */
  coef: number[][];
  /** The residuals' covariance over the fitted rows (divided by n), D x D. */
  cov: number[][];
}

/**
 * Targets [n, D] regressed on features [n, p] whose last column is the intercept (1), with a ridge
 * of ridge * n on the other p - 1 (z-scored features, so one scale fits every column).
 */
export function fitLinearGaussian(
  features: Float64Array,
  targets: Float64Array,
  n: number,
  p: number,
  D: number,
  ridge: number,
): LinearGaussianFit {
  const a = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  const rhs = Array.from({ length: D }, () => new Array<number>(p).fill(0));
  for (let r = 0; r < n; r++)
    for (let i = 0; i < p; i++) {
      const fi = features[r * p + i]!;
      for (let j = 0; j <= i; j++) a[i]![j]! += fi * features[r * p + j]!;
      for (let d = 0; d < D; d++) rhs[d]![i]! += fi * targets[r * D + d]!;
    }
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < i; j++) a[j]![i] = a[i]![j]!;
    if (i < p - 1) a[i]![i]! += ridge * n;
  }
  const la = cholesky(a);
  const coef = rhs.map((b) => choleskySolve(la, b));
  const cov = Array.from({ length: D }, () => new Array<number>(D).fill(0));
  const e = new Float64Array(D);
  for (let r = 0; r < n; r++) {
    for (let d = 0; d < D; d++) {
      let pred = 0;
      for (let k = 0; k < p; k++) pred += features[r * p + k]! * coef[d]![k]!;
      e[d] = targets[r * D + d]! - pred;
    }
    for (let i = 0; i < D; i++) for (let j = 0; j <= i; j++) cov[i]![j]! += (e[i]! * e[j]!) / n;
  }
  for (let i = 0; i < D; i++) for (let j = 0; j < i; j++) cov[j]![i] = cov[i]![j]!;
  return { coef, cov };
}
