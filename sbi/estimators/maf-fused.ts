// The plain-NLL training step of an affine MAF (RABI's estimator) as one pass of hand-written
// WebAssembly kernels (sbi/wasm/maf-step.as.ts): gather the batch, forward through every MADE and
// affine transform, backward, clip and Adam over one flat parameter buffer. It computes what
// trainNPE's tfjs step computes (same masks, same formulas, float32; Adam with float64
// intermediates as the host Adam), at a fraction of the dispatch cost: tfjs issues ~400 kernels per
// step at ~15 us each. Weights and Adam moments move between the tf.Variables and the module's
// memory once per epoch (load / store), so validation, snapshots and checkpoints stay in tfjs.
//
// Masked weights are kept at 0 in the flat buffer (the forward pass then needs no W * mask) and
// their gradients are masked to 0, which leaves their Adam moments at 0, as in tfjs; `store`
// writes back only the unmasked entries, so the variables' masked entries keep their values.
import { tf } from '../backend.js';
import type { AdamHostState, FusedTrainer } from '../types.js';
import { WASM_BASE64 } from '../wasm/maf-step.wasm.js';
import { LOG_2PI } from './base.js';
import type { MadeParts } from './made.js';

// The tsconfig's lib (ES2023, no DOM) has no WebAssembly types; these are the parts used here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Kernels {
  memory: WasmMemory;
  heapBase(): number;
  gemm(
    a: number,
    sai: number,
    sak: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
    M: number,
    K: number,
    N: number,
    bias: number,
    accumulate: number,
    relu: number,
  ): void;
  transpose(src: number, lds: number, rows: number, cols: number, dst: number, ldd: number): void;
  colSum(src: number, lds: number, rows: number, cols: number, dst: number): void;
  reluBackward(d: number, h: number, n: number): void;
  gatherRows(
    src: number,
    lds: number,
    idx: number,
    count: number,
    cols: number,
    dst: number,
    ldd: number,
  ): void;
  affineForward(
    u: number,
    ldu: number,
    out: number,
    ldo: number,
    z: number,
    n: number,
    D: number,
    sMin: number,
    sMax: number,
    logDet: number,
    accumulate: number,
  ): void;
  affineBackward(
    ldu: number,
    out: number,
    ldo: number,
    z: number,
    dz: number,
    du: number,
    dOut: number,
    n: number,
    nPad: number,
    D: number,
    sMin: number,
    sMax: number,
    invN: number,
  ): void;
  baseLoss(
    z: number,
    ldz: number,
    logDet: number,
    n: number,
    nPad: number,
    D: number,
    dz: number,
  ): number;
  maskAndNormSq(g: number, mask: number, n: number): number;
  adam(
    p: number,
    g: number,
    m: number,
    v: number,
    n: number,
    coef: number,
    b1: number,
    b2: number,
    stepSize: number,
    sqrtBc2: number,
    eps: number,
  ): void;
}

let compiled: object | undefined;

/** A fresh instance (its own memory) per trainer, so concurrent trainings never share buffers. */
function instantiate(): Kernels {
  compiled ??= new wasmApi.Module(Buffer.from(WASM_BASE64, 'base64'));
  return new wasmApi.Instance(compiled, {}).exports as unknown as Kernels;
}

const pad = (n: number, k: number): number => Math.ceil(n / k) * k;

/** One variable's place in the flat buffer: rows x cols of it, padded to ld columns. */
interface Slot {
  variable: tf.Variable;
  rows: number;
  cols: number;
  ld: number;
  /** Byte address in the parameter buffer; the same offset addresses its gradient, mask, moments. */
  offset: number;
  /** 0/1 per entry (rows x cols), null when every entry is trained. */
  mask: Float32Array | null;
}

interface MadeLayout {
  thetaW: Slot;
  ctxW: Slot;
  inBias: Slot;
  hiddenW: Slot[];
  hiddenB: Slot[];
  outW: Slot;
  outB: Slot;
  /** Per-transform activations: hidden outputs, MADE output, the transform's output z. */
  h: number[];
  out: number;
  z: number;
}

export interface FusedMafSpec {
  thetaDim: number;
  ctxDim: number;
  hidden: number[];
  logScaleMin: number;
  logScaleMax: number;
  /** sum log thetaStd: the density's constant from z-scoring theta. */
  thetaLogScale: number;
  mades: {
    parts: MadeParts;
    masks: { input: Float32Array; hidden: Float32Array[]; output: Float32Array };
  }[];
  /** z-scored training theta [n, thetaDim] and conditioner input (z-scored x) [n, ctxDim]. */
  u: Float32Array;
  xz: Float32Array;
  n: number;
  maxBatch: number;
}

export class FusedMafTrainer implements FusedTrainer {
  private readonly k: Kernels;
  private readonly D: number;
  private readonly C: number;
  private readonly H: number[];
  private readonly Hp: number[];
  private readonly Dn: number;
  private readonly Cp: number;
  private readonly Op: number;
  private readonly Bmax: number;
  private readonly nData: number;
  private readonly layouts: MadeLayout[];
  private readonly slots: Slot[] = [];
  private readonly total: number;
  private readonly params: number;
  private readonly grads: number;
  private readonly mask: number;
  private readonly m: number;
  private readonly v: number;
  private readonly dataU: number;
  private readonly dataX: number;
  private readonly batchX: number;
  private readonly batchU: number;
  private readonly idx: number;
  private readonly logDet: number;
  private readonly dz: number;
  private readonly du: number;
  private readonly dOut: number;
  private readonly dH: number[];
  private readonly wT: number;
  private readonly sMin: number;
  private readonly sMax: number;
  private readonly constant: number;
  private next: number;

  constructor(spec: FusedMafSpec) {
    this.k = instantiate();
    const D = (this.D = spec.thetaDim);
    const C = (this.C = spec.ctxDim);
    this.H = [...spec.hidden];
    this.Hp = this.H.map((h) => pad(h, 8));
    // gemm wants row blocks of 4 and column blocks of 8: theta-sized buffers have 8k columns, since
    // theta is the output (N) of the backward product into du, and x-sized ones 4k rows.
    this.Dn = pad(D, 8);
    this.Cp = pad(C, 4);
    this.Op = pad(2 * D, 8);
    this.Bmax = pad(spec.maxBatch, 4);
    this.nData = spec.n;
    this.sMin = spec.logScaleMin;
    this.sMax = spec.logScaleMax;
    this.constant = 0.5 * D * LOG_2PI + spec.thetaLogScale;
    this.next = pad(this.k.heapBase(), 16);

    // Parameters first, contiguous, so clip and Adam are single passes over one range.
    const paramStart = this.next;
    const L = this.H.length;
    const slotOf = (
      variable: tf.Variable,
      rows: number,
      cols: number,
      padRows: number,
      ld: number,
      mask: Float32Array | null,
    ): Slot => {
      const s: Slot = { variable, rows, cols, ld, offset: this.next, mask };
      this.next += padRows * ld * 4;
      this.slots.push(s);
      return s;
    };
    const partial = spec.mades.map(({ parts, masks }) => {
      const H0 = this.H[0]!;
      const thetaW = slotOf(parts.thetaW, D, H0, this.Dn, this.Hp[0]!, masks.input);
      const ctxW = slotOf(parts.ctxW, C, H0, this.Cp, this.Hp[0]!, null);
      const inBias = slotOf(parts.inBias, 1, H0, 1, this.Hp[0]!, null);
      const hiddenW: Slot[] = [];
      const hiddenB: Slot[] = [];
      for (let l = 1; l < L; l++) {
        hiddenW.push(
          slotOf(
            parts.hiddenW[l - 1]!,
            this.H[l - 1]!,
            this.H[l]!,
            this.Hp[l - 1]!,
            this.Hp[l]!,
            masks.hidden[l - 1]!,
          ),
        );
        hiddenB.push(slotOf(parts.hiddenB[l - 1]!, 1, this.H[l]!, 1, this.Hp[l]!, null));
      }
      const outW = slotOf(
        parts.outW,
        this.H[L - 1]!,
        2 * D,
        this.Hp[L - 1]!,
        this.Op,
        masks.output,
      );
      const outB = slotOf(parts.outB, 1, 2 * D, 1, this.Op, null);
      return { thetaW, ctxW, inBias, hiddenW, hiddenB, outW, outB };
    });
    this.total = (this.next - paramStart) / 4;
    this.params = paramStart;
    this.grads = this.alloc(this.total);
    this.mask = this.alloc(this.total);
    this.m = this.alloc(this.total);
    this.v = this.alloc(this.total);

    const B = this.Bmax;
    this.dataU = this.alloc(spec.n * this.Dn);
    this.dataX = this.alloc(spec.n * this.Cp);
    this.batchU = this.alloc(B * this.Dn);
    this.batchX = this.alloc(B * this.Cp);
    this.idx = this.alloc(B);
    this.logDet = this.alloc(B);
    this.dz = this.alloc(B * this.Dn);
    this.du = this.alloc(B * this.Dn);
    this.dOut = this.alloc(B * this.Op);
    this.dH = this.Hp.map((h) => this.alloc(B * h));
    // Transposed weights for the backward products: W_out^T, each W_hidden^T, W_theta^T.
    const transposed = [this.Op * this.Hp[L - 1]!, this.Hp[0]! * this.Dn];
    for (let l = 1; l < L; l++) transposed.push(this.Hp[l]! * this.Hp[l - 1]!);
    this.wT = this.alloc(Math.max(...transposed));
    this.layouts = partial.map((p) => ({
      ...p,
      h: this.Hp.map((h) => this.alloc(B * h)),
      out: this.alloc(B * this.Op),
      z: this.alloc(B * this.Dn),
    }));
    this.grow();

    // Masks once; the training data once, in padded rows.
    const f32 = this.f32();
    for (const s of this.slots) {
      const o = (s.offset - this.params + this.mask) / 4;
      for (let r = 0; r < s.rows; r++) {
        for (let c = 0; c < s.cols; c++)
          f32[o + r * s.ld + c] = s.mask ? s.mask[r * s.cols + c]! : 1;
      }
    }
    for (let r = 0; r < spec.n; r++) {
      f32.set(spec.u.subarray(r * D, (r + 1) * D), this.dataU / 4 + r * this.Dn);
      f32.set(spec.xz.subarray(r * C, (r + 1) * C), this.dataX / 4 + r * this.Cp);
    }
  }

  private alloc(floats: number): number {
    const at = this.next;
    this.next = pad(this.next + floats * 4, 16);
    return at;
  }

  private grow(): void {
    const need = this.next - this.k.memory.buffer.byteLength;
    if (need > 0) this.k.memory.grow(Math.ceil(need / 65536));
  }

  private f32(): Float32Array {
    return new Float32Array(this.k.memory.buffer);
  }

  /** Copies the variables' (unmasked) values and the Adam moments into the flat buffers. */
  load(adam: AdamHostState, vars: tf.Variable[]): void {
    const f32 = this.f32();
    for (const s of this.slots) {
      const i = vars.indexOf(s.variable);
      if (i < 0) throw new Error('FusedMafTrainer: a MADE variable is not among the trained ones.');
      const values = s.variable.dataSync() as Float32Array;
      this.scatter(f32, this.params, s, values, true);
      this.scatter(f32, this.m, s, adam.m[i]!, false);
      this.scatter(f32, this.v, s, adam.v[i]!, false);
    }
  }

  /** Writes the trained entries back into the variables and the moments into the Adam state. */
  store(adam: AdamHostState, vars: tf.Variable[]): void {
    const f32 = this.f32();
    for (const s of this.slots) {
      const i = vars.indexOf(s.variable);
      const values = (s.variable.dataSync() as Float32Array).slice();
      this.gather(f32, this.params, s, values, true);
      tf.tidy(() => s.variable.assign(tf.tensor(values, s.variable.shape, 'float32')));
      this.gather(f32, this.m, s, adam.m[i]!, false);
      this.gather(f32, this.v, s, adam.v[i]!, false);
    }
  }

  private scatter(
    f32: Float32Array,
    base: number,
    s: Slot,
    src: Float32Array,
    masked: boolean,
  ): void {
    const o = (s.offset - this.params + base) / 4;
    for (let r = 0; r < s.rows; r++) {
      for (let c = 0; c < s.cols; c++) {
        const keep = !masked || !s.mask || s.mask[r * s.cols + c] === 1;
        f32[o + r * s.ld + c] = keep ? src[r * s.cols + c]! : 0;
      }
    }
  }

  private gather(
    f32: Float32Array,
    base: number,
    s: Slot,
    dst: Float32Array,
    masked: boolean,
  ): void {
    const o = (s.offset - this.params + base) / 4;
    for (let r = 0; r < s.rows; r++) {
      for (let c = 0; c < s.cols; c++) {
        if (masked && s.mask && s.mask[r * s.cols + c] !== 1) continue;
        dst[r * s.cols + c] = f32[o + r * s.ld + c]!;
      }
    }
  }

  /** Gradient buffer address of a slot. */
  private g(s: Slot): number {
    return s.offset - this.params + this.grads;
  }

  /**
   * Forward and backward over the batch rows, gradients masked into the gradient buffer; returns
   * the batch's mean NLL and the global gradient norm.
   */
  private lossAndGrads(rows: ArrayLike<number>): { loss: number; sqNorm: number } {
    const k = this.k;
    const n = rows.length;
    if (n < 1 || n > this.Bmax) throw new RangeError(`FusedMafTrainer: batch of ${n} rows.`);
    const Bp = pad(n, 4);
    const { D, C, Dn, Cp, Op, H, Hp } = this;
    const L = H.length;
    const idx = new Int32Array(k.memory.buffer, this.idx, n);
    for (let r = 0; r < n; r++) {
      const i = rows[r]!;
      if (!(i >= 0 && i < this.nData))
        throw new RangeError(`FusedMafTrainer: row ${i} out of range.`);
      idx[r] = i;
    }
    k.gatherRows(this.dataU, Dn, this.idx, n, D, this.batchU, Dn);
    k.gatherRows(this.dataX, Cp, this.idx, n, C, this.batchX, Cp);

    // Forward.
    let u = this.batchU;
    this.layouts.forEach((t, ti) => {
      k.gemm(u, Dn, 1, t.thetaW.offset, Hp[0]!, t.h[0]!, Hp[0]!, Bp, D, Hp[0]!, 0, 0, 0);
      k.gemm(
        this.batchX,
        Cp,
        1,
        t.ctxW.offset,
        Hp[0]!,
        t.h[0]!,
        Hp[0]!,
        Bp,
        C,
        Hp[0]!,
        t.inBias.offset,
        1,
        1,
      );
      for (let l = 1; l < L; l++) {
        k.gemm(
          t.h[l - 1]!,
          Hp[l - 1]!,
          1,
          t.hiddenW[l - 1]!.offset,
          Hp[l]!,
          t.h[l]!,
          Hp[l]!,
          Bp,
          H[l - 1]!,
          Hp[l]!,
          t.hiddenB[l - 1]!.offset,
          0,
          1,
        );
      }
      k.gemm(
        t.h[L - 1]!,
        Hp[L - 1]!,
        1,
        t.outW.offset,
        Op,
        t.out,
        Op,
        Bp,
        H[L - 1]!,
        Op,
        t.outB.offset,
        0,
        0,
      );
      k.affineForward(
        u,
        Dn,
        t.out,
        Op,
        t.z,
        n,
        D,
        this.sMin,
        this.sMax,
        this.logDet,
        ti > 0 ? 1 : 0,
      );
      u = t.z;
    });
    const last = this.layouts[this.layouts.length - 1]!;
    const lossSum = k.baseLoss(last.z, Dn, this.logDet, n, Bp, D, this.dz);

    // Backward, last transform first; dz is dL/d(this transform's output).
    let dz = this.dz;
    let du = this.du;
    for (let ti = this.layouts.length - 1; ti >= 0; ti--) {
      const t = this.layouts[ti]!;
      const uIn = ti > 0 ? this.layouts[ti - 1]!.z : this.batchU;
      k.affineBackward(
        Dn,
        t.out,
        Op,
        t.z,
        dz,
        ti > 0 ? du : 0,
        this.dOut,
        n,
        Bp,
        D,
        this.sMin,
        this.sMax,
        1 / n,
      );
      const hl = t.h[L - 1]!;
      k.gemm(hl, 1, Hp[L - 1]!, this.dOut, Op, this.g(t.outW), Op, Hp[L - 1]!, n, Op, 0, 0, 0);
      k.colSum(this.dOut, Op, n, Op, this.g(t.outB));
      k.transpose(t.outW.offset, Op, Hp[L - 1]!, Op, this.wT, Hp[L - 1]!);
      k.gemm(
        this.dOut,
        Op,
        1,
        this.wT,
        Hp[L - 1]!,
        this.dH[L - 1]!,
        Hp[L - 1]!,
        Bp,
        2 * D,
        Hp[L - 1]!,
        0,
        0,
        0,
      );
      k.reluBackward(this.dH[L - 1]!, hl, Bp * Hp[L - 1]!);
      for (let l = L - 1; l >= 1; l--) {
        const w = t.hiddenW[l - 1]!;
        k.gemm(
          t.h[l - 1]!,
          1,
          Hp[l - 1]!,
          this.dH[l]!,
          Hp[l]!,
          this.g(w),
          Hp[l]!,
          Hp[l - 1]!,
          n,
          Hp[l]!,
          0,
          0,
          0,
        );
        k.colSum(this.dH[l]!, Hp[l]!, n, Hp[l]!, this.g(t.hiddenB[l - 1]!));
        k.transpose(w.offset, Hp[l]!, Hp[l - 1]!, Hp[l]!, this.wT, Hp[l - 1]!);
        k.gemm(
          this.dH[l]!,
          Hp[l]!,
          1,
          this.wT,
          Hp[l - 1]!,
          this.dH[l - 1]!,
          Hp[l - 1]!,
          Bp,
          H[l]!,
          Hp[l - 1]!,
          0,
          0,
          0,
        );
        k.reluBackward(this.dH[l - 1]!, t.h[l - 1]!, Bp * Hp[l - 1]!);
      }
      const dA = this.dH[0]!;
      k.gemm(uIn, 1, Dn, dA, Hp[0]!, this.g(t.thetaW), Hp[0]!, Dn, n, Hp[0]!, 0, 0, 0);
      k.gemm(this.batchX, 1, Cp, dA, Hp[0]!, this.g(t.ctxW), Hp[0]!, Cp, n, Hp[0]!, 0, 0, 0);
      k.colSum(dA, Hp[0]!, n, Hp[0]!, this.g(t.inBias));
      if (ti > 0) {
        // du = dz e (written above) + dA W_theta^T: the gradient with respect to this transform's input.
        k.transpose(t.thetaW.offset, Hp[0]!, Dn, Hp[0]!, this.wT, Dn);
        k.gemm(dA, Hp[0]!, 1, this.wT, Dn, du, Dn, Bp, H[0]!, Dn, 0, 1, 0);
        [dz, du] = [du, dz];
      }
    }
    const sqNorm = k.maskAndNormSq(this.grads, this.mask, this.total);
    return { loss: lossSum / n + this.constant, sqNorm };
  }

  /** One Adam step on the batch rows (indices into the training data); returns the batch NLL. */
  step(
    rows: ArrayLike<number>,
    adam: AdamHostState,
    hp: { clipNorm: number; learningRate: number; beta1: number; beta2: number; epsilon: number },
  ): number {
    const { loss, sqNorm } = this.lossAndGrads(rows);
    const norm = Math.sqrt(sqNorm);
    // As torch's clip_grad_norm_ and npe.ts' Adam.applyClipped.
    const coef = Number.isFinite(hp.clipNorm) ? Math.min(hp.clipNorm / (norm + 1e-6), 1) : 1;
    adam.step += 1;
    const stepSize = hp.learningRate / (1 - hp.beta1 ** adam.step);
    const sqrtBc2 = Math.sqrt(1 - hp.beta2 ** adam.step);
    this.k.adam(
      this.params,
      this.grads,
      this.m,
      this.v,
      this.total,
      coef,
      hp.beta1,
      hp.beta2,
      stepSize,
      sqrtBc2,
      hp.epsilon,
    );
    return loss;
  }

  /** Loss and gradients (per variable, in the variables' own shapes; masked entries 0) for tests. */
  gradients(rows: ArrayLike<number>, vars: tf.Variable[]): { loss: number; grads: Float32Array[] } {
    const { loss } = this.lossAndGrads(rows);
    const f32 = this.f32();
    const grads = vars.map((v) => new Float32Array(v.size));
    for (const s of this.slots) {
      this.gather(f32, this.grads, s, grads[vars.indexOf(s.variable)]!, false);
    }
    return { loss, grads };
  }

  dispose(): void {
    // The instance and its memory go with the last reference; nothing else is held.
  }
}
