// AssemblyScript source of the pyloric network kernel (sbi/tasks/pyloric-wasm.ts drives it);
// `npm run build:wasm` compiles it into pyloric-step.wasm.ts. It is the scheme of
// sbi/tasks/pyloric-network.ts, operation for operation, run on two simulations at once: each f64x2
// lane holds one network, so every exp of the step (37 per neuron) is one SIMD exp for both.
//
// Why: the exponentials are three quarters of a step, and V8 calls out for each Math.exp. Here exp
// is a SIMD polynomial (range reduction by ln 2, Taylor to degree 13, within 2 ulp), and
// the calcium log stays scalar per lane (one per neuron per step). No relaxed SIMD: a fused
// multiply-add may or may not fuse from one engine to the next, and a dataset must be the same
// bytes everywhere.
//
// Memory (byte addresses from the JavaScript side; "pair" = one v128 of two lanes):
//   g      31 pairs: membrane conductances (neuron-major, Na CaT CaS A KCa Kd H Leak) then the 7
//          synapses, absolute mS, temperature factors applied;
//   state  scratch of STATE_PAIRS pairs;
//   noise  3 * nsteps pairs of standard normals, noise[j * nsteps + i] (column 0 unused);
//   out    3 * kept pairs, V every `every` steps from step 0, out[j * kept + n];
//   counts 6 int32: lane * 3 + j, steps countEvery, 2 countEvery, ... with V > countAbove.

const C: f64 = 0.6283e-3;
const E_NA: f64 = 50;
const E_K: f64 = -80;
const E_H: f64 = -20;
const E_LEAK: f64 = -50;
const CA_PER_CURRENT: f64 = 14961;
const CA_EXT: f64 = 3000;
const CA_REST: f64 = 0.05;
const E_GLUT: f64 = -70;
const E_CHOL: f64 = -80;
const K_MINUS_GLUT: f64 = 40;
const K_MINUS_CHOL: f64 = 100;

/** V, Ca and the 11 gates of each neuron, the 7 synapses, the per-step s_inf of each neuron. */
const V: i32 = 0;
const CA: i32 = 3;
const M_NA: i32 = 6;
const H_NA: i32 = 9;
const M_CAT: i32 = 12;
const H_CAT: i32 = 15;
const M_CAS: i32 = 18;
const H_CAS: i32 = 21;
const M_A: i32 = 24;
const H_A: i32 = 27;
const M_KCA: i32 = 30;
const M_KD: i32 = 33;
const M_H: i32 = 36;
const S: i32 = 39;
const S_INF: i32 = 46;
const SYN_G: i32 = 49;
const SYN_GE: i32 = 52;
export const STATE_PAIRS: i32 = 55;

// @ts-ignore: decorator
@inline
function ld(base: usize, pair: i32): v128 {
  return v128.load(base + ((<usize>pair) << 4));
}

// @ts-ignore: decorator
@inline
function st(base: usize, pair: i32, v: v128): void {
  v128.store(base + ((<usize>pair) << 4), v);
}

// @ts-ignore: decorator
@inline
function sp(x: f64): v128 {
  return f64x2.splat(x);
}

// @ts-ignore: decorator
@inline
function add(a: v128, b: v128): v128 {
  return f64x2.add(a, b);
}

// @ts-ignore: decorator
@inline
function sub(a: v128, b: v128): v128 {
  return f64x2.sub(a, b);
}

// @ts-ignore: decorator
@inline
function mul(a: v128, b: v128): v128 {
  return f64x2.mul(a, b);
}

// @ts-ignore: decorator
@inline
function div(a: v128, b: v128): v128 {
  return f64x2.div(a, b);
}

const LOG2E: f64 = 1.4426950408889634;
const LN2_HI: f64 = 6.9314718036912381649e-1;
const LN2_LO: f64 = 1.90821492927058770002e-10;
/** ln of the largest double: above it exp overflows. */
const EXP_MAX: f64 = 709.782712893384;
const EXP_MIN: f64 = -708.0;
const ROUNDER: f64 = 6755399441055744.0;

/**
 * exp of both lanes: x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor polynomial to degree 13
 * (remainder below 4e-18), then 2^k added into the exponent bits. Above EXP_MAX it gives +Infinity,
 * below -708 zero (true values under 3e-308), NaN stays NaN.
 */
// @ts-ignore: decorator
@inline
function vexp(x: v128): v128 {
  // pmin / pmax are single instructions (min / max carry NaN and signed-zero rules); NaN passes.
  const xc = f64x2.pmin(f64x2.pmax(x, sp(EXP_MIN)), sp(EXP_MAX));
  // k = round(x / ln 2) by the 1.5 * 2^52 trick: t holds k in its low mantissa bits.
  const t = add(mul(xc, sp(LOG2E)), sp(ROUNDER));
  const k = sub(t, sp(ROUNDER));
  const r = sub(sub(xc, mul(k, sp(LN2_HI))), mul(k, sp(LN2_LO)));
  let p = sp(1.0 / 6227020800.0);
  p = add(mul(p, r), sp(1.0 / 479001600.0));
  p = add(mul(p, r), sp(1.0 / 39916800.0));
  p = add(mul(p, r), sp(1.0 / 3628800.0));
  p = add(mul(p, r), sp(1.0 / 362880.0));
  p = add(mul(p, r), sp(1.0 / 40320.0));
  p = add(mul(p, r), sp(1.0 / 5040.0));
  p = add(mul(p, r), sp(1.0 / 720.0));
  p = add(mul(p, r), sp(1.0 / 120.0));
  p = add(mul(p, r), sp(1.0 / 24.0));
  p = add(mul(p, r), sp(1.0 / 6.0));
  p = add(mul(p, r), sp(0.5));
  p = add(mul(p, r), sp(1.0));
  p = add(mul(p, r), sp(1.0));
  // 2^k: k's low 12 bits shifted into the exponent field (two's complement wraps as it should).
  let y = i64x2.add(p, i64x2.shl(t, 52));
  y = v128.bitselect(sp(Infinity), y, f64x2.gt(x, sp(EXP_MAX)));
  return v128.bitselect(sp(0), y, f64x2.lt(x, sp(EXP_MIN)));
}

/** 1 / (1 + exp((v + a) / b)): the package's mhtt. */
// @ts-ignore: decorator
@inline
function sigm(v: v128, a: f64, b: f64): v128 {
  return div(sp(1.0), add(sp(1), vexp(div(add(v, sp(a)), sp(b)))));
}

/** 1 / (exp((v + a1) / b1) + exp((v + a2) / b2)): the package's mhtt2. */
// @ts-ignore: decorator
@inline
function sigm2(v: v128, a1: f64, b1: f64, a2: f64, b2: f64): v128 {
  return div(sp(1.0), add(vexp(div(add(v, sp(a1)), sp(b1))), vexp(div(add(v, sp(a2)), sp(b2)))));
}

/** x_inf + (x - x_inf) exp(ndt / tau). */
// @ts-ignore: decorator
@inline
function relax(x: v128, xInf: v128, ndt: v128, tau: v128): v128 {
  return add(xInf, mul(sub(x, xInf), vexp(div(ndt, tau))));
}

/** exp of n pairs at x into out: the kernel's exp, for its accuracy test. */
export function expPairs(x: usize, n: i32, out: usize): void {
  for (let i = 0; i < n; i++) st(out, i, vexp(ld(x, i)));
}

/** The first byte the JavaScript side may use. */
export function heapBase(): usize {
  return __heap_base;
}

/** Sets the package's start: V = -50, Ca = 0.05, gates and synapses 0. */
export function reset(state: usize): void {
  for (let p = 0; p < STATE_PAIRS; p++) st(state, p, sp(0));
  for (let j = 0; j < 3; j++) {
    st(state, V + j, sp(E_LEAK));
    st(state, CA + j, sp(CA_REST));
  }
}

/**
 * Runs steps 1 .. nsteps - 1 from the reset state. ndt* are -dt times the Q10 factors of the gate
 * groups, caDecay = exp(-dt q / 200), qSyn the synapses' tau factor (all 1 at 283 K).
 */
export function run(
  g: usize,
  state: usize,
  noise: usize,
  noiseStd: f64,
  nsteps: i32,
  every: i32,
  out: usize,
  countEvery: i32,
  countAbove: f64,
  counts: usize,
  dt: f64,
  ndtM: f64,
  ndtMCaS: f64,
  ndtMKCa: f64,
  ndtH: f64,
  caDecay: f64,
  rtOverZF: f64,
  qSyn: f64,
): void {
  const kept = (nsteps + every - 1) / every;
  for (let c = 0; c < 6; c++) store<i32>(counts + ((<usize>c) << 2), 0);
  for (let j = 0; j < 3; j++) st(out, j * kept, ld(state, V + j));
  let nextRecord = every;
  let recordIndex = 1;
  let nextCount = countEvery > 0 ? countEvery : nsteps;
  const vdt = sp(dt);
  const ndtC = sp(-dt);
  const vC = sp(C);
  const useNoise = noiseStd != 0;
  const vNoise = sp(noiseStd);
  const vNdtM = sp(ndtM);
  const vNdtMCaS = sp(ndtMCaS);
  const vNdtMKCa = sp(ndtMKCa);
  const vNdtH = sp(ndtH);

  for (let i = 1; i < nsteps; i++) {
    // (a) synaptic conductance per postsynaptic neuron, in the package's order of synapses
    let g0 = sp(0);
    let g1 = sp(0);
    let g2 = sp(0);
    let e0 = sp(0);
    let e1 = sp(0);
    let e2 = sp(0);
    for (let k = 0; k < 7; k++) {
      const gs = mul(ld(g, 24 + k), ld(state, S + k));
      const ge = mul(gs, sp(k == 1 || k == 3 ? E_CHOL : E_GLUT));
      // post: 1 1 2 2 0 2 1
      if (k == 4) {
        g0 = add(g0, gs);
        e0 = add(e0, ge);
      } else if (k < 2 || k == 6) {
        g1 = add(g1, gs);
        e1 = add(e1, ge);
      } else {
        g2 = add(g2, gs);
        e2 = add(e2, ge);
      }
    }
    st(state, SYN_G, g0);
    st(state, SYN_G + 1, g1);
    st(state, SYN_G + 2, g2);
    st(state, SYN_GE, e0);
    st(state, SYN_GE + 1, e1);
    st(state, SYN_GE + 2, e2);

    for (let j = 0; j < 3; j++) {
      const v = ld(state, V + j);
      const ca = ld(state, CA + j);
      const gb = j * 8;
      // (b) channel conductances from the gates of step i-1
      const m1 = ld(state, M_NA + j);
      const cNa = mul(mul(ld(g, gb), mul(mul(m1, m1), m1)), ld(state, H_NA + j));
      const m2 = ld(state, M_CAT + j);
      const cCaT = mul(mul(ld(g, gb + 1), mul(mul(m2, m2), m2)), ld(state, H_CAT + j));
      const m3 = ld(state, M_CAS + j);
      const cCaS = mul(mul(ld(g, gb + 2), mul(mul(m3, m3), m3)), ld(state, H_CAS + j));
      const m4 = ld(state, M_A + j);
      const cA = mul(mul(ld(g, gb + 3), mul(mul(m4, m4), m4)), ld(state, H_A + j));
      const m5 = ld(state, M_KCA + j);
      const m5s = mul(m5, m5);
      const cKCa = mul(ld(g, gb + 4), mul(m5s, m5s));
      const m6 = ld(state, M_KD + j);
      const m6s = mul(m6, m6);
      const cKd = mul(ld(g, gb + 5), mul(m6s, m6s));
      const mh = ld(state, M_H + j);
      const cH = mul(ld(g, gb + 6), mh);
      const cLeak = ld(g, gb + 7);
      // (c) calcium: Nernst reversal from Ca_{i-1} (scalar log per lane)
      const q = div(sp(CA_EXT), ca);
      const eCa = mul(
        sp(rtOverZF),
        f64x2.replace_lane(
          f64x2.splat(Math.log(f64x2.extract_lane(q, 0))),
          1,
          Math.log(f64x2.extract_lane(q, 1)),
        ),
      );
      const iCa = mul(add(cCaT, cCaS), sub(v, eCa));
      const caInf = sub(sp(CA_REST), mul(sp(CA_PER_CURRENT), iCa));
      st(state, CA + j, add(caInf, mul(sub(ca, caInf), sp(caDecay))));
      // (d) voltage by exponential Euler; the G = 0 branch integrates the current
      // Summed left to right, in the package's order.
      let gTotal = add(ld(state, SYN_G + j), cNa);
      gTotal = add(add(add(gTotal, cCaT), cCaS), cA);
      gTotal = add(add(add(add(gTotal, cKCa), cKd), cH), cLeak);
      let iTotal = add(ld(state, SYN_GE + j), mul(cNa, sp(E_NA)));
      iTotal = add(add(iTotal, mul(cCaT, eCa)), mul(cCaS, eCa));
      iTotal = add(add(add(iTotal, mul(cA, sp(E_K))), mul(cKCa, sp(E_K))), mul(cKd, sp(E_K)));
      iTotal = add(add(iTotal, mul(cH, sp(E_H))), mul(cLeak, sp(E_LEAK)));
      if (useNoise) iTotal = add(iTotal, mul(vNoise, ld(noise, j * nsteps + i)));
      const vInf = div(iTotal, gTotal);
      const vExp = add(vInf, mul(sub(v, vInf), vexp(div(mul(ndtC, gTotal), vC))));
      const vLin = add(v, div(mul(vdt, iTotal), vC));
      st(state, V + j, v128.bitselect(vLin, vExp, f64x2.eq(gTotal, sp(0))));

      // (e) gates at V_{i-1} (and Ca_{i-1} for KCa)
      let xInf = sigm(v, 25.5, -5.29);
      let tau = add(sp(2.64), mul(sp(-2.52), sigm(v, 120, -25)));
      st(state, M_NA + j, relax(m1, xInf, vNdtM, tau));

      xInf = sigm(v, 27.1, -7.2);
      tau = add(sp(43.4), mul(sp(-42.6), sigm(v, 68.1, -20.5)));
      st(state, M_CAT + j, relax(m2, xInf, vNdtM, tau));

      xInf = sigm(v, 33, -8.1);
      tau = add(sp(2.8), mul(sp(14), sigm2(v, 27, 10, 70, -13)));
      st(state, M_CAS + j, relax(m3, xInf, vNdtMCaS, tau));

      xInf = sigm(v, 27.2, -8.7);
      tau = add(sp(23.2), mul(sp(-20.8), sigm(v, 32.9, -15.2)));
      st(state, M_A + j, relax(m4, xInf, vNdtM, tau));

      xInf = mul(div(ca, add(ca, sp(3))), sigm(v, 28.3, -12.6));
      tau = add(sp(180.6), mul(sp(-150.2), sigm(v, 46, -22.7)));
      st(state, M_KCA + j, relax(m5, xInf, vNdtMKCa, tau));

      xInf = sigm(v, 12.3, -11.8);
      tau = add(sp(14.4), mul(sp(-12.8), sigm(v, 28.3, -19.2)));
      st(state, M_KD + j, relax(m6, xInf, vNdtM, tau));

      xInf = sigm(v, 75, 5.5);
      tau = div(
        sp(2.0),
        add(vexp(sub(sp(-14.59), mul(sp(0.086), v))), vexp(add(sp(-1.87), mul(sp(0.0701), v)))),
      );
      st(state, M_H + j, relax(mh, xInf, vNdtM, tau));

      xInf = sigm(v, 48.9, 5.18);
      tau = mul(
        div(sp(1.34), add(sp(1), vexp(div(add(v, sp(62.9)), sp(-10))))),
        add(sp(1.5), div(sp(1), add(sp(1), vexp(div(add(v, sp(34.9)), sp(3.6)))))),
      );
      st(state, H_NA + j, relax(ld(state, H_NA + j), xInf, vNdtH, tau));

      xInf = sigm(v, 32.1, 5.5);
      tau = add(sp(210), mul(sp(-179.6), sigm(v, 55, -16.9)));
      st(state, H_CAT + j, relax(ld(state, H_CAT + j), xInf, vNdtH, tau));

      xInf = sigm(v, 60, 6.2);
      tau = add(sp(120), mul(sp(300), sigm2(v, 55, 9, 65, -16)));
      st(state, H_CAS + j, relax(ld(state, H_CAS + j), xInf, vNdtH, tau));

      xInf = sigm(v, 56.9, 4.9);
      tau = add(sp(77.2), mul(sp(-58.4), sigm(v, 38.9, -26.5)));
      st(state, H_A + j, relax(ld(state, H_A + j), xInf, vNdtH, tau));

      // the synapses' s_inf from this neuron as presynaptic, at V_{i-1}
      st(state, S_INF + j, div(sp(1), add(sp(1), vexp(div(sub(sp(-35.0), v), sp(5.0))))));
    }
    // (f) synapses: forward Euler, snapped to s_inf when dt > tau_s; pre: 0 0 0 0 1 1 2
    for (let k = 0; k < 7; k++) {
      const si = ld(state, S_INF + (k < 4 ? 0 : k < 6 ? 1 : 2));
      const tauS = div(
        mul(sp(k == 1 || k == 3 ? K_MINUS_CHOL : K_MINUS_GLUT), sub(sp(1), si)),
        sp(qSyn),
      );
      const s = ld(state, S + k);
      const euler = add(s, div(mul(sub(si, s), vdt), tauS));
      st(state, S + k, v128.bitselect(si, euler, f64x2.gt(vdt, tauS)));
    }
    if (i == nextRecord) {
      for (let j = 0; j < 3; j++) st(out, j * kept + recordIndex, ld(state, V + j));
      recordIndex++;
      nextRecord += every;
    }
    if (i == nextCount) {
      for (let j = 0; j < 3; j++) {
        const v = ld(state, V + j);
        if (f64x2.extract_lane(v, 0) > countAbove) {
          const a = counts + ((<usize>j) << 2);
          store<i32>(a, load<i32>(a) + 1);
        }
        if (f64x2.extract_lane(v, 1) > countAbove) {
          const a = counts + ((<usize>(3 + j)) << 2);
          store<i32>(a, load<i32>(a) + 1);
        }
      }
      nextCount += countEvery;
    }
  }
}
