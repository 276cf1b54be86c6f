// The metrics evaluate per x (or per (theta, x) pair) in batches of rows, so that the samples of a
// batch fit in memory: the loop and the slicing of row-major arrays into tensors, written once.
import { tf } from '../backend.js';

/** Rows start..start+rows of a row-major array of `cols` columns, as a [rows, cols] tensor. */
export function rowsTensor(
  a: Float32Array,
  start: number,
  rows: number,
  cols: number,
): tf.Tensor2D {
  return tf.tensor2d(a.subarray(start * cols, (start + rows) * cols), [rows, cols]);
}

/**
 * One value per row for n rows, computed `batch` rows at a time: `perBatch(start, rows)` gives the
 * tensor of the values of rows start..start+rows, which is read and disposed here.
 */
export async function perRowInBatches(
  n: number,
  batch: number,
  perBatch: (start: number, rows: number) => tf.Tensor,
): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += batch) {
    const t = perBatch(start, Math.min(batch, n - start));
    out.set(await t.data(), start);
    t.dispose();
  }
  return out;
}

/** x [B, d] repeated n times, sample-major (row m * B + b is x_b), as the samples are laid out. */
export function tileRows(x: Float32Array, B: number, n: number, d: number): Float32Array {
  const out = new Float32Array(n * B * d);
  for (let m = 0; m < n; m++) out.set(x.subarray(0, B * d), m * B * d);
  return out;
}
