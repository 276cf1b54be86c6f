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
  gatherRows(...args: number[]): void;
  affineForward(...args: number[]): void;
  affineBackward(...args: number[]): void;
  rowNLL(z: number, ldz: number, logDet: number, n: number, D: number, out: number): void;
  seedDz(...args: number[]): void;
  emaUpdate(m: number, g: number, n: number, decay: number, keepOld: number): void;
  addDividedNormSq(g: number, m: number, n: number, div: number): number;
  maskAndNormSq(g: number, mask: number, n: number): number;
  adam(...args: number[]): void;
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
}

const flag = (b: boolean | undefined): number => (b ? 1 : 0);

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
}
