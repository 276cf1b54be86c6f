// The JavaScript side of the fused MAF kernels (maf-step.as.ts, built into maf-step.wasm.ts): which
// build to load, the engine flag that build needs, one instance per trainer, and the kernels with
// named arguments. Addresses are byte offsets into the instance's memory; leading dimensions ("ld")
// and counts are in elements, as maf-step.as.ts documents them.
import { setFlagsFromString } from 'node:v8';
import { WASM_BASE64, WASM_RELAXED_BASE64 } from './maf-step.wasm.js';

// The tsconfig's lib (ES2023, no DOM) has no WebAssembly types; these are the parts used here.
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The module's exports, positional as compiled. */
interface Exports {
  memory: WasmMemory;
  heapBase(): number;
  gemm(...args: number[]): void;
  transpose(src: number, lds: number, rows: number, cols: number, dst: number, ldd: number): void;
  colSum(src: number, lds: number, rows: number, cols: number, dst: number): void;
  reluBackward(d: number, h: number, n: number): void;
  tanhInPlace(h: number, n: number): void;
  tanhBackward(d: number, h: number, n: number): void;
  gatherRows(...args: number[]): void;
  affineForward(...args: number[]): void;
  affineBackward(...args: number[]): void;
  rowNLL(z: number, ldz: number, logDet: number, n: number, D: number, out: number): void;
  seedDz(...args: number[]): void;
  emaUpdate(m: number, g: number, n: number, decay: number, keepOld: number): void;
  addDividedNormSq(g: number, m: number, n: number, div: number): number;
  maskAndNormSq(g: number, mask: number, n: number): number;
  adam(...args: number[]): void;
  tileScratchFloats(D: number, H1: number, H2: number, Op: number): number;
  madeInvert(...args: number[]): void;
  madeBackSubst(...args: number[]): void;
  affineTangent(...args: number[]): void;
  axpby(a: number, sa: number, b: number, sb: number, c: number, n: number): void;
  mulScaled(a: number, b: number, s: number, c: number, n: number): void;
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

/**
 * A product C (+)= A B (+ bias), optionally ReLU'd; see gemm in maf-step.as.ts. Named arguments cost
 * an object per call: the fused step measured 1 to 2.5 % slower than with positional calls.
 */
export interface GemmArgs {
  /** A(i, k) is at a + 4 (i rowStrideA + k colStrideA): A or its transpose, read in place. */
  a: number;
  rowStrideA: number;
  colStrideA: number;
  b: number;
  ldb: number;
  c: number;
  ldc: number;
  /** Rows (a multiple of 4), inner dimension, columns (a multiple of 8). */
  M: number;
  K: number;
  N: number;
  /** Address of a bias row; absent: none. */
  bias?: number;
  accumulate?: boolean;
  relu?: boolean;
  /** int32 block tables that skip products known to add zeros; absent: none. */
  kFrom?: number;
  kTo?: number;
  jFrom?: number;
}

/** One MAF affine layer's buffers: u in, MADE output out, z and exp(-s_c) e; D theta dimensions. */
export interface AffineArgs {
  ldu: number;
  out: number;
  ldo: number;
  z: number;
  e: number;
  n: number;
  D: number;
  sMin: number;
  sMax: number;
  /** RABI's direction z = u exp(s) + mu (default: z = (u - mu) exp(-s)). */
  pyro?: boolean;
  /** nflows' z = u (softplus(s) + 1e-3) + mu, no clip (sbi's MAF); overrides pyro. */
  nflows?: boolean;
  /** The log-scale clip passes the gradient (default: zero outside the range). */
  passGrad?: boolean;
}

const flag = (b: boolean | undefined): number => (b ? 1 : 0);
/** The affine kernels' mode: 0 robustsbi's direction, 1 pyro's, 2 nflows'. */
const affineMode = (a: AffineArgs): number => (a.nflows ? 2 : flag(a.pyro));

/**
 * One affine MADE with exactly two hidden layers, as the incremental passes (madeInvert,
 * madeBackSubst) read it: weights at their addresses with their leading dimensions, and the int32
 * tables order (D) and start1, start2 (D + 1) at theirs.
 */
export interface MadeTiles {
  D: number;
  ldD: number;
  ldH1: number;
  ldH2: number;
  ldO: number;
  W1: number;
  W2: number;
  b2: number;
  W3: number;
  b3: number;
  order: number;
  start1: number;
  start2: number;
  sMin: number;
  sMax: number;
  /** tileScratchFloats floats of scratch. */
  scratch: number;
  /** RABI's affine direction (z = y exp(s) + mu) and its clamp that passes the gradient. */
  pyro: boolean;
  passGrad: boolean;
}

/** One instance of the kernels (its own memory, so concurrent trainers never share buffers). */
export class MafKernels {
  private readonly x: Exports;

  constructor() {
    this.x = new wasmApi.Instance(fusedKernelBuild().module, {}).exports as unknown as Exports;
  }

  get memory(): WasmMemory {
    return this.x.memory;
  }

  /** First byte the JavaScript side may use. */
  heapBase(): number {
    return this.x.heapBase();
  }

  gemm(g: GemmArgs): void {
    this.x.gemm(
      g.a,
      g.rowStrideA,
      g.colStrideA,
      g.b,
      g.ldb,
      g.c,
      g.ldc,
      g.M,
      g.K,
      g.N,
      g.bias ?? 0,
      flag(g.accumulate),
      flag(g.relu),
      g.kFrom ?? 0,
      g.kTo ?? 0,
      g.jFrom ?? 0,
    );
  }

  transpose(src: number, lds: number, rows: number, cols: number, dst: number, ldd: number): void {
    this.x.transpose(src, lds, rows, cols, dst, ldd);
  }

  colSum(src: number, lds: number, rows: number, cols: number, dst: number): void {
    this.x.colSum(src, lds, rows, cols, dst);
  }

  reluBackward(d: number, h: number, n: number): void {
    this.x.reluBackward(d, h, n);
  }

  /** h = tanh(h) over n floats (a multiple of 4), in place. */
  tanh(h: number, n: number): void {
    this.x.tanhInPlace(h, n);
  }

  /** d *= 1 - h^2 over n floats (a multiple of 4): tanh's backward from its output h. */
  tanhBackward(d: number, h: number, n: number): void {
    this.x.tanhBackward(d, h, n);
  }

  /** dst row r = src row idx[r] (idx: count int32 row numbers), the first cols floats of each. */
  gatherRows(a: {
    src: number;
    lds: number;
    idx: number;
    count: number;
    cols: number;
    dst: number;
    ldd: number;
  }): void {
    this.x.gatherRows(a.src, a.lds, a.idx, a.count, a.cols, a.dst, a.ldd);
  }

  /** z = (u - mu) e; logDet gains -sum s_c (starting from 0 unless accumulate). */
  affineForward(a: AffineArgs & { u: number; logDet: number; accumulate: boolean }): void {
    const x = this.x;
    x.affineForward(
      a.u,
      a.ldu,
      a.out,
      a.ldo,
      a.z,
      a.e,
      a.n,
      a.D,
      a.sMin,
      a.sMax,
      a.logDet,
      +a.accumulate,
      affineMode(a),
    );
  }

  /** dOut (and du unless 0) from dz, for the loss sum_r coef_r nll_r; rows n..nPad zeroed. */
  affineBackward(
    a: AffineArgs & { dz: number; du: number; dOut: number; nPad: number; coef: number },
  ): void {
    this.x.affineBackward(
      a.ldu,
      a.out,
      a.ldo,
      a.z,
      a.e,
      a.dz,
      a.du,
      a.dOut,
      a.n,
      a.nPad,
      a.D,
      a.sMin,
      a.sMax,
      a.coef,
      affineMode(a),
      flag(a.passGrad),
    );
  }

  rowNLL(z: number, ldz: number, logDet: number, n: number, D: number, out: number): void {
    this.x.rowNLL(z, ldz, logDet, n, D, out);
  }

  /** dz = coef_r z_r for rows < n, 0 for rows n..nPad. */
  seedDz(a: {
    z: number;
    ldz: number;
    coef: number;
    n: number;
    nPad: number;
    D: number;
    dz: number;
  }): void {
    this.x.seedDz(a.z, a.ldz, a.coef, a.n, a.nPad, a.D, a.dz);
  }

  emaUpdate(m: number, g: number, n: number, decay: number, keepOld: number): void {
    this.x.emaUpdate(m, g, n, decay, keepOld);
  }

  addDividedNormSq(g: number, m: number, n: number, div: number): number {
    return this.x.addDividedNormSq(g, m, n, div);
  }

  maskAndNormSq(g: number, mask: number, n: number): number {
    return this.x.maskAndNormSq(g, mask, n);
  }

  /** torch.optim.Adam on n floats of p from g scaled by coef, with moments m and v. */
  adam(a: {
    p: number;
    g: number;
    m: number;
    v: number;
    n: number;
    coef: number;
    beta1: number;
    beta2: number;
    stepSize: number;
    sqrtBc2: number;
    epsilon: number;
  }): void {
    this.x.adam(
      a.p,
      a.g,
      a.m,
      a.v,
      a.n,
      a.coef,
      a.beta1,
      a.beta2,
      a.stepSize,
      a.sqrtBc2,
      a.epsilon,
    );
  }

  /** Scratch floats that madeInvert and madeBackSubst need. */
  tileScratchFloats(D: number, H1: number, H2: number, Op: number): number {
    return this.x.tileScratchFloats(D, H1, H2, Op);
  }

  /**
   * Inverts the MADE transform for rows [0, n): its input y from its output z, leaving e, h1, h2
   * and out as a density pass at y would (h1 holds x W_ctx + b1 on entry); logDet gains -sum s_c.
   */
  madeInvert(
    m: MadeTiles,
    a: {
      z: number;
      y: number;
      e: number;
      h1: number;
      h2: number;
      out: number;
      logDet: number;
      accumulate: boolean;
      n: number;
    },
  ): void {
    this.x.madeInvert(
      a.z,
      a.y,
      a.e,
      a.h1,
      a.h2,
      a.out,
      a.logDet,
      +a.accumulate,
      a.n,
      m.D,
      m.ldD,
      m.ldH1,
      m.ldH2,
      m.ldO,
      m.W1,
      m.W2,
      m.b2,
      m.W3,
      m.b3,
      m.order,
      m.start1,
      m.start2,
      m.sMin,
      m.sMax,
      m.scratch,
      flag(m.pyro),
    );
  }

  /** The back-substitution J^T w = lam + K^T chat through the MADE transform (maf-step.as.ts). */
  madeBackSubst(
    m: MadeTiles,
    a: {
      lam: number;
      rcot: number;
      v: number;
      e: number;
      h1: number;
      h2: number;
      out: number;
      w: number;
      chat: number;
      a2hat: number;
      a1hat: number;
      n: number;
      /** An extra cotangent on mu ([n, ldD]; pyro's direction only); absent: none. */
      mcot?: number;
    },
  ): void {
    this.x.madeBackSubst(
      a.lam,
      a.rcot,
      a.v,
      a.e,
      a.h1,
      a.h2,
      a.out,
      a.w,
      a.chat,
      a.a2hat,
      a.a1hat,
      a.n,
      m.D,
      m.ldD,
      m.ldH1,
      m.ldH2,
      m.ldO,
      m.W1,
      m.W2,
      m.W3,
      m.order,
      m.start1,
      m.start2,
      m.sMin,
      m.sMax,
      m.scratch,
      a.mcot ?? 0,
      flag(m.pyro),
      flag(m.passGrad),
    );
  }

  /** ldot = c rdot, p = (ydot - mudot) e, vdot = p - v ldot (ydot 0: none). */
  affineTangent(a: {
    ydot: number;
    odot: number;
    out: number;
    e: number;
    v: number;
    ldot: number;
    p: number;
    vdot: number;
    n: number;
    D: number;
    ldD: number;
    ldO: number;
    sMin: number;
    sMax: number;
    pyro: boolean;
    passGrad: boolean;
  }): void {
    this.x.affineTangent(
      a.ydot,
      a.odot,
      a.out,
      a.e,
      a.v,
      a.ldot,
      a.p,
      a.vdot,
      a.n,
      a.D,
      a.ldD,
      a.ldO,
      a.sMin,
      a.sMax,
      flag(a.pyro),
      flag(a.passGrad),
    );
  }

  /** c = a sa + b sb over n floats. */
  axpby(a: number, sa: number, b: number, sb: number, c: number, n: number): void {
    this.x.axpby(a, sa, b, sb, c, n);
  }

  /** c = a b s over n floats. */
  mulScaled(a: number, b: number, s: number, c: number, n: number): void {
    this.x.mulScaled(a, b, s, c, n);
  }
}
