// The exact posterior under attack, for tasks whose posterior is Gaussian with a mean linear in x
// and a covariance that does not depend on x (gaussian_linear): p(theta | x) = N(M x + c, S).
// Moving x by delta moves the mean by M delta and leaves S, so
//   rKL = fKL = KL(p(.|x + delta) || p(.|x)) = 0.5 delta^T G delta,  G = M^T S^-1 M,
// largest along G's top eigenvector. This is what any estimator that matched the posterior would
// show under the strongest L2 attack of size eps: the yardstick for the KL and coverage of trained
// estimators in `robustsbi evaluate`.
import type { GaussianPosterior, RandomStream } from '../types.js';
import { cholesky, spdInverse, symmetricEigen } from '../tasks/linalg.js';
import { clipBoxOf, type ClipBox } from '../attacks/eps.js';
import { accumulateCoverage, coverageAbsArea, coverageLevels } from './coverage.js';

export interface LinearGaussianPosterior {
  /** dim theta x dim x. */
  m: number[][];
  c: number[];
  cov: number[][];
}

/**
 * M, c and S from a task's analyticPosterior, by probing it at 0 and the unit vectors; throws if
 * the posterior is not of this form (checked at `check`, e.g. a test x).
 */
export function linearGaussianPosterior(
  posterior: (x: Float32Array) => GaussianPosterior,
  xDim: number,
  check: Float32Array,
): LinearGaussianPosterior {
  const at0 = posterior(new Float32Array(xDim));
  const c = at0.mean;
  const cols = Array.from({ length: xDim }, (_, j) => {
    const e = new Float32Array(xDim);
    e[j] = 1;
    return posterior(e).mean.map((v, i) => v - c[i]!);
  });
  const m = c.map((_, i) => cols.map((col) => col[i]!));
  const got = posterior(check);
  const scale = Math.max(1, ...got.mean.map(Math.abs));
  got.mean.forEach((v, i) => {
    const lin = c[i]! + m[i]!.reduce((s, mij, j) => s + mij * check[j]!, 0);
    if (Math.abs(v - lin) > 1e-6 * scale) {
      throw new Error('The posterior mean is not linear in x; this analysis does not apply.');
    }
  });
  got.cov.forEach((row, i) =>
    row.forEach((v, j) => {
      if (Math.abs(v - at0.cov[i]![j]!) > 1e-9 * Math.max(1, Math.abs(v))) {
        throw new Error('The posterior covariance depends on x; this analysis does not apply.');
      }
    }),
  );
  return { m, c, cov: at0.cov };
}

/** G = M^T S^-1 M: KL(p(.|x + delta) || p(.|x)) = 0.5 delta^T G delta. */
export function klMetric(p: LinearGaussianPosterior): number[][] {
  const prec = spdInverse(p.cov);
  const dx = p.m[0]!.length;
  const pm = prec.map((row) =>
    Array.from({ length: dx }, (_, j) => row.reduce((s, v, k) => s + v * p.m[k]![j]!, 0)),
  );
  return Array.from({ length: dx }, (_, i) =>
    Array.from({ length: dx }, (_, j) => p.m.reduce((s, row, k) => s + row[i]! * pm[k]![j]!, 0)),
  );
}

function quad(g: number[][], d: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++)
    for (let j = 0; j < g.length; j++) s += d[i]! * g[i]![j]! * d[j]!;
  return s;
}

export interface ExactAttackResult {
  eps: number;
  epsAbs: number;
  /** 0.5 * epsAbs^2 * the top eigenvalue of G: the KL of an unclipped worst-case attack. */
  klBound: number;
  /** Per test x: the KL after the worst of the candidate directions, clipped to the box. */
  kl: Float64Array;
  klMean: number;
  /** Observed coverage at each level of `levels`, of the clean theta, under the attacked posterior. */
  coverage: number[];
  coverageAbsArea: number;
}

/**
 * The exact posterior attacked at each test x: x + epsAbs * (+-v) for the eigenvectors v of G with
 * the `directions` largest eigenvalues, clipped to the box, keeping the largest KL (near-equal
 * eigenvalues make the box decide). Coverage as sbi/metrics/coverage.ts computes it for an
 * estimator: `samples` draws from the attacked posterior, HPD by log-density, of the clean theta.
 */
export function attackExactPosterior(
  p: LinearGaussianPosterior,
  test: { theta: Float32Array; x: Float32Array; n: number },
  eps: number,
  epsAbs: number,
  rng: RandomStream,
  opts: { samples?: number; directions?: number; box?: ClipBox } = {},
): ExactAttackResult {
  const d = p.c.length;
  const dx = p.m[0]!.length;
  const g = klMetric(p);
  const eig = symmetricEigen(g);
  const box = opts.box ?? clipBoxOf(test.x);
  const nDir = Math.min(opts.directions ?? 3, dx);
  const l = cholesky(p.cov);
  const levels = coverageLevels();
  const counts = new Float64Array(levels.length);
  const nSamples = opts.samples ?? 2000;
  const kl = new Float64Array(test.n);
  const delta = new Float64Array(dx);
  const best = new Float64Array(dx);
  const z = new Float64Array(d);
  const r = new Float64Array(d);
  const logq = new Float64Array(nSamples);
  for (let i = 0; i < test.n; i++) {
    const x = test.x.subarray(i * dx, (i + 1) * dx);
    let bestKl = -1;
    for (let k = 0; k < nDir; k++) {
      for (const sign of [1, -1]) {
        for (let j = 0; j < dx; j++) {
          const xa = Math.min(
            box.max,
            Math.max(box.min, x[j]! + sign * epsAbs * eig.vectors[j]![k]!),
          );
          delta[j] = xa - x[j]!;
        }
        const v = 0.5 * quad(g, delta);
        if (v > bestKl) {
          bestKl = v;
          best.set(delta);
        }
      }
    }
    kl[i] = bestKl;
    // theta_true - mean(x + delta) = (theta_true - mean(x)) - M delta, whitened by L^-1.
    for (let a = 0; a < d; a++) {
      let s = test.theta[i * d + a]! - p.c[a]!;
      for (let j = 0; j < dx; j++) s -= p.m[a]![j]! * (x[j]! + best[j]!);
      for (let b = 0; b < a; b++) s -= l[a]![b]! * r[b]!;
      r[a] = s / l[a]![a]!;
    }
    let trueQ = 0;
    for (let a = 0; a < d; a++) trueQ += r[a]! * r[a]!;
    // Samples of the attacked posterior are mean + L z: their log-density is -0.5 |z|^2 + const.
    for (let s = 0; s < nSamples; s++) {
      rng.fillNormal(z);
      let q = 0;
      for (let a = 0; a < d; a++) q += z[a]! * z[a]!;
      logq[s] = -0.5 * q;
    }
    accumulateCoverage(logq, -0.5 * trueQ, levels, counts);
  }
  const coverage = Array.from(counts, (cnt) => cnt / test.n);
  let sum = 0;
  for (const v of kl) sum += v;
  return {
    eps,
    epsAbs,
    klBound: 0.5 * epsAbs * epsAbs * eig.values[0]!,
    kl,
    klMean: sum / test.n,
    coverage,
    coverageAbsArea: coverageAbsArea(levels, coverage),
  };
}
