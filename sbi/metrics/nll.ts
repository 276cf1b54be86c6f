// Test NLL: mean -log q(theta_true | x) over the test pairs (paper.md 5, "Accuracy").
import { tf } from '../backend.js';
import type { DensityEstimator } from '../types.js';

/** -log q(theta_i | x_i) for every pair, in batches. */
export async function nllPerPair(
  est: DensityEstimator,
  x: Float32Array,
  theta: Float32Array,
  batchSize = 4096,
): Promise<Float64Array> {
  const dx = est.xDim;
  const dt = est.thetaDim;
  const n = x.length / dx;
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const b = Math.min(batchSize, n - start);
    const nll = tf.tidy(() =>
      tf.neg(
        est.logProb(
          tf.tensor2d(theta.subarray(start * dt, (start + b) * dt), [b, dt]),
          tf.tensor2d(x.subarray(start * dx, (start + b) * dx), [b, dx]),
        ),
      ),
    );
    out.set(await nll.data(), start);
    nll.dispose();
  }
  return out;
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
