// numpy's legacy RandomState(seed).normal stream, bit for bit: MT19937 seeded as init_genrand, 53-bit
// doubles from two 32-bit words, Marsaglia's polar method returning the second value of a pair first
// and caching the other. The pyloric reference draws its noise this way (interface.py:224-228), so a
// check against the reference can replay the very same noise. The product draws from sbi/rng.ts.

const N = 624;
const M = 397;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;
const MATRIX_A = 0x9908b0df;

export class NumpyLegacyRandom {
  private readonly mt = new Uint32Array(N);
  private index = N;
  private cached = 0;
  private hasCached = false;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw new RangeError(`A numpy legacy seed is an integer in [0, 2^32), got ${seed}`);
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const p = mt[i - 1]!;
      mt[i] = (Math.imul(1812433253, p ^ (p >>> 30)) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let k = 0; k < N; k++) {
      const y = (mt[k]! & UPPER) | (mt[(k + 1) % N]! & LOWER);
      mt[k] = mt[(k + M) % N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }

  /** The next tempered 32-bit word, unsigned. */
  nextUint32(): number {
    if (this.index >= N) this.twist();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform on [0, 1) with 53 bits, as random_standard_uniform. */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A standard normal, as legacy_gauss. */
  gauss(): number {
    if (this.hasCached) {
      this.hasCached = false;
      return this.cached;
    }
    let x1: number;
    let x2: number;
    let r2: number;
    do {
      x1 = 2 * this.nextDouble() - 1;
      x2 = 2 * this.nextDouble() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.cached = f * x1;
    this.hasCached = true;
    return f * x2;
  }

  /** Fills out with standard normals in order (normal(size=...) row-major, before its scale). */
  fillGauss(out: Float64Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.gauss();
  }
}
