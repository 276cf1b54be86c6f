// Batched lower-triangular matrices [B, D, D] built from a network's raw outputs, their inverse and
// products, from the twice-differentiable ops only (ops.ts SAFE_TF_OPS: slice, mul, sum, div, concat),
// so the FIM regularizer may differentiate through them at second order. D is small (a posterior's
// dimension), so the O(D) small ops of the inverse cost little beside the network.
import { tf } from '../backend.js';
import { matMul } from '../ops.js';

/** Number of entries strictly below the diagonal of a D x D matrix. */
export const strictLowerCount = (D: number): number => (D * (D - 1)) / 2;

/** (row, col) of strictly-lower entry k, row-major: (1,0), (2,0), (2,1), (3,0), ... */
export function strictLowerIndex(D: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 1; a < D; a++) for (let b = 0; b < a; b++) out.push([a, b]);
  return out;
}

/**
 * The lower-triangular [B, D, D] with diagonal `diag` [B, D] and strictly-lower entries `off`
 * [B, D(D-1)/2] (in strictLowerIndex order): a product with constant 0/1 scatter matrices.
 */
export function lowerTriangular(
  diag: tf.Tensor2D,
  off: tf.Tensor2D | null,
  D: number,
): tf.Tensor3D {
  return tf.tidy(() => {
    const B = diag.shape[0];
    const toDiag = new Float32Array(D * D * D);
    for (let a = 0; a < D; a++) toDiag[a * D * D + a * D + a] = 1;
    let flat = matMul(diag, tf.tensor2d(toDiag, [D, D * D]));
    if (off && D > 1) {
      const idx = strictLowerIndex(D);
      const toOff = new Float32Array(idx.length * D * D);
      idx.forEach(([a, b], k) => (toOff[k * D * D + a * D + b] = 1));
      flat = tf.add(flat, matMul(off, tf.tensor2d(toOff, [idx.length, D * D])));
    }
    return tf.reshape(flat, [B, D, D]) as tf.Tensor3D;
  });
}

/** The diagonal of [B, D, D]: [B, D]. */
export function diagonal(m: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, D] = m.shape;
    const mask = tf.tensor3d(
      Float32Array.from({ length: D * D }, (_, i) => (Math.floor(i / D) === i % D ? 1 : 0)),
      [1, D, D],
    );
    return tf.sum(tf.mul(m, mask), 2).reshape([B, D]) as tf.Tensor2D;
  });
}

/**
 * The inverse of lower-triangular L [B, D, D] (nonzero diagonal) by forward substitution, row by row:
 * row i of L^-1 is (e_i - sum_{k<i} L_ik row_k) / L_ii.
 */
export function lowerInverse(l: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, D] = l.shape;
    const rows: tf.Tensor2D[] = [];
    for (let i = 0; i < D; i++) {
      const e = tf.tensor2d(
        Float32Array.from({ length: D }, (_, j) => (j === i ? 1 : 0)),
        [1, D],
      );
      let num: tf.Tensor = tf.tile(e, [B, 1]);
      if (i > 0) {
        const li = tf.reshape(tf.slice(l, [0, i, 0], [B, 1, i]), [B, i, 1]); // L_ik, k < i
        const prev = stackRows(rows); // [B, i, D]
        num = tf.sub(num, tf.sum(tf.mul(li, prev), 1));
      }
      const lii = tf.reshape(tf.slice(l, [0, i, i], [B, 1, 1]), [B, 1]);
      rows.push(tf.div(num, lii) as tf.Tensor2D);
    }
    return stackRows(rows);
  });
}

/** [B, D] rows -> [B, rows, D], with concat (tf.stack's gradient is not among the safe ops). */
function stackRows(rows: tf.Tensor2D[]): tf.Tensor3D {
  return tf.concat(
    rows.map((r) => tf.expandDims(r, 1)),
    1,
  ) as tf.Tensor3D;
}

/** a @ b per batch entry for [B, D, D] x [B, D, D]. */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => tf.sum(tf.mul(tf.expandDims(a, 3), tf.expandDims(b, 1)), 2) as tf.Tensor3D);
}

/** m^T v per batch entry: [B, D, D] x [B, D] -> [B, D], (m^T v)_j = sum_i m_ij v_i. */
export function transposedMatVec(m: tf.Tensor3D, v: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.sum(tf.mul(m, tf.expandDims(v, 2)), 1) as tf.Tensor2D);
}
