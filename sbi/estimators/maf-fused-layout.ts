// Where the fused MAF trainer keeps everything in its kernels' memory. Masked weights are kept at 0
// in the flat buffer (the forward pass then needs no W * mask) and their gradients are masked to 0,
// which leaves their Adam moments at 0, as in tfjs; `gather` with `masked` writes back only the
// unmasked entries, so the variables' masked entries keep their values. Hidden units are stored
// sorted by MADE degree (a permutation, undone by scatter and gather), which makes every
// hidden-to-hidden weight block-triangular: the products skip the blocks that can only add zeros,
// 35 to 45 % of the hidden products' work (blockTables).
import { tf } from '../backend.js';
import type { AdamHostState } from '../types.js';
import type { MadeTiles, MafKernels } from '../wasm/maf-kernels.js';
import type { MadeParts } from './made.js';

export const pad = (n: number, k: number): number => Math.ceil(n / k) * k;

/** One variable's place in the flat buffers. */
export interface Slot {
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

export interface MadeLayout {
  thetaW: Slot;
  ctxW: Slot;
  inBias: Slot;
  /** nflows' context layer: its bias, and its output tanh(x W_ctx + ctxBias) per row (else null, 0). */
  ctxBias: Slot | null;
  ctxH: number;
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
export interface BlockTables {
  /** Forward, per column block of layer l: inputs [0, kTo) can be non-zero. */
  fwdKTo: number;
  /** Backward into layer l - 1, per its column block: layer-l units [kFrom, H_l) can be non-zero. */
  bwdKFrom: number;
  /** Weight gradient, per row block (layer l - 1): columns from jFrom on can be non-zero. */
  gradJFrom: number;
}

export interface FusedMafShape {
  thetaDim: number;
  ctxDim: number;
  hidden: number[];
  /** MADE degrees of the hidden units per layer (made.ts' hiddenDegrees). */
  degrees: number[][];
  mades: {
    parts: MadeParts;
    masks: { input: Float32Array; hidden: Float32Array[]; output: Float32Array };
    /** The transform's variable order (made.ts' MadeSpec.order). */
    order: number[];
  }[];
  /** Training rows held, and the largest batch. */
  n: number;
  maxBatch: number;
  /** Rows a defense probes beside a batch (0: none), whether it needs the input gradient, an EMA. */
  probeRows: number;
  inputGradient: boolean;
  gradientEma: boolean;
  /** Whether the exact FIM regularizer's passes run (their buffers: FimBuffers, for probeRows rows). */
  exactFim?: boolean;
  /** A second set of activation buffers (inference: a clean density pass beside an attacked one). */
  cleanLayouts?: boolean;
  logScaleMin: number;
  logScaleMax: number;
  /** RABI's affine direction and clamp (maf.ts); absent: robustsbi's. */
  affine?: 'robustsbi' | 'pyro' | 'nflows';
  clampGradient?: 'zero' | 'pass';
  /** The MADEs' hidden nonlinearity; absent: ReLU. tanh: the training passes only (no exact FIM). */
  activation?: 'relu' | 'tanh';
  /** How x enters the first layer; absent: linearly. tanh (nflows'): the training passes only. */
  contextLayer?: 'linear' | 'tanh';
}

/**
 * What the exact FIM regularizer (maf-fused-fim.ts) keeps per MADE between its passes, for the
 * probe rows: the score's adjoints (vbar: of the transform's output; obar, a2bar, a1bar: of its
 * MADE's output and hidden pre-activations), the tangents in the direction of the score (ydot of
 * the input, h1dot, h2dot, ldot of the clipped log-scale, p = (ydot - mudot) e).
 */
export interface FimMadeBuffers {
  vbar: number;
  obar: number;
  a2bar: number;
  a1bar: number;
  ydot: number;
  h1dot: number;
  h2dot: number;
  ldot: number;
  p: number;
}

/** FimMadeBuffers per MADE, and the per-MADE scratch of the back-substitution. */
export interface FimBuffers {
  mades: FimMadeBuffers[];
  /** The tangent direction in the conditioner input, [rows, Cp]. */
  xdot: number;
  odot: number;
  lam: number;
  rcot: number;
  /** An extra cotangent on mu (pyro's direction). */
  mcot: number;
  w: number;
  chat: number;
  a2hat: number;
  a1hat: number;
  /** The last transform's output tangent (unused beyond it). */
  vdot: number;
}

/**
 * The byte addresses of every buffer (0 for one not needed), laid out once: the parameters first
 * and contiguous, so clip and Adam are single passes over one range, with gradients, mask and
 * moments in the same layout; then the data, the batch, the activations and the scratch.
 */
export class FusedMafMemory {
  readonly D: number;
  readonly C: number;
  readonly H: number[];
  readonly Hp: number[];
  /** theta-sized rows (padded to 8), conditioner rows, MADE output rows. */
  readonly Dn: number;
  readonly Cp: number;
  readonly Op: number;
  /** Rows the activations hold: a batch, or the probes. */
  readonly Bmax: number;
  readonly layouts: MadeLayout[];
  readonly tables: BlockTables[] = [];
  readonly slots: Slot[] = [];
  /** Parameters (floats) and the buffers of that size. */
  readonly total: number;
  readonly params: number;
  readonly grads: number;
  readonly mask: number;
  readonly m: number;
  readonly v: number;
  readonly dataU: number;
  readonly dataX: number;
  readonly batchX: number;
  readonly batchU: number;
  readonly idx: number;
  readonly logDet: number;
  /** Per-row loss weights (coef of affineBackward and seedDz). */
  readonly coef: number;
  readonly rowOut: number;
  /** The gradient with respect to the conditioner input. */
  readonly dX: number;
  /** Probe rows' inputs, their weight gradient, its EMA. */
  readonly regU: number;
  readonly regX: number;
  readonly grads2: number;
  readonly ema: number;
  readonly dz: number;
  readonly du: number;
  readonly dOut: number;
  readonly dH: number[];
  /** Transposed weights for the backward products. */
  readonly wT: number;
  /** Per MADE, its incremental-pass view (two hidden layers only; else empty). */
  readonly tiles: MadeTiles[] = [];
  readonly fim: FimBuffers | null = null;
  readonly cleanLayouts: MadeLayout[] | null = null;
  /** The affine direction z = u exp(s) + mu (RABI's), and a log-scale clamp that passes the gradient. */
  readonly pyro: boolean;
  /** nflows' scale z = u (softplus(s) + 1e-3) + mu (sbi's MAF): the training passes only. */
  readonly nflows: boolean;
  /** tanh hidden units (sbi's MADE) instead of ReLU: the training passes only. */
  readonly tanh: boolean;
  /** nflows' context layer, tanh(x W_ctx + ctxBias) added to the first layer: the training passes only. */
  readonly ctxLayer: boolean;
  /** Scratch for the context layer's adjoint, [Bmax, Hp[0]] (0 without it). */
  readonly dCtx: number;
  readonly passGrad: boolean;
  private next: number;

  constructor(
    private readonly k: MafKernels,
    spec: FusedMafShape,
  ) {
    const D = (this.D = spec.thetaDim);
    this.pyro = spec.affine === 'pyro';
    this.nflows = spec.affine === 'nflows';
    this.tanh = spec.activation === 'tanh';
    this.ctxLayer = spec.contextLayer === 'tanh';
    // Their passes (incremental sampler, tangents, adjoints) take x into the first layer linearly.
    if (this.ctxLayer && (spec.exactFim || spec.cleanLayouts || spec.probeRows > 0))
      throw new Error(
        "FusedMafMemory: nflows' context layer runs in the plain training step only.",
      );
    this.passGrad = spec.clampGradient === 'pass';
    const C = (this.C = spec.ctxDim);
    const H = (this.H = [...spec.hidden]);
    const L = H.length;
    const Hp = (this.Hp = H.map((h) => pad(h, 8)));
    // gemm wants row blocks of 4 and column blocks of 8: theta-sized buffers have 8k columns, since
    // theta and x are the outputs (N) of the backward products into du and dx.
    this.Dn = pad(D, 8);
    this.Cp = pad(C, 8);
    this.Op = pad(2 * D, 8);
    this.Bmax = pad(Math.max(spec.maxBatch, spec.probeRows), 4);
    this.next = pad(k.heapBase(), 16);

    // Hidden units by degree (stable); sorted[l][k] is the degree of stored unit k of layer l.
    const unitOf = spec.degrees.map((deg) =>
      Int32Array.from(deg.keys()).sort((a, b) => deg[a]! - deg[b]! || a - b),
    );
    const sorted = spec.degrees.map((deg, l) => Array.from(unitOf[l]!, (u) => deg[u]!));

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
      if (this.ctxLayer !== (parts.ctxBias !== undefined))
        throw new Error("FusedMafMemory: the MADE's context layer is not the shape's.");
      const ctxBias = parts.ctxBias
        ? slotOf(parts.ctxBias, [1, H[0]!, 1, Hp[0]!], null, null, unitOf[0]!)
        : null;
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
      return { thetaW, ctxW, inBias, ctxBias, hiddenW, hiddenB, outW, outB };
    });
    this.total = (this.next - this.params) / 4;
    this.grads = this.alloc(this.total);
    this.mask = this.alloc(this.total);
    this.m = this.alloc(this.total);
    this.v = this.alloc(this.total);

    const B = this.Bmax;
    const probes = spec.probeRows > 0;
    this.dataU = this.alloc(spec.n * this.Dn);
    this.dataX = this.alloc(spec.n * this.Cp);
    this.batchU = this.alloc(B * this.Dn);
    this.batchX = this.alloc(B * this.Cp);
    this.idx = this.alloc(B);
    this.logDet = this.alloc(B);
    this.coef = this.alloc(B);
    this.dX = spec.inputGradient ? this.alloc(B * this.Cp) : 0;
    this.rowOut = this.alloc(2 * B);
    this.regU = probes ? this.alloc(B * this.Dn) : 0;
    this.regX = probes ? this.alloc(B * this.Cp) : 0;
    this.grads2 = spec.gradientEma ? this.alloc(this.total) : 0;
    this.ema = spec.gradientEma ? this.alloc(this.total) : 0;
    this.dz = this.alloc(B * this.Dn);
    this.du = this.alloc(B * this.Dn);
    this.dOut = this.alloc(B * this.Op);
    this.dH = Hp.map((h) => this.alloc(B * h));
    this.dCtx = this.ctxLayer ? this.alloc(B * Hp[0]!) : 0;
    // W_out^T, each W_hidden^T, W_theta^T, W_ctx^T share one buffer: one is needed at a time.
    const transposed = [this.Op * Hp[L - 1]!, Hp[0]! * this.Dn, Hp[0]! * this.Cp];
    for (let l = 1; l < L; l++) transposed.push(Hp[l]! * Hp[l - 1]!);
    this.wT = this.alloc(Math.max(...transposed));
    const activations = (): MadeLayout[] =>
      partial.map((p) => ({
        ...p,
        ctxH: this.ctxLayer ? this.alloc(B * Hp[0]!) : 0,
        h: Hp.map((h) => this.alloc(B * h)),
        out: this.alloc(B * this.Op),
        z: this.alloc(B * this.Dn),
        e: this.alloc(B * this.Dn),
      }));
    this.layouts = activations();
    if (spec.cleanLayouts) this.cleanLayouts = activations();
    // The incremental passes' tables (order, first unit of each degree) and scratch.
    const tileInts: [number, Int32Array][] = [];
    if (L === 2) {
      const starts = sorted.map((deg) =>
        Int32Array.from({ length: D + 1 }, (_, d) => deg.filter((g) => g < d).length),
      );
      const scratch = this.alloc(k.tileScratchFloats(D, H[0]!, H[1]!, this.Op));
      const start1 = this.alloc(D + 1);
      const start2 = this.alloc(D + 1);
      tileInts.push([start1, starts[0]!], [start2, starts[1]!]);
      spec.mades.forEach(({ order }, t) => {
        const at = this.alloc(D);
        tileInts.push([at, Int32Array.from(order)]);
        const p = partial[t]!;
        this.tiles.push({
          D,
          ldD: this.Dn,
          ldH1: Hp[0]!,
          ldH2: Hp[1]!,
          ldO: this.Op,
          W1: this.params + p.thetaW.offset,
          W2: this.params + p.hiddenW[0]!.offset,
          b2: this.params + p.hiddenB[0]!.offset,
          W3: this.params + p.outW.offset,
          b3: this.params + p.outB.offset,
          order: at,
          start1,
          start2,
          sMin: spec.logScaleMin,
          sMax: spec.logScaleMax,
          scratch,
          pyro: this.pyro,
          passGrad: this.passGrad,
        });
      });
    }
    if (spec.exactFim) {
      // Its tangent and adjoint passes differentiate ReLU's masks, not tanh.
      if (this.tanh) throw new Error('FusedMafMemory: the exact FIM passes need ReLU MADEs.');
      if (L !== 2) throw new Error('FusedMafMemory: the exact FIM passes need two hidden layers.');
      const R = B;
      const rows = (floats: number): number => this.alloc(R * floats);
      this.fim = {
        mades: spec.mades.map(() => ({
          vbar: rows(this.Dn),
          obar: rows(this.Op),
          a2bar: rows(Hp[1]!),
          a1bar: rows(Hp[0]!),
          ydot: rows(this.Dn),
          h1dot: rows(Hp[0]!),
          h2dot: rows(Hp[1]!),
          ldot: rows(this.Dn),
          p: rows(this.Dn),
        })),
        xdot: rows(this.Cp),
        odot: rows(this.Op),
        lam: rows(this.Dn),
        rcot: rows(this.Dn),
        mcot: rows(this.Dn),
        w: rows(this.Dn),
        chat: rows(this.Op),
        a2hat: rows(Hp[1]!),
        a1hat: rows(Hp[0]!),
        vdot: rows(this.Dn),
      };
    }
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
    const need = this.next - k.memory.buffer.byteLength;
    if (need > 0) k.memory.grow(Math.ceil(need / 65536));

    // Tables and masks, once.
    const i32 = new Int32Array(k.memory.buffer);
    this.tables.forEach((t, l) => {
      i32.set(tableInts[3 * l]!, t.fwdKTo / 4);
      i32.set(tableInts[3 * l + 1]!, t.bwdKFrom / 4);
      i32.set(tableInts[3 * l + 2]!, t.gradJFrom / 4);
    });
    for (const [at, ints] of tileInts) i32.set(ints, at / 4);
    const f32 = this.f32();
    for (const s of this.slots) {
      const o = (this.mask + s.offset) / 4;
      s.entries.stored.forEach((stored, e) => (f32[o + stored] = s.entries.trained[e]!));
    }
  }

  private alloc(floats: number): number {
    const at = this.next;
    this.next = pad(this.next + floats * 4, 16);
    return at;
  }

  /** The whole memory as floats (a fresh view: the memory never grows after construction). */
  f32(): Float32Array {
    return new Float32Array(this.k.memory.buffer);
  }

  /** Address of the slot's weights. */
  p(s: Slot): number {
    return this.params + s.offset;
  }

  /** Rows of z-scored theta and conditioner input into padded-row buffers at du and dx. */
  putRows(
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
   * Copies the variables' (unmasked) values, their Adam moments and, if given, gradient-EMA moments
   * (keyed by variable index, as the defenses key them) into the flat buffers.
   */
  load(adam: AdamHostState, vars: tf.Variable[], ema?: Map<string, Float32Array>): void {
    const f32 = this.f32();
    for (const s of this.slots) {
      const i = vars.indexOf(s.variable);
      if (i < 0) throw new Error('FusedMafTrainer: a MADE variable is not among the trained ones.');
      this.scatter(f32, this.params, s, s.variable.dataSync() as Float32Array, true);
      this.scatter(f32, this.m, s, adam.m[i]!, false);
      this.scatter(f32, this.v, s, adam.v[i]!, false);
      if (ema) {
        const moment = ema.get(String(i)) ?? new Float32Array(s.variable.size);
        this.scatter(f32, this.ema, s, moment, false);
      }
    }
  }

  /** Copies the variables' (unmasked) values into the parameter buffer (inference: no moments). */
  loadWeights(): void {
    const f32 = this.f32();
    for (const s of this.slots)
      this.scatter(f32, this.params, s, s.variable.dataSync() as Float32Array, true);
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

  /** The gradient EMA's moments, per variable, as HostEma.importHost takes them. */
  emaMoments(vars: tf.Variable[]): { name: string; shape: number[]; values: Float32Array }[] {
    const f32 = this.f32();
    return this.slots.map((s) => {
      const values = new Float32Array(s.variable.size);
      this.gather(f32, this.ema, s, values, false);
      return { name: String(vars.indexOf(s.variable)), shape: [...s.variable.shape], values };
    });
  }

  /** Variable-shaped src into the slot's stored layout in the buffer at base (if masked, masked entries 0). */
  scatter(f32: Float32Array, base: number, s: Slot, src: Float32Array, masked: boolean): void {
    const o = (base + s.offset) / 4;
    const { stored, at, trained } = s.entries;
    for (let e = 0; e < at.length; e++) {
      f32[o + stored[e]!] = !masked || trained[e] ? src[at[e]!]! : 0;
    }
  }

  /** The slot's stored entries back into variable-shaped dst (if masked, masked entries left alone). */
  gather(f32: Float32Array, base: number, s: Slot, dst: Float32Array, masked: boolean): void {
    const o = (base + s.offset) / 4;
    const { stored, at, trained } = s.entries;
    for (let e = 0; e < at.length; e++) {
      if (!masked || trained[e]) dst[at[e]!] = f32[o + stored[e]!]!;
    }
  }
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
