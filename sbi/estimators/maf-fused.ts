// The training step of an affine MAF (RABI's estimator) as one pass of hand-written WebAssembly
// kernels (sbi/wasm/maf-step.as.ts): gather the batch, forward through every MADE and affine
// transform, backward, clip and Adam over one flat parameter buffer; with noise augmentation or
// fim-fast (batch theta) as the defense, that defense too. It computes what trainNPE's tfjs step
// computes (same masks, same formulas, float32; Adam with float64 intermediates as the host Adam),
// at a fraction of the dispatch cost: tfjs issues ~400 kernels per step at ~15 us each. Weights and Adam moments move between the tf.Variables and the module's
// memory once per epoch (load / store); snapshots and checkpoints stay in tfjs.
//
// Layout: masked weights are kept at 0 in the flat buffer (the forward pass then needs no
// W * mask) and their gradients are masked to 0, which leaves their Adam moments at 0, as in tfjs;
// `store` writes back only the unmasked entries, so the variables' masked entries keep their
// values. Hidden units are stored sorted by MADE degree (a permutation, undone by load and store),
// which makes every hidden-to-hidden weight block-triangular: the products skip the blocks that
// can only add zeros, 35 to 45 % of the hidden products' work.
import { setFlagsFromString } from 'node:v8';
import { TINY } from '../attacks/ball.js';
import { GRAD_NORM_FLOOR } from '../attacks/pgd.js';
import { tf } from '../backend.js';
import type {
  AdamHostState,
  FusedAdversarialPlan,
  FusedFimFastPlan,
  FusedPlan,
  FusedStepContext,
  FusedTrainer,
  RandomStream,
} from '../types.js';
import { WASM_BASE64, WASM_RELAXED_BASE64 } from '../wasm/maf-step.wasm.js';
import { LOG_2PI } from './base.js';
import type { MadeParts } from './made.js';

// The tsconfig's lib (ES2023, no DOM) has no WebAssembly types; these are the parts used here.
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
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
    kFrom: number,
    kTo: number,
    jFrom: number,
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
    e: number,
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
    e: number,
    dz: number,
    du: number,
    dOut: number,
    n: number,
    nPad: number,
    D: number,
    sMin: number,
    sMax: number,
    coef: number,
  ): void;
  rowNLL(z: number, ldz: number, logDet: number, n: number, D: number, out: number): void;
  seedDz(
    z: number,
    ldz: number,
    coef: number,
    n: number,
    nPad: number,
    D: number,
    dz: number,
  ): void;
  emaUpdate(m: number, g: number, n: number, decay: number, keepOld: number): void;
  addDividedNormSq(g: number, m: number, n: number, div: number): number;
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

let compiled: { module: object; fma: boolean } | undefined;

/**
 * The relaxed-SIMD build (fused multiply-add in the products, ~1.35x faster here) where the engine
 * takes it, else the SIMD128 one. Node 20 validates relaxed SIMD only behind a V8 flag, which is
 * turned on here (it enables the instructions, nothing else); Node 22 has them by default.
 * ROBUSTSBI_WASM_FMA=0 forces the SIMD128 build.
 */
export function fusedKernelBuild(): { module: object; fma: boolean } {
  if (compiled) return compiled;
  const relaxed = Buffer.from(WASM_RELAXED_BASE64, 'base64');
  if (process.env.ROBUSTSBI_WASM_FMA !== '0') {
    if (!wasmApi.validate(relaxed)) setFlagsFromString('--experimental-wasm-relaxed-simd');
    if (wasmApi.validate(relaxed))
      return (compiled = { module: new wasmApi.Module(relaxed), fma: true });
  }
  return (compiled = {
    module: new wasmApi.Module(Buffer.from(WASM_BASE64, 'base64')),
    fma: false,
  });
}

/** A fresh instance (its own memory) per trainer, so concurrent trainings never share buffers. */
function instantiate(): Kernels {
  return new wasmApi.Instance(fusedKernelBuild().module, {}).exports as unknown as Kernels;
}

const pad = (n: number, k: number): number => Math.ceil(n / k) * k;

/** One variable's place in the flat buffers. */
interface Slot {
  variable: tf.Variable;
  /** Byte offset from the start of the parameter buffer (the same in gradients, mask, moments). */
  offset: number;
  /**
   * Per entry of the variable: its float index from the slot's start in the stored layout (rows
   * and columns permuted, rows ld apart), its index in the variable, whether the mask trains it.
   */
  entries: { stored: Int32Array; at: Int32Array; trained: Uint8Array };
}

/** Slot.entries for a rows x cols variable stored with leading dimension ld and the given permutations. */
function slotEntries(
  rows: number,
  cols: number,
  ld: number,
  mask: Float32Array | null,
  rowOf: Int32Array | null,
  colOf: Int32Array | null,
): Slot['entries'] {
  const stored = new Int32Array(rows * cols);
  const at = new Int32Array(rows * cols);
  const trained = new Uint8Array(rows * cols);
  for (let r = 0, e = 0; r < rows; r++) {
    const vr = rowOf ? rowOf[r]! : r;
    for (let c = 0; c < cols; c++, e++) {
      stored[e] = r * ld + c;
      at[e] = vr * cols + (colOf ? colOf[c]! : c);
      trained[e] = !mask || mask[at[e]!] === 1 ? 1 : 0;
    }
  }
  return { stored, at, trained };
}

interface MadeLayout {
  thetaW: Slot;
  ctxW: Slot;
  inBias: Slot;
  hiddenW: Slot[];
  hiddenB: Slot[];
  outW: Slot;
  outB: Slot;
  /** Per-transform activations: hidden outputs, MADE output, output z and exp(-s_c). */
  h: number[];
  out: number;
  z: number;
  e: number;
}

/** int32 tables for the product between hidden layers l - 1 and l (see gemm in maf-step.as.ts). */
interface BlockTables {
  /** Forward, per column block of layer l: inputs [0, kTo) can be non-zero. */
  fwdKTo: number;
  /** Backward into layer l - 1, per its column block: layer-l units [kFrom, H_l) can be non-zero. */
  bwdKFrom: number;
  /** Weight gradient, per row block (layer l - 1): columns from jFrom on can be non-zero. */
  gradJFrom: number;
}

export interface FusedMafSpec {
  thetaDim: number;
  ctxDim: number;
  hidden: number[];
  /** MADE degrees of the hidden units per layer (made.ts' hiddenDegrees). */
  degrees: number[][];
  logScaleMin: number;
  logScaleMax: number;
  /** sum log thetaStd: the density's constant from z-scoring theta. */
  thetaLogScale: number;
  mades: {
    parts: MadeParts;
    masks: { input: Float32Array; hidden: Float32Array[]; output: Float32Array };
  }[];
  /** Raw rows -> z-scored theta [n, thetaDim] and conditioner input [n, ctxDim], as the model does. */
  normalize(theta: Float32Array, x: Float32Array, n: number): { u: Float32Array; xz: Float32Array };
  /** The z-score of x (fim-fast's step is relative to the smallest std; PGD runs in raw x). */
  xMean: number[];
  xStd: number[];
  /** A defense to run in the step (fim-fast with batch theta, noise augmentation), if any. */
  plan?: FusedPlan;
  /** Raw training rows, [n, thetaDim] and [n, xDim]. */
  theta: Float32Array;
  x: Float32Array;
  n: number;
  maxBatch: number;
}

interface AdamHyperparameters {
  clipNorm: number;
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
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
  private readonly normalize: FusedMafSpec['normalize'];
  private readonly layouts: MadeLayout[];
  private readonly tables: BlockTables[] = [];
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
  private readonly plan: FusedFimFastPlan | undefined;
  private readonly noise: number | undefined;
  private readonly adversarial: FusedAdversarialPlan | undefined;
  private readonly xMean: Float32Array;
  private readonly xStd: Float32Array;
  /** Raw training x (PGD perturbs raw x) and the gradient with respect to the conditioner input. */
  private readonly rawX: Float32Array;
  private readonly dX: number;
  /** Regularizer buffers (0 without a plan): its rows' inputs, its gradients, the EMA moments. */
  private readonly regU: number;
  private readonly regX: number;
  private readonly grads2: number;
  private readonly ema: number;
  private emaT = 0;
  /** fim-fast's finite-difference step in raw x and, per x dimension, in z-scored units. */
  private readonly h: number;
  private readonly hz: Float32Array;
  private readonly coef: number;
  private readonly rowOut: number;
  private next: number;

  constructor(spec: FusedMafSpec) {
    this.k = instantiate();
    const D = (this.D = spec.thetaDim);
    const C = (this.C = spec.ctxDim);
    const H = (this.H = [...spec.hidden]);
    const L = H.length;
    const Hp = (this.Hp = H.map((h) => pad(h, 8)));
    // gemm wants row blocks of 4 and column blocks of 8: theta-sized buffers have 8k columns, since
    // theta and x are the outputs (N) of the backward products into du and dx.
    this.Dn = pad(D, 8);
    this.Cp = pad(C, 8);
    this.Op = pad(2 * D, 8);
    const fim = spec.plan?.kind === 'fim-fast' ? spec.plan : undefined;
    this.plan = fim;
    this.noise = spec.plan?.kind === 'noise' ? spec.plan.trainEps : undefined;
    this.adversarial = spec.plan?.kind === 'adversarial' ? spec.plan : undefined;
    this.xMean = Float32Array.from(spec.xMean);
    this.xStd = Float32Array.from(spec.xStd);
    this.rawX = spec.x;
    // Activations hold a batch, or the regularizer's 2 x probes rows per regularized batch row.
    const regRows = fim
      ? 2 * fim.probes * Math.max(1, Math.ceil(fim.batchFraction * spec.maxBatch))
      : 0;
    this.Bmax = pad(Math.max(spec.maxBatch, regRows), 4);
    this.h = fim ? fim.relStep * Math.min(...spec.xStd) : 0;
    this.hz = Float32Array.from(spec.xStd, (sd) => this.h / sd);
    this.nData = spec.n;
    this.normalize = spec.normalize;
    this.sMin = spec.logScaleMin;
    this.sMax = spec.logScaleMax;
    this.constant = 0.5 * D * LOG_2PI + spec.thetaLogScale;
    this.next = pad(this.k.heapBase(), 16);

    // Hidden units by degree (stable); sorted[l][k] is the degree of stored unit k of layer l.
    const unitOf = spec.degrees.map((deg) =>
      Int32Array.from(deg.keys()).sort((a, b) => deg[a]! - deg[b]! || a - b),
    );
    const sorted = spec.degrees.map((deg, l) => Array.from(unitOf[l]!, (u) => deg[u]!));

    // Parameters first, contiguous, so clip and Adam are single passes over one range.
    this.params = this.next;
    const slotOf = (
      variable: tf.Variable,
      shape: [rows: number, cols: number, padRows: number, ld: number],
      mask: Float32Array | null,
      rowOf: Int32Array | null,
      colOf: Int32Array | null,
    ): Slot => {
      const [rows, cols, padRows, ld] = shape;
      const s: Slot = {
        variable,
        offset: this.next - this.params,
        entries: slotEntries(rows, cols, ld, mask, rowOf, colOf),
      };
      this.next += padRows * ld * 4;
      this.slots.push(s);
      return s;
    };
    const partial = spec.mades.map(({ parts, masks }) => {
      const thetaW = slotOf(
        parts.thetaW,
        [D, H[0]!, this.Dn, Hp[0]!],
        masks.input,
        null,
        unitOf[0]!,
      );
      const ctxW = slotOf(parts.ctxW, [C, H[0]!, this.Cp, Hp[0]!], null, null, unitOf[0]!);
      const inBias = slotOf(parts.inBias, [1, H[0]!, 1, Hp[0]!], null, null, unitOf[0]!);
      const hiddenW: Slot[] = [];
      const hiddenB: Slot[] = [];
      for (let l = 1; l < L; l++) {
        const shape: [number, number, number, number] = [H[l - 1]!, H[l]!, Hp[l - 1]!, Hp[l]!];
        hiddenW.push(
          slotOf(parts.hiddenW[l - 1]!, shape, masks.hidden[l - 1]!, unitOf[l - 1]!, unitOf[l]!),
        );
        hiddenB.push(slotOf(parts.hiddenB[l - 1]!, [1, H[l]!, 1, Hp[l]!], null, null, unitOf[l]!));
      }
      const outShape: [number, number, number, number] = [H[L - 1]!, 2 * D, Hp[L - 1]!, this.Op];
      const outW = slotOf(parts.outW, outShape, masks.output, unitOf[L - 1]!, null);
      const outB = slotOf(parts.outB, [1, 2 * D, 1, this.Op], null, null, null);
      return { thetaW, ctxW, inBias, hiddenW, hiddenB, outW, outB };
    });
    this.total = (this.next - this.params) / 4;
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
    this.coef = this.alloc(B);
    this.dX = this.adversarial ? this.alloc(B * this.Cp) : 0;
    this.rowOut = this.alloc(2 * B);
    this.regU = fim ? this.alloc(B * this.Dn) : 0;
    this.regX = fim ? this.alloc(B * this.Cp) : 0;
    this.grads2 = fim ? this.alloc(this.total) : 0;
    this.ema = fim ? this.alloc(this.total) : 0;
    this.dz = this.alloc(B * this.Dn);
    this.du = this.alloc(B * this.Dn);
    this.dOut = this.alloc(B * this.Op);
    this.dH = Hp.map((h) => this.alloc(B * h));
    // Transposed weights for the backward products: W_out^T, each W_hidden^T, W_theta^T, W_ctx^T.
    const transposed = [this.Op * Hp[L - 1]!, Hp[0]! * this.Dn, Hp[0]! * this.Cp];
    for (let l = 1; l < L; l++) transposed.push(Hp[l]! * Hp[l - 1]!);
    this.wT = this.alloc(Math.max(...transposed));
    this.layouts = partial.map((p) => ({
      ...p,
      h: Hp.map((h) => this.alloc(B * h)),
      out: this.alloc(B * this.Op),
      z: this.alloc(B * this.Dn),
      e: this.alloc(B * this.Dn),
    }));
    const tableInts: Int32Array[] = [];
    for (let l = 1; l < L; l++) {
      const t = blockTables(sorted[l - 1]!, sorted[l]!, Hp[l - 1]!, Hp[l]!);
      this.tables.push({
        fwdKTo: this.alloc(t.fwdKTo.length),
        bwdKFrom: this.alloc(t.bwdKFrom.length),
        gradJFrom: this.alloc(t.gradJFrom.length),
      });
      tableInts.push(t.fwdKTo, t.bwdKFrom, t.gradJFrom);
    }
    this.grow();

    // Tables, masks and the training data, once.
    const i32 = new Int32Array(this.k.memory.buffer);
    this.tables.forEach((t, l) => {
      i32.set(tableInts[3 * l]!, t.fwdKTo / 4);
      i32.set(tableInts[3 * l + 1]!, t.bwdKFrom / 4);
      i32.set(tableInts[3 * l + 2]!, t.gradJFrom / 4);
    });
    const f32 = this.f32();
    for (const s of this.slots) {
      const o = (this.mask + s.offset) / 4;
      s.entries.stored.forEach((stored, e) => (f32[o + stored] = s.entries.trained[e]!));
    }
    const { u, xz } = spec.normalize(spec.theta, spec.x, spec.n);
    this.putRows(f32, u, xz, spec.n, this.dataU, this.dataX);
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

  /** Rows of z-scored theta and conditioner input into padded-row buffers at du and dx. */
  private putRows(
    f32: Float32Array,
    u: Float32Array,
    xz: Float32Array,
    n: number,
    du: number,
    dx: number,
  ): void {
    const { D, C } = this;
    for (let r = 0; r < n; r++) {
      f32.set(u.subarray(r * D, (r + 1) * D), du / 4 + r * this.Dn);
      f32.set(xz.subarray(r * C, (r + 1) * C), dx / 4 + r * this.Cp);
    }
  }

  /**
   * Copies the variables' (unmasked) values, the Adam moments and the regularizer's EMA (keyed by
   * variable index, as the defense keys it) into the flat buffers.
   */
  load(adam: AdamHostState, vars: tf.Variable[]): void {
    const f32 = this.f32();
    const ema = this.plan?.ema.exportHost();
    if (ema) this.emaT = ema.t;
    for (const s of this.slots) {
      const i = vars.indexOf(s.variable);
      if (i < 0) throw new Error('FusedMafTrainer: a MADE variable is not among the trained ones.');
      this.scatter(f32, this.params, s, s.variable.dataSync() as Float32Array, true);
      this.scatter(f32, this.m, s, adam.m[i]!, false);
      this.scatter(f32, this.v, s, adam.v[i]!, false);
      if (ema) {
        const moment = ema.moments.get(String(i)) ?? new Float32Array(s.variable.size);
        this.scatter(f32, this.ema, s, moment, false);
      }
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
    if (this.plan && this.emaT > 0) {
      const moments = this.slots.map((s) => {
        const values = new Float32Array(s.variable.size);
        this.gather(f32, this.ema, s, values, false);
        return { name: String(vars.indexOf(s.variable)), shape: [...s.variable.shape], values };
      });
      this.plan.ema.importHost(this.emaT, moments);
    }
  }

  /** Variable-shaped src into the slot's stored layout in the buffer at base (if masked, masked entries 0). */
  private scatter(
    f32: Float32Array,
    base: number,
    s: Slot,
    src: Float32Array,
    masked: boolean,
  ): void {
    const o = (base + s.offset) / 4;
    const { stored, at, trained } = s.entries;
    for (let e = 0; e < at.length; e++) {
      f32[o + stored[e]!] = !masked || trained[e] ? src[at[e]!]! : 0;
    }
  }

  /** The slot's stored entries back into variable-shaped dst (if masked, masked entries left alone). */
  private gather(
    f32: Float32Array,
    base: number,
    s: Slot,
    dst: Float32Array,
    masked: boolean,
  ): void {
    const o = (base + s.offset) / 4;
    const { stored, at, trained } = s.entries;
    for (let e = 0; e < at.length; e++) {
      if (!masked || trained[e]) dst[at[e]!] = f32[o + stored[e]!]!;
    }
  }

  private p(s: Slot): number {
    return this.params + s.offset;
  }

  /** The flow's forward pass over rows [0, n) of uIn / xIn (n <= Bmax): z, e, logDet. */
  private forward(n: number, uIn: number, xIn: number): void {
    const { k, D, C, Dn, Cp, Op, H, Hp } = this;
    const L = H.length;
    const Bp = pad(n, 4);
    let u = uIn;
    this.layouts.forEach((t, ti) => {
      const h0 = t.h[0]!;
      k.gemm(u, Dn, 1, this.p(t.thetaW), Hp[0]!, h0, Hp[0]!, Bp, D, Hp[0]!, 0, 0, 0, 0, 0, 0);
      const b0 = this.p(t.inBias);
      k.gemm(xIn, Cp, 1, this.p(t.ctxW), Hp[0]!, h0, Hp[0]!, Bp, C, Hp[0]!, b0, 1, 1, 0, 0, 0);
      for (let l = 1; l < L; l++) {
        const w = this.p(t.hiddenW[l - 1]!);
        const b = this.p(t.hiddenB[l - 1]!);
        const kTo = this.tables[l - 1]!.fwdKTo;
        const [prev, cur] = [Hp[l - 1]!, Hp[l]!];
        k.gemm(t.h[l - 1]!, prev, 1, w, cur, t.h[l]!, cur, Bp, H[l - 1]!, cur, b, 0, 1, 0, kTo, 0);
      }
      const hl = t.h[L - 1]!;
      const bOut = this.p(t.outB);
      k.gemm(
        hl,
        Hp[L - 1]!,
        1,
        this.p(t.outW),
        Op,
        t.out,
        Op,
        Bp,
        H[L - 1]!,
        Op,
        bOut,
        0,
        0,
        0,
        0,
        0,
      );
      const acc = ti > 0 ? 1 : 0;
      k.affineForward(u, Dn, t.out, Op, t.z, t.e, n, D, this.sMin, this.sMax, this.logDet, acc);
      u = t.z;
    });
  }

  /** rowNLL of the last forward pass's n rows: 0.5 |z|^2 - logDet, float64. */
  private rowNLL(n: number): Float64Array {
    const last = this.layouts[this.layouts.length - 1]!;
    this.k.rowNLL(last.z, this.Dn, this.logDet, n, this.D, this.rowOut);
    return new Float64Array(this.k.memory.buffer, this.rowOut, n);
  }

  /**
   * Backward of the last forward pass (inputs uIn / xIn, n rows) for the loss sum_r coef_r nll_r
   * (coef: n floats at this.coef): weight gradients written at gradBase and masked, returning their
   * squared norm; with gradBase 0 no weight gradient is formed (0 is returned) and only the
   * gradient with respect to the conditioner input, written at dx ([n, Cp]), is.
   */
  private backward(n: number, uIn: number, xIn: number, gradBase: number, dx = 0): number {
    const { k, D, Dn, Cp, Op, H, Hp } = this;
    const L = H.length;
    const Bp = pad(n, 4);
    const weights = gradBase !== 0;
    const g = (s: Slot): number => gradBase + s.offset;
    const last = this.layouts[this.layouts.length - 1]!;
    k.seedDz(last.z, Dn, this.coef, n, Bp, D, this.dz);
    // Last transform first; dz is dL/d(this transform's output).
    let dz = this.dz;
    let du = this.du;
    for (let ti = this.layouts.length - 1; ti >= 0; ti--) {
      const t = this.layouts[ti]!;
      const u = ti > 0 ? this.layouts[ti - 1]!.z : uIn;
      const duOut = ti > 0 ? du : 0;
      const [sMin, sMax] = [this.sMin, this.sMax];
      k.affineBackward(
        Dn,
        t.out,
        Op,
        t.z,
        t.e,
        dz,
        duOut,
        this.dOut,
        n,
        Bp,
        D,
        sMin,
        sMax,
        this.coef,
      );
      const HL = Hp[L - 1]!;
      const hl = t.h[L - 1]!;
      if (weights) {
        k.gemm(hl, 1, HL, this.dOut, Op, g(t.outW), Op, HL, n, Op, 0, 0, 0, 0, 0, 0);
        k.colSum(this.dOut, Op, n, Op, g(t.outB));
      }
      k.transpose(this.p(t.outW), Op, HL, Op, this.wT, HL);
      k.gemm(this.dOut, Op, 1, this.wT, HL, this.dH[L - 1]!, HL, Bp, 2 * D, HL, 0, 0, 0, 0, 0, 0);
      k.reluBackward(this.dH[L - 1]!, hl, Bp * HL);
      for (let l = L - 1; l >= 1; l--) {
        const w = t.hiddenW[l - 1]!;
        const tb = this.tables[l - 1]!;
        const [prev, cur] = [Hp[l - 1]!, Hp[l]!];
        const dA = this.dH[l]!;
        if (weights) {
          const jFrom = tb.gradJFrom;
          k.gemm(t.h[l - 1]!, 1, prev, dA, cur, g(w), cur, prev, n, cur, 0, 0, 0, 0, 0, jFrom);
          k.colSum(dA, cur, n, cur, g(t.hiddenB[l - 1]!));
        }
        k.transpose(this.p(w), cur, prev, cur, this.wT, prev);
        const dPrev = this.dH[l - 1]!;
        k.gemm(dA, cur, 1, this.wT, prev, dPrev, prev, Bp, H[l]!, prev, 0, 0, 0, tb.bwdKFrom, 0, 0);
        k.reluBackward(dPrev, t.h[l - 1]!, Bp * prev);
      }
      const dA = this.dH[0]!;
      const H0 = Hp[0]!;
      if (weights) {
        k.gemm(u, 1, Dn, dA, H0, g(t.thetaW), H0, Dn, n, H0, 0, 0, 0, 0, 0, 0);
        k.gemm(xIn, 1, Cp, dA, H0, g(t.ctxW), H0, Cp, n, H0, 0, 0, 0, 0, 0, 0);
        k.colSum(dA, H0, n, H0, g(t.inBias));
      }
      if (dx) {
        // dx (+)= dA W_ctx^T: every transform sees the same x; the last one processed writes first.
        const first = ti === this.layouts.length - 1 ? 0 : 1;
        k.transpose(this.p(t.ctxW), H0, Cp, H0, this.wT, Cp);
        k.gemm(dA, H0, 1, this.wT, Cp, dx, Cp, Bp, H[0]!, Cp, 0, first, 0, 0, 0, 0);
      }
      if (ti > 0) {
        // du = dz e (written above) + dA W_theta^T: the gradient with respect to this transform's input.
        k.transpose(this.p(t.thetaW), H0, Dn, H0, this.wT, Dn);
        k.gemm(dA, H0, 1, this.wT, Dn, du, Dn, Bp, H[0]!, Dn, 0, 1, 0, 0, 0, 0);
        [dz, du] = [du, dz];
      }
    }
    return weights ? k.maskAndNormSq(gradBase, this.mask, this.total) : 0;
  }

  /** The batch's mean NLL and its masked gradients in this.grads, with their squared norm. */
  private lossAndGrads(
    rows: ArrayLike<number>,
    ctx: FusedStepContext | undefined,
  ): { loss: number; sqNorm: number } {
    const { k, D, C, Dn, Cp } = this;
    const n = rows.length;
    if (n < 1 || n > this.Bmax) throw new RangeError(`FusedMafTrainer: batch of ${n} rows.`);
    const idx = new Int32Array(k.memory.buffer, this.idx, n);
    for (let r = 0; r < n; r++) {
      const i = rows[r]!;
      if (!(i >= 0 && i < this.nData))
        throw new RangeError(`FusedMafTrainer: row ${i} out of range.`);
      idx[r] = i;
    }
    k.gatherRows(this.dataU, Dn, this.idx, n, D, this.batchU, Dn);
    k.gatherRows(this.dataX, Cp, this.idx, n, C, this.batchX, Cp);
    if (this.noise !== undefined || this.adversarial) {
      if (!ctx) throw new Error('FusedMafTrainer: the defense needs a random stream.');
      if (this.noise !== undefined) this.addBallNoise(n, this.noise * ctx.xScale, ctx.rng);
      else this.pgdBatch(rows, this.adversarial!, ctx);
    }
    this.forward(n, this.batchU, this.batchX);
    let lossSum = 0;
    for (const v of this.rowNLL(n)) lossSum += v;
    new Float32Array(k.memory.buffer, this.coef, n).fill(1 / n);
    const sqNorm = this.backward(n, this.batchU, this.batchX, this.grads);
    return { loss: lossSum / n + this.constant, sqNorm };
  }

  /**
   * NoiseAugmentation.prepareBatch on the gathered batch: x + delta with delta uniform in the L2
   * ball (a normalized Gaussian direction times radius U^(1/d), the draws in uniformL2Ball's order),
   * added to the z-scored rows as delta / xStd.
   */
  private addBallNoise(n: number, radius: number, rng: RandomStream): void {
    const C = this.C;
    const delta = uniformL2BallRows(n, C, radius, rng);
    const f32 = this.f32();
    const bx = this.batchX / 4;
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < C; j++) f32[bx + r * this.Cp + j] += delta[r * C + j]! / this.xStd[j]!;
    }
  }

  /**
   * AdversarialTraining.prepareBatch on the gathered batch: the batch x is replaced by the
   * targeted L2-PGD iterate that maximizes the batch's NLL (l2Pgd with objective 'nll': random start
   * in the ball, normalized-gradient steps, clip to the box, projection onto the ball), with the
   * gradients from the fused backward pass through the conditioner input.
   */
  private pgdBatch(
    rows: ArrayLike<number>,
    plan: FusedAdversarialPlan,
    ctx: FusedStepContext,
  ): void {
    const { C, Cp } = this;
    const n = rows.length;
    const eps = plan.trainEps * ctx.xScale;
    const stepSize = plan.relStep * ctx.xScale;
    const { min, max } = plan.box;
    const x = new Float64Array(n * C);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < C; j++) x[r * C + j] = this.rawX[rows[r]! * C + j]!;
    }
    const clipDelta = (delta: Float64Array): void => {
      for (let i = 0; i < delta.length; i++) {
        delta[i] = Math.min(Math.max(x[i]! + delta[i]!, min), max) - x[i]!;
      }
    };
    const rowScale = (v: Float64Array, r: number, f: (norm: number) => number): void => {
      let sq = 0;
      for (let j = 0; j < C; j++) sq += v[r * C + j]! * v[r * C + j]!;
      const s = f(Math.sqrt(sq));
      for (let j = 0; j < C; j++) v[r * C + j]! *= s;
    };
    const delta = uniformL2BallRows(n, C, eps, ctx.rng);
    clipDelta(delta);
    const putX = (): void => {
      const f32 = this.f32();
      const bx = this.batchX / 4;
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < C; j++) {
          f32[bx + r * Cp + j] =
            (x[r * C + j]! + delta[r * C + j]! - this.xMean[j]!) / this.xStd[j]!;
        }
      }
    };
    const g = new Float64Array(n * C);
    new Float32Array(this.k.memory.buffer, this.coef, n).fill(1);
    for (let step = 0; step < plan.steps; step++) {
      putX();
      this.forward(n, this.batchU, this.batchX);
      this.backward(n, this.batchU, this.batchX, 0, this.dX);
      const dx = new Float32Array(this.k.memory.buffer, this.dX, pad(n, 4) * Cp);
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < C; j++) g[r * C + j] = dx[r * Cp + j]! / this.xStd[j]!;
        rowScale(g, r, (norm) => stepSize / Math.max(norm, GRAD_NORM_FLOOR));
      }
      for (let i = 0; i < delta.length; i++) delta[i] += g[i]!;
      clipDelta(delta);
      for (let r = 0; r < n; r++)
        rowScale(delta, r, (norm) => Math.min(1, eps / Math.max(norm, TINY)));
    }
    // x~ = clip(x + delta) to the box, as l2Pgd returns it.
    clipDelta(delta);
    putX();
  }

  /**
   * fim-fast with the batch's theta on its first m = ceil(batchFraction n) rows, as
   * FimFastDefense.extraGrads computes it: probes v from rng, directional scores
   * (log q(theta | x + h v) - log q(theta | x - h v)) / 2h, R = beta * mean over finite rows of their
   * mean square; its masked weight gradient goes through the EMA and is added to this.grads.
   * Returns the squared norm of the sum.
   */
  private regularize(n: number, plan: FusedFimFastPlan, rng: RandomStream): number {
    const { k, D, C, Dn, Cp } = this;
    const m = Math.max(1, Math.ceil(plan.batchFraction * n));
    const P = plan.probes;
    const N = P * m;
    // Probe rows as probeSetup lays them out: row i = k m + b (probe k of batch row b), v_i from rng.
    const v = new Float32Array(N * C);
    if (plan.probe === 'gaussian') rng.fillNormal(v);
    else {
      rng.fillUniform(v);
      for (let j = 0; j < v.length; j++) v[j] = v[j]! < 0.5 ? 1 : -1;
    }
    const f32 = this.f32();
    const [bu, bx, ru, rx] = [this.batchU / 4, this.batchX / 4, this.regU / 4, this.regX / 4];
    for (let i = 0; i < N; i++) {
      const b = i % m;
      for (const [row, sign] of [
        [i, 1],
        [N + i, -1],
      ] as const) {
        f32.set(f32.subarray(bu + b * Dn, bu + b * Dn + D), ru + row * Dn);
        for (let j = 0; j < C; j++) {
          f32[rx + row * Cp + j] = f32[bx + b * Cp + j]! + sign * this.hz[j]! * v[i * C + j]!;
        }
      }
    }
    this.forward(2 * N, this.regU, this.regX);
    const nll = this.rowNLL(2 * N);
    // log q = -nll - const, so the directional score is (nll(x - hv) - nll(x + hv)) / 2h.
    const dir = new Float64Array(N);
    const perRow = new Float64Array(m);
    for (let i = 0; i < N; i++) {
      dir[i] = (nll[N + i]! - nll[i]!) / (2 * this.h);
      perRow[i % m] += (dir[i]! * dir[i]!) / P;
    }
    let count = 0;
    for (const t of perRow) if (Number.isFinite(t)) count++;
    count = Math.max(count, 1);
    // dR/dnll for the + and - rows of probe i: -/+ beta dir_i / (count P h); 0 off the finite rows.
    const coef = new Float32Array(k.memory.buffer, this.coef, 2 * N);
    for (let i = 0; i < N; i++) {
      const c = Number.isFinite(perRow[i % m]!) ? (plan.beta * dir[i]!) / (count * P * this.h) : 0;
      coef[i] = -c;
      coef[N + i] = c;
    }
    this.backward(2 * N, this.regU, this.regX, this.grads2);
    const keepOld = 1 - plan.ema.decay;
    this.emaT += 1;
    k.emaUpdate(this.ema, this.grads2, this.total, plan.ema.decay, keepOld);
    return k.addDividedNormSq(this.grads, this.ema, this.total, 1 - keepOld ** this.emaT);
  }

  /** One Adam step on the batch rows (indices into the training data); returns the batch NLL. */
  step(
    rows: ArrayLike<number>,
    adam: AdamHostState,
    hp: AdamHyperparameters,
    ctx?: FusedStepContext,
  ): number {
    const nll = this.lossAndGrads(rows, ctx);
    let sqNorm = nll.sqNorm;
    // beta = 0 adds exactly nothing (FimFastDefense skips it too, EMA included).
    if (this.plan && this.plan.beta !== 0) {
      if (!ctx) throw new Error('FusedMafTrainer: the regularizer needs a random stream.');
      sqNorm = this.regularize(rows.length, this.plan, ctx.rng);
    }
    const norm = Math.sqrt(sqNorm);
    // As torch's clip_grad_norm_ and npe.ts' Adam.applyClipped.
    const coef = Number.isFinite(hp.clipNorm) ? Math.min(hp.clipNorm / (norm + 1e-6), 1) : 1;
    adam.step += 1;
    const stepSize = hp.learningRate / (1 - hp.beta1 ** adam.step);
    const sqrtBc2 = Math.sqrt(1 - hp.beta2 ** adam.step);
    const { k, params, grads, m, v, total } = this;
    k.adam(params, grads, m, v, total, coef, hp.beta1, hp.beta2, stepSize, sqrtBc2, hp.epsilon);
    return nll.loss;
  }

  /** Mean -log q over raw rows with the weights last loaded or stored (validation after an epoch). */
  meanNLL(theta: Float32Array, x: Float32Array, n: number): number {
    const { u, xz } = this.normalize(theta, x, n);
    const { D, C } = this;
    let total = 0;
    for (let start = 0; start < n; start += this.Bmax) {
      const size = Math.min(this.Bmax, n - start);
      const uc = u.subarray(start * D, (start + size) * D);
      const xc = xz.subarray(start * C, (start + size) * C);
      this.putRows(this.f32(), uc, xc, size, this.batchU, this.batchX);
      this.forward(size, this.batchU, this.batchX);
      for (const v of this.rowNLL(size)) total += v;
    }
    return total / n + this.constant;
  }

  /** Loss and gradients (per variable, in the variables' own shapes; masked entries 0) for tests. */
  gradients(rows: ArrayLike<number>, vars: tf.Variable[]): { loss: number; grads: Float32Array[] } {
    const { loss } = this.lossAndGrads(rows, undefined);
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

/**
 * uniformL2Ball (sbi/attacks/ball.ts) on the host, drawing from rng in the same order: n rows of a
 * normalized Gaussian direction times radius U^(1/d). [n, d], row-major.
 */
function uniformL2BallRows(n: number, d: number, radius: number, rng: RandomStream): Float64Array {
  const dir = new Float32Array(n * d);
  rng.fillNormal(dir);
  const u = new Float32Array(n);
  rng.fillUniform(u);
  const out = Float64Array.from(dir);
  for (let r = 0; r < n; r++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += out[r * d + j]! * out[r * d + j]!;
    const scale = (Math.pow(u[r]!, 1 / d) * radius) / Math.max(Math.sqrt(sq), TINY);
    for (let j = 0; j < d; j++) out[r * d + j]! *= scale;
  }
  return out;
}

/**
 * Block tables for hidden layers with sorted degrees prev (layer l - 1) and cur (layer l), padded
 * to prevPad and curPad units: unit r of l - 1 feeds unit c of l iff prev[r] <= cur[c].
 */
export function blockTables(
  prev: number[],
  cur: number[],
  prevPad: number,
  curPad: number,
): { fwdKTo: Int32Array; bwdKFrom: Int32Array; gradJFrom: Int32Array } {
  const firstCurAtLeast = (d: number): number => {
    const c = cur.findIndex((v) => v >= d);
    return c < 0 ? cur.length : c;
  };
  const fwdKTo = new Int32Array(curPad / 8);
  for (let j = 0; j < fwdKTo.length; j++) {
    const lastValid = Math.min(8 * j + 7, cur.length - 1);
    fwdKTo[j] = lastValid < 8 * j ? 0 : prev.filter((d) => d <= cur[lastValid]!).length;
  }
  const bwdKFrom = new Int32Array(prevPad / 8);
  for (let j = 0; j < bwdKFrom.length; j++) {
    bwdKFrom[j] = 8 * j < prev.length ? firstCurAtLeast(prev[8 * j]!) : cur.length;
  }
  const gradJFrom = new Int32Array(prevPad / 4);
  for (let i = 0; i < gradJFrom.length; i++) {
    gradJFrom[i] = 4 * i < prev.length ? Math.floor(firstCurAtLeast(prev[4 * i]!) / 8) * 8 : curPad;
  }
  return { fwdKTo, bwdKFrom, gradJFrom };
}
