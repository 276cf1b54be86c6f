// Test NLL: mean -log q(theta_true | x) over the test pairs (paper.md 5, "Accuracy").
import { tf } from '../backend.js';
import type { DensityEstimator } from '../types.js';
import { perRowInBatches, rowsTensor } from './row-batches.js';

/** -log q(theta_i | x_i) for every pair, in batches. */
export async function nllPerPair(
  est: DensityEstimator,
  x: Float32Array,
  theta: Float32Array,
  batchSize = 4096,
): Promise<Float64Array> {
  const fused = est.fusedInference?.() ?? null;
  if (fused) {
    try {
      const lp = fused.logProb(theta, x, x.length / est.xDim);
      return lp.map((v) => -Math.fround(v));
    } finally {
      fused.dispose();
    }
  }
  return perRowInBatches(x.length / est.xDim, batchSize, (start, b) =>
    tf.tidy(() =>
      tf.neg(
        est.logProb(rowsTensor(theta, start, b, est.thetaDim), rowsTensor(x, start, b, est.xDim)),
      ),
    ),
  );
}

export async function meanNll(
  est: DensityEstimator,
  x: Float32Array,
  theta: Float32Array,
  batchSize = 4096,
): Promise<number> {
  const v = await nllPerPair(est, x, theta, batchSize);
  let s = 0;
  for (const e of v) s += e;
  return s / v.length;
}
