// What the fused-kernel tests share: correlated toy data, the MAF they build on it, Adam's settings
// and the comparison of arrays as the worst difference over the largest reference value.
import { createEstimator } from '../../../sbi/estimators/index.js';
import { computeZScore } from '../../../sbi/estimators/zscore.js';
import { createRng } from '../../../sbi/rng.js';
import type { DensityEstimator } from '../../../sbi/types.js';

export const ADAM = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

/** Correlated toy data: x = A theta + noise, so the conditioners have something to learn. */
export function toyData(
  n: number,
  D: number,
  C: number,
  seed: number,
): { theta: Float32Array; x: Float32Array } {
  const rng = createRng(seed);
  const theta = new Float32Array(n * D);
  const noise = new Float32Array(n * C);
  rng.fillNormal(theta);
  rng.fillNormal(noise);
  const x = new Float32Array(n * C);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < C; j++) {
      let s = 0.2 * noise[r * C + j]!;
      for (let i = 0; i < D; i++) s += Math.sin(1 + i + 2 * j) * theta[r * D + i]!;
      x[r * C + j] = 3 * s + 1;
    }
  }
  return { theta, x };
}

/** A MAF z-scored on the rows, initialized from a fixed stream. */
export function toyMaf(
  D: number,
  C: number,
  config: Record<string, unknown>,
  theta: Float32Array,
  x: Float32Array,
  n: number,
): DensityEstimator {
  return createEstimator('maf', {
    thetaDim: D,
    xDim: C,
    zscore: computeZScore(theta, x, n, D, C),
    rng: createRng(3).fork('m'),
    config,
  });
}

/** Largest |a - b| over the largest |b|. */
export function relGap(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / (den || 1);
}
