// Stride-1 1-D convolution and max pooling for the pyloric CNN, differentiable at any order and on
// fast kernels. The convolution with zero padding p is the trilinear form
//   sum_{b,t,j,c,o} xpad[b,t+j,c] dy[b,t,o] w[j,c,o],
// so its two adjoints are convolutions too:
//   conv(x, w)    y[b,t,o]  = sum_{j,c} xpad[b,t+j,c] w[j,c,o]
//   convT(dy, w)  dx[b,s,c] = sum_{j,o} dy[b,s+p-j,o] w[j,c,o]     (adjoint in x)
//   convW(x, dy)  dw[j,c,o] = sum_{b,t} xpad[b,t+j,c] dy[b,t,o]     (adjoint in w)
// and each of the three has its gradients written with the three, so a gradient of a gradient stays
// on the backend's convolution kernel. (The unfold + matMul this replaces spent ~40x the time in
// slices and concats on wasm; tf.conv1d's own gradient is right at second order on cpu, but wasm
// has no Conv2DBackpropFilter kernel.)
// Max pooling routes dy to each window's first maximum (PyTorch's rule) through a 0/1 mask saved
// in the forward pass; route and its adjoint select (a window sum of mask * g) are linear with that
// constant mask, so they differentiate into each other. Windows are [rows, k * C] matrices and the
// window sums and copies are products with 0/1 matrices: broadcasting and tiling are slow on wasm.
import { tf } from '../backend.js';

type Tensor3 = tf.Tensor3D;
type Op2 = (a: Tensor3, b: Tensor3) => Tensor3;

/**
 * x [B, L, Ci] (w [K, Ci, Co]) -> [B, L + 2p - K + 1, Co]: one conv2d kernel, padding included, and
 * with a bias also the bias and the activation (the fused kernel: broadcast adds are slow on wasm).
 */
function correlate(
  x: Tensor3,
  w: Tensor3,
  p: number,
  bias?: tf.Tensor1D,
  activation: 'relu' | 'linear' = 'linear',
): Tensor3 {
  const [b, l, ci] = x.shape;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [0, 0],
    [p, p],
    [0, 0],
  ];
  const x4 = tf.reshape(x, [b, 1, l, ci]);
  const w4 = tf.reshape(w, [1, ...w.shape]);
  const y = (
    bias
      ? tf
          .engine()
          .runKernel(
            'FusedConv2D',
            { x: x4, filter: w4, bias },
            { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1], activation },
          )
      : tf.conv2d(x4 as tf.Tensor4D, w4 as tf.Tensor4D, 1, pad)
  ) as tf.Tensor4D;
  return tf.reshape(y, [b, y.shape[2], y.shape[3]]);
}

/** A two-input customGrad saving both inputs, which stay connected to the caller's graph. */
function bilinear(
  forward: (a: Tensor3, b: Tensor3) => Tensor3,
  grads: (g: Tensor3, a: Tensor3, b: Tensor3) => [Tensor3, Tensor3],
): Op2 {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, b] = args as [Tensor3, Tensor3];
    (args[2] as tf.GradSaveFunc)([a, b]);
    return {
      value: forward(a, b),
      gradFunc: (g: tf.Tensor, saved: tf.Tensor[]) =>
        grads(g as Tensor3, saved[0] as Tensor3, saved[1] as Tensor3),
    };
  });
  return (a, b) => op(a, b) as Tensor3;
}

interface ConvOps {
  conv: Op2;
  convT: Op2;
  convW: Op2;
}

function convOps(p: number): ConvOps {
  const ops = {} as ConvOps;
  ops.conv = bilinear(
    (x, w) => correlate(x, w, p),
    (g, x, w) => [ops.convT(g, w), ops.convW(x, g)],
  );
  ops.convT = bilinear(
    (dy, w) => {
      const k = w.shape[0];
      if (p > k - 1) throw new Error(`conv1d: padding ${p} above kernel ${k} - 1`);
      const flipped = tf.transpose(tf.reverse(w, 0), [0, 2, 1]) as Tensor3;
      return correlate(dy, flipped, k - 1 - p);
    },
    // <convT(dy, w), g> = <dy, conv(g, w)> = <w, convW(g, dy)>
    (g, dy, w) => [ops.conv(g, w), ops.convW(g, dy)],
  );
  ops.convW = bilinear(
    (x, dy) => {
      // Channels as the batch and the batch as channels: dy [Lo, B, Co] is the filter.
      const filter = tf.transpose(dy, [1, 0, 2]) as Tensor3;
      const taps = correlate(tf.transpose(x, [2, 1, 0]) as Tensor3, filter, p);
      return tf.transpose(taps, [1, 0, 2]) as Tensor3;
    },
    // <convW(x, dy), g> = <x, convT(dy, g)> = <dy, conv(x, g)>
    (g, x, dy) => [ops.convT(dy, g), ops.conv(x, g)],
  );
  return ops;
}

const convCache = new Map<number, ConvOps>();

/** The convolution family for zero padding p (made once per p). */
export function convFamily(p: number): ConvOps {
  let ops = convCache.get(p);
  if (!ops) convCache.set(p, (ops = convOps(p)));
  return ops;
}

/** Sums of m [R, C] over its rows, as ones[1, R] @ m (wasm reduces axis 0 by transposing). */
function rowSums(m: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.matMul(tf.ones([1, m.shape[0]]), m), [m.shape[1]]);
}

type Layer = (x: Tensor3, w: Tensor3, bias: tf.Tensor1D) => Tensor3;

function convLayer(p: number, relu: boolean): Layer {
  const { convT, convW } = convFamily(p);
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, bias] = args as [Tensor3, Tensor3, tf.Tensor1D];
    const y = correlate(x, w, p, bias, relu ? 'relu' : 'linear');
    (args[3] as tf.GradSaveFunc)(relu ? [x, w, tf.step(y)] : [x, w]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw, active] = saved as [Tensor3, Tensor3, Tensor3?];
        // The ReLU's 0/1 derivative is a constant: its own derivative is 0 away from the kink.
        const dz = (active ? tf.mul(dy, active) : dy) as Tensor3;
        const [b, lo, co] = dz.shape;
        return [convT(dz, sw), convW(sx, dz), rowSums(tf.reshape(dz, [b * lo, co]))];
      },
    };
  }) as unknown as Layer;
}

const layers = new Map<string, Layer>();

/**
 * Stride-1 convolution of x [B, L, Ci] with zero padding p, weights w [K, Ci, Co] and bias [Co],
 * then ReLU when asked: [B, L + 2p - K + 1, Co].
 */
export function conv1dLayer(
  x: Tensor3,
  w: Tensor3,
  bias: tf.Tensor1D,
  p: number,
  activation: 'relu' | 'linear',
): Tensor3 {
  const key = `${p}/${activation}`;
  let layer = layers.get(key);
  if (!layer) layers.set(key, (layer = convLayer(p, activation === 'relu')));
  return layer(x, w, bias);
}

/** 0/1 matrices of one window shape: copy [C, k C] (value c to every slot j C + c) and its sum. */
interface WindowMatrices {
  copy: tf.Tensor2D;
  sum: tf.Tensor2D;
  /** earlier [k C, k C]: column j C + c sums slots j' C + c with j' < j. */
  earlier: tf.Tensor2D;
}

function windowMatrices(k: number, c: number): WindowMatrices {
  const copy = new Float32Array(c * k * c);
  const earlier = new Float32Array(k * c * k * c);
  for (let j = 0; j < k; j++)
    for (let ch = 0; ch < c; ch++) {
      copy[ch * k * c + j * c + ch] = 1;
      for (let jj = 0; jj < j; jj++) earlier[(jj * c + ch) * k * c + j * c + ch] = 1;
    }
  const copyT = tf.tensor2d(copy, [c, k * c]);
  return {
    copy: copyT,
    sum: tf.transpose(copyT),
    earlier: tf.tensor2d(earlier, [k * c, k * c]),
  };
}

type Windows = (t: tf.Tensor2D) => tf.Tensor2D;

/** route [R, C] -> [R, k C] (dy to the masked slot) and its adjoint select, for a fixed mask. */
function routing(
  mask: tf.Tensor2D,
  copy: tf.Tensor2D,
  sum: tf.Tensor2D,
): { route: Windows; select: Windows } {
  const route: Windows = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.mul(tf.matMul(args[0] as tf.Tensor2D, copy), mask),
    gradFunc: (g: tf.Tensor) => select(g as tf.Tensor2D),
  })) as unknown as Windows;
  const select: Windows = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.matMul(tf.mul(args[0] as tf.Tensor2D, mask), sum),
    gradFunc: (dy: tf.Tensor) => route(dy as tf.Tensor2D),
  })) as unknown as Windows;
  return { route, select };
}

/**
 * MaxPool1d(k), stride k, floor mode, over the length of h [B, L, C] -> [B, floor(L / k), C];
 * the gradient goes to each window's first maximum.
 */
export function maxPool1dLayer(h: Tensor3, k: number): Tensor3 {
  const [b, length, c] = h.shape;
  const lp = Math.floor(length / k);
  if (lp < 1) throw new Error(`maxPool1d: length ${length} shorter than the pool ${k}`);
  const used = lp * k === length ? h : (tf.slice(h, [0, 0, 0], [b, lp * k, c]) as Tensor3);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as Tensor3;
    const m = windowMatrices(k, c);
    const value = tf.reshape(
      tf.maxPool(tf.reshape(x, [b, lp * k, 1, c]) as tf.Tensor4D, [k, 1], [k, 1], 'valid'),
      [b * lp, c],
    ) as tf.Tensor2D;
    const mask = tf.tidy(() => {
      const hit = tf.cast(
        tf.equal(tf.reshape(x, [b * lp, k * c]), tf.matMul(value, m.copy)),
        'float32',
      ) as tf.Tensor2D;
      // First maximum: a slot wins if it is a maximum and no earlier slot of its window is.
      return tf.mul(hit, tf.cast(tf.less(tf.matMul(hit, m.earlier), 0.5), 'float32'));
    });
    (args[1] as tf.GradSaveFunc)([mask, m.copy, m.sum]);
    tf.dispose(m.earlier);
    return {
      value: tf.reshape(value, [b, lp, c]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [mask, copy, sum] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const { route } = routing(mask, copy, sum);
        return tf.reshape(route(tf.reshape(dy, [b * lp, c])), [b, lp * k, c]);
      },
    };
  });
  return op(used) as Tensor3;
}
