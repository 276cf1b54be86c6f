// Twice- (in fact any-order-) differentiable elementwise and reduction ops.
//
// Why this module exists: tfjs' registered gradients of exp, tanh, sigmoid, elu, softmax and
// logSoftmax use the op's *output* saved during the forward pass (softplus one order later). The engine saves it as a clone that is
// recorded on the tape *before* the op's own tape node, so when an outer tf.grad differentiates
// that backward pass the clone is not connected to the op's input: the term d(output)/d(input) is
// silently dropped and grad(grad(f)) returns wrong numbers (tf.logSumExp's gradient even throws at
// second order). The FIM regularizer differentiates an input gradient with respect to the weights,
// so everything it touches must come from this module or from SAFE_TF_OPS.
//
// The fix: each op is a tf.customGrad that saves its *input* (a clone recorded before the op's node,
// hence connected to the input) and writes its gradient in terms of ops of this module applied to
// that saved input. The backward pass is then itself made of differentiable ops, at every order.
// The forward value may use any kernel: nothing inside a customGrad forward is taped.
//
// logSigmoid is composed from softplus and SAFE_TF_OPS; the others are custom ops. where, clip
// and minimum replace tfjs ops whose gradients call comparison ops that have no gradient.
import { tf } from './backend.js';

type Unary = (x: tf.Tensor) => tf.Tensor;

/**
 * A one-input tf.customGrad whose forward saves its input; `grad(dy, x)` receives that saved input,
 * a clone taped before this op's node and so still connected to the caller's graph.
 */
function customUnary(forward: Unary, grad: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor): Unary {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([x]);
    return {
      value: forward(x),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => grad(dy, saved[0]!),
    };
  });
  return (x: tf.Tensor) => op(x);
}

/**
 * Wraps a forward kernel and a derivative into an elementwise op of any differentiation order:
 * d op(x) = dy * deriv(x), with deriv evaluated on the saved input through differentiable ops.
 */
function elementwise(forward: Unary, deriv: Unary): Unary {
  return customUnary(forward, (dy, x) => tf.mul(dy, deriv(x)));
}

/** exp(x); d/dx = exp(x). */
export const exp: Unary = elementwise(
  (x) => tf.exp(x),
  (x) => exp(x),
);

/** sigmoid(x) = 1 / (1 + exp(-x)); d/dx = sigmoid(x) sigmoid(-x) (no 1 - s cancellation). */
export const sigmoid: Unary = elementwise(
  (x) => tf.sigmoid(x),
  (x) => tf.mul(sigmoid(x), sigmoid(tf.neg(x))),
);

/** tanh(x); d/dx = 1 - tanh(x)^2. */
export const tanh: Unary = elementwise(
  (x) => tf.tanh(x),
  (x) => tf.sub(1, tf.square(tanh(x))),
);

/**
 * log(1 + u) for u in [0, 1], accurate for tiny u: tfjs' cpu log1p computes log(1 + u), which is 0
 * below u ~ 6e-8. log(w) u / (w - 1) with w = 1 + u cancels the rounding of w (Goldberg's trick).
 * Forward use only (no gradient is taken through it).
 */
function log1pSmall(u: tf.Tensor): tf.Tensor {
  const w = tf.add(u, 1);
  const wm1 = tf.sub(w, 1);
  const exact = tf.equal(wm1, 0);
  return tf.where(exact, u, tf.div(tf.mul(tf.log(w), u), tf.where(exact, tf.onesLike(wm1), wm1)));
}

/**
 * softplus(x) = log(1 + exp(x)), evaluated as max(x, 0) + log1p(exp(-|x|)) so that neither branch
 * overflows; d/dx = sigmoid(x).
 */
export const softplus: Unary = elementwise(
  (x) => tf.add(tf.relu(x), log1pSmall(tf.exp(tf.neg(tf.abs(x))))),
  (x) => sigmoid(x),
);

/** log sigmoid(x) = -softplus(-x), stable for large |x|. */
export function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.neg(softplus(tf.neg(x)));
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new Error(`axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

function keptShape(shape: number[], axis: number): number[] {
  const s = shape.slice();
  s[axis] = 1;
  return s;
}

/** max_axis(x) with kept dims, replaced by 0 where it is not finite (an all -Infinity slice). */
function maxShift(x: tf.Tensor, axis: number): tf.Tensor {
  const m = tf.max(x, axis, true);
  return tf.where(tf.isFinite(m), m, tf.zerosLike(m));
}

function shifted(x: tf.Tensor, axis: number): tf.Tensor {
  return tf.sub(x, maxShift(x, axis));
}

/**
 * log sum_axis exp(x). Forward: m + log sum exp(x - m) with m = max over the axis. The shift needs
 * no gradient: lse(x) = c + log sum exp(x - c) holds for every c, so d lse / dc = 1 - sum softmax = 0
 * and treating m as a constant changes no derivative. The gradient is written explicitly:
 * d lse / dx = softmax(x) along the axis, itself built from exp and logSumExp of this module.
 */
export function logSumExp(x: tf.Tensor, axis: number, keepDims = false): tf.Tensor {
  const ax = normAxis(axis, x.rank);
  const kept = keptShape(x.shape, ax);
  const outShape = keepDims ? kept : x.shape.filter((_, i) => i !== ax);
  const op = customUnary(
    (xi) => {
      // An all -Infinity slice is shifted by 0 (see shifted), so its result stays -Infinity.
      const m = maxShift(xi, ax);
      const lse = tf.add(tf.log(tf.sum(tf.exp(tf.sub(xi, m)), ax, true)), m);
      return tf.reshape(lse, outShape);
    },
    (dy, xi) => tf.mul(tf.reshape(dy, kept), softmax(xi, ax)),
  );
  return op(x);
}

/**
 * log softmax along an axis. Forward (x - m) - log sum exp(x - m), as accurate as tf.logSoftmax
 * (x - logSumExp(x) would lose the low bits of large x); d/dx: dy - softmax(x) * sum_axis(dy).
 */
export function logSoftmax(x: tf.Tensor, axis = -1): tf.Tensor {
  const ax = normAxis(axis, x.rank);
  const op = customUnary(
    (xi) => {
      const z = shifted(xi, ax);
      return tf.sub(z, tf.log(tf.sum(tf.exp(z), ax, true)));
    },
    (dy, xi) => tf.sub(dy, tf.mul(softmax(xi, ax), tf.sum(dy, ax, true))),
  );
  return op(x);
}

/** softmax along an axis. Forward exp(x - m) / sum exp(x - m); d/dx: y * (dy - sum_axis(dy * y)), y = softmax(x). */
export function softmax(x: tf.Tensor, axis = -1): tf.Tensor {
  const ax = normAxis(axis, x.rank);
  const op = customUnary(
    (xi) => {
      const e = tf.exp(shifted(xi, ax));
      return tf.div(e, tf.sum(e, ax, true));
    },
    (dy, xi) => {
      const y = softmax(xi, ax);
      return tf.mul(y, tf.sub(dy, tf.sum(tf.mul(dy, y), ax, true)));
    },
  );
  return op(x);
}

/**
 * where(cond, a, b) with a, b of cond's shape. tf.where's gradient casts `cond` on the tape, so when
 * cond comes from a comparison of x (tf.greater, tf.less, ...) a second derivative reaches that
 * comparison, which has no registered gradient, and throws. Here cond stays out of the tape: it is
 * turned into a saved 0/1 mask inside the op, and the gradients are dy * mask, dy * (1 - mask).
 */
export function where(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!sameShape(cond.shape, a.shape) || !sameShape(cond.shape, b.shape)) {
    throw new Error(
      `where: cond ${JSON.stringify(cond.shape)}, a ${JSON.stringify(a.shape)} and b ` +
        `${JSON.stringify(b.shape)} must have one shape`,
    );
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [ai, bi] = args as [tf.Tensor, tf.Tensor];
    const mask = tf.cast(cond, 'float32');
    (args[2] as tf.GradSaveFunc)([mask]);
    return {
      value: tf.where(cond, ai, bi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const m = saved[0]!;
        return [tf.mul(dy, m), tf.mul(dy, tf.sub(1, m))];
      },
    };
  });
  return op(a, b);
}

/**
 * clip(x, lo, hi): x inside [lo, hi], the bound outside; gradient dy inside, 0 outside (as
 * tf.clipByValue, whose own gradient uses tf.logicalAnd and so cannot be differentiated again).
 */
export function clip<T extends tf.Tensor>(x: T, lo: number, hi: number): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor;
    const inside = tf.cast(tf.logicalAnd(tf.greaterEqual(xi, lo), tf.lessEqual(xi, hi)), 'float32');
    (args[1] as tf.GradSaveFunc)([inside]);
    return {
      value: tf.clipByValue(xi, lo, hi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]!),
    };
  });
  return op(x) as T;
}

/**
 * clip's value with the identity as its gradient (pyro's clamp_preserve_gradients, which RABI's MAF
 * clamps its log-scale with): a clipped entry still learns. Twice differentiable (the second
 * derivative is 0).
 */
export function clipPassingGradient<T extends tf.Tensor>(x: T, lo: number, hi: number): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor;
    return { value: tf.clipByValue(xi, lo, hi), gradFunc: (dy: tf.Tensor) => dy };
  });
  return op(x) as T;
}

/**
 * x with its first axis reordered: out[i] = x[perm[i]], perm a permutation of 0..x.shape[0]-1. The
 * gradient is the inverse reordering of dy (this op again), so it differentiates at every order and
 * needs only gather's forward kernel (tf.gather's gradient needs UnsortedSegmentSum, which wasm
 * lacks).
 */
export function permuteRows<T extends tf.Tensor>(x: T, perm: ArrayLike<number>): T {
  const n = x.shape[0];
  if (perm.length !== n) throw new Error(`permuteRows: ${perm.length} indices for ${n} rows`);
  const inverse = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const p = perm[i]!;
    if (!Number.isInteger(p) || p < 0 || p >= n || inverse[p] !== -1)
      throw new Error('permuteRows: perm is not a permutation');
    inverse[p] = i;
  }
  return reorder(x, Int32Array.from(perm), inverse) as T;
}

function reorder(x: tf.Tensor, perm: Int32Array, inverse: Int32Array): tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor;
    const idx = tf.tensor1d(perm, 'int32');
    const value = tf.gather(xi, idx, 0);
    idx.dispose();
    return { value, gradFunc: (dy: tf.Tensor) => reorder(dy, inverse, perm) };
  });
  return op(x);
}

/** Elementwise minimum through tf.maximum, whose gradient (unlike tf.minimum's) differentiates again. */
export function minimum(a: tf.Tensor, b: tf.Tensor | number): tf.Tensor {
  return tf.neg(tf.maximum(tf.neg(a), tf.neg(b)));
}

// ---- matrix products whose backward pass avoids wasm's slow transposed kernels ----
//
// wasm's BatchMatMul sends transposed operands (transposeA/transposeB, which tfjs' registered
// gradients of matMul and fused.matMul use) through a generic loop: at [512, 100] x [100, 100] it
// measured about 5 ms against 0.7 ms for the untransposed XNNPACK product plus 0.3 ms for an
// explicit transpose. On wasm these ops therefore write their gradients with tf.transpose and
// untransposed products of this module, which keeps them differentiable at every order. Other
// backends transpose inside their kernels and get the plain tfjs ops.

const explicitTransposes = (): boolean => tf.getBackend() === 'wasm';

type Binary2D = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

const matMulWasm = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b] = args as [tf.Tensor2D, tf.Tensor2D];
  (args[2] as tf.GradSaveFunc)([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      const d = dy as tf.Tensor2D;
      return [matMul(d, tf.transpose(sb)), matMul(tf.transpose(sa), d)];
    },
  };
}) as unknown as Binary2D;

/** a @ b for 2-D a, b (tf.matMul without transposes), any-order differentiable. */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return explicitTransposes() ? matMulWasm(a, b) : tf.matMul(a, b);
}

type Linear = (x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D) => tf.Tensor2D;

/**
 * The fused x @ w + bias (+ ReLU) kernel with the gradient written out: dz = dy (times the ReLU's
 * 0/1 derivative, saved from the forward pass; its own derivative is 0), dx = dz @ w^T,
 * dw = x^T @ dz, dbias = column sums of dz (ones @ dz).
 */
function linearWasm(relu: boolean): Linear {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, bias] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
    // The kernel itself: tf.fused.matMul falls back to three unfused kernels under a gradient tape.
    const [rows, inner] = x.shape;
    const cols = w.shape[1];
    const y3 = tf
      .engine()
      .runKernel(
        '_FusedMatMul',
        { a: tf.reshape(x, [1, rows, inner]), b: tf.reshape(w, [1, inner, cols]), bias },
        { transposeA: false, transposeB: false, activation: relu ? 'relu' : 'linear' },
      ) as tf.Tensor3D;
    const y = tf.reshape(y3, [rows, cols]) as tf.Tensor2D;
    (args[3] as tf.GradSaveFunc)(relu ? [x, w, tf.step(y)] : [x, w]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw, active] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D?];
        const dz = (active ? tf.mul(dy, active) : dy) as tf.Tensor2D;
        return [matMul(dz, tf.transpose(sw)), matMul(tf.transpose(sx), dz), columnSums(dz)];
      },
    };
  }) as unknown as Linear;
}

/** Sums over rows as ones[1, B] @ m: wasm reduces axis 0 by transposing first, ~4x slower. */
function columnSums(m: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(matMul(tf.ones([1, m.shape[0]]), m), [m.shape[1]]);
}

const linearWasmOps = { relu: linearWasm(true), linear: linearWasm(false) };

/**
 * x @ w + bias, then ReLU when activation is 'relu': one fused kernel forward, any-order
 * differentiable (the ReLU's second derivative is 0 away from the kink, as tf.relu's).
 */
export function linear(
  x: tf.Tensor2D,
  w: tf.Tensor2D,
  bias: tf.Tensor1D,
  activation: 'relu' | 'linear' = 'linear',
): tf.Tensor2D {
  if (explicitTransposes()) return linearWasmOps[activation](x, w, bias);
  return tf.fused.matMul({ a: x, b: w, bias, activation }) as tf.Tensor2D;
}

function sameShape(p: number[], q: number[]): boolean {
  return p.length === q.length && p.every((v, i) => v === q[i]);
}

/**
 * tfjs ops whose registered gradient uses only saved *inputs* (never the op's output) and is itself
 * made of ops with registered gradients, so they may be used directly in anything differentiated
 * twice. Each is checked at second order against finite differences in test/unit/sbi/ops.test.ts.
 * relu, abs and maximum are piecewise linear; their second derivative is 0 away from the kinks.
 *
 * NOT safe (the tests document each):
 * - exp, tanh, sigmoid, elu, softmax, logSoftmax: the gradient reuses the forward output, so the
 *   second derivative is silently wrong (or, without other paths, tf.grad throws). softplus is right
 *   at second order but fails at third. Use exp, tanh, sigmoid, softplus, softmax, logSoftmax above.
 * - logSumExp, max (reduction), minimum, clipByValue, where with a comparison-made condition: the
 *   second derivative reaches a comparison op without a gradient (Equal, LessEqual, LogicalAnd,
 *   Greater) and throws. Use logSumExp, minimum, clip and where above.
 * - gather: its gradient needs UnsortedSegmentSum, which the wasm backend lacks (even first order).
 */
export const SAFE_TF_OPS = [
  'add',
  'sub',
  'mul',
  'div',
  'neg',
  'square',
  'sqrt',
  'reciprocal',
  'log',
  'log1p',
  'abs',
  'relu',
  'maximum',
  'matMul',
  'sum',
  'mean',
  'reshape',
  'transpose',
  'concat',
  'slice',
  'expandDims',
  'squeeze',
  'tile',
] as const;
export type SafeTfOp = (typeof SAFE_TF_OPS)[number];
