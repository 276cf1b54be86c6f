// Coordinate-wise slice sampling (Neal 2003: stepping out, then shrinkage) inside a box, run as many
// independent seeded chains. Used for reference posteriors of tasks with a tractable likelihood.
import type { RandomStream } from '../types.js';

export interface SliceOptions {
  /** Independent chains; their initial states are given in init (nChains x dim). */
  nChains: number;
  /** Sweeps (one update of every coordinate) discarded at the start of each chain. */
  burnIn: number;
  /** Keep one state every `thin` sweeps. */
  thin: number;
  /** Initial bracket width per coordinate. */
  width: number;
  /** Cap on the stepping-out expansions per side. */
  maxStepOut?: number;
}

/**
 * Draws n states from the density exp(logDensity) restricted to [lower, upper]. logDensity gets a
 * Float64Array row that it must not keep. Samples are interleaved across chains (row k comes from
 * chain k % nChains) so any prefix mixes all chains.
 */
export function sliceSampleBox(
  logDensity: (theta: Float64Array) => number,
  init: Float64Array,
  lower: readonly number[],
  upper: readonly number[],
  n: number,
  rng: RandomStream,
  opts: SliceOptions,
): Float64Array {
  const dim = lower.length;
  const { nChains, burnIn, thin, width } = opts;
  const maxStepOut = opts.maxStepOut ?? 50;
  const perChain = Math.ceil(n / nChains);
  const out = new Float64Array(n * dim);
  const x = new Float64Array(dim);
  const logp = (): number => {
    for (let j = 0; j < dim; j++) if (!(x[j] >= lower[j] && x[j] <= upper[j])) return -Infinity;
    return logDensity(x);
  };
  for (let c = 0; c < nChains; c++) {
    for (let j = 0; j < dim; j++) x[j] = init[c * dim + j];
    let cur = logp();
    if (!Number.isFinite(cur)) throw new Error(`sliceSampleBox: chain ${c} starts at zero density`);
    const sweeps = burnIn + perChain * thin;
    let kept = 0;
    for (let s = 1; s <= sweeps; s++) {
      for (let j = 0; j < dim; j++) {
        const x0 = x[j];
        const level = cur + Math.log(rng.uniform() || Number.MIN_VALUE);
        let left = x0 - width * rng.uniform();
        let right = left + width;
        // Stepping out; points outside the box have -Infinity density and stop the expansion.
        let k = maxStepOut;
        while (k-- > 0) {
          x[j] = left;
          if (!(logp() > level)) break;
          left -= width;
        }
        k = maxStepOut;
        while (k-- > 0) {
          x[j] = right;
          if (!(logp() > level)) break;
          right += width;
        }
        // Shrinkage: x0 is always inside the bracket, so this terminates.
        for (;;) {
          const cand = left + (right - left) * rng.uniform();
          x[j] = cand;
          const lp = logp();
          if (lp > level) {
            cur = lp;
            break;
          }
          if (cand < x0) left = cand;
          else right = cand;
          if (right - left < 1e-14 * Math.max(1, Math.abs(x0))) {
            x[j] = x0;
            break;
          }
        }
      }
      if (s > burnIn && (s - burnIn) % thin === 0) {
        const row = kept * nChains + c;
        if (row < n) for (let j = 0; j < dim; j++) out[row * dim + j] = x[j];
        kept++;
      }
    }
  }
  return out;
}

/**
 * nChains starting states drawn by sampling-importance-resampling: candidates (rows of dim) with
 * log weights lw, each chain's start drawn with probability proportional to exp(lw). Starts near the
 * posterior's mass shorten the burn-in a chain needs from a prior draw.
 */
export function resampleStarts(
  cand: ArrayLike<number>,
  lw: ArrayLike<number>,
  dim: number,
  nChains: number,
  rng: RandomStream,
  what: string,
): Float64Array {
  const m = lw.length;
  let maxLw = -Infinity;
  for (let i = 0; i < m; i++) if (lw[i] > maxLw) maxLw = lw[i];
  if (!Number.isFinite(maxLw)) throw new Error(`${what}: no candidate has finite density at xo`);
  const cdf = new Float64Array(m);
  let acc = 0;
  for (let i = 0; i < m; i++) {
    acc += Number.isFinite(lw[i]) ? Math.exp(lw[i] - maxLw) : 0;
    cdf[i] = acc;
  }
  const init = new Float64Array(nChains * dim);
  for (let c = 0; c < nChains; c++) {
    const u = rng.uniform() * acc;
    let lo = 0;
    let hi = m - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    for (let j = 0; j < dim; j++) init[c * dim + j] = cand[lo * dim + j];
  }
  return init;
}
