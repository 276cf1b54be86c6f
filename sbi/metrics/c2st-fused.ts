// sbibm's C2ST classifier (two ReLU layers, one logit; metrics/c2st.ts) trained on the fused MAF
// step's WebAssembly products instead of tfjs ops. On tfjs-wasm a classifier step of 200 rows cost
// 2.0 to 2.7 ms of CPU whatever d (per-op dispatch), so a 10,000-row C2ST took minutes per
// observation; the same step here is a dozen kernel calls on one memory, 5 to 15 times cheaper
// (bench/c2st-speed.ts).
// The network, its initial weights, its batches, its loss and its Adam are the tfjs path's, so the
// two differ only by float rounding.
//
// Layout: gemm wants row blocks of 4 and column blocks of 8, so the hidden width is padded to a
// multiple of 8, the input to a multiple of 4 (the first layer's weight gradient has it as rows)
// and the single logit to 8 columns. Padded weights start at zero and get zero gradients (ReLU of a
// zero unit is zero and passes no gradient; the padded logit columns are never seeded), so Adam and
// the L2 penalty leave them at zero and the network is exactly the unpadded one.
import { MafKernels } from '../wasm/maf-kernels.js';

/** One dense layer, row-major [fanIn x fanOut] weights and [fanOut] biases. */
export interface DenseLayer {
  w: Float32Array;
  b: Float32Array;
}

export interface AdamSettings {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

const pad = (n: number, m: number): number => Math.ceil(n / m) * m;
const LOGIT_COLS = 8;

/**
 * The classifier on its own WebAssembly instance: the pooled rows held once, batches gathered by
 * row number, forward, backward, L2 and Adam in place.
 */
export class FusedMlpClassifier {
  private readonly k = new MafKernels();
  private readonly dimP: number;
  private readonly Hp: number;
  private readonly bP: number;
  private next: number;
  // Addresses (bytes).
  private readonly data: number;
  private readonly idx: number;
  private readonly xb: number;
  private readonly h1: number;
  private readonly h2: number;
  private readonly z: number;
  private readonly dz: number;
  private readonly dh2: number;
  private readonly dh1: number;
  private readonly w2t: number;
  private readonly w3t: number;
  /** Parameters: the three weights, then the three biases (the L2 penalty covers the first block). */
  private readonly p: number;
  private readonly g: number;
  private readonly m: number;
  private readonly v: number;
  private readonly nParams: number;
  private readonly nWeights: number;
  /** Offsets (floats) of W1, W2, W3, b1, b2, b3 inside a parameter block. */
  private readonly at: { w1: number; w2: number; w3: number; b1: number; b2: number; b3: number };
  private t = 0;

  /**
   * @param data pooled rows, row-major with `dim` columns (copied in once)
   * @param labels 0 or 1 per row of `data`
   * @param width hidden units per layer
   * @param maxBatch the most rows one step or prediction takes
   */
  constructor(
    data: Float32Array,
    private readonly labels: Float32Array,
    private readonly dim: number,
    private readonly width: number,
    maxBatch: number,
  ) {
    const k = this.k;
    const n = data.length / dim;
    if (labels.length !== n) throw new Error('FusedMlpClassifier: one label per row is needed.');
    const dimP = (this.dimP = pad(dim, 4));
    const Hp = (this.Hp = pad(width, 8));
    const bP = (this.bP = pad(maxBatch, 4));
    this.next = pad(k.heapBase(), 16);
    this.data = this.alloc(data.length);
    this.idx = this.alloc(bP);
    this.xb = this.alloc(bP * dimP);
    this.h1 = this.alloc(bP * Hp);
    this.h2 = this.alloc(bP * Hp);
    this.z = this.alloc(bP * LOGIT_COLS);
    this.dz = this.alloc(bP * LOGIT_COLS);
    this.dh2 = this.alloc(bP * Hp);
    this.dh1 = this.alloc(bP * Hp);
    this.w2t = this.alloc(Hp * Hp);
    this.w3t = this.alloc(LOGIT_COLS * Hp);
    const w1 = 0;
    const w2 = w1 + dimP * Hp;
    const w3 = w2 + Hp * Hp;
    const b1 = w3 + Hp * LOGIT_COLS;
    const b2 = b1 + Hp;
    const b3 = b2 + Hp;
    this.at = { w1, w2, w3, b1, b2, b3 };
    this.nWeights = b1;
    this.nParams = pad(b3 + LOGIT_COLS, 4);
    this.p = this.alloc(this.nParams);
    this.g = this.alloc(this.nParams);
    this.m = this.alloc(this.nParams);
    this.v = this.alloc(this.nParams);
    const need = this.next - k.memory.buffer.byteLength;
    if (need > 0) k.memory.grow(Math.ceil(need / 65536));
    // A fresh instance's memory is zero: padded columns and rows stay so unless written below.
    this.f32().set(data, this.data / 4);
  }

  private alloc(floats: number): number {
    const at = this.next;
    this.next = pad(this.next + floats * 4, 16);
    return at;
  }

  /** The memory as floats (a fresh view: it never grows after construction). */
  private f32(): Float32Array {
    return new Float32Array(this.k.memory.buffer);
  }

  /** Sets the three layers' weights (unpadded shapes) and zeroes Adam's moments and step count. */
  reset(layers: readonly DenseLayer[]): void {
    if (layers.length !== 3) throw new Error('FusedMlpClassifier: three layers are needed.');
    const f = this.f32();
    const P = this.p / 4;
    f.fill(0, P, P + this.nParams);
    f.fill(0, this.m / 4, this.m / 4 + this.nParams);
    f.fill(0, this.v / 4, this.v / 4 + this.nParams);
    const shapes = this.shapes();
    layers.forEach((l, i) => {
      const s = shapes[i]!;
      if (l.w.length !== s.rows * s.cols || l.b.length !== s.cols)
        throw new Error(`FusedMlpClassifier: layer ${i + 1} has the wrong shape.`);
      for (let r = 0; r < s.rows; r++)
        f.set(l.w.subarray(r * s.cols, (r + 1) * s.cols), P + s.w + r * s.ld);
      f.set(l.b, P + s.b);
    });
    this.t = 0;
  }

  /** The layers' weights as reset takes them (copies). */
  layers(): DenseLayer[] {
    return this.read(this.p);
  }

  /** Each shape: rows and columns as trained, stored leading dimension, offsets of W and b. */
  private shapes(): { rows: number; cols: number; ld: number; w: number; b: number }[] {
    const { dim, width, Hp, at } = this;
    return [
      { rows: dim, cols: width, ld: Hp, w: at.w1, b: at.b1 },
      { rows: width, cols: width, ld: Hp, w: at.w2, b: at.b2 },
      { rows: width, cols: 1, ld: LOGIT_COLS, w: at.w3, b: at.b3 },
    ];
  }

  private read(base: number): DenseLayer[] {
    const f = this.f32();
    const B = base / 4;
    return this.shapes().map((s) => {
      const w = new Float32Array(s.rows * s.cols);
      for (let r = 0; r < s.rows; r++)
        w.set(f.subarray(B + s.w + r * s.ld, B + s.w + r * s.ld + s.cols), r * s.cols);
      return { w, b: f.slice(B + s.b, B + s.b + s.cols) };
    });
  }

  /** Gathers `rows` (row numbers of the pooled data) into the batch and runs the forward pass. */
  private forward(rows: Int32Array): void {
    const { k, dim, dimP, Hp, width } = this;
    const n = rows.length;
    if (n < 1 || n > this.bP)
      throw new Error(`FusedMlpClassifier: a batch holds 1 to ${this.bP} rows, got ${n}.`);
    const nP = pad(n, 4);
    const f = this.f32();
    new Int32Array(this.k.memory.buffer).set(rows, this.idx / 4);
    k.gatherRows({
      src: this.data,
      lds: dim,
      idx: this.idx,
      count: n,
      cols: dim,
      dst: this.xb,
      ldd: dimP,
    });
    // Rows past a short batch are zero, so their activations are finite and are never read.
    if (nP > n) f.fill(0, this.xb / 4 + n * dimP, this.xb / 4 + nP * dimP);
    const P = this.p;
    const { at } = this;
    k.gemm({
      a: this.xb,
      rowStrideA: dimP,
      colStrideA: 1,
      b: P + 4 * at.w1,
      ldb: Hp,
      c: this.h1,
      ldc: Hp,
      M: nP,
      K: dim,
      N: Hp,
      bias: P + 4 * at.b1,
      relu: true,
    });
    k.gemm({
      a: this.h1,
      rowStrideA: Hp,
      colStrideA: 1,
      b: P + 4 * at.w2,
      ldb: Hp,
      c: this.h2,
      ldc: Hp,
      M: nP,
      K: width,
      N: Hp,
      bias: P + 4 * at.b2,
      relu: true,
    });
    k.gemm({
      a: this.h2,
      rowStrideA: Hp,
      colStrideA: 1,
      b: P + 4 * at.w3,
      ldb: LOGIT_COLS,
      c: this.z,
      ldc: LOGIT_COLS,
      M: nP,
      K: width,
      N: LOGIT_COLS,
      bias: P + 4 * at.b3,
    });
  }

  /** The logit of each row (row numbers of the pooled data), in order. */
  logits(rows: Int32Array): Float32Array {
    const out = new Float32Array(rows.length);
    for (let s = 0; s < rows.length; s += this.bP) {
      const chunk = rows.subarray(s, Math.min(rows.length, s + this.bP));
      this.forward(chunk);
      const f = this.f32();
      for (let r = 0; r < chunk.length; r++) out[s + r] = f[this.z / 4 + r * LOGIT_COLS]!;
    }
    return out;
  }

  /**
   * Forward and backward on one batch: leaves the gradient of sklearn's batch loss (mean log-loss
   * plus alpha / 2 / n * sum ||W||^2) in g and returns that loss at the current weights.
   */
  private lossAndGradientInPlace(rows: Int32Array, alpha: number): number {
    const { k, dimP, Hp, width } = this;
    const n = rows.length;
    const nP = pad(n, 4);
    this.forward(rows);
    const f = this.f32();
    const Z = this.z / 4;
    const DZ = this.dz / 4;
    let bce = 0;
    for (let r = 0; r < n; r++) {
      const zr = f[Z + r * LOGIT_COLS]!;
      const y = this.labels[rows[r]!]!;
      // softplus(z) - y z and its derivative sigmoid(z) - y from one exp(-|z|), stable for large |z|.
      const e = Math.exp(-Math.abs(zr));
      bce += Math.max(zr, 0) + Math.log1p(e) - y * zr;
      const sig = zr >= 0 ? 1 / (1 + e) : e / (1 + e);
      f[DZ + r * LOGIT_COLS] = (sig - y) / n;
    }
    // Only column 0 of dz is ever written; rows past the batch are zeroed for the products.
    for (let r = n; r < nP; r++) f[DZ + r * LOGIT_COLS] = 0;

    const P = this.p;
    const G = this.g;
    const { at } = this;
    // Logit layer (only dz's column 0 is nonzero, so dH2 = dz W3^T reads one column), then the
    // second layer, then the first; ReLU's backward between them.
    this.weightGradient(this.h2, Hp, Hp, this.dz, LOGIT_COLS, n, at.w3, at.b3);
    this.inputGradient(this.dz, LOGIT_COLS, 1, at.w3, LOGIT_COLS, this.w3t, this.dh2, nP);
    k.reluBackward(this.dh2, this.h2, nP * Hp);
    this.weightGradient(this.h1, Hp, Hp, this.dh2, Hp, n, at.w2, at.b2);
    this.inputGradient(this.dh2, Hp, width, at.w2, Hp, this.w2t, this.dh1, nP);
    k.reluBackward(this.dh1, this.h1, nP * Hp);
    this.weightGradient(this.xb, dimP, dimP, this.dh1, Hp, n, at.w1, at.b1);

    // L2 on the weights (not the biases), as sklearn: its loss, and alpha / n * W in the gradient.
    const W = f.subarray(P / 4, P / 4 + this.nWeights);
    let sq = 0;
    for (let i = 0; i < W.length; i++) sq += W[i]! * W[i]!;
    k.axpby(G, 1, P, alpha / n, G, this.nWeights);
    return bce / n + (0.5 * alpha * sq) / n;
  }

  /** dW = input^T dOut (fanInP rows) and db = dOut's column sums, over the batch's n rows. */
  private weightGradient(
    input: number,
    ldIn: number,
    fanInP: number,
    dOut: number,
    ldOut: number,
    n: number,
    w: number,
    b: number,
  ): void {
    const c = this.g + 4 * w;
    this.k.gemm({
      a: input,
      rowStrideA: 1,
      colStrideA: ldIn,
      b: dOut,
      ldb: ldOut,
      c,
      ldc: ldOut,
      M: fanInP,
      K: n,
      N: ldOut,
    });
    this.k.colSum(dOut, ldOut, n, ldOut, this.g + 4 * b);
  }

  /**
   * dIn = dOut W^T over nP rows from dOut's first kOut columns, W being Hp rows of ldW floats: W is
   * transposed into `scratch` first, since gemm reads B row-major.
   */
  private inputGradient(
    dOut: number,
    ldOut: number,
    kOut: number,
    w: number,
    ldW: number,
    scratch: number,
    dIn: number,
    nP: number,
  ): void {
    const { Hp } = this;
    this.k.transpose(this.p + 4 * w, ldW, Hp, ldW, scratch, Hp);
    this.k.gemm({
      a: dOut,
      rowStrideA: ldOut,
      colStrideA: 1,
      b: scratch,
      ldb: Hp,
      c: dIn,
      ldc: Hp,
      M: nP,
      K: kOut,
      N: Hp,
    });
  }

  /** The batch loss and its gradient per layer (unpadded), without a step. */
  lossAndGradient(rows: Int32Array, alpha: number): { loss: number; gradient: DenseLayer[] } {
    const loss = this.lossAndGradientInPlace(rows, alpha);
    return { loss, gradient: this.read(this.g) };
  }

  /** One Adam step on the batch's loss; returns the loss before the step. */
  step(rows: Int32Array, alpha: number, adam: AdamSettings): number {
    const loss = this.lossAndGradientInPlace(rows, alpha);
    this.t++;
    this.k.adam({
      p: this.p,
      g: this.g,
      m: this.m,
      v: this.v,
      n: this.nParams,
      coef: 1,
      beta1: adam.beta1,
      beta2: adam.beta2,
      stepSize: adam.learningRate / (1 - adam.beta1 ** this.t),
      sqrtBc2: Math.sqrt(1 - adam.beta2 ** this.t),
      epsilon: adam.epsilon,
    });
    return loss;
  }
}
