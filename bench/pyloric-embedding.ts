// RABI's pyloric embedding (per-neuron CNN + MLP, 2,400 -> 100) on one backend: forward, weight
// gradient, x gradient and the FIM's second order (d/dW ||d/dx sum f||^2) per batch, with the
// convolution family of sbi/estimators/conv1d-ops.ts against the unfold + matMul + mask pooling it
// replaced (kept here as the baseline, same process, same weights). Median of --reps runs after one
// warm-up; peak RSS at the end. `npm run bench -- pyloric-embedding [--batch 512] [--reps 3]`.
import { initBackend, tf } from '../sbi/backend.js';
import { linear } from '../sbi/ops.js';
import { ParamStore } from '../sbi/estimators/params.js';
import { PyloricCnn } from '../sbi/estimators/pyloric-cnn.js';
import { PYLORIC_CNN_DEFAULTS } from '../sbi/estimators/pyloric-cnn.js';
import { createRng } from '../sbi/rng.js';
import { numberArg, parseArgs } from './args.js';

/** The previous conv1d: k shifted slices concatenated, one fused product. */
function unfoldConv(
  h: tf.Tensor3D,
  w: tf.Tensor2D,
  bias: tf.Tensor1D,
  kernel: number,
  padding: number,
  activation: 'relu' | 'linear' = 'relu',
): tf.Tensor3D {
  const [b, length, cin] = h.shape;
  const z = tf.zeros([b, padding, cin]);
  const p = tf.concat([z, h, z], 1);
  const lout = length + 2 * padding - kernel + 1;
  const shifts: tf.Tensor[] = [];
  for (let j = 0; j < kernel; j++) shifts.push(tf.slice(p, [0, j, 0], [b, lout, cin]));
  const patches = tf.concat(shifts, 2);
  const y = linear(tf.reshape(patches, [b * lout, kernel * cin]), w, bias, activation);
  return tf.reshape(y, [b, lout, w.shape[1]]);
}

/** The previous max pooling: a first-maximum mask from k slices, the gradient a product with it. */
const maskPool = (h: tf.Tensor3D, pool: number): tf.Tensor3D => {
  const [b, length, c] = h.shape;
  const lp = Math.floor(length / pool);
  const used = tf.slice(h, [0, 0, 0], [b, lp * pool, c]);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const windows = tf.reshape(args[0] as tf.Tensor, [b * lp, pool, c]) as tf.Tensor3D;
    const n = b * lp;
    const value = tf.max(windows, 1);
    const mask = tf.tidy(() => {
      const parts: tf.Tensor[] = [];
      let free: tf.Tensor = tf.onesLike(value);
      for (let j = 0; j < pool; j++) {
        const at = tf.reshape(tf.slice(windows, [0, j, 0], [n, 1, c]), [n, c]);
        const hit = tf.mul(free, tf.cast(tf.equal(at, value), 'float32'));
        parts.push(tf.reshape(hit, [n, 1, c]));
        free = tf.sub(free, hit);
      }
      return tf.concat(parts, 1);
    });
    (args[1] as tf.GradSaveFunc)([mask]);
    return {
      value: tf.reshape(value, [b, lp, c]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.reshape(tf.mul(tf.reshape(dy, [n, 1, c]), saved[0]!), [b, lp * pool, c]),
    };
  });
  return op(used) as tf.Tensor3D;
};

interface Timing {
  forwardMs: number;
  weightGradMs: number;
  xGradMs: number;
  fimSecondOrderMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

type Forward = (x: tf.Tensor2D) => tf.Tensor2D;

/** The network's forward with the baseline blocks, on the same weights (by their names). */
function baselineForward(store: ParamStore): Forward {
  const names = store.get().map((w) => w.name);
  const vars = store.variables();
  const v = (name: string) => vars[names.indexOf(name)]!;
  const o = PYLORIC_CNN_DEFAULTS;
  return (x) => {
    const b = x.shape[0];
    const len = x.shape[1] / o.series;
    const outs: tf.Tensor2D[] = [];
    for (let s = 0; s < o.series; s++) {
      let h = tf.reshape(tf.slice(x, [0, s * len], [b, len]), [b, len, 1]) as tf.Tensor3D;
      for (let i = 1; i <= o.channels.length; i++) {
        const w = v(`e.cnn${s}.conv${i}.weight`) as tf.Tensor2D;
        h = unfoldConv(h, w, v(`e.cnn${s}.conv${i}.bias`) as tf.Tensor1D, o.kernel, o.padding);
        h = maskPool(h, o.pool);
      }
      const [, lp, c] = h.shape;
      let out = tf.reshape(tf.transpose(h, [0, 2, 1]), [b, c * lp]) as tf.Tensor2D;
      for (let k = 1; k <= o.linearUnits.length + 1; k++)
        out = linear(
          out,
          v(`e.cnn${s}.fc${k}.weight`) as tf.Tensor2D,
          v(`e.cnn${s}.fc${k}.bias`) as tf.Tensor1D,
          'relu',
        );
      outs.push(out);
    }
    let h = tf.concat(outs, 1) as tf.Tensor2D;
    for (let l = 1; l <= o.mlp.length; l++)
      h = linear(
        h,
        v(`e.mlp.l${l}.weight`) as tf.Tensor2D,
        v(`e.mlp.l${l}.bias`) as tf.Tensor1D,
        l < o.mlp.length ? 'relu' : 'linear',
      );
    return h;
  };
}

function measure(forward: Forward, vars: tf.Variable[], x: tf.Tensor2D, reps: number): Timing {
  const time = (f: () => void): number => {
    f();
    const t: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      f();
      t.push(performance.now() - t0);
    }
    return median(t);
  };
  const out = (y: tf.Tensor2D) => tf.sum(tf.square(y)) as tf.Scalar;
  const dx = (v: tf.Tensor) => tf.grad((u: tf.Tensor) => out(forward(u as tf.Tensor2D)))(v);
  return {
    forwardMs: time(() => tf.tidy(() => void forward(x).dataSync())),
    weightGradMs: time(() =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => out(forward(x)), vars);
        Object.values(grads).forEach((g) => g.dataSync());
      }),
    ),
    xGradMs: time(() => tf.tidy(() => void dx(x).dataSync())),
    fimSecondOrderMs: time(() =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(dx(x))) as tf.Scalar, vars);
        Object.values(grads).forEach((g) => g.dataSync());
      }),
    ),
  };
}

export async function cli(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const batch = numberArg(args, 'batch', 512);
  const reps = numberArg(args, 'reps', 3);
  const backend = await initBackend(args.get('backend'));
  const store = new ParamStore();
  const net = new PyloricCnn(store, 'e', 2400, createRng(1));
  const vars = store.variables();
  const x = tf.tidy(() => tf.mul(createRng(2).normalTensor([batch, 2400]), 15)) as tf.Tensor2D;
  const base = baselineForward(store);
  // Both paths on the same weights and input: they must agree before their times mean anything.
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(net.forward(x), base(x)))).dataSync()[0]!);
  if (!(diff < 1e-3)) throw new Error(`baseline and conv family disagree by ${diff}`);
  const ops = measure((v) => net.forward(v), vars, x, reps);
  const baseline = measure(base, vars, x, reps);
  const rows = (Object.keys(ops) as (keyof Timing)[]).map((k) => ({
    step: k,
    baselineMs: Math.round(baseline[k]),
    convFamilyMs: Math.round(ops[k]),
    speedup: Number((baseline[k] / ops[k]).toFixed(2)),
  }));
  console.log(
    JSON.stringify(
      {
        backend: backend.name,
        batch,
        reps,
        maxAbsDifference: diff,
        rows,
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      },
      null,
      2,
    ),
  );
}
