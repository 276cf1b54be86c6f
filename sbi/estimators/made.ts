// MADE (Germain et al. 2015) conditioner with a context input: the autoregressive network that gives
// each transform of a MAF or NSF its per-dimension parameters. theta enters through masked weights,
// the (z-scored) context x through an unmasked block connected to every first-layer hidden unit.
// One matMul per layer: the P parameters of every dimension come out of one fused output layer.
import { tf } from '../backend.js';
import { linear, matMul, tanh } from '../ops.js';
import type { RandomStream } from '../types.js';
import { torchLinearUniform, type ParamStore } from './params.js';

export interface MadeSpec {
  thetaDim: number;
  ctxDim: number;
  hidden: number[];
  /** Parameters per dimension (2 for affine, 3K - 1 for a K-bin spline). */
  paramsPerDim: number;
  /** order[k] is the dimension conditioned on k earlier ones: a permutation of 0..thetaDim-1. */
  order: number[];
  /**
   * Output column of parameter p of dimension i: 'paramMajor' p * D + i (slices of [B, D] per
   * parameter), 'dimMajor' i * P + p (reshapes to [B * D, P]).
   */
  layout: 'paramMajor' | 'dimMajor';
  /**
   * Hidden degrees: 'cycle' (robustsbi: k mod D, every degree equally often) or 'linspace' (pyro's
   * ConditionalAutoRegressiveNN: round(linspace(1, D, h)) - 1, the end degrees half as often) or
   * 'nflows' (sbi's MADE: 1 + k mod (D - 1), no context-only units, so the first dimension of the
   * order gets its parameters from biases alone). Absent: 'cycle'.
   */
  degrees?: MadeDegrees;
  /** Biases start at 0 (robustsbi) or uniform +-1/sqrt(fan-in) as torch's nn.Linear. Absent: 'zero'. */
  biasInit?: BiasInit;
  /**
   * The fan-in the first layer's initialization reads: 'joint' (pyro's ConditionalAutoRegressiveNN,
   * one layer over theta and x together: D + ctxDim for both weight blocks and the bias) or
   * 'separate' (nflows' MADE, a masked layer over theta and its own context layer: D for the theta
   * weights and the bias, ctxDim for the context weights). Absent: 'joint'.
   */
  inputFanIn?: InputFanIn;
  /**
   * How x enters the first layer: 'linear' (h0 = act(W theta + Wc x + b)) or 'tanh' (nflows' MADE:
   * its own context layer with its own bias and a tanh, h0 = act(W theta + b + tanh(Wc x + bc)),
   * which bounds each unit's shift by x). Absent: 'linear'.
   */
  contextLayer?: ContextLayer;
  /** Hidden units' nonlinearity: 'relu' (robustsbi, RABI) or 'tanh' (sbi's nflows MADE). Absent: 'relu'. */
  activation?: MadeActivation;
}

export const MADE_ACTIVATIONS = ['relu', 'tanh'] as const;
export const CONTEXT_LAYERS = ['linear', 'tanh'] as const;
export type ContextLayer = (typeof CONTEXT_LAYERS)[number];
export type MadeActivation = (typeof MADE_ACTIVATIONS)[number];
export const MADE_DEGREES = ['cycle', 'linspace', 'nflows'] as const;
export type MadeDegrees = (typeof MADE_DEGREES)[number];
export type BiasInit = 'zero' | 'torch';
export const INPUT_FAN_INS = ['joint', 'separate'] as const;
export type InputFanIn = (typeof INPUT_FAN_INS)[number];

/** Per-call state: masked weights (W * mask, once per call, not per pass) and the context term. */
export interface MadeState {
  /** x_z @ W_ctx + b_0: [rows, H0]. */
  ctx: tf.Tensor2D;
  thetaW: tf.Tensor2D;
  hiddenW: tf.Tensor2D[];
  outW: tf.Tensor2D;
}

export interface MadeParts {
  thetaW: tf.Variable;
  ctxW: tf.Variable;
  inBias: tf.Variable;
  /** nflows' context layer's bias: h0 = act(W_theta u + b + tanh(W_ctx x + ctxBias)). */
  ctxBias?: tf.Variable;
  hiddenW: tf.Variable[];
  hiddenB: tf.Variable[];
  outW: tf.Variable;
  outB: tf.Variable;
}

export function validateOrder(order: number[], dim: number): void {
  const seen = new Set(order);
  if (
    order.length !== dim ||
    seen.size !== dim ||
    order.some((o) => !Number.isInteger(o) || o < 0 || o >= dim)
  ) {
    throw new Error(`order [${order}] is not a permutation of 0..${dim - 1}`);
  }
}

/**
 * Degrees of the hidden units, per layer: they cycle through 0..D-1. Degree-0 units see the context
 * only; they are what lets the first dimension of the order (degree 1, no theta inputs allowed)
 * depend on x at all. Unit k of a layer may feed unit k' of the next iff deg k <= deg k'.
 */
export function hiddenDegrees(spec: Pick<MadeSpec, 'thetaDim' | 'hidden' | 'degrees'>): number[][] {
  const D = spec.thetaDim;
  if (spec.degrees === 'linspace')
    return spec.hidden.map((h) =>
      Array.from(
        { length: h },
        (_, k) => roundHalfEven(h > 1 ? 1 + (k * (D - 1)) / (h - 1) : 1) - 1,
      ),
    );
  if (spec.degrees === 'nflows') {
    // nflows' MaskedLinear: degrees 1..D-1 (0 for D = 1); every unit sees x and some of theta.
    const span = Math.max(1, D - 1);
    const low = Math.min(1, D - 1);
    return spec.hidden.map((h) => Array.from({ length: h }, (_, k) => (k % span) + low));
  }
  return spec.hidden.map((h) => Array.from({ length: h }, (_, k) => k % D));
}

/** torch.round: halves to the even neighbour. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The MADE masks for `spec`, as row-major 0/1 arrays [fanIn, fanOut]. Exported for tests. */
export function madeMasks(spec: MadeSpec): {
  input: Float32Array;
  hidden: Float32Array[];
  output: Float32Array;
} {
  const D = spec.thetaDim;
  const P = spec.paramsPerDim;
  validateOrder(spec.order, D);
  // Input degree of dimension i: 1 + its position in the order.
  const inDeg = new Array<number>(D);
  spec.order.forEach((dim, k) => (inDeg[dim] = k + 1));
  const hidDeg = hiddenDegrees(spec);
  const dense = (
    rows: number,
    cols: number,
    ok: (r: number, c: number) => boolean,
  ): Float32Array => {
    const m = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) m[r * cols + c] = ok(r, c) ? 1 : 0;
    return m;
  };
  const first = hidDeg[0]!;
  const input = dense(D, first.length, (r, c) => inDeg[r]! <= first[c]!);
  const hidden: Float32Array[] = [];
  for (let l = 1; l < hidDeg.length; l++) {
    const prev = hidDeg[l - 1]!;
    const cur = hidDeg[l]!;
    hidden.push(dense(prev.length, cur.length, (r, c) => prev[r]! <= cur[c]!));
  }
  const last = hidDeg[hidDeg.length - 1]!;
  const colDim = (c: number): number => (spec.layout === 'paramMajor' ? c % D : Math.floor(c / P));
  const output = dense(last.length, P * D, (r, c) => last[r]! < inDeg[colDim(c)]!);
  return { input, hidden, output };
}

export class Made {
  readonly spec: MadeSpec;
  private readonly thetaW: tf.Variable;
  private readonly ctxW: tf.Variable;
  private readonly inBias: tf.Variable;
  private readonly hiddenW: tf.Variable[] = [];
  private readonly hiddenB: tf.Variable[] = [];
  private readonly outW: tf.Variable;
  private readonly outB: tf.Variable;
  /** nflows' context-layer bias (contextLayer 'tanh' only). */
  private readonly ctxB: tf.Variable | null;
  private readonly inMask: tf.Tensor2D;
  private readonly hiddenMasks: tf.Tensor2D[];
  private readonly outMask: tf.Tensor2D;

  constructor(store: ParamStore, prefix: string, spec: MadeSpec, rng: RandomStream) {
    if (spec.hidden.length === 0) throw new Error('MADE needs at least one hidden layer');
    this.spec = spec;
    const D = spec.thetaDim;
    const H = spec.hidden;
    const out = spec.paramsPerDim * D;
    const separate = spec.inputFanIn === 'separate';
    const fanIn0 = separate ? D : D + spec.ctxDim;
    this.thetaW = store.add(
      `${prefix}.in.theta`,
      [D, H[0]!],
      torchLinearUniform(rng, fanIn0, D * H[0]!),
    );
    this.ctxW = store.add(
      `${prefix}.in.ctx`,
      [spec.ctxDim, H[0]!],
      torchLinearUniform(rng, separate ? Math.max(1, spec.ctxDim) : fanIn0, spec.ctxDim * H[0]!),
    );
    // torch's nn.Linear draws its bias after its weight, from the same bound.
    const bias = (fanIn: number, size: number): Float32Array | undefined =>
      spec.biasInit === 'torch' ? torchLinearUniform(rng, fanIn, size) : undefined;
    this.ctxB =
      spec.contextLayer === 'tanh'
        ? store.add(`${prefix}.in.ctxBias`, [H[0]!], bias(Math.max(1, spec.ctxDim), H[0]!))
        : null;
    this.inBias = store.add(`${prefix}.in.bias`, [H[0]!], bias(fanIn0, H[0]!));
    for (let l = 1; l < H.length; l++) {
      this.hiddenW.push(
        store.add(
          `${prefix}.h${l}.weight`,
          [H[l - 1]!, H[l]!],
          torchLinearUniform(rng, H[l - 1]!, H[l - 1]! * H[l]!),
        ),
      );
      this.hiddenB.push(store.add(`${prefix}.h${l}.bias`, [H[l]!], bias(H[l - 1]!, H[l]!)));
    }
    const last = H[H.length - 1]!;
    this.outW = store.add(
      `${prefix}.out.weight`,
      [last, out],
      torchLinearUniform(rng, last, last * out),
    );
    this.outB = store.add(`${prefix}.out.bias`, [out], bias(last, out));
    const masks = madeMasks(spec);
    this.inMask = tf.keep(tf.tensor2d(masks.input, [D, H[0]!]));
    this.hiddenMasks = masks.hidden.map((m, i) => tf.keep(tf.tensor2d(m, [H[i]!, H[i + 1]!])));
    this.outMask = tf.keep(tf.tensor2d(masks.output, [last, out]));
  }

  /**
   * Masked weights and the context term for z-scored context rows xz; `repeat` tiles the context
   * term so that n samples per x share one context matMul.
   */
  prepare(xz: tf.Tensor2D, repeat = 1): MadeState {
    let ctx = this.ctxB
      ? (tf.add(
          tanh(linear(xz, this.ctxW as tf.Tensor2D, this.ctxB as tf.Tensor1D)),
          this.inBias,
        ) as tf.Tensor2D)
      : linear(xz, this.ctxW as tf.Tensor2D, this.inBias as tf.Tensor1D);
    if (repeat > 1) ctx = tf.tile(ctx, [repeat, 1]);
    return {
      ctx,
      thetaW: tf.mul(this.thetaW, this.inMask) as tf.Tensor2D,
      hiddenW: this.hiddenW.map((w, i) => tf.mul(w, this.hiddenMasks[i]!) as tf.Tensor2D),
      outW: tf.mul(this.outW, this.outMask) as tf.Tensor2D,
    };
  }

  /** Parameters [rows, P * D] for (z-scored) theta u [rows, D]; output i depends on u_<i in order. */
  forward(u: tf.Tensor2D, s: MadeState): tf.Tensor2D {
    // ops.tanh, not tf.tanh: the FIM regularizer differentiates this pass twice (see ops.ts).
    const tanhUnits = this.spec.activation === 'tanh';
    const act = (z: tf.Tensor2D): tf.Tensor2D => (tanhUnits ? tanh(z) : tf.relu(z)) as tf.Tensor2D;
    // The first layer's "bias" is the per-row context term, which wasm's fused kernel does not take.
    let h = act(tf.add(matMul(u, s.thetaW), s.ctx) as tf.Tensor2D);
    // Fused matMul + bias + ReLU: one kernel per layer (ops.linear: exact at second order, tested).
    for (let l = 0; l < s.hiddenW.length; l++) {
      const b = this.hiddenB[l]! as tf.Tensor1D;
      h = tanhUnits ? act(linear(h, s.hiddenW[l]!, b)) : linear(h, s.hiddenW[l]!, b, 'relu');
    }
    return linear(h, s.outW, this.outB as tf.Tensor1D);
  }

  /** The variables in layer order, for kernels that run this MADE outside tfjs (maf-fused.ts). */
  parts(): MadeParts {
    return {
      thetaW: this.thetaW,
      ctxW: this.ctxW,
      inBias: this.inBias,
      ...(this.ctxB ? { ctxBias: this.ctxB } : {}),
      hiddenW: [...this.hiddenW],
      hiddenB: [...this.hiddenB],
      outW: this.outW,
      outB: this.outB,
    };
  }

  dispose(): void {
    this.inMask.dispose();
    for (const m of this.hiddenMasks) m.dispose();
    this.outMask.dispose();
  }
}
