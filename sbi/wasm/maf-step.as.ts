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
 * s = out[:, D..2D); e is kept (layout of z) for the backward pass; logDet[r] (accumulate = 0
 * starts it at 0) gains -sum_i s_c.
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
): void {
  for (let r = 0; r < n; r++) {
    const ur = u + ((<usize>r * ldu) << 2);
    const zr = z + ((<usize>r * ldu) << 2);
    const er = e + ((<usize>r * ldu) << 2);
    const orow = out + ((<usize>r * ldo) << 2);
    let ld: f32 = accumulate ? load<f32>(logDet + ((<usize>r) << 2)) : 0;
    for (let i = 0; i < D; i++) {
      const mu = load<f32>(orow + ((<usize>i) << 2));
      const s = min(max(load<f32>(orow + ((<usize>(i + D)) << 2)), sMin), sMax);
      const ei = Mathf.exp(-s);
      store<f32>(er + ((<usize>i) << 2), ei);
      store<f32>(zr + ((<usize>i) << 2), (load<f32>(ur + ((<usize>i) << 2)) - mu) * ei);
      ld -= s;
    }
    store<f32>(logDet + ((<usize>r) << 2), ld);
  }
}

/**
 * Backward of affineForward (e as it stored it) for a loss sum_r c_r * nll_r, where
 * nll_r = 0.5 |z_r|^2 - logDet_r and c (coef, one float per row) is the loss's weight on row r:
 * given dz (dL/dz), writes dOut (mu columns -dz e, s columns (-dz z + c_r) where the clip is
 * inactive, 0 elsewhere) and, if du is not 0, du = dz e (the direct path; the MADE's path is
 * added by the caller). Rows n..nPad of dOut (and du) are zeroed so padding adds nothing.
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
): void {
  for (let r = 0; r < n; r++) {
    const off = (<usize>r * ldu) << 2;
    const cr = load<f32>(coef + ((<usize>r) << 2));
    const orow = out + ((<usize>r * ldo) << 2);
    const drow = dOut + ((<usize>r * ldo) << 2);
    for (let i = 0; i < D; i++) {
      const s = load<f32>(orow + ((<usize>(i + D)) << 2));
      const inside = s >= sMin && s <= sMax;
      const g = load<f32>(dz + off + ((<usize>i) << 2));
      const ge = g * load<f32>(e + off + ((<usize>i) << 2));
      store<f32>(drow + ((<usize>i) << 2), -ge);
      const ds = -g * load<f32>(z + off + ((<usize>i) << 2)) + cr;
      store<f32>(drow + ((<usize>(i + D)) << 2), inside ? ds : 0);
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
  for (let k = 0; k < n; k++) {
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
