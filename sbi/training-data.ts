// The rows NPE trains on: non-finite simulations dropped, rows gathered by index, the default size
// of the held-out validation split and the order that splits them. Pure.
import type { RandomStream } from './types.js';

// Data preparation (pure)

/** Drops rows whose theta or x holds NaN or +-Infinity; such simulations are never trained on. */
export function dropNonFinite(
  theta: Float32Array,
  x: Float32Array,
  n: number,
  thetaDim: number,
  xDim: number,
): { theta: Float32Array; x: Float32Array; n: number; dropped: number } {
  if (theta.length !== n * thetaDim || x.length !== n * xDim) {
    throw new RangeError(
      `Training data has ${theta.length} theta and ${x.length} x values, expected ${n}x${thetaDim} and ${n}x${xDim}.`,
    );
  }
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    if (allFinite(theta, i * thetaDim, thetaDim) && allFinite(x, i * xDim, xDim)) keep.push(i);
  }
  if (keep.length === n) return { theta, x, n, dropped: 0 };
  return {
    theta: gatherRows(theta, thetaDim, keep),
    x: gatherRows(x, xDim, keep),
    n: keep.length,
    dropped: n - keep.length,
  };
}

function allFinite(a: Float32Array, start: number, len: number): boolean {
  for (let j = start; j < start + len; j++) if (!Number.isFinite(a[j])) return false;
  return true;
}

export function gatherRows(a: Float32Array, dim: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r]!;
    out.set(a.subarray(i * dim, (i + 1) * dim), r * dim);
  }
  return out;
}

export function defaultValSize(n: number): number {
  return Math.max(1, Math.min(512, Math.floor(n / 10)));
}

/**
 * The row order trainNPE splits by: the first nVal rows validate, the rest train. 'last' validates
 * the last nVal rows (RABI's separate validation rows); otherwise a permutation drawn from `stream`'s
 * 'npe/split' fork. Exported so a bench can score other models on exactly trainNPE's rows.
 */
export function splitOrder(
  n: number,
  nVal: number,
  rows: 'random' | 'last' | undefined,
  stream: RandomStream,
): Int32Array {
  return rows === 'last'
    ? Int32Array.from({ length: n }, (_, i) => (i + n - nVal) % n)
    : stream.fork('npe/split').permutation(n);
}
