// The JavaScript side of the pyloric kernel (sbi/wasm/pyloric-step.as.ts, built into
// pyloric-step.wasm.ts): two networks per run, one per f64x2 lane, with the memory laid out once per
// run length. A lane's result does not depend on the other lane, so a row gives the same bytes
// whichever row it is paired with. The plain SIMD128 build is used, never the relaxed one: fused
// multiply-adds would make the result depend on the machine.
import { WASM_BASE64 } from '../wasm/pyloric-step.wasm.js';
import {
  PYLORIC_CONDUCTANCES,
  pyloricConstants,
  recordedPoints,
  type PyloricConstants,
} from './pyloric-network.js';

// The tsconfig's lib (ES2023, no DOM) has no WebAssembly types; these are the parts used here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  heapBase(): number;
  reset(state: number): void;
  run(...args: number[]): void;
  expPairs(x: number, n: number, out: number): void;
}

/** v128 pairs of scratch state the kernel needs (STATE_PAIRS in the kernel). */
const STATE_PAIRS = 55;
const PAIR = 16;
let compiled: object | undefined;

function instantiate(): Exports {
  compiled ??= new wasmApi.Module(Buffer.from(WASM_BASE64, 'base64'));
  return new wasmApi.Instance(compiled, {}).exports as unknown as Exports;
}

/** Grows the instance's memory to hold `end` bytes. */
function reserve(ex: Exports, end: number): void {
  const missing = end - ex.memory.buffer.byteLength;
  if (missing > 0) ex.memory.grow(Math.ceil(missing / 65536));
}

/** A noise source: fills z with standard normals, z[j * nsteps + i] for neuron j at step i. */
export type NoiseFill = (z: Float64Array) => void;

/** One lane of a run: 31 absolute conductances (mS) and its noise (null: none). */
export interface PyloricLane {
  g: ArrayLike<number>;
  noise: NoiseFill | null;
}

export class PyloricPairKernel {
  readonly nsteps: number;
  readonly every: number;
  readonly kept: number;
  private readonly ex: Exports;
  private readonly k: PyloricConstants;
  private readonly gAddr: number;
  private readonly stateAddr: number;
  private readonly noiseAddr: number;
  private readonly outAddr: number;
  private readonly countsAddr: number;
  private readonly z: Float64Array;

  /**
   * Runs of nsteps steps that keep V every `every` steps and count, every countEvery steps, the
   * points above countAbove (strictly).
   */
  constructor(
    nsteps: number,
    every: number,
    private readonly countEvery = 0,
    private readonly countAbove = Infinity,
    temperature?: number,
  ) {
    this.nsteps = nsteps;
    this.every = every;
    this.kept = recordedPoints(nsteps, every);
    this.k = pyloricConstants(temperature);
    this.ex = instantiate();
    this.gAddr = (this.ex.heapBase() + PAIR - 1) & ~(PAIR - 1);
    this.stateAddr = this.gAddr + PYLORIC_CONDUCTANCES * PAIR;
    this.noiseAddr = this.stateAddr + STATE_PAIRS * PAIR;
    this.outAddr = this.noiseAddr + 3 * nsteps * PAIR;
    this.countsAddr = this.outAddr + 3 * this.kept * PAIR;
    reserve(this.ex, this.countsAddr + 6 * 4);
    this.z = new Float64Array(3 * nsteps);
  }

  /** Runs both lanes from the package's initial state; noiseStd (uA) scales both lanes' normals. */
  run(a: PyloricLane, b: PyloricLane, noiseStd: number): void {
    const mem = new Float64Array(this.ex.memory.buffer);
    const { k, z } = this;
    [a, b].forEach((lane, l) => {
      const g0 = this.gAddr / 8 + l;
      for (let c = 0; c < PYLORIC_CONDUCTANCES; c++)
        mem[g0 + 2 * c] = lane.g[c]! * (c < 24 ? k.gFactor : k.gSynFactor);
      if (lane.noise === null) z.fill(0);
      else lane.noise(z);
      const n0 = this.noiseAddr / 8 + l;
      for (let i = 0; i < z.length; i++) mem[n0 + 2 * i] = z[i]!;
    });
    this.ex.reset(this.stateAddr);
    this.ex.run(
      this.gAddr,
      this.stateAddr,
      this.noiseAddr,
      noiseStd,
      this.nsteps,
      this.every,
      this.outAddr,
      this.countEvery,
      this.countAbove,
      this.countsAddr,
      k.dt,
      k.ndtM,
      k.ndtMCaS,
      k.ndtMKCa,
      k.ndtH,
      k.caDecay,
      k.rtOverZF,
      k.qSynTau,
    );
  }

  /** Lane l's recorded V of the last run into out[offset + j * kept + n]. */
  read(lane: number, out: Float32Array | Float64Array, offset = 0): void {
    const mem = new Float64Array(this.ex.memory.buffer);
    const o0 = this.outAddr / 8 + lane;
    for (let p = 0; p < 3 * this.kept; p++) out[offset + p] = mem[o0 + 2 * p]!;
  }

  /** Lane l's counts of points above countAbove in the last run, per neuron. */
  counts(lane: number): [number, number, number] {
    const c = new Int32Array(this.ex.memory.buffer, this.countsAddr, 6);
    return [c[3 * lane]!, c[3 * lane + 1]!, c[3 * lane + 2]!];
  }
}

/** The kernel's exp on each value (its accuracy test reads this). */
export function kernelExp(x: Float64Array): Float64Array {
  const ex = instantiate();
  const pairs = Math.ceil(x.length / 2);
  const xa = (ex.heapBase() + PAIR - 1) & ~(PAIR - 1);
  const oa = xa + pairs * PAIR;
  reserve(ex, oa + pairs * PAIR);
  const mem = new Float64Array(ex.memory.buffer);
  mem.fill(0, xa / 8, oa / 8);
  mem.set(x, xa / 8);
  ex.expPairs(xa, pairs, oa);
  return new Float64Array(ex.memory.buffer).slice(oa / 8, oa / 8 + x.length);
}
