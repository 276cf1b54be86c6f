// The twice-differentiable ops of sbi/ops.ts, checked on every backend at first and second order
// against float64 closed forms and central finite differences, including the FIM-regularizer shape
// d/dW || d/dx sum(C * op(x W)) ||^2 that tfjs' own gradients get wrong.
import { after, before, describe, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../sbi/backend.js';
import * as ops from '../../../sbi/ops.js';

type Mat = number[][];
const BACKENDS = ['cpu', 'wasm'] as const;

/** Every test body runs in tf.tidy, so composite ops' intermediates are freed even on failure. */
function test(name: string, body: () => void): void {
  nodeTest(name, () => {
    tf.tidy(body);
  });
}

/** Deterministic pseudo-random values in [-1, 1) (no RNG dependency in this test). */
function table(rows: number, cols: number, salt: number): Mat {
  return Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => {
      const s = Math.sin((i * 31 + j * 7 + salt) * 12.9898) * 43758.5453;
      return 2 * (s - Math.floor(s)) - 1;
    }),
  );
}

const sig = (v: number): number => 1 / (1 + Math.exp(-v));

interface Elementwise {
  name: string;
  op: (x: tf.Tensor) => tf.Tensor;
  f: (v: number) => number;
  d1: (v: number) => number;
  d2: (v: number) => number;
  d3: (v: number) => number;
}

const ELEMENTWISE: Elementwise[] = [
  { name: 'exp', op: ops.exp, f: Math.exp, d1: Math.exp, d2: Math.exp, d3: Math.exp },
  {
    name: 'tanh',
    op: ops.tanh,
    f: Math.tanh,
    d1: (v) => 1 - Math.tanh(v) ** 2,
    d2: (v) => -2 * Math.tanh(v) * (1 - Math.tanh(v) ** 2),
    d3: (v) => -2 * (1 - Math.tanh(v) ** 2) * (1 - 3 * Math.tanh(v) ** 2),
  },
  {
    name: 'sigmoid',
    op: ops.sigmoid,
    f: sig,
    d1: (v) => sig(v) * sig(-v),
    d2: (v) => sig(v) * sig(-v) * (1 - 2 * sig(v)),
    d3: (v) => sig(v) * sig(-v) * (1 - 6 * sig(v) * sig(-v)),
  },
  {
    name: 'softplus',
    op: ops.softplus,
    f: (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))),
    d1: sig,
    d2: (v) => sig(v) * sig(-v),
    d3: (v) => sig(v) * sig(-v) * (1 - 2 * sig(v)),
  },
  {
    name: 'logSigmoid',
    op: ops.logSigmoid,
    f: (v) => Math.min(v, 0) - Math.log1p(Math.exp(-Math.abs(v))),
    d1: (v) => sig(-v),
    d2: (v) => -sig(v) * sig(-v),
    d3: (v) => -sig(v) * sig(-v) * (1 - 2 * sig(v)),
  },
];

const POINTS = [-3.1, -1.7, -0.6, -0.05, 0, 0.3, 0.9, 1.6, 2.8];

/** |actual - expected| <= rtol * max(|expected|, floor), element by element. */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  floor: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const tol = rtol * Math.max(Math.abs(e), floor);
    assert.ok(
      Number.isFinite(a) && Math.abs(a - e) <= tol,
      `${what}[${i}]: got ${a}, expected ${e} (tol ${tol.toExponential(2)})`,
    );
  }
}

function flat(m: Mat): number[] {
  return m.flat();
}

function read(t: tf.Tensor): number[] {
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
}

// ---- float64 reference for the reductions, on 2-D matrices along an axis ----

function transpose(m: Mat): Mat {
  return m[0]!.map((_, j) => m.map((r) => r[j]!));
}

function softmaxRow(r: number[]): number[] {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function lseRow(r: number[]): number {
  const m = Math.max(...r);
  return m + Math.log(r.reduce((a, v) => a + Math.exp(v - m), 0));
}

interface Reduction {
  name: string;
  /** The op under test, with its output weighted by C and summed. */
  op: (z: tf.Tensor, axis: number) => tf.Tensor;
  /** Shape of the weights C for an input of shape [rows, cols]. */
  weightShape: (rows: number, cols: number, axis: number) => number[];
  /** float64 value of sum(C * op(z)). */
  value: (z: Mat, c: Mat, axis: number) => number;
  /** float64 gradient of sum(C * op(z)) with respect to z. */
  grad: (z: Mat, c: Mat, axis: number) => Mat;
  /** float64 Hessian of sum(C * op(z)) applied to a direction v. */
  hvp: (z: Mat, c: Mat, v: Mat, axis: number) => Mat;
}

/** C for a reduced axis is stored as a [1, n] (axis 0) or [n, 1] (axis 1) matrix; index it per slice. */
function sliceWeights(c: Mat, axis: number): number[] {
  return axis === 1 ? c.map((r) => r[0]!) : c[0]!;
}

function sliceRows(m: Mat, axis: number): Mat {
  return axis === 1 ? m : transpose(m);
}

function unslice(m: Mat, axis: number): Mat {
  return axis === 1 ? m : transpose(m);
}

const REDUCTIONS: Reduction[] = [
  {
    name: 'logSumExp',
    op: (z, axis) => ops.logSumExp(z, axis, true),
    weightShape: (r, c, axis) => (axis === 1 ? [r, 1] : [1, c]),
    value: (z, c, axis) => {
      const w = sliceWeights(c, axis);
      return sliceRows(z, axis).reduce((a, row, i) => a + w[i]! * lseRow(row), 0);
    },
    grad: (z, c, axis) => {
      const w = sliceWeights(c, axis);
      return unslice(
        sliceRows(z, axis).map((row, i) => softmaxRow(row).map((s) => w[i]! * s)),
        axis,
      );
    },
    hvp: (z, c, v, axis) => {
      const w = sliceWeights(c, axis);
      const vs = sliceRows(v, axis);
      return unslice(
        sliceRows(z, axis).map((row, i) => {
          const s = softmaxRow(row);
          const sv = s.reduce((a, sk, k) => a + sk * vs[i]![k]!, 0);
          return s.map((si, k) => w[i]! * si * (vs[i]![k]! - sv));
        }),
        axis,
      );
    },
  },
  {
    name: 'softmax',
    op: (z, axis) => ops.softmax(z, axis),
    weightShape: (r, c) => [r, c],
    value: (z, c, axis) => {
      const cs = sliceRows(c, axis);
      return sliceRows(z, axis).reduce(
        (a, row, i) => a + softmaxRow(row).reduce((b, s, k) => b + cs[i]![k]! * s, 0),
        0,
      );
    },
    grad: (z, c, axis) => {
      const cs = sliceRows(c, axis);
      return unslice(
        sliceRows(z, axis).map((row, i) => {
          const s = softmaxRow(row);
          const cbar = s.reduce((a, sk, k) => a + sk * cs[i]![k]!, 0);
          return s.map((sk, k) => sk * (cs[i]![k]! - cbar));
        }),
        axis,
      );
    },
    hvp: (z, c, v, axis) => {
      const cs = sliceRows(c, axis);
      const vs = sliceRows(v, axis);
      return unslice(
        sliceRows(z, axis).map((row, i) => {
          const s = softmaxRow(row);
          const ci = cs[i]!;
          const vi = vs[i]!;
          const n = s.length;
          const cbar = s.reduce((a, sk, k) => a + sk * ci[k]!, 0);
          const out: number[] = [];
          for (let a = 0; a < n; a++) {
            let h = 0;
            for (let k = 0; k < n; k++) {
              const dak = a === k ? 1 : 0;
              h +=
                (s[a]! * (dak - s[k]!) * (ci[a]! - cbar) - s[a]! * s[k]! * (ci[k]! - cbar)) *
                vi[k]!;
            }
            out.push(h);
          }
          return out;
        }),
        axis,
      );
    },
  },
  {
    name: 'logSoftmax',
    op: (z, axis) => ops.logSoftmax(z, axis),
    weightShape: (r, c) => [r, c],
    value: (z, c, axis) => {
      const cs = sliceRows(c, axis);
      return sliceRows(z, axis).reduce((a, row, i) => {
        const l = lseRow(row);
        return a + row.reduce((b, zk, k) => b + cs[i]![k]! * (zk - l), 0);
      }, 0);
    },
    grad: (z, c, axis) => {
      const cs = sliceRows(c, axis);
      return unslice(
        sliceRows(z, axis).map((row, i) => {
          const s = softmaxRow(row);
          const csum = cs[i]!.reduce((a, b) => a + b, 0);
          return s.map((sk, k) => cs[i]![k]! - csum * sk);
        }),
        axis,
      );
    },
    hvp: (z, c, v, axis) => {
      const cs = sliceRows(c, axis);
      const vs = sliceRows(v, axis);
      return unslice(
        sliceRows(z, axis).map((row, i) => {
          const s = softmaxRow(row);
          const csum = cs[i]!.reduce((a, b) => a + b, 0);
          const sv = s.reduce((a, sk, k) => a + sk * vs[i]![k]!, 0);
          return s.map((sk, k) => -csum * sk * (vs[i]![k]! - sv));
        }),
        axis,
      );
    },
  },
];

// ---- the FIM-regularizer shape: F(W) = || d/dx sum(C * op(x W)) ||^2 ----

function matMul(a: Mat, b: Mat): Mat {
  return a.map((r) => b[0]!.map((_, j) => r.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
}

/** float64 F(W) given the float64 gradient g(z) of sum(C * op(z)). */
function fimObjective64(x: Mat, w: Mat, gradZ: (z: Mat) => Mat): number {
  const gx = matMul(gradZ(matMul(x, w)), transpose(w));
  return gx.flat().reduce((a, v) => a + v * v, 0);
}

/** dF/dW by central differences in float64 (step 1e-5: truncation ~1e-10, rounding ~1e-11). */
function fimGrad64(x: Mat, w: Mat, gradZ: (z: Mat) => Mat): Mat {
  const h = 1e-5;
  return w.map((r, i) =>
    r.map((_, j) => {
      const wp = w.map((q) => q.slice());
      const wm = w.map((q) => q.slice());
      wp[i]![j]! += h;
      wm[i]![j]! -= h;
      return (fimObjective64(x, wp, gradZ) - fimObjective64(x, wm, gradZ)) / (2 * h);
    }),
  );
}

/** F(W) in tfjs: the input gradient via tf.grad, then its squared norm. */
function fimObjectiveTf(
  x: tf.Tensor2D,
  c: tf.Tensor,
  op: (z: tf.Tensor) => tf.Tensor,
): (w: tf.Tensor) => tf.Tensor {
  return (w) => {
    const gx = tf.grad((xx: tf.Tensor) =>
      tf.sum(tf.mul(c, op(tf.matMul(xx as tf.Tensor2D, w as tf.Tensor2D)))),
    )(x);
    return tf.sum(tf.square(gx));
  };
}

/** dF/dW by central differences of the float32 tfjs objective. */
function fimGradFd32(F: (w: tf.Tensor) => tf.Tensor, w: Mat, h: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < w.length; i++) {
    for (let j = 0; j < w[0]!.length; j++) {
      const wp = w.map((q) => q.slice());
      const wm = w.map((q) => q.slice());
      wp[i]![j]! += h;
      wm[i]![j]! -= h;
      const d = tf.tidy(() => tf.sub(F(tf.tensor2d(wp)), F(tf.tensor2d(wm))).dataSync()[0]!);
      out.push(d / (2 * h));
    }
  }
  return out;
}

const X = table(3, 3, 1);
const W = table(3, 4, 2).map((r) => r.map((v) => 0.9 * v));

// ---- SAFE_TF_OPS: each used in a function of z whose second derivative involves it ----

/** Weights chosen so that every z = X WS is at least 0.045 from the kinks 0, 0.1, +-0.5. */
const WS = table(3, 4, 45).map((r) => r.map((v) => 0.9 * v));
const cube = (t: tf.Tensor): tf.Tensor => tf.mul(t, tf.mul(t, t));
const SAFE_CASES: Record<ops.SafeTfOp, (z: tf.Tensor) => tf.Tensor> = {
  add: (z) => tf.square(tf.add(z, 0.3)),
  sub: (z) => tf.square(tf.sub(0.3, z)),
  mul: (z) => cube(z),
  div: (z) => tf.div(z, tf.add(tf.square(z), 1)),
  neg: (z) => tf.neg(cube(tf.neg(z))),
  square: (z) => tf.square(tf.square(z)),
  sqrt: (z) => tf.sqrt(tf.add(tf.square(z), 1)),
  reciprocal: (z) => tf.reciprocal(tf.add(tf.square(z), 1)),
  log: (z) => tf.log(tf.add(tf.square(z), 1)),
  log1p: (z) => tf.log1p(tf.square(z)),
  abs: (z) => tf.mul(tf.abs(z), z),
  relu: (z) => tf.mul(tf.relu(z), z),
  maximum: (z) => tf.mul(tf.maximum(z, 0.1), z),
  matMul: (z) => tf.matMul(z as tf.Tensor2D, z as tf.Tensor2D, false, true),
  sum: (z) => tf.square(tf.sum(z, 1)),
  mean: (z) => tf.square(tf.mean(z, 0)),
  reshape: (z) => cube(tf.reshape(z, [2, 6])),
  transpose: (z) => tf.matMul(tf.transpose(z) as tf.Tensor2D, z as tf.Tensor2D),
  concat: (z) => cube(tf.concat([z, tf.square(z)], 1)),
  slice: (z) => cube(tf.slice(z, [0, 1], [2, 2])),
  expandDims: (z) => cube(tf.expandDims(z, 1)),
  squeeze: (z) => cube(tf.squeeze(tf.expandDims(z, 0), [0])),
  tile: (z) => cube(tf.tile(z, [2, 1])),
};

/**
 * Worst |tfjs - FD| / scale over W of d/dW || d/dx sum(C * g(xW)) ||^2, tfjs by double backprop and
 * the reference by float32 central differences (h = 3e-3, small enough not to cross the kinks of
 * the piecewise-linear ops at these points).
 */
function secondOrderError(g: (z: tf.Tensor) => tf.Tensor): number {
  const outShape = tf.tidy(() => g(tf.zeros([3, 4])).shape);
  const size = outShape.reduce((a, b) => a * b, 1);
  const c = tf.tensor(table(1, size, 80).flat(), outShape);
  const F = fimObjectiveTf(tf.tensor2d(X), c, g);
  const got = Array.from(tf.grad(F)(tf.tensor2d(WS)).dataSync());
  const fd = fimGradFd32(F, WS, 3e-3);
  const scale = Math.max(...fd.map(Math.abs));
  assert.ok(scale > 1e-3, `degenerate case: dF/dW is ${scale}`);
  return Math.max(...got.map((v, i) => Math.abs(v - fd[i]!))) / scale;
}

/** The kinks (0, +-0.1, +-0.5) of the piecewise ops are at least this far from every z = xW. */
function kinkMargin(): number {
  const z = matMul(X, WS).flat();
  return Math.min(...z.flatMap((v) => [0, 0.1, -0.5, 0.5].map((k) => Math.abs(v - k))));
}

for (const backend of BACKENDS) {
  describe(`sbi/ops on ${backend}`, () => {
    let tensorsBefore = 0;
    before(async () => {
      await initBackend(backend);
      tensorsBefore = tf.memory().numTensors;
    });
    after(() => {
      assert.equal(tf.memory().numTensors, tensorsBefore, 'the tests leaked tensors');
    });

    for (const e of ELEMENTWISE) {
      test(`${e.name}: value, first and second derivative vs float64 closed forms`, () => {
        const x = tf.tensor1d(POINTS);
        const sumOp = (t: tf.Tensor): tf.Tensor => tf.sum(e.op(t));
        assertClose(read(e.op(x)), POINTS.map(e.f), 1e-5, 1e-6, `${e.name} value`);
        assertClose(read(tf.grad(sumOp)(x)), POINTS.map(e.d1), 1e-5, 1e-6, `${e.name}'`);
        assertClose(read(tf.grad(tf.grad(sumOp))(x)), POINTS.map(e.d2), 1e-4, 1e-5, `${e.name}''`);
        x.dispose();
      });

      test(`${e.name}: first and second derivative vs central differences (float32, h=1e-2)`, () => {
        const h = 1e-2;
        const sumOp = (t: tf.Tensor): tf.Tensor => tf.sum(e.op(t));
        const at = (shift: number, f: (t: tf.Tensor) => tf.Tensor): number[] =>
          tf.tidy(() => Array.from(f(tf.tensor1d(POINTS.map((p) => p + shift))).dataSync()));
        const fp = at(h, e.op);
        const fm = at(-h, e.op);
        const gp = at(h, tf.grad(sumOp));
        const gm = at(-h, tf.grad(sumOp));
        const d1fd = fp.map((v, i) => (v - fm[i]!) / (2 * h));
        const d2fd = gp.map((v, i) => (v - gm[i]!) / (2 * h));
        const d1 = tf.tidy(() => Array.from(tf.grad(sumOp)(tf.tensor1d(POINTS)).dataSync()));
        const d2 = tf.tidy(() =>
          Array.from(tf.grad(tf.grad(sumOp))(tf.tensor1d(POINTS)).dataSync()),
        );
        // Truncation h^2/6 |f'''| and float32 rounding ~1e-7 |f| / h are both below 1e-3 here.
        assertClose(d1, d1fd, 2e-3, 1e-1, `${e.name}' vs FD`);
        assertClose(d2, d2fd, 2e-3, 1e-1, `${e.name}'' vs FD`);
      });

      test(`${e.name}: d/dW || d/dx sum(C * op(xW)) ||^2 matches finite differences`, () => {
        const c = table(3, 4, 3);
        const gradZ = (z: Mat): Mat => z.map((r, i) => r.map((v, j) => c[i]![j]! * e.d1(v)));
        const ref = flat(fimGrad64(X, W, gradZ));
        const xT = tf.tensor2d(X);
        const cT = tf.tensor2d(c);
        const F = fimObjectiveTf(xT, cT, e.op);
        const got = tf.tidy(() => Array.from(tf.grad(F)(tf.tensor2d(W)).dataSync()));
        const scale = Math.max(...ref.map(Math.abs));
        assertClose(got, ref, 1e-4, scale, `${e.name} dF/dW vs float64`);
        assertClose(got, fimGradFd32(F, W, 1e-2), 1e-2, scale, `${e.name} dF/dW vs float32 FD`);
        tf.dispose([xT, cT]);
      });
    }

    for (const r of REDUCTIONS) {
      for (const axis of [1, 0, -1]) {
        const ax = axis < 0 ? axis + 2 : axis;
        test(`${r.name} axis ${axis}: value, gradient and Hessian-vector product vs float64`, () => {
          const z = table(3, 4, 10 + ax).map((row) => row.map((v) => 3 * v));
          const c = table(...(r.weightShape(3, 4, ax) as [number, number]), 20 + ax);
          const v = table(3, 4, 30 + ax);
          const zT = tf.tensor2d(z);
          const cT = tf.tensor2d(c);
          const vT = tf.tensor2d(v);
          const f = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(cT, r.op(t, axis)));
          assertClose(read(f(zT)), [r.value(z, c, ax)], 1e-5, 1, `${r.name} value`);
          assertClose(
            read(tf.grad(f)(zT)),
            flat(r.grad(z, c, ax)),
            1e-4,
            1e-2,
            `${r.name} gradient`,
          );
          const hv = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(vT, tf.grad(f)(t))))(zT);
          const hvRef = flat(r.hvp(z, c, v, ax));
          assertClose(read(hv), hvRef, 1e-4, Math.max(...hvRef.map(Math.abs)), `${r.name} H v`);
          tf.dispose([zT, cT, vT]);
        });

        test(`${r.name} axis ${axis}: d/dW || d/dx sum(C * op(xW)) ||^2 matches finite differences`, () => {
          const c = table(...(r.weightShape(3, 4, ax) as [number, number]), 40 + ax);
          const ref = flat(fimGrad64(X, W, (zz) => r.grad(zz, c, ax)));
          const xT = tf.tensor2d(X);
          const cT = tf.tensor2d(c);
          const F = fimObjectiveTf(xT, cT, (t) => r.op(t, axis));
          const got = tf.tidy(() => Array.from(tf.grad(F)(tf.tensor2d(W)).dataSync()));
          const scale = Math.max(...ref.map(Math.abs));
          assertClose(got, ref, 1e-4, scale, `${r.name} dF/dW vs float64`);
          assertClose(got, fimGradFd32(F, W, 1e-2), 1e-2, scale, `${r.name} dF/dW vs float32 FD`);
          tf.dispose([xT, cT]);
        });
      }
    }

    test('logSumExp keeps or drops the reduced axis like tf.logSumExp', () => {
      const z = tf.tensor3d(table(2, 12, 5).flat(), [2, 3, 4]);
      for (const axis of [0, 1, 2, -1]) {
        for (const keep of [false, true]) {
          const ours = ops.logSumExp(z, axis, keep);
          const theirs = tf.logSumExp(z, axis, keep);
          assert.deepEqual(ours.shape, theirs.shape);
          assertClose(read(ours), read(theirs), 1e-5, 1, `logSumExp(${axis}, ${keep})`);
        }
      }
      assert.throws(() => ops.logSumExp(z, 3), /out of range/);
      z.dispose();
    });

    test('softmax and logSoftmax default to the last axis and match tfjs values', () => {
      const z = tf.tensor3d(table(2, 12, 6).flat(), [2, 3, 4]);
      assertClose(read(ops.softmax(z)), read(tf.softmax(z)), 1e-5, 1e-3, 'softmax');
      assertClose(read(ops.logSoftmax(z)), read(tf.logSoftmax(z)), 1e-5, 1, 'logSoftmax');
      z.dispose();
    });

    test('extreme inputs: finite values and derivatives, no overflow', () => {
      const big = [-100, -40, 40, 100];
      const x = tf.tensor1d(big);
      for (const e of ELEMENTWISE.filter((q) => q.name !== 'exp')) {
        const sumOp = (t: tf.Tensor): tf.Tensor => tf.sum(e.op(t));
        assertClose(read(e.op(x)), big.map(e.f), 1e-6, 1e-30, `${e.name} value`);
        assertClose(read(tf.grad(sumOp)(x)), big.map(e.d1), 1e-5, 1e-30, `${e.name}'`);
        assertClose(read(tf.grad(tf.grad(sumOp))(x)), big.map(e.d2), 1e-4, 1e-30, `${e.name}''`);
      }
      // logSumExp with huge and with -Infinity entries; its gradient is the softmax.
      const z = tf.tensor2d([
        [1000, 1000, -Infinity],
        [-1000, -Infinity, -1001],
      ]);
      assertClose(
        read(ops.logSumExp(z, 1)),
        [1000 + Math.log(2), -1000 + Math.log1p(Math.exp(-1))],
        1e-6,
        1,
        'lse',
      );
      const s = 1 / (1 + Math.exp(-1));
      assertClose(
        read(tf.grad((t: tf.Tensor) => tf.sum(ops.logSumExp(t, 1)))(z)),
        [0.5, 0.5, 0, s, 0, 1 - s],
        1e-5,
        1e-6,
        'lse grad',
      );
      tf.dispose([x, z]);
    });

    test('third derivatives: elementwise vs closed forms, reductions vs differences of H v', () => {
      const x = tf.tensor1d(POINTS);
      for (const e of ELEMENTWISE) {
        const d3 = read(tf.grad(tf.grad(tf.grad((t: tf.Tensor) => tf.sum(e.op(t)))))(x));
        assertClose(d3, POINTS.map(e.d3), 1e-4, 1e-2, `${e.name}'''`);
      }
      // T(z)[v, w] = d/dz sum(w * H(z) v) by triple backprop, against central differences of the
      // (already verified) H v along each coordinate.
      const z = table(3, 4, 90).map((r) => r.map((q) => 2 * q));
      const v = tf.tensor2d(table(3, 4, 91));
      const w = tf.tensor2d(table(3, 4, 92));
      for (const r of REDUCTIONS) {
        for (const axis of [1, 0]) {
          const c = tf.tensor2d(table(...(r.weightShape(3, 4, axis) as [number, number]), 93));
          const f = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(c, r.op(t, axis)));
          const hv = (t: tf.Tensor): tf.Tensor =>
            tf.grad((q: tf.Tensor) => tf.sum(tf.mul(v, tf.grad(f)(q))))(t);
          const whv = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(w, hv(t)));
          const got = read(tf.grad(whv)(tf.tensor2d(z)));
          const h = 1e-2;
          const fd = z.flat().map((_, k) => {
            const zp = z.flat();
            const zm = z.flat();
            zp[k]! += h;
            zm[k]! -= h;
            return (
              (read(whv(tf.tensor2d(zp, [3, 4])))[0]! - read(whv(tf.tensor2d(zm, [3, 4])))[0]!) /
              (2 * h)
            );
          });
          const scale = Math.max(...fd.map(Math.abs));
          assertClose(got, fd, 1e-2, scale, `${r.name} axis ${axis} third derivative`);
        }
      }
    });

    test('second order survives tf.tidy inside the differentiated function, and tf.variableGrads', () => {
      const c = table(3, 4, 50);
      const ref = flat(
        fimGrad64(X, W, (z) =>
          z.map((r, i) => r.map((v, j) => c[i]![j]! * (1 - Math.tanh(v) ** 2))),
        ),
      );
      const xT = tf.tensor2d(X);
      const cT = tf.tensor2d(c);
      const w = tf.variable(tf.tensor2d(W));
      const { value, grads } = tf.variableGrads(() => {
        const gx = tf.grad((xx: tf.Tensor) =>
          // The intermediate x W is disposed by this tidy before the backward pass runs.
          tf.tidy(() => tf.sum(tf.mul(cT, ops.tanh(tf.matMul(xx as tf.Tensor2D, w))))),
        )(xT);
        return tf.sum(tf.square(gx)) as tf.Scalar;
      }, [w]);
      const scale = Math.max(...ref.map(Math.abs));
      assertClose(read(grads[w.name]!), ref, 1e-4, scale, 'variableGrads dF/dW');
      tf.dispose([value, xT, cT, w]);
    });

    test('repeated double backprop inside tf.tidy leaves no tensors behind', () => {
      const xT = tf.tensor2d(X);
      const cT = tf.tensor2d(table(3, 4, 60));
      const wT = tf.tensor2d(W);
      const run = (): void =>
        tf.tidy(() => {
          const F = fimObjectiveTf(xT, cT, (t) => tf.add(ops.softplus(t), ops.logSoftmax(t, 1)));
          tf.grad(F)(wT);
        });
      run();
      const n = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) run();
      assert.equal(tf.memory().numTensors, n);
      tf.dispose([xT, cT, wT]);
    });

    test('the FD check of SAFE_TF_OPS is not near a kink of the piecewise-linear ops', () => {
      // x W moves by at most ~3 * 3e-3 per FD step; stay well clear of that.
      assert.ok(kinkMargin() > 0.03, `kink margin ${kinkMargin()}`);
    });

    const PIECEWISE: Record<string, (z: tf.Tensor) => tf.Tensor> = {
      'ops.where': (z) => ops.where(tf.greater(z, 0), tf.square(z), cube(z)),
      'ops.clip': (z) => tf.mul(ops.clip(z, -0.5, 0.5), z),
      'ops.minimum': (z) => tf.mul(ops.minimum(z, 0.1), z),
    };
    for (const [name, g] of Object.entries(PIECEWISE)) {
      test(`${name}: d/dW || d/dx sum(C * g(xW)) ||^2 matches finite differences`, () => {
        const err = secondOrderError(g);
        assert.ok(err < 1e-2, `${name}: worst error ${err} of the gradient's scale`);
      });
    }

    test('ops.where, ops.clip and ops.minimum values and first derivatives', () => {
      const x = tf.tensor1d([-2, -0.3, 0.2, 0.7, 3]);
      assert.deepEqual(read(ops.clip(x, -0.5, 0.5)), [-0.5, -0.3, 0.2, 0.5, 0.5].map(Math.fround));
      const dclip = read(tf.grad((t: tf.Tensor) => tf.sum(ops.clip(t, -0.5, 0.5)))(x));
      assert.deepEqual(dclip, [0, 1, 1, 0, 0]);
      assert.deepEqual(read(ops.minimum(x, 0.5)), [-2, -0.3, 0.2, 0.5, 0.5].map(Math.fround));
      const w = (t: tf.Tensor): tf.Tensor => ops.where(tf.greater(t, 0), tf.square(t), tf.neg(t));
      assertClose(read(w(x)), [2, 0.3, 0.04, 0.49, 9], 1e-6, 1, 'where value');
      assertClose(
        read(tf.grad((t: tf.Tensor) => tf.sum(w(t)))(x)),
        [-1, -1, 0.4, 1.4, 6],
        1e-6,
        1,
        'where grad',
      );
      assert.throws(() => ops.where(tf.greater(x, 0), x, tf.zeros([2])), /one shape/);
    });

    for (const name of ops.SAFE_TF_OPS) {
      test(`SAFE_TF_OPS ${name}: d/dW || d/dx sum(C * g(xW)) ||^2 matches finite differences`, () => {
        const err = secondOrderError(SAFE_CASES[name]);
        assert.ok(err < 1e-2, `${name}: worst error ${err} of the gradient's scale`);
      });
    }

    test('matMul and linear: values and first-order gradients equal tfjs matMul / fused.matMul', () => {
      const x = tf.tensor2d(table(5, 3, 60));
      const w = tf.tensor2d(table(3, 4, 61));
      const b = tf.tensor1d(table(1, 4, 62)[0]!);
      const c = tf.tensor2d(table(5, 4, 63));
      assertClose(read(ops.matMul(x, w)), read(tf.matMul(x, w)), 1e-5, 1, 'matMul value');
      const mm = (f: typeof ops.matMul) => (a: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(c, f(a as tf.Tensor2D, bb as tf.Tensor2D)));
      const gOurs = tf.grads(mm(ops.matMul))([x, w]);
      const gTf = tf.grads(mm((a, bb) => tf.matMul(a, bb)))([x, w]);
      gOurs.forEach((g, i) => assertClose(read(g), read(gTf[i]!), 1e-5, 1, `matMul grad ${i}`));
      for (const activation of ['relu', 'linear'] as const) {
        type Lin = (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.Tensor;
        const ours: Lin = (a, ww, bb) =>
          ops.linear(a as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, activation);
        const theirs: Lin = (a, ww, bb) =>
          tf.fused.matMul({ a: a as tf.Tensor2D, b: ww as tf.Tensor2D, bias: bb, activation });
        assertClose(read(ours(x, w, b)), read(theirs(x, w, b)), 1e-5, 1, `${activation} value`);
        const loss = (f: Lin) => (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
          tf.sum(tf.mul(c, f(a, ww, bb)));
        const g1 = tf.grads(loss(ours))([x, w, b]);
        const g2 = tf.grads(loss(theirs))([x, w, b]);
        g1.forEach((g, i) =>
          assertClose(read(g), read(g2[i]!), 1e-5, 1, `${activation} grad ${i}`),
        );
      }
    });

    test('matMul and linear: d/dW and d/dbias || d/dx sum(C * g(x W + b)) ||^2 match differences', () => {
      const c = table(3, 4, 70);
      const cT = tf.tensor2d(c);
      const xT = tf.tensor2d(X);
      // z = X WS stays >= 0.045 from the ReLU kink, so the bias is 0 and h = 3e-3 crosses none.
      const b0 = [0, 0, 0, 0];
      const cases = [
        {
          name: 'linear relu, squared',
          op: (xx: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) =>
            tf.square(ops.linear(xx, w, b, 'relu')),
          gradZ: (z: Mat): Mat => z.map((r, i) => r.map((v, j) => 2 * c[i]![j]! * Math.max(v, 0))),
        },
        {
          name: 'linear, cubed',
          op: (xx: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => cube(ops.linear(xx, w, b)),
          gradZ: (z: Mat): Mat => z.map((r, i) => r.map((v, j) => 3 * c[i]![j]! * v * v)),
        },
        {
          name: 'matMul, cubed',
          op: (xx: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) =>
            cube(tf.add(ops.matMul(xx, w), b)),
          gradZ: (z: Mat): Mat => z.map((r, i) => r.map((v, j) => 3 * c[i]![j]! * v * v)),
        },
      ];
      for (const k of cases) {
        const F = (w: tf.Tensor, b: tf.Tensor): tf.Tensor => {
          const gx = tf.grad((xx: tf.Tensor) =>
            tf.sum(tf.mul(cT, k.op(xx as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D))),
          )(xT);
          return tf.sum(tf.square(gx));
        };
        const [gw, gb] = tf.grads(F)([tf.tensor2d(WS), tf.tensor1d(b0)]);
        const refW = flat(fimGrad64(X, WS, k.gradZ));
        const scale = Math.max(...refW.map(Math.abs));
        assert.ok(scale > 1e-3, `${k.name}: degenerate case`);
        const gotW = read(gw!);
        assertClose(gotW, refW, 1e-4, scale, `${k.name} dF/dW vs float64`);
        const fdW = fimGradFd32((w) => F(w, tf.tensor1d(b0)), WS, 3e-3);
        assertClose(gotW, fdW, 1e-2, scale, `${k.name} dF/dW vs float32 FD`);
        const h = 3e-3;
        const fdB = b0.map((_, j) => {
          const bp = b0.slice();
          const bm = b0.slice();
          bp[j]! += h;
          bm[j]! -= h;
          const at = (bb: number[]): number => read(F(tf.tensor2d(WS), tf.tensor1d(bb)))[0]!;
          return (at(bp) - at(bm)) / (2 * h);
        });
        const scaleB = Math.max(...fdB.map(Math.abs));
        assert.ok(scaleB > 1e-3, `${k.name}: degenerate bias case`);
        assertClose(read(gb!), fdB, 1e-2, scaleB, `${k.name} dF/dbias vs float32 FD`);
      }
      tf.dispose([cT, xT]);
    });
  });

  // Outside the leak-checked suite: when tf.grad throws, tfjs leaks the tensors its tape kept.
  describe(`tfjs' own gradients on ${backend} (the trap this module exists for)`, () => {
    before(async () => {
      await initBackend(backend);
    });

    test('TRAP documented: raw tf.exp gives a WRONG second-order gradient (fails if tfjs fixes it)', () => {
      const c = table(3, 4, 70);
      const ref = flat(
        fimGrad64(X, W, (z) => z.map((r, i) => r.map((v, j) => c[i]![j]! * Math.exp(v)))),
      );
      const xT = tf.tensor2d(X);
      const cT = tf.tensor2d(c);
      const raw = tf.tidy(() =>
        Array.from(
          tf
            .grad(fimObjectiveTf(xT, cT, tf.exp))(tf.tensor2d(W))
            .dataSync(),
        ),
      );
      const ours = tf.tidy(() =>
        Array.from(
          tf
            .grad(fimObjectiveTf(xT, cT, ops.exp))(tf.tensor2d(W))
            .dataSync(),
        ),
      );
      const scale = Math.max(...ref.map(Math.abs));
      const worst = (g: number[]): number =>
        Math.max(...g.map((v, i) => Math.abs(v - ref[i]!))) / scale;
      assert.ok(
        worst(raw) > 0.1,
        `raw tf.exp is off by ${worst(raw)} of the gradient's scale (expected > 0.1)`,
      );
      assert.ok(worst(ours) < 1e-4, `ops.exp is off by ${worst(ours)}`);
      // Without the matMul the broken link leaves x disconnected, and tfjs refuses outright.
      const x = tf.tensor1d([0.5, 1.5]);
      assert.throws(
        () => tf.grad(tf.grad((t: tf.Tensor) => tf.sum(tf.exp(t))))(x),
        /Cannot compute gradient/,
      );
      // And tf.logSumExp cannot be differentiated twice at all.
      assert.throws(() => tf.grad(tf.grad((t: tf.Tensor) => tf.sum(tf.logSumExp(t))))(x));
      tf.dispose([xT, cT, x]);
    });

    const UNSAFE: Record<string, (z: tf.Tensor) => tf.Tensor> = {
      'tf.tanh': (z) => tf.tanh(z),
      'tf.sigmoid': (z) => tf.sigmoid(z),
      'tf.elu': (z) => tf.elu(z),
      'tf.softmax': (z) => tf.softmax(z),
    };
    const THROWS: Record<string, (z: tf.Tensor) => tf.Tensor> = {
      'tf.minimum': (z) => tf.mul(tf.minimum(z, 0.1), z),
      'tf.clipByValue': (z) => tf.mul(tf.clipByValue(z, -0.5, 0.5), z),
      'tf.where': (z) => tf.where(tf.greater(z, 0), tf.square(z), cube(z)),
      'tf.max': (z) => tf.square(tf.max(z, 1)),
    };
    for (const [name, g] of Object.entries(THROWS)) {
      test(`TRAP documented: ${name} throws at second order (fails if tfjs fixes it)`, () => {
        assert.throws(() => secondOrderError(g), /gradient function not found/);
      });
    }

    test('TRAP documented: tf.softplus is right at second order, fails at third', () => {
      const pts = [-1.5, 0.5, 2];
      const x = tf.tensor1d(pts);
      const f = (t: tf.Tensor): tf.Tensor => tf.sum(tf.softplus(t));
      const d2 = read(tf.grad(tf.grad(f))(x));
      assertClose(
        d2,
        pts.map((v) => sig(v) * sig(-v)),
        1e-5,
        1e-6,
        "tf.softplus''",
      );
      // The third derivative loses d sigmoid / dx; with nothing else left, tfjs refuses outright.
      assert.throws(() => tf.grad(tf.grad(tf.grad(f)))(x), /Cannot compute gradient/);
    });

    for (const [name, g] of Object.entries(UNSAFE)) {
      test(`TRAP documented: ${name} is wrong at second order (fails if tfjs fixes it)`, () => {
        const err = tf.tidy(() => secondOrderError(g));
        assert.ok(err > 0.05, `${name}: error ${err} of the gradient's scale, expected > 0.05`);
      });
    }
  });
}
