// The seeded random stream behind everything stochastic in sbi/ (simulators, initialization,
// shuffling, base noise). xoshiro128** (32-bit state words, fast with Math.imul), its 128-bit
// state filled by splitmix32 from a 64-bit hash of the seed's path. A fork is a function of
// (seed path, key) only, so forking never moves the parent and the same key always gives the same
// child, wherever in the parent's stream it is asked for.
import { tf } from './backend.js';
import type { RandomStream } from './types.js';

/** Everything needed to continue a stream exactly where it was (JSON-serializable). */
export interface RngState {
  version: 1;
  /** The seed followed by the fork keys that led to this stream. */
  path: string[];
  /** The four xoshiro128** state words, unsigned. */
  words: [number, number, number, number];
  /** The second normal of the last polar pair, not yet returned. */
  spareNormal: number | null;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;
/** Below this mean (n * min(p, 1 - p)) binomial uses inversion; above it, exact beta splitting. */
const BINOMIAL_INVERSION_MEAN = 30;

function canonicalKey(k: number | string): string {
  if (typeof k === 'number') {
    if (!Number.isFinite(k)) throw new Error(`A seed or fork key must be finite, got ${k}`);
    return `n:${k}`;
  }
  return `s:${k}`;
}

/** A 64-bit hash (two 32-bit lanes with different multipliers) of the path's JSON text. */
function hashPath(path: string[]): [number, number] {
  const text = JSON.stringify(path);
  let h1 = 0x243f6a88;
  let h2 = 0x85a308d3;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x9e3779b1);
    h1 = (h1 << 13) | (h1 >>> 19);
    h2 = Math.imul(h2 ^ c, 0x85ebca77);
    h2 = (h2 << 17) | (h2 >>> 15);
  }
  return [fmix(h1 ^ text.length), fmix(h2 ^ Math.imul(text.length, 0xc2b2ae3d))];
}

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** splitmix32: a counter through an avalanche mix; used only to spread the hash over the state. */
function splitmix32(counter: number): number {
  let z = counter | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

function seedWords(path: string[]): [number, number, number, number] {
  const [h1, h2] = hashPath(path);
  const golden = 0x9e3779b9;
  const w: [number, number, number, number] = [
    splitmix32(h1 + golden),
    splitmix32(h1 + 2 * golden),
    splitmix32(h2 + 3 * golden),
    splitmix32(h2 + 4 * golden),
  ];
  if ((w[0] | w[1] | w[2] | w[3]) === 0) w[0] = 1; // the all-zero state is a fixed point
  return w;
}

export class Rng implements RandomStream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;
  private readonly path: string[];

  private constructor(path: string[], words: readonly number[]) {
    this.path = path;
    this.s0 = words[0]! | 0;
    this.s1 = words[1]! | 0;
    this.s2 = words[2]! | 0;
    this.s3 = words[3]! | 0;
  }

  /** A stream from a seed path (the seed, then fork keys, each already canonical). */
  static fromPath(path: string[]): Rng {
    return new Rng(path.slice(), seedWords(path));
  }

  /** Continues a stream saved by state(). */
  static fromState(state: RngState): Rng {
    if (
      state?.version !== 1 ||
      !Array.isArray(state.path) ||
      !Array.isArray(state.words) ||
      state.words.length !== 4 ||
      !state.words.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)
    ) {
      throw new Error('Not a saved random stream state (version 1 with four 32-bit words).');
    }
    const r = new Rng(state.path.slice(), state.words);
    r.spare = state.spareNormal;
    return r;
  }

  state(): RngState {
    return {
      version: 1,
      path: this.path.slice(),
      words: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0],
      spareNormal: this.spare,
    };
  }

  /** The next 32 random bits, unsigned (xoshiro128**). */
  nextUint32(): number {
    const s1 = this.s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform on [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  /** Uniform on (0, 1]: safe under log. */
  private uniformPositive(): number {
    return 1 - this.uniform();
  }

  /** Standard normal by Marsaglia's polar method; the pair's second value is kept for the next call. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    for (;;) {
      const u = 2 * this.uniform() - 1;
      const v = 2 * this.uniform() - 1;
      const s = u * u + v * v;
      if (s >= 1 || s === 0) continue;
      const f = Math.sqrt((-2 * Math.log(s)) / s);
      this.spare = v * f;
      return u * f;
    }
  }

  /** Integer uniform on [0, n), unbiased (rejection), for integers 1 <= n <= 2^53. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_53) {
      throw new Error(`int(n) needs an integer 1 <= n <= 2^53, got ${n}`);
    }
    if (n <= TWO_POW_32) {
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % n);
    for (;;) {
      const x = this.uniform() * TWO_POW_53;
      if (x < limit) return x % n;
    }
  }

  /**
   * Fills with uniforms on [0, 1). A Float32Array gets 24-bit values: a 53-bit double just below 1
   * would round to 1 in float32.
   */
  fillUniform(out: Float32Array | Float64Array): void {
    if (out instanceof Float32Array) {
      for (let i = 0; i < out.length; i++) out[i] = (this.nextUint32() >>> 8) / 16777216;
    } else {
      for (let i = 0; i < out.length; i++) out[i] = this.uniform();
    }
  }

  fillNormal(out: Float32Array | Float64Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`permutation(n) needs an integer n >= 0, got ${n}`);
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** Gamma(shape, 1). */
  gamma(shape: number): number {
    return Math.exp(this.logGamma(shape));
  }

  /**
   * log of a Gamma(shape, 1) draw. Marsaglia-Tsang for shape >= 1; below 1, the boost
   * G(a) = G(a + 1) U^(1/a) in log space, so tiny shapes do not underflow to log 0.
   */
  private logGamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new Error(`gamma(shape) needs a finite shape > 0, got ${shape}`);
    }
    if (shape < 1) return this.logGamma(shape + 1) + Math.log(this.uniformPositive()) / shape;
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniformPositive();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2 || Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) {
        return Math.log(d) + Math.log(v);
      }
    }
  }

  /** Beta(a, b) as X / (X + Y) of two gammas, formed in log space (exact for tiny a, b too). */
  beta(a: number, b: number): number {
    const lx = this.logGamma(a);
    const ly = this.logGamma(b);
    return 1 / (1 + Math.exp(ly - lx));
  }

  /**
   * Binomial(n, p), exactly distributed. For a small mean, inversion of the CDF. Otherwise beta
   * splitting (order statistics): the i-th smallest of n uniforms is Beta(i, n + 1 - i); the count
   * below p is then a binomial of the i - 1 uniforms below it, or i plus one of the n - i above it,
   * each with p rescaled to its interval. O(log n) betas, no approximation.
   */
  binomial(n: number, p: number): number {
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`binomial(n, p) needs an integer n >= 0, got ${n}`);
    if (!(p >= 0 && p <= 1)) throw new Error(`binomial(n, p) needs 0 <= p <= 1, got ${p}`);
    let count = 0;
    let sign = 1; // -1 while counting failures instead of successes
    for (;;) {
      if (p > 0.5) {
        count += sign * n;
        sign = -sign;
        p = 1 - p;
      }
      if (n * p < BINOMIAL_INVERSION_MEAN) return count + sign * this.binomialInversion(n, p);
      const i = Math.floor(n / 2) + 1;
      const x = this.beta(i, n + 1 - i);
      if (p < x) {
        n = i - 1;
        p = p / x;
      } else {
        count += sign * i;
        n = n - i;
        p = (p - x) / (1 - x);
      }
    }
  }

  /** Sequential search of the CDF from 0; expected n p + 1 steps (p <= 1/2 here). */
  private binomialInversion(n: number, p: number): number {
    if (n === 0 || p === 0) return 0;
    const q = 1 - p;
    const ratio = p / q;
    let pmf = Math.exp(n * Math.log1p(-p));
    let cdf = pmf;
    const u = this.uniform();
    let k = 0;
    while (u >= cdf && k < n) {
      pmf *= (ratio * (n - k)) / (k + 1);
      k += 1;
      cdf += pmf;
      if (pmf === 0 && k > n * p) break; // the remaining tail is below double precision
    }
    return k;
  }

  /** An independent stream derived from this stream's seed path and `key`; this one does not move. */
  fork(key: string | number): Rng {
    return Rng.fromPath([...this.path, canonicalKey(key)]);
  }

  normalTensor(shape: number[]): tf.Tensor {
    const a = new Float32Array(shape.reduce((s, d) => s * d, 1));
    this.fillNormal(a);
    return tf.tensor(a, shape, 'float32');
  }

  uniformTensor(shape: number[]): tf.Tensor {
    const a = new Float32Array(shape.reduce((s, d) => s * d, 1));
    this.fillUniform(a);
    return tf.tensor(a, shape, 'float32');
  }
}

/** The stream for a seed. Numbers and strings are different seeds (7 and '7' differ). */
export function createRng(seed: number | string): Rng {
  return Rng.fromPath([canonicalKey(seed)]);
}
