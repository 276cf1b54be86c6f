// AssemblyScript source of the kernels behind the fused MAF training step (sbi/estimators/
// maf-fused.ts); `npm run build:wasm` compiles it into maf-step.wasm.ts. Every function works on
// float32 row-major matrices at byte addresses that the JavaScript side lays out in this module's
// memory; leading dimensions ("ld") are in elements. Nothing here allocates.
//
// Why wasm and not tfjs ops: a MAF step is ~400 small kernels, each costing ~15 us of tfjs
// dispatch, and tfjs-wasm's products run below what SIMD128 gives here (see BENCHMARKS.md).

/**
 * c + a * b: one fused multiply-add where the build has relaxed SIMD (scripts/build-wasm.mjs builds
 * both; the loader takes the relaxed one where the engine validates it), else a multiply and an add.
 */
function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** First byte the JavaScript side may use. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * C[i, j] (i < M, j < N) = (accumulate ? C[i, j] : 0) + bias[j] + sum_k A(i, k) * B[k, j], then
 * max(., 0) if relu. A(i, k) is at a + 4 * (i * sai + k * sak), so A or its transpose can be read
 * without copying. M must be a multiple of 4 and N of 8; bias 0 means none.
 *
 * MADE weights are block-triangular once the hidden units are sorted by degree, so three optional
 * int32 tables (0: none) skip work that can only add zeros: kFrom / kTo, per block of 8 columns, the
 * k range [kFrom, kTo) whose B rows are not all zero there (the sum runs over it, K is ignored);
 * jFrom, per block of 4 rows, the first column (a multiple of 8) whose C block is not known to stay
 * zero (the columns before it are not written).
 */
export function gemm(
  a: usize,
  sai: i32,
  sak: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  M: i32,
  K: i32,
  N: i32,
  bias: usize,
  accumulate: i32,
  relu: i32,
  kFrom: usize,
  kTo: usize,
  jFrom: usize,
): void {
  const rowA = (<usize>sai) << 2;
  const stepA = (<usize>sak) << 2;
  const rowB = (<usize>ldb) << 2;
  const rowC = (<usize>ldc) << 2;
  const zero = f32x4.splat(0);
  for (let i = 0; i < M; i += 4) {
    const a0 = a + <usize>i * rowA;
    const a1 = a0 + rowA;
    const a2 = a1 + rowA;
    const a3 = a2 + rowA;
    const c0 = c + <usize>i * rowC;
    const j0 = jFrom ? load<i32>(jFrom + (((<usize>i) >> 2) << 2)) : 0;
    for (let j = j0; j < N; j += 8) {
      const cj = c0 + ((<usize>j) << 2);
      let x00 = zero,
        x01 = zero,
        x10 = zero,
        x11 = zero,
        x20 = zero,
        x21 = zero,
        x30 = zero,
        x31 = zero;
      if (accumulate) {
        x00 = v128.load(cj);
        x01 = v128.load(cj, 16);
        x10 = v128.load(cj + rowC);
        x11 = v128.load(cj + rowC, 16);
        x20 = v128.load(cj + 2 * rowC);
        x21 = v128.load(cj + 2 * rowC, 16);
        x30 = v128.load(cj + 3 * rowC);
        x31 = v128.load(cj + 3 * rowC, 16);
      }
      if (bias) {
        const b0 = v128.load(bias + ((<usize>j) << 2));
        const b1 = v128.load(bias + ((<usize>j) << 2), 16);
        x00 = f32x4.add(x00, b0);
        x01 = f32x4.add(x01, b1);
        x10 = f32x4.add(x10, b0);
        x11 = f32x4.add(x11, b1);
        x20 = f32x4.add(x20, b0);
        x21 = f32x4.add(x21, b1);
        x30 = f32x4.add(x30, b0);
        x31 = f32x4.add(x31, b1);
      }
      const block = ((<usize>j) >> 3) << 2;
      const k0 = kFrom ? load<i32>(kFrom + block) : 0;
      const k1 = kTo ? load<i32>(kTo + block) : K;
      let bp = b + ((<usize>j) << 2) + <usize>k0 * rowB;
      let o: usize = <usize>k0 * stepA;
      for (let k = k0; k < k1; k++) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        let s = v128.load32_splat(a0 + o);
        x00 = madd(s, b0, x00);
        x01 = madd(s, b1, x01);
        s = v128.load32_splat(a1 + o);
        x10 = madd(s, b0, x10);
        x11 = madd(s, b1, x11);
        s = v128.load32_splat(a2 + o);
        x20 = madd(s, b0, x20);
        x21 = madd(s, b1, x21);
        s = v128.load32_splat(a3 + o);
        x30 = madd(s, b0, x30);
        x31 = madd(s, b1, x31);
        bp += rowB;
        o += stepA;
      }
      if (relu) {
        x00 = f32x4.max(x00, zero);
        x01 = f32x4.max(x01, zero);
        x10 = f32x4.max(x10, zero);
        x11 = f32x4.max(x11, zero);
        x20 = f32x4.max(x20, zero);
        x21 = f32x4.max(x21, zero);
        x30 = f32x4.max(x30, zero);
        x31 = f32x4.max(x31, zero);
      }
      v128.store(cj, x00);
      v128.store(cj, x01, 16);
      v128.store(cj + rowC, x10);
      v128.store(cj + rowC, x11, 16);
      v128.store(cj + 2 * rowC, x20);
      v128.store(cj + 2 * rowC, x21, 16);
      v128.store(cj + 3 * rowC, x30);
      v128.store(cj + 3 * rowC, x31, 16);
    }
  }
}

/** dst[j, i] = src[i, j] for i < rows, j < cols. */
export function transpose(src: usize, lds: i32, rows: i32, cols: i32, dst: usize, ldd: i32): void {
  for (let i = 0; i < rows; i++) {
    const s = src + ((<usize>i * lds) << 2);
    for (let j = 0; j < cols; j++) {
      store<f32>(dst + ((<usize>j * ldd + i) << 2), load<f32>(s + ((<usize>j) << 2)));
    }
  }
}

/** dst[j] = sum over i < rows of src[i, j], for j < cols (a multiple of 4). */
export function colSum(src: usize, lds: i32, rows: i32, cols: i32, dst: usize): void {
  for (let j = 0; j < cols; j += 4) {
    let acc = f32x4.splat(0);
    let p = src + ((<usize>j) << 2);
    for (let i = 0; i < rows; i++) {
      acc = f32x4.add(acc, v128.load(p));
      p += (<usize>lds) << 2;
    }
    v128.store(dst + ((<usize>j) << 2), acc);
  }
}

/** d[k] = h[k] > 0 ? d[k] : 0 over n floats (n a multiple of 4): ReLU's backward from its output. */
export function reluBackward(d: usize, h: usize, n: i32): void {
  const zero = f32x4.splat(0);
  for (let k = 0; k < n; k += 4) {
    const o = (<usize>k) << 2;
    v128.store(d + o, v128.and(v128.load(d + o), f32x4.gt(v128.load(h + o), zero)));
  }
}

/**
 * tanh of four floats: t = m / (m + 2) with m = expm1(2|x|), the sign restored after. expm1 is
 * 2^k (1 + p(r)) - 1 for 2|x| = k ln 2 + r, |r| <= ln 2 / 2, p the Taylor series of expm1 to r^8
 * (truncation below 3e-10 of p); at k = 0 that is p itself, so small arguments keep their relative
 * precision (no 1 - 2 / (e + 1) cancellation). |x| is capped at 9, where tanh rounds to 1 in float32.
 */
function tanh4(v: v128): v128 {
  const ax = f32x4.min(f32x4.abs(v), f32x4.splat(9));
  const y = f32x4.add(ax, ax);
  const kf = f32x4.nearest(f32x4.mul(y, f32x4.splat(1.4426950408889634)));
  // ln 2 in two parts, so that r = y - k ln 2 is exact to float32 for the k used here (<= 26).
  let r = f32x4.sub(y, f32x4.mul(kf, f32x4.splat(0.693145751953125)));
  r = f32x4.sub(r, f32x4.mul(kf, f32x4.splat(1.4286068202862268e-6)));
  let p = f32x4.splat(1.0 / 40320);
  p = madd(p, r, f32x4.splat(1.0 / 5040));
  p = madd(p, r, f32x4.splat(1.0 / 720));
  p = madd(p, r, f32x4.splat(1.0 / 120));
  p = madd(p, r, f32x4.splat(1.0 / 24));
  p = madd(p, r, f32x4.splat(1.0 / 6));
  p = madd(p, r, f32x4.splat(0.5));
  p = madd(p, r, f32x4.splat(1));
  p = f32x4.mul(p, r);
  const twoK = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(kf), i32x4.splat(127)), 23);
  const m = madd(twoK, p, f32x4.sub(twoK, f32x4.splat(1)));
  const t = f32x4.div(m, f32x4.add(m, f32x4.splat(2)));
  return v128.bitselect(v, t, i32x4.splat(0x80000000));
}

/**
 * h[k] = tanh(h[k]) over n floats (n a multiple of 4): a tanh MADE's hidden units, in place.
 * Sixteen floats a turn: tanh4 is one long dependent chain (a polynomial, then a division), so four
 * independent chains per turn keep the multiply-add units busy; 0.55 of the time per float of one
 * chain a turn, the same result to the bit (BENCHMARKS.md, "tanh four chains at a time").
 */
export function tanhInPlace(h: usize, n: i32): void {
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    const o = (<usize>k) << 2;
    const t0 = tanh4(v128.load(h + o));
    const t1 = tanh4(v128.load(h + o, 16));
    const t2 = tanh4(v128.load(h + o, 32));
    const t3 = tanh4(v128.load(h + o, 48));
    v128.store(h + o, t0);
    v128.store(h + o, t1, 16);
    v128.store(h + o, t2, 32);
    v128.store(h + o, t3, 48);
  }
  for (; k < n; k += 4) {
    const o = (<usize>k) << 2;
    v128.store(h + o, tanh4(v128.load(h + o)));
  }
}

/** d[k] *= 1 - h[k]^2 over n floats (n a multiple of 4): tanh's backward from its output h. */
export function tanhBackward(d: usize, h: usize, n: i32): void {
  const one = f32x4.splat(1);
  for (let k = 0; k < n; k += 4) {
    const o = (<usize>k) << 2;
    const hv = v128.load(h + o);
    v128.store(d + o, f32x4.mul(v128.load(d + o), f32x4.sub(one, f32x4.mul(hv, hv))));
  }
}

/** dst row r = src row idx[r] (idx: int32 row numbers), the first `cols` floats of each row. */
export function gatherRows(
  src: usize,
  lds: i32,
  idx: usize,
  count: i32,
  cols: i32,
  dst: usize,
  ldd: i32,
): void {
  for (let r = 0; r < count; r++) {
    const s = src + ((<usize>load<i32>(idx + ((<usize>r) << 2)) * lds) << 2);
    const d = dst + ((<usize>r * ldd) << 2);
    memory.copy(d, s, (<usize>cols) << 2);
  }
}

/**
 * The affine transform of a MAF layer in the density direction, for rows < n:
 * z = (u - mu) * e, e = exp(-s_c), s_c = clip(s, sMin, sMax), with mu = out[:, 0..D) and
 * s = out[:, D..2D); e (= dz/du) is kept (layout of z) for the backward pass; logDet[r]
 * (accumulate = 0 starts it at 0) gains -sum_i s_c. With pyro = 1 (RABI's direction):
 * z = u * e + mu, e = exp(s_c), logDet gains +sum_i s_c. With pyro = 2 (nflows' scale, sbi's MAF):
 * z = u * e + mu, e = softplus(s) + 1e-3 (no clip), logDet gains +sum_i log e.
 */
export function affineForward(
  u: usize,
  ldu: i32,
  out: usize,
  ldo: i32,
  z: usize,
  e: usize,
  n: i32,
  D: i32,
  sMin: f32,
  sMax: f32,
  logDet: usize,
  accumulate: i32,
  pyro: i32,
): void {
  for (let r = 0; r < n; r++) {
    const ur = u + ((<usize>r * ldu) << 2);
    const zr = z + ((<usize>r * ldu) << 2);
    const er = e + ((<usize>r * ldu) << 2);
    const orow = out + ((<usize>r * ldo) << 2);
    let ld: f32 = accumulate ? load<f32>(logDet + ((<usize>r) << 2)) : 0;
    for (let i = 0; i < D; i++) {
      const mu = load<f32>(orow + ((<usize>i) << 2));
      const ui = load<f32>(ur + ((<usize>i) << 2));
      if (pyro == 2) {
        const raw = load<f32>(orow + ((<usize>(i + D)) << 2));
        const ei = softplus(raw) + NFLOWS_SCALE_FLOOR;
        store<f32>(er + ((<usize>i) << 2), ei);
        store<f32>(zr + ((<usize>i) << 2), ui * ei + mu);
        ld += Mathf.log(ei);
        continue;
      }
      const s = min(max(load<f32>(orow + ((<usize>(i + D)) << 2)), sMin), sMax);
      if (pyro) {
        const ei = Mathf.exp(s);
        store<f32>(er + ((<usize>i) << 2), ei);
        store<f32>(zr + ((<usize>i) << 2), ui * ei + mu);
        ld += s;
      } else {
        const ei = Mathf.exp(-s);
        store<f32>(er + ((<usize>i) << 2), ei);
        store<f32>(zr + ((<usize>i) << 2), (ui - mu) * ei);
        ld -= s;
      }
    }
    store<f32>(logDet + ((<usize>r) << 2), ld);
  }
}

/** nflows' floor on its affine scale. */
const NFLOWS_SCALE_FLOOR: f32 = 1e-3;

/** log(1 + exp(v)) without overflow: max(v, 0) + log1p(exp(-|v|)). */
function softplus(v: f32): f32 {
  return max(v, 0) + Mathf.log1p(Mathf.exp(-Mathf.abs(v)));
}

/**
 * Backward of affineForward (e as it stored it) for a loss sum_r c_r * nll_r, where
 * nll_r = 0.5 |z_r|^2 - logDet_r and c (coef, one float per row) is the loss's weight on row r:
 * given dz (dL/dz), writes dOut (mu columns -dz e, s columns (-dz z + c_r) where the clip is
 * inactive, 0 elsewhere, or everywhere with passGrad) and, if du is not 0, du = dz e (the direct
 * path; the MADE's path is added by the caller); with pyro, the mu columns dz and the s columns
 * dz (z - mu) - c_r; with pyro = 2 (nflows), the mu columns dz and the s columns
 * (dz (z - mu) - c_r) sigmoid(s) / e. Rows n..nPad of dOut (and du) are zeroed so padding adds nothing.
 */
export function affineBackward(
  ldu: i32,
  out: usize,
  ldo: i32,
  z: usize,
  e: usize,
  dz: usize,
  du: usize,
  dOut: usize,
  n: i32,
  nPad: i32,
  D: i32,
  sMin: f32,
  sMax: f32,
  coef: usize,
  pyro: i32,
  passGrad: i32,
): void {
  for (let r = 0; r < n; r++) {
    const off = (<usize>r * ldu) << 2;
    const cr = load<f32>(coef + ((<usize>r) << 2));
    const orow = out + ((<usize>r * ldo) << 2);
    const drow = dOut + ((<usize>r * ldo) << 2);
    for (let i = 0; i < D; i++) {
      const s = load<f32>(orow + ((<usize>(i + D)) << 2));
      const inside = passGrad || (s >= sMin && s <= sMax);
      const g = load<f32>(dz + off + ((<usize>i) << 2));
      const ge = g * load<f32>(e + off + ((<usize>i) << 2));
      const zi = load<f32>(z + off + ((<usize>i) << 2));
      if (pyro == 2) {
        // z = u e + mu, e = softplus(s) + eps: dz/ds = u sigmoid(s) = (z - mu) sigmoid(s) / e;
        // logDet = +log e, d/ds = sigmoid(s) / e.
        store<f32>(drow + ((<usize>i) << 2), g);
        const sig: f32 = 1 / (1 + Mathf.exp(-s));
        const ei = load<f32>(e + off + ((<usize>i) << 2));
        const ds = ((g * (zi - load<f32>(orow + ((<usize>i) << 2))) - cr) * sig) / ei;
        store<f32>(drow + ((<usize>(i + D)) << 2), ds);
      } else if (pyro) {
        // z = u e + mu, e = exp(s): dz/dmu = 1, dz/ds = u e = z - mu; logDet = +s.
        store<f32>(drow + ((<usize>i) << 2), g);
        const ds = g * (zi - load<f32>(orow + ((<usize>i) << 2))) - cr;
        store<f32>(drow + ((<usize>(i + D)) << 2), inside ? ds : 0);
      } else {
        store<f32>(drow + ((<usize>i) << 2), -ge);
        const ds = -g * zi + cr;
        store<f32>(drow + ((<usize>(i + D)) << 2), inside ? ds : 0);
      }
      if (du) store<f32>(du + off + ((<usize>i) << 2), ge);
    }
  }
  for (let r = n; r < nPad; r++) {
    memory.fill(dOut + ((<usize>r * ldo) << 2), 0, (<usize>ldo) << 2);
    if (du) memory.fill(du + ((<usize>r * ldu) << 2), 0, (<usize>ldu) << 2);
  }
}

/** out[r] (float64) = 0.5 |z_r|^2 - logDet_r for rows < n: -log q up to the caller's constant. */
export function rowNLL(z: usize, ldz: i32, logDet: usize, n: i32, D: i32, out: usize): void {
  for (let r = 0; r < n; r++) {
    const off = (<usize>r * ldz) << 2;
    let sq: f64 = 0;
    for (let i = 0; i < D; i++) {
      const v = <f64>load<f32>(z + off + ((<usize>i) << 2));
      sq += v * v;
    }
    store<f64>(out + ((<usize>r) << 3), 0.5 * sq - <f64>load<f32>(logDet + ((<usize>r) << 2)));
  }
}

/** dz = coef_r * z_r for rows < n (the gradient of sum_r coef_r * nll_r), 0 for rows n..nPad. */
export function seedDz(
  z: usize,
  ldz: i32,
  coef: usize,
  n: i32,
  nPad: i32,
  D: i32,
  dz: usize,
): void {
  for (let r = 0; r < n; r++) {
    const off = (<usize>r * ldz) << 2;
    const c = load<f32>(coef + ((<usize>r) << 2));
    for (let i = 0; i < D; i++) {
      const o = off + ((<usize>i) << 2);
      store<f32>(dz + o, load<f32>(z + o) * c);
    }
  }
  for (let r = n; r < nPad; r++) memory.fill(dz + ((<usize>r * ldz) << 2), 0, (<usize>ldz) << 2);
}

/**
 * The gradient EMA of sbi/defenses/ema.ts over n floats: m = decay * g' + keepOld * m, with g'
 * = g where NaN -> 0 and +-Infinity -> +-float32 max.
 */
export function emaUpdate(m: usize, g: usize, n: i32, decay: f32, keepOld: f32): void {
  const big: f32 = 3.4028234663852886e38;
  for (let k = 0; k < n; k++) {
    const o = (<usize>k) << 2;
    let v = load<f32>(g + o);
    v = isNaN(v) ? 0 : min(max(v, -big), big);
    store<f32>(m + o, v * decay + load<f32>(m + o) * keepOld);
  }
}

/** g += m / div over n floats, returning sum g^2 afterwards (float64). */
export function addDividedNormSq(g: usize, m: usize, n: i32, div: f32): f64 {
  let sq: f64 = 0;
  for (let k = 0; k < n; k++) {
    const o = (<usize>k) << 2;
    const v = load<f32>(g + o) + load<f32>(m + o) / div;
    store<f32>(g + o, v);
    sq += <f64>v * <f64>v;
  }
  return sq;
}

/** g *= mask over n floats, returning sum g^2 after masking (float64). */
export function maskAndNormSq(g: usize, mask: usize, n: i32): f64 {
  let sq: f64 = 0;
  for (let k = 0; k < n; k++) {
    const o = (<usize>k) << 2;
    const v = load<f32>(g + o) * load<f32>(mask + o);
    store<f32>(g + o, v);
    sq += <f64>v * <f64>v;
  }
  return sq;
}

/** torch.optim.Adam's update of p from g * coef (float64 intermediates, float32 storage),
 * as npe.ts' host Adam. */
export function adam(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  coef: f64,
  b1: f64,
  b2: f64,
  stepSize: f64,
  sqrtBc2: f64,
  eps: f64,
): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  // Four floats at a time in two f64x2 halves: the same float64 operations in the same order as
  // the scalar loop (no fused multiply-add), so the result is the scalar one to the bit.
  const vCoef = f64x2.splat(coef);
  const vB1 = f64x2.splat(b1);
  const vB2 = f64x2.splat(b2);
  const vC1 = f64x2.splat(c1);
  const vC2 = f64x2.splat(c2);
  const vStep = f64x2.splat(stepSize);
  const vBc2 = f64x2.splat(sqrtBc2);
  const vEps = f64x2.splat(eps);
  const n4 = n & ~3;
  for (let k = 0; k < n4; k += 4) {
    const o = (<usize>k) << 2;
    const g4 = v128.load(g + o);
    const m4 = v128.load(m + o);
    const v4 = v128.load(v + o);
    const p4 = v128.load(p + o);
    // Lanes 0-1, then lanes 2-3 moved down.
    const gLo = f64x2.mul(f64x2.promote_low_f32x4(g4), vCoef);
    const gHi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(g4, g4, 2, 3, 0, 1)), vCoef);
    const mLo = f64x2.add(f64x2.mul(vB1, f64x2.promote_low_f32x4(m4)), f64x2.mul(vC1, gLo));
    const mHi = f64x2.add(
      f64x2.mul(vB1, f64x2.promote_low_f32x4(i32x4.shuffle(m4, m4, 2, 3, 0, 1))),
      f64x2.mul(vC1, gHi),
    );
    const vLo = f64x2.add(
      f64x2.mul(vB2, f64x2.promote_low_f32x4(v4)),
      f64x2.mul(f64x2.mul(vC2, gLo), gLo),
    );
    const vHi = f64x2.add(
      f64x2.mul(vB2, f64x2.promote_low_f32x4(i32x4.shuffle(v4, v4, 2, 3, 0, 1))),
      f64x2.mul(f64x2.mul(vC2, gHi), gHi),
    );
    // m and v are stored as float32; the update uses their float64 values, as the scalar loop does.
    const mLo32 = f32x4.demote_f64x2_zero(mLo);
    const mHi32 = f32x4.demote_f64x2_zero(mHi);
    const vLo32 = f32x4.demote_f64x2_zero(vLo);
    const vHi32 = f32x4.demote_f64x2_zero(vHi);
    v128.store(m + o, i32x4.shuffle(mLo32, mHi32, 0, 1, 4, 5));
    v128.store(v + o, i32x4.shuffle(vLo32, vHi32, 0, 1, 4, 5));
    const pLo = f64x2.sub(
      f64x2.promote_low_f32x4(p4),
      f64x2.div(f64x2.mul(vStep, mLo), f64x2.add(f64x2.div(f64x2.sqrt(vLo), vBc2), vEps)),
    );
    const pHi = f64x2.sub(
      f64x2.promote_low_f32x4(i32x4.shuffle(p4, p4, 2, 3, 0, 1)),
      f64x2.div(f64x2.mul(vStep, mHi), f64x2.add(f64x2.div(f64x2.sqrt(vHi), vBc2), vEps)),
    );
    v128.store(
      p + o,
      i32x4.shuffle(f32x4.demote_f64x2_zero(pLo), f32x4.demote_f64x2_zero(pHi), 0, 1, 4, 5),
    );
  }
  for (let k = n4; k < n; k++) {
    const o = (<usize>k) << 2;
    const gk = <f64>load<f32>(g + o) * coef;
    const mk = b1 * <f64>load<f32>(m + o) + c1 * gk;
    const vk = b2 * <f64>load<f32>(v + o) + c2 * gk * gk;
    store<f32>(m + o, <f32>mk);
    store<f32>(v + o, <f32>vk);
    const pk = <f64>load<f32>(p + o) - (stepSize * mk) / (Math.sqrt(vk) / sqrtBc2 + eps);
    store<f32>(p + o, <f32>pk);
  }
}

// ---- The incremental MADE passes of the exact FIM regularizer and the attacks ----
//
// Sampling a MAF inverts each transform one coordinate at a time. With the hidden units sorted by
// degree, coordinate p of the order needs only the units of degree <= p, and those are final once
// coordinates < p are known, so one inversion costs one masked forward pass (not D of them), and its
// reverse (the back-substitution below) one masked backward pass. Both work on tiles of 8 rows held
// feature-major (one feature of the 8 rows in two v128), vectorized over rows, because the work
// per coordinate is a block of ~10 units against a prefix of the inputs: too narrow to vectorize over
// units. Both kernels read the tile's rows from, and write them back to, the row-major buffers the
// products (gemm) use. Exactly two hidden layers; the MADE's tables:
//   order[p]      the theta coordinate at position p of the transform's order (i32, D);
//   start1[d], start2[d]   the first stored unit of degree d in hidden layer 1 and 2, d = 0..D
//                          (start[D] = the layer's width; i32, D + 1).

const TILE = 8;

/** The 4 x 4 block of floats at s (rows sStride bytes apart) written transposed at d (dStride). */
function transpose4x4(s: usize, sStride: usize, d: usize, dStride: usize): void {
  const r0 = v128.load(s);
  const r1 = v128.load(s + sStride);
  const r2 = v128.load(s + 2 * sStride);
  const r3 = v128.load(s + 3 * sStride);
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(d + dStride, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(d + 2 * dStride, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(d + 3 * dStride, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

/** Row-major rows [r0, r0 + nr) of `cols` floats at src (ld apart) into tile t[col][8] (rest 0). */
function tileIn(src: usize, ld: i32, r0: i32, nr: i32, cols: i32, t: usize): void {
  const row = (<usize>ld) << 2;
  const base = src + <usize>r0 * row;
  let j = 0;
  if (nr == TILE) {
    // Whole 4 x 4 blocks through registers (most of a tile's traffic), the last columns one by one.
    for (; j + 4 <= cols; j += 4) {
      transpose4x4(base + ((<usize>j) << 2), row, at(t, j), TILE << 2);
      transpose4x4(base + 4 * row + ((<usize>j) << 2), row, at(t, j) + 16, TILE << 2);
    }
  } else memory.fill(t, 0, (<usize>(cols * TILE)) << 2);
  for (let r = 0; r < nr; r++) {
    const sr = base + <usize>r * row;
    const d = t + ((<usize>r) << 2);
    for (let c = j; c < cols; c++)
      store<f32>(d + ((<usize>(c * TILE)) << 2), load<f32>(sr + ((<usize>c) << 2)));
  }
}

/** Tile t[col][8] back into row-major rows [r0, r0 + nr), columns [c0, c1). */
function tileOut(t: usize, dst: usize, ld: i32, r0: i32, nr: i32, c0: i32, c1: i32): void {
  const row = (<usize>ld) << 2;
  const base = dst + <usize>r0 * row;
  let j = c0;
  if (nr == TILE) {
    for (; j + 4 <= c1; j += 4) {
      transpose4x4(at(t, j), TILE << 2, base + ((<usize>j) << 2), row);
      transpose4x4(at(t, j) + 16, TILE << 2, base + 4 * row + ((<usize>j) << 2), row);
    }
  }
  for (let r = 0; r < nr; r++) {
    const dr = base + <usize>r * row;
    const s = t + ((<usize>r) << 2);
    for (let c = j; c < c1; c++)
      store<f32>(dr + ((<usize>c) << 2), load<f32>(s + ((<usize>(c * TILE)) << 2)));
  }
}

function at(t: usize, j: i32): usize {
  return t + ((<usize>(j * TILE)) << 2);
}

function i32at(p: usize, i: i32): i32 {
  return load<i32>(p + ((<usize>i) << 2));
}

/**
 * For units [j0, j1) of a tile: t[j] = out(init[j] + sum_{k in [k0, k1)} W(j, f) a[f]), where the
 * inputs are tile features f = k (kIdx 0) or f = kIdx[k] (a gather through an i32 table) and the
 * weight W(j, f) sits at w + 4 (j su + f sf): a layer's weights (su 1, sf its row length) for a
 * forward product, their transpose (su the row length, sf 1) for a backward one. init is the tile's
 * own t[j] (initFromT), bias[j] (0: none) or 0; out is ReLU if relu, and zeroes the units whose
 * ReLU output m[j] is not positive if m is not 0 (a backward product through ReLU). Four units per
 * pass over the inputs: two activation loads and four weight splats per eight multiply-adds, as
 * gemm.
 */
function tileProduct(
  t: usize,
  j0: i32,
  j1: i32,
  a: usize,
  k0: i32,
  k1: i32,
  kIdx: usize,
  w: usize,
  su: i32,
  sf: i32,
  initFromT: i32,
  bias: usize,
  relu: i32,
  m: usize,
): void {
  const zero = f32x4.splat(0);
  const unit = (<usize>su) << 2;
  const feature = (<usize>sf) << 2;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    let x0 = zero,
      x1 = zero,
      y0 = zero,
      y1 = zero,
      u0 = zero,
      u1 = zero,
      v0 = zero,
      v1 = zero;
    if (initFromT) {
      x0 = v128.load(at(t, j));
      x1 = v128.load(at(t, j), 16);
      y0 = v128.load(at(t, j + 1));
      y1 = v128.load(at(t, j + 1), 16);
      u0 = v128.load(at(t, j + 2));
      u1 = v128.load(at(t, j + 2), 16);
      v0 = v128.load(at(t, j + 3));
      v1 = v128.load(at(t, j + 3), 16);
    } else if (bias) {
      x0 = x1 = v128.load32_splat(bias + ((<usize>j) << 2));
      y0 = y1 = v128.load32_splat(bias + ((<usize>(j + 1)) << 2));
      u0 = u1 = v128.load32_splat(bias + ((<usize>(j + 2)) << 2));
      v0 = v1 = v128.load32_splat(bias + ((<usize>(j + 3)) << 2));
    }
    const w0 = w + <usize>j * unit;
    for (let k = k0; k < k1; k++) {
      const f = kIdx ? i32at(kIdx, k) : k;
      const ap = at(a, f);
      const a0 = v128.load(ap);
      const a1 = v128.load(ap, 16);
      const wp = w0 + <usize>f * feature;
      let s = v128.load32_splat(wp);
      x0 = madd(s, a0, x0);
      x1 = madd(s, a1, x1);
      s = v128.load32_splat(wp + unit);
      y0 = madd(s, a0, y0);
      y1 = madd(s, a1, y1);
      s = v128.load32_splat(wp + 2 * unit);
      u0 = madd(s, a0, u0);
      u1 = madd(s, a1, u1);
      s = v128.load32_splat(wp + 3 * unit);
      v0 = madd(s, a0, v0);
      v1 = madd(s, a1, v1);
    }
    storeUnit(t, j, x0, x1, relu, m);
    storeUnit(t, j + 1, y0, y1, relu, m);
    storeUnit(t, j + 2, u0, u1, relu, m);
    storeUnit(t, j + 3, v0, v1, relu, m);
  }
  for (; j < j1; j++) {
    let x0 = zero,
      x1 = zero;
    if (initFromT) {
      x0 = v128.load(at(t, j));
      x1 = v128.load(at(t, j), 16);
    } else if (bias) {
      x0 = x1 = v128.load32_splat(bias + ((<usize>j) << 2));
    }
    const w0 = w + <usize>j * unit;
    for (let k = k0; k < k1; k++) {
      const f = kIdx ? i32at(kIdx, k) : k;
      const s = v128.load32_splat(w0 + <usize>f * feature);
      x0 = madd(s, v128.load(at(a, f)), x0);
      x1 = madd(s, v128.load(at(a, f), 16), x1);
    }
    storeUnit(t, j, x0, x1, relu, m);
  }
}

/** Unit j of tile t (two v128 of 4 rows), ReLU'd if relu, zeroed where m[j] <= 0 if m is not 0. */
function storeUnit(t: usize, j: i32, lo: v128, hi: v128, relu: i32, m: usize): void {
  const zero = f32x4.splat(0);
  if (relu) {
    lo = f32x4.max(lo, zero);
    hi = f32x4.max(hi, zero);
  }
  if (m) {
    lo = v128.and(lo, f32x4.gt(v128.load(at(m, j)), zero));
    hi = v128.and(hi, f32x4.gt(v128.load(at(m, j), 16), zero));
  }
  v128.store(at(t, j), lo);
  v128.store(at(t, j), hi, 16);
}

/** Scratch floats madeInvert and madeBackSubst need for a MADE of widths H1, H2 and D outputs. */
export function tileScratchFloats(D: i32, H1: i32, H2: i32, Op: i32): i32 {
  return TILE * (8 * D + H1 + H2 + Op + 8 + H1 + H2 + Op);
}

/**
 * Inverts one affine MADE transform for rows [0, n): given its output z (the next transform's input,
 * or base noise), finds its input y with z = (y - mu(y)) exp(-clip(r(y))), and leaves every buffer as
 * the density pass at y leaves it (h1, h2 ReLU'd, out = (mu, raw r), e = exp(-clip(r))), logDet
 * (float per row) gaining -sum clip(r) (set, not added, unless accumulate). On entry h1 holds the
 * context term x W_ctx + b1 of each row. W1 is the theta weight [D rows, ldH1], W2 [ldH1 rows, ldH2],
 * W3 [ldH2 rows, ldO] (masked entries 0); b2, b3 biases; z, y, e rows ldD apart.
 */
export function madeInvert(
  z: usize,
  y: usize,
  e: usize,
  h1: usize,
  h2: usize,
  out: usize,
  logDet: usize,
  accumulate: i32,
  n: i32,
  D: i32,
  ldD: i32,
  ldH1: i32,
  ldH2: i32,
  ldO: i32,
  W1: usize,
  W2: usize,
  b2: usize,
  W3: usize,
  b3: usize,
  order: usize,
  start1: usize,
  start2: usize,
  sMin: f32,
  sMax: f32,
  scratch: usize,
  pyro: i32,
): void {
  const H1 = i32at(start1, D);
  const H2 = i32at(start2, D);
  const zT = scratch;
  const yT = at(zT, D);
  const eT = at(yT, D);
  const ldT = at(eT, D);
  const h1T = at(ldT, 1);
  const h2T = at(h1T, H1);
  const oT = at(h2T, H2);
  for (let r0 = 0; r0 < n; r0 += TILE) {
    const nr = min(TILE, n - r0);
    tileIn(z, ldD, r0, nr, D, zT);
    tileIn(h1, ldH1, r0, nr, H1, h1T);
    memory.fill(yT, 0, (<usize>(D * TILE)) << 2);
    memory.fill(ldT, 0, TILE << 2);
    for (let p = 0; p < D; p++) {
      const i = i32at(order, p);
      // Layer-1 units of degree p see the coordinates at positions < p: now all known.
      tileProduct(
        h1T,
        i32at(start1, p),
        i32at(start1, p + 1),
        yT,
        0,
        p,
        order,
        W1,
        1,
        ldH1,
        1,
        0,
        1,
        0,
      );
      tileProduct(
        h2T,
        i32at(start2, p),
        i32at(start2, p + 1),
        h1T,
        0,
        i32at(start1, p + 1),
        0,
        W2,
        1,
        ldH2,
        0,
        b2,
        1,
        0,
      );
      // Output p: mu and r of coordinate i from the layer-2 units of degree <= p.
      tileProduct(oT, i, i + 1, h2T, 0, i32at(start2, p + 1), 0, W3, 1, ldO, 0, b3, 0, 0);
      tileProduct(oT, D + i, D + i + 1, h2T, 0, i32at(start2, p + 1), 0, W3, 1, ldO, 0, b3, 0, 0);
      for (let r = 0; r < TILE; r++) {
        const o = (<usize>r) << 2;
        const s = min(max(load<f32>(at(oT, D + i) + o), sMin), sMax);
        const zi = load<f32>(at(zT, i) + o);
        const mu = load<f32>(at(oT, i) + o);
        if (pyro) {
          store<f32>(at(eT, i) + o, Mathf.exp(s));
          store<f32>(at(yT, i) + o, (zi - mu) * Mathf.exp(-s));
          store<f32>(ldT + o, load<f32>(ldT + o) + s);
        } else {
          store<f32>(at(eT, i) + o, Mathf.exp(-s));
          store<f32>(at(yT, i) + o, zi * Mathf.exp(s) + mu);
          store<f32>(ldT + o, load<f32>(ldT + o) - s);
        }
      }
    }
    tileOut(yT, y, ldD, r0, nr, 0, D);
    tileOut(eT, e, ldD, r0, nr, 0, D);
    tileOut(h1T, h1, ldH1, r0, nr, 0, H1);
    tileOut(h2T, h2, ldH2, r0, nr, 0, H2);
    tileOut(oT, out, ldO, r0, nr, 0, 2 * D);
    for (let r = 0; r < nr; r++) {
      const p = logDet + ((<usize>(r0 + r)) << 2);
      store<f32>(p, (accumulate ? load<f32>(p) : 0) + load<f32>(ldT + ((<usize>r) << 2)));
    }
  }
}

/**
 * The back-substitution through one affine MADE transform at the rows a density pass (or madeInvert)
 * left in e, h1, h2, out, with v its output z: solves, coordinate by coordinate from the last of the
 * order, w_i = exp(l_i) (lam_i + [W1^T a1hat]_i) with the cotangent on the MADE's outputs
 * chat = (w e, c (w v + rcot)) (c: the clip inactive), a2hat = m2 (W3 chat), a1hat = m1 (W2 a2hat)
 * (m: ReLU masks). That is J^T w = lam + K^T chat for the transform's Jacobian J: the adjoint of
 * its input through the sampler. Writes w, chat ([n, ldO]), a2hat, a1hat; every weight product of
 * the adjoint then follows from chat, a2hat and a1hat as in a plain backward pass. With pyro (z =
 * y e + mu, e = exp(l)): chat = (mcot - w, c (rcot - (v - mu) w)), mcot an extra cotangent on mu
 * ([n, ldD], 0: none). passGrad: c = 1 (a clamp that passes the gradient).
 */
export function madeBackSubst(
  lam: usize,
  rcot: usize,
  v: usize,
  e: usize,
  h1: usize,
  h2: usize,
  out: usize,
  w: usize,
  chat: usize,
  a2hat: usize,
  a1hat: usize,
  n: i32,
  D: i32,
  ldD: i32,
  ldH1: i32,
  ldH2: i32,
  ldO: i32,
  W1: usize,
  W2: usize,
  W3: usize,
  order: usize,
  start1: usize,
  start2: usize,
  sMin: f32,
  sMax: f32,
  scratch: usize,
  mcot: usize,
  pyro: i32,
  passGrad: i32,
): void {
  const H1 = i32at(start1, D);
  const H2 = i32at(start2, D);
  const lamT = scratch;
  const rcT = at(lamT, D);
  const vT = at(rcT, D);
  const eT = at(vT, D);
  const wT = at(eT, D);
  const h1T = at(wT, D);
  const h2T = at(h1T, H1);
  const oT = at(h2T, H2);
  const cT = at(oT, 2 * D);
  const g2T = at(cT, 2 * D);
  const g1T = at(g2T, H2);
  const mcT = at(g1T, H1);
  // Output features of positions >= p, as (mu, r) column pairs: the table cols[2q], cols[2q + 1].
  const cols = at(mcT, D);
  for (let q = 0; q < D; q++) {
    const i = i32at(order, q);
    store<i32>(cols + ((<usize>(2 * q)) << 2), i);
    store<i32>(cols + ((<usize>(2 * q + 1)) << 2), D + i);
  }
  for (let r0 = 0; r0 < n; r0 += TILE) {
    const nr = min(TILE, n - r0);
    tileIn(lam, ldD, r0, nr, D, lamT);
    tileIn(rcot, ldD, r0, nr, D, rcT);
    tileIn(v, ldD, r0, nr, D, vT);
    tileIn(e, ldD, r0, nr, D, eT);
    tileIn(h1, ldH1, r0, nr, H1, h1T);
    tileIn(h2, ldH2, r0, nr, H2, h2T);
    tileIn(out, ldO, r0, nr, 2 * D, oT);
    if (mcot) tileIn(mcot, ldD, r0, nr, D, mcT);
    memory.fill(cT, 0, (<usize>(2 * D * TILE)) << 2);
    for (let p = D - 1; p >= 0; p--) {
      const i = i32at(order, p);
      // lam_i + [W1^T a1hat]_i over the layer-1 units that see coordinate i (degree > p): final.
      const from = i32at(start1, p + 1);
      let acc0 = v128.load(at(lamT, i));
      let acc1 = v128.load(at(lamT, i), 16);
      const w1 = W1 + ((<usize>(i * ldH1)) << 2);
      for (let j = from; j < H1; j++) {
        const s = v128.load32_splat(w1 + ((<usize>j) << 2));
        acc0 = madd(s, v128.load(at(g1T, j)), acc0);
        acc1 = madd(s, v128.load(at(g1T, j), 16), acc1);
      }
      v128.store(at(wT, i), acc0);
      v128.store(at(wT, i), acc1, 16);
      for (let r = 0; r < TILE; r++) {
        const o = (<usize>r) << 2;
        const acc = load<f32>(at(wT, i) + o);
        const ee = load<f32>(at(eT, i) + o);
        const wi = acc / ee;
        const rr = load<f32>(at(oT, D + i) + o);
        const inside = passGrad || (rr >= sMin && rr <= sMax);
        const vi = load<f32>(at(vT, i) + o);
        const rc = load<f32>(at(rcT, i) + o);
        store<f32>(at(wT, i) + o, wi);
        if (pyro) {
          // T(y) = y e + mu: dT/dmu = 1, dT/dl = y e = v - mu.
          const mc: f32 = mcot ? load<f32>(at(mcT, i) + o) : 0;
          store<f32>(at(cT, i) + o, mc - wi);
          const mu = load<f32>(at(oT, i) + o);
          store<f32>(at(cT, D + i) + o, inside ? rc - (vi - mu) * wi : 0);
        } else {
          store<f32>(at(cT, i) + o, acc);
          store<f32>(at(cT, D + i) + o, inside ? wi * vi + rc : 0);
        }
      }
      // Layer-2 units of degree p feed the outputs at positions >= p; layer-1 units of degree p
      // feed the layer-2 units of degree >= p.
      tileProduct(
        g2T,
        i32at(start2, p),
        i32at(start2, p + 1),
        cT,
        2 * p,
        2 * D,
        cols,
        W3,
        ldO,
        1,
        0,
        0,
        0,
        h2T,
      );
      tileProduct(
        g1T,
        i32at(start1, p),
        i32at(start1, p + 1),
        g2T,
        i32at(start2, p),
        H2,
        0,
        W2,
        ldH2,
        1,
        0,
        0,
        0,
        h1T,
      );
    }
    tileOut(wT, w, ldD, r0, nr, 0, D);
    tileOut(cT, chat, ldO, r0, nr, 0, 2 * D);
    tileOut(g2T, a2hat, ldH2, r0, nr, 0, H2);
    tileOut(g1T, a1hat, ldH1, r0, nr, 0, H1);
  }
}

/**
 * The tangent of an affine transform (direction: input ydot, or none if ydot is 0; parameters
 * odot = (mudot, rdot) [n, ldO]), at the point a density pass left in out, e and its output v:
 * ldot = c rdot, p = (ydot - mudot) e, vdot = p - v ldot, written to ldot, p and vdot ([n, ldD]).
 * With pyro: p = ydot e, vdot = p + (v - mu) ldot + mudot. passGrad: c = 1.
 */
export function affineTangent(
  ydot: usize,
  odot: usize,
  out: usize,
  e: usize,
  v: usize,
  ldot: usize,
  p: usize,
  vdot: usize,
  n: i32,
  D: i32,
  ldD: i32,
  ldO: i32,
  sMin: f32,
  sMax: f32,
  pyro: i32,
  passGrad: i32,
): void {
  for (let r = 0; r < n; r++) {
    const rd = (<usize>(r * ldD)) << 2;
    const ro = (<usize>(r * ldO)) << 2;
    for (let i = 0; i < D; i++) {
      const o = rd + ((<usize>i) << 2);
      const rr = load<f32>(out + ro + ((<usize>(D + i)) << 2));
      const inside = passGrad || (rr >= sMin && rr <= sMax);
      const ld: f32 = inside ? load<f32>(odot + ro + ((<usize>(D + i)) << 2)) : 0;
      const yd: f32 = ydot ? load<f32>(ydot + o) : 0;
      const mud = load<f32>(odot + ro + ((<usize>i) << 2));
      store<f32>(ldot + o, ld);
      if (pyro) {
        // vdot = ydot e + (v - mu) ldot + mudot; p = ydot e, the part through e.
        const pi = yd * load<f32>(e + o);
        const mu = load<f32>(out + ro + ((<usize>i) << 2));
        store<f32>(p + o, pi);
        store<f32>(vdot + o, pi + (load<f32>(v + o) - mu) * ld + mud);
      } else {
        const pi = (yd - mud) * load<f32>(e + o);
        store<f32>(p + o, pi);
        store<f32>(vdot + o, pi - load<f32>(v + o) * ld);
      }
    }
  }
}

/** c[k] = a[k] * sa + b[k] * sb over n floats: the small elementwise combinations between passes. */
export function axpby(a: usize, sa: f32, b: usize, sb: f32, c: usize, n: i32): void {
  for (let k = 0; k < n; k++) {
    const o = (<usize>k) << 2;
    store<f32>(c + o, load<f32>(a + o) * sa + load<f32>(b + o) * sb);
  }
}

/** c[k] = a[k] * b[k] * s over n floats. */
export function mulScaled(a: usize, b: usize, s: f32, c: usize, n: i32): void {
  for (let k = 0; k < n; k++) {
    const o = (<usize>k) << 2;
    store<f32>(c + o, load<f32>(a + o) * load<f32>(b + o) * s);
  }
}
