// The ground-truth metrics of tasks with an analytic Gaussian posterior (gaussian_linear), as RABI's
// eval_approx computes them (paper.md 5, "Ground-truth metrics"; rbi/loss/eval_loss.py
// C2STBayesOptimal, ReverseKL/ForwardKL against the true posterior), 100 samples per x:
//   c2st: the accuracy of the Bayes-optimal classifier between q(.|x) and p(.|x): a draw is called
//         "from q" when log q >= log p; the mean of the two classes' accuracies (0.5: q = p);
//   klQP = KL(q(.|x) || p(.|x)) from draws of q, klPQ = KL(p(.|x) || q(.|x)) from draws of p.
// No classifier is trained (p is known), so this is cheap enough for every trial of a sweep.
import { tf, tidyData } from '../backend.js';
import { cholesky } from '../tasks/linalg.js';
import type { DensityEstimator, GaussianPosterior, RandomStream } from '../types.js';
import { tileRows } from './row-batches.js';

/** RABI's config/eval_approx/metric/{c2st,rKL,fKL}.yaml mc_samples. */
export const GROUND_TRUTH_SAMPLES = 100;

export interface GroundTruthPerX {
  c2st: Float64Array;
  klQP: Float64Array;
  klPQ: Float64Array;
}

export interface GroundTruthMetrics {
  /** Means over the x. */
  c2st: number;
  klQP: number;
  klPQ: number;
  perX: GroundTruthPerX;
}

const LOG_2PI = Math.log(2 * Math.PI);

/** A Gaussian's sampler and log density, float64. */
function gaussian(p: GaussianPosterior) {
  const c = cholesky(p.cov);
  const D = p.mean.length;
  let logDet = 0;
  for (let i = 0; i < D; i++) logDet += 2 * Math.log(c[i]![i]!);
  return {
    logProb(theta: ArrayLike<number>, offset: number): number {
      let quad = 0;
      const z = new Array<number>(D);
      for (let i = 0; i < D; i++) {
        let s = theta[offset + i]! - p.mean[i]!;
        for (let k = 0; k < i; k++) s -= c[i]![k]! * z[k]!;
        z[i] = s / c[i]![i]!;
        quad += z[i]! ** 2;
      }
      return -0.5 * (quad + logDet + D * LOG_2PI);
    },
    /** n draws into out at row offset `row`, rows `stride` apart. */
    sample(out: Float32Array, n: number, row: number, stride: number, rng: RandomStream): void {
      const eps = new Float64Array(D);
      for (let m = 0; m < n; m++) {
        rng.fillNormal(eps);
        const at = (m * stride + row) * D;
        for (let i = 0; i < D; i++) {
          let v = p.mean[i]!;
          for (let k = 0; k <= i; k++) v += c[i]![k]! * eps[k]!;
          out[at + i] = v;
        }
      }
    },
  };
}

function mean(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s / a.length;
}

/**
 * The ground-truth metrics of `est` at each of the n rows of x ([n, xDim]) against the analytic
 * posterior, `samples` draws of each distribution per x, `batch` x at a time.
 */
export async function groundTruthMetrics(
  est: DensityEstimator,
  posterior: (x: Float32Array) => GaussianPosterior,
  x: Float32Array,
  n: number,
  rng: RandomStream,
  opts: { samples?: number; batch?: number } = {},
): Promise<GroundTruthMetrics> {
  const S = opts.samples ?? GROUND_TRUTH_SAMPLES;
  const batch = opts.batch ?? 64;
  const D = est.thetaDim;
  const d = est.xDim;
  if (!Number.isInteger(S) || S < 1)
    throw new RangeError(`samples must be a positive integer, got ${S}`);
  const perX: GroundTruthPerX = {
    c2st: new Float64Array(n),
    klQP: new Float64Array(n),
    klPQ: new Float64Array(n),
  };
  // The estimator's fused kernels where it has them (a MAF on wasm), as coverage uses them: they
  // draw and score as sample() and logProb() do, many times faster than tfjs.
  const fused = est.fusedInference?.() ?? null;
  try {
    for (let start = 0; start < n; start += batch) {
      const B = Math.min(batch, n - start);
      const xb = x.subarray(start * d, (start + B) * d);
      const truths = Array.from({ length: B }, (_, b) =>
        gaussian(posterior(xb.subarray(b * d, (b + 1) * d))),
      );
      // Draws laid out as rsample's: row m * B + b belongs to x_b.
      const fromP = new Float32Array(S * B * D);
      truths.forEach((g, b) => g.sample(fromP, S, b, B, rng));
      let fromQ: Float32Array;
      let lqQ: ArrayLike<number>;
      let lqP: ArrayLike<number>;
      if (fused) {
        fromQ = fused.sample(xb, B, S, rng);
        const xs = tileRows(xb, B, S, d);
        // float32, as tfjs gives them
        lqQ = Float32Array.from(fused.logProb(fromQ, xs, S * B));
        lqP = Float32Array.from(fused.logProb(fromP, xs, S * B));
      } else {
        ({ fromQ, lqQ, lqP } = tidyData(() => {
          const xt = tf.tensor2d(xb, [B, d]);
          const xs = tf.tile(xt, [S, 1]) as tf.Tensor2D;
          const q = tf.reshape(est.sample(xt, S, rng), [S * B, D]) as tf.Tensor2D;
          return {
            fromQ: q.dataSync() as Float32Array,
            lqQ: est.logProb(q, xs).dataSync() as Float32Array,
            lqP: est.logProb(tf.tensor2d(fromP, [S * B, D]), xs).dataSync() as Float32Array,
          };
        }));
      }
      for (let b = 0; b < B; b++) {
        let kqp = 0;
        let kpq = 0;
        let rightQ = 0;
        let rightP = 0;
        for (let m = 0; m < S; m++) {
          const r = m * B + b;
          const lpQ = truths[b]!.logProb(fromQ, r * D);
          const lpP = truths[b]!.logProb(fromP, r * D);
          kqp += lqQ[r]! - lpQ;
          kpq += lpP - lqP[r]!;
          // RABI's argmax over [log q, log p] picks q on a tie.
          if (lqQ[r]! >= lpQ) rightQ++;
          if (lpP > lqP[r]!) rightP++;
        }
        perX.klQP[start + b] = kqp / S;
        perX.klPQ[start + b] = kpq / S;
        perX.c2st[start + b] = 0.5 * (rightQ / S + rightP / S);
      }
    }
  } finally {
    fused?.dispose();
  }
  return { c2st: mean(perX.c2st), klQP: mean(perX.klQP), klPQ: mean(perX.klPQ), perX };
}
