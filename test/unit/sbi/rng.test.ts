// The seeded stream: determinism, fork independence, exact resume, and each distribution's moments
// and shape. Every draw is seeded, so each statistical check is a fixed computation: the bounds
// (5 standard errors, or a 0.1% critical value) say how unlikely a correct generator is to miss.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng, Rng } from '../../../sbi/rng.js';

function draws(n: number, f: () => number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = f();
  return a;
}

function moments(a: ArrayLike<number>): {
  mean: number;
  variance: number;
  skew: number;
  kurt: number;
} {
  const n = a.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += a[i]!;
  m /= n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - m;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  return {
    mean: m,
    variance: (m2 * n) / (n - 1),
    skew: m3 / n / m2 ** 1.5,
    kurt: m4 / n / (m2 * m2),
  };
}

/** |sample mean - mean| within 5 standard errors. */
function assertMean(a: ArrayLike<number>, mean: number, variance: number, what: string): void {
  const got = moments(a).mean;
  const se = Math.sqrt(variance / a.length);
  assert.ok(Math.abs(got - mean) < 5 * se, `${what}: mean ${got}, expected ${mean} +- ${5 * se}`);
}

/** Sample variance within 5 standard errors; its variance is (mu4 - sigma^4) / n. */
function assertVariance(a: ArrayLike<number>, variance: number, mu4: number, what: string): void {
  const got = moments(a).variance;
  const se = Math.sqrt((mu4 - variance * variance) / a.length);
  assert.ok(
    Math.abs(got - variance) < 5 * se,
    `${what}: variance ${got}, expected ${variance} +- ${5 * se}`,
  );
}

/** Kolmogorov-Smirnov distance between a sample and a CDF. */
function ksDistance(sample: ArrayLike<number>, cdf: (x: number) => number): number {
  const s = Float64Array.from(sample).sort();
  const n = s.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(s[i]!);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  }
  return d;
}

/** 0.1% critical value of the KS statistic. */
const ksCritical = (n: number): number => 1.949 / Math.sqrt(n);

/** Pearson chi-square of observed counts against expected counts. */
function chiSquare(observed: number[], expected: number[]): number {
  return observed.reduce((s, o, i) => s + (o - expected[i]!) ** 2 / expected[i]!, 0);
}

/** Upper 0.1% point of chi-square with k degrees of freedom (Wilson-Hilferty). */
function chiSquareCritical(k: number): number {
  const z = 3.0902;
  return k * (1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k))) ** 3;
}

/** Standard normal CDF through erfc (Abramowitz-Stegun 7.1.26, error < 1.5e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erfc = poly * Math.exp(-z * z);
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log((n - k + i) / i);
  return s;
}

function binomialPmf(n: number, p: number, k: number): number {
  return Math.exp(logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
}

describe('sbi/rng', () => {
  before(async () => {
    await initBackend('cpu');
  });

  test('the same seed gives the same stream; different seeds differ', () => {
    for (const seed of [0, 42, 'trial-7', -3.5]) {
      const a = createRng(seed);
      const b = createRng(seed);
      assert.deepEqual(
        draws(200, () => a.uniform()),
        draws(200, () => b.uniform()),
      );
      assert.deepEqual(
        draws(51, () => a.normal()),
        draws(51, () => b.normal()),
      );
    }
    const seqs = [1, 2, '1', 'a', 'b'].map((s) => {
      const r = createRng(s);
      return draws(4, () => r.uniform()).join(',');
    });
    assert.equal(new Set(seqs).size, seqs.length, 'distinct seeds must give distinct streams');
    assert.throws(() => createRng(Number.NaN), /finite/);
  });

  test('xoshiro128** reference vector, and a known seed keeps its values (no silent changes)', () => {
    // The generator's published outputs from the state {1, 2, 3, 4}.
    const ref = Rng.fromState({ version: 1, path: [], words: [1, 2, 3, 4], spareNormal: null });
    assert.deepEqual(
      Array.from({ length: 6 }, () => ref.nextUint32()),
      [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
    );
    // Seeding (hash + splitmix32) pinned: changing it would change every stored trial's draws.
    const r = createRng(12345);
    assert.deepEqual(
      [r.nextUint32(), r.nextUint32(), r.nextUint32()],
      [2879311238, 96173164, 1227079458],
    );
    assert.equal(createRng('x').uniform(), 0.7740728465250332);
  });

  test('uniform: range, moments, Kolmogorov-Smirnov; float32 fill never reaches 1', () => {
    const r = createRng('uniform');
    const u = draws(100000, () => r.uniform());
    assert.ok(u.every((v) => v >= 0 && v < 1));
    assertMean(u, 0.5, 1 / 12, 'uniform');
    assertVariance(u, 1 / 12, 1 / 80, 'uniform');
    const d = ksDistance(u.subarray(0, 20000), (x) => Math.min(Math.max(x, 0), 1));
    assert.ok(d < ksCritical(20000), `KS ${d}`);
    const f = new Float32Array(100000);
    r.fillUniform(f);
    assert.ok(f.every((v) => v >= 0 && v < 1));
    assertMean(f, 0.5, 1 / 12, 'fillUniform float32');
    const g = new Float64Array(100000);
    r.fillUniform(g);
    assertMean(g, 0.5, 1 / 12, 'fillUniform float64');
    // 53 bits: the low bits of the double are not constant.
    assert.ok(u.slice(0, 100).some((v) => (v * 2 ** 53) % 2 === 1));
  });

  test('normal: moments up to the fourth, Kolmogorov-Smirnov, fillNormal', () => {
    const r = createRng('normal');
    const z = draws(100000, () => r.normal());
    const m = moments(z);
    assertMean(z, 0, 1, 'normal');
    assertVariance(z, 1, 3, 'normal');
    assert.ok(Math.abs(m.skew) < 5 * Math.sqrt(6 / z.length), `skew ${m.skew}`);
    assert.ok(Math.abs(m.kurt - 3) < 5 * Math.sqrt(24 / z.length), `kurtosis ${m.kurt}`);
    const d = ksDistance(z.subarray(0, 20000), normalCdf);
    assert.ok(d < ksCritical(20000), `KS ${d}`);
    const f = new Float32Array(50001);
    r.fillNormal(f);
    assertMean(f, 0, 1, 'fillNormal');
    assertVariance(f, 1, 3, 'fillNormal');
  });

  test('int: range, chi-square on 7 bins, large n', () => {
    const r = createRng('int');
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[r.int(7)]! += 1;
    const chi = chiSquare(counts, new Array<number>(7).fill(10000));
    assert.ok(chi < chiSquareCritical(6), `chi-square ${chi}`);
    // n just above 2^31: a plain modulo of 32 bits would put 2/3 of the mass on the lower half.
    const big = 3 * 2 ** 30;
    const lower = draws(30000, () => r.int(big)).filter((v) => v < big / 2).length / 30000;
    assert.ok(Math.abs(lower - 0.5) < 5 * Math.sqrt(0.25 / 30000), `lower half ${lower}`);
    const huge = draws(1000, () => r.int(2 ** 40));
    assert.ok(huge.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 40));
    assert.ok(huge.some((v) => v >= 2 ** 39));
    assert.equal(r.int(1), 0);
    assert.throws(() => r.int(0), /integer/);
    assert.throws(() => r.int(2.5), /integer/);
  });

  test('permutation: a permutation, all 6 orders of 3 equally likely', () => {
    const r = createRng('perm');
    const p = r.permutation(1000);
    assert.deepEqual(
      Array.from(p).sort((a, b) => a - b),
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.equal(r.permutation(0).length, 0);
    const counts = new Map<string, number>();
    for (let i = 0; i < 60000; i++) {
      const k = Array.from(r.permutation(3)).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    assert.equal(counts.size, 6);
    const chi = chiSquare([...counts.values()], new Array<number>(6).fill(10000));
    assert.ok(chi < chiSquareCritical(5), `chi-square ${chi}`);
  });

  test('gamma: mean and variance equal the shape (shape < 1 boost included), KS for shape 1', () => {
    const r = createRng('gamma');
    for (const a of [0.05, 0.3, 1, 2.5, 20]) {
      const g = draws(60000, () => r.gamma(a));
      assert.ok(g.every((v) => v >= 0 && Number.isFinite(v)));
      assertMean(g, a, a, `gamma(${a})`);
      assertVariance(g, a, 3 * a * a + 6 * a, `gamma(${a})`);
    }
    const e = draws(20000, () => r.gamma(1));
    const d = ksDistance(e, (x) => 1 - Math.exp(-Math.max(x, 0)));
    assert.ok(d < ksCritical(20000), `KS exponential ${d}`);
    assert.throws(() => r.gamma(0), /shape/);
  });

  test('beta: mean and variance, tiny parameters stay in [0, 1]', () => {
    const r = createRng('beta');
    for (const [a, b] of [
      [0.5, 0.5],
      [2, 5],
      [30, 3],
      [0.05, 0.08],
    ] as const) {
      const x = draws(60000, () => r.beta(a, b));
      assert.ok(x.every((v) => v >= 0 && v <= 1));
      const mean = a / (a + b);
      const variance = (a * b) / ((a + b) ** 2 * (a + b + 1));
      assertMean(x, mean, variance, `beta(${a}, ${b})`);
      // Variance check with the bound mu4 <= E[(x - mean)^2] since |x - mean| <= 1.
      assertVariance(x, variance, variance, `beta(${a}, ${b})`);
    }
    const u = draws(20000, () => r.beta(1, 1));
    assert.ok(ksDistance(u, (x) => x) < ksCritical(20000));
  });

  test('binomial: chi-square against the exact pmf on both algorithms, moments, edge cases', () => {
    const r = createRng('binomial');
    // (10, 0.3): inversion; (20, 0.9): symmetry; (100, 0.45) and (200, 0.7): beta splitting.
    for (const [n, p] of [
      [10, 0.3],
      [20, 0.9],
      [100, 0.45],
      [200, 0.7],
    ] as const) {
      const draws_ = 40000;
      const counts = new Array<number>(n + 1).fill(0);
      for (let i = 0; i < draws_; i++) counts[r.binomial(n, p)]! += 1;
      // Pool the tails so every bin expects at least 5.
      const obs: number[] = [];
      const exp: number[] = [];
      let o = 0;
      let e = 0;
      for (let k = 0; k <= n; k++) {
        o += counts[k]!;
        e += draws_ * binomialPmf(n, p, k);
        if (e >= 5 && draws_ * (1 - cdfUpTo(n, p, k)) >= 5) {
          obs.push(o);
          exp.push(e);
          o = 0;
          e = 0;
        }
      }
      obs[obs.length - 1]! += o;
      exp[exp.length - 1]! += e;
      const chi = chiSquare(obs, exp);
      assert.ok(
        chi < chiSquareCritical(obs.length - 1),
        `binomial(${n}, ${p}): chi-square ${chi} on ${obs.length} bins`,
      );
    }
    for (const [n, p] of [
      [1000, 0.4],
      [1_000_000, 0.3],
      [5000, 0.002],
    ] as const) {
      const x = draws(20000, () => r.binomial(n, p));
      assert.ok(x.every((v) => Number.isInteger(v) && v >= 0 && v <= n));
      const variance = n * p * (1 - p);
      assertMean(x, n * p, variance, `binomial(${n}, ${p})`);
      assertVariance(x, variance, 3 * variance * variance + variance, `binomial(${n}, ${p})`);
    }
    assert.equal(r.binomial(0, 0.5), 0);
    assert.equal(r.binomial(50, 0), 0);
    assert.equal(r.binomial(50, 1), 50);
    assert.throws(() => r.binomial(5, 1.5), /p/);
    assert.throws(() => r.binomial(-1, 0.5), /n/);
  });

  test('fork: leaves the parent where it was, same key same stream, keys and parent independent', () => {
    const parent = createRng(7);
    const twin = createRng(7);
    parent.uniform();
    twin.uniform();
    const c1 = parent.fork('init');
    const c1Again = parent.fork('init');
    assert.equal(parent.uniform(), twin.uniform(), 'fork must not advance the parent');
    assert.deepEqual(
      draws(50, () => c1.uniform()),
      draws(50, () => c1Again.uniform()),
    );
    // A fork depends on (seed, key) only, not on how far the parent has gone.
    assert.deepEqual(
      draws(5, () => createRng(7).fork('init').uniform()),
      draws(5, () => parent.fork('init').uniform()),
    );
    const keys: (string | number)[] = ['init', 'shuffle', 0, 1, '0'];
    const firsts = keys.map((k) => parent.fork(k).uniform());
    assert.equal(new Set(firsts).size, keys.length);
    assert.notEqual(parent.fork('a').fork('b').uniform(), parent.fork('b').fork('a').uniform());
    // Independence: sample correlation of paired draws, child vs parent and child vs child.
    const n = 50000;
    const a = parent.fork('x');
    const b = parent.fork('y');
    const p = draws(n, () => parent.normal());
    const x = draws(n, () => a.normal());
    const y = draws(n, () => b.normal());
    for (const [u, v, what] of [
      [p, x, 'parent/child'],
      [x, y, 'sibling'],
    ] as const) {
      let s = 0;
      for (let i = 0; i < n; i++) s += u[i]! * v[i]!;
      assert.ok(Math.abs(s / n) < 5 / Math.sqrt(n), `${what} correlation ${s / n}`);
    }
  });

  test('state / fromState resume the stream exactly (pending normal included) through JSON', () => {
    const r = createRng('resume');
    draws(3, () => r.normal()); // odd: a spare normal is pending
    const saved = JSON.parse(JSON.stringify(r.state())) as ReturnType<Rng['state']>;
    assert.notEqual(saved.spareNormal, null);
    const resumed = Rng.fromState(saved);
    assert.deepEqual(
      draws(20, () => r.normal()),
      draws(20, () => resumed.normal()),
    );
    assert.deepEqual(
      draws(20, () => r.binomial(100, 0.4)),
      draws(20, () => resumed.binomial(100, 0.4)),
    );
    assert.equal(r.fork('k').uniform(), resumed.fork('k').uniform());
    assert.throws(() => Rng.fromState({ version: 2 } as never), /state/);
  });

  test('normalTensor / uniformTensor: shape, dtype, values drawn from the stream', () => {
    const before = tf.memory().numTensors;
    const a = createRng('tensor');
    const b = createRng('tensor');
    const t = a.normalTensor([3, 4, 5]);
    assert.deepEqual(t.shape, [3, 4, 5]);
    assert.equal(t.dtype, 'float32');
    const ref = new Float32Array(60);
    b.fillNormal(ref);
    assert.deepEqual(t.dataSync(), ref);
    const u = a.uniformTensor([1000]);
    const uv = u.dataSync();
    assert.ok(uv.every((v) => v >= 0 && v < 1));
    const ref2 = new Float32Array(1000);
    b.fillUniform(ref2);
    assert.deepEqual(uv, ref2);
    tf.dispose([t, u]);
    assert.equal(tf.memory().numTensors, before);
  });
});

function cdfUpTo(n: number, p: number, k: number): number {
  let s = 0;
  for (let j = 0; j <= k; j++) s += binomialPmf(n, p, j);
  return s;
}
