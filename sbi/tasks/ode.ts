// Adaptive Dormand-Prince 5(4) with Hairer's 4th-order dense output, plus the fixed-step Euler that
// RABI falls back to. One solver object serves many parameter rows: all work arrays are allocated
// once, so a sweep of 1e5 simulations does no per-row allocation.

/** dy = f(t, y; params). Must write every entry of dy and must not keep references to y or dy. */
export type OdeRhs = (t: number, y: Float64Array, dy: Float64Array, params: Float64Array) => void;

export interface DopriOptions {
  atol: number;
  rtol: number;
  /** Accepted + rejected steps before giving up (default 100000). */
  maxSteps?: number;
}

export type OdeStatus = 'ok' | 'max_steps' | 'step_underflow';

export interface OdeResult {
  status: OdeStatus;
  /** Accepted steps. */
  steps: number;
  rejected: number;
  /** Right-hand-side evaluations. */
  evals: number;
}

// Butcher tableau (Dormand & Prince 1980). b = a7*, error weights e = b - bHat.
const C2 = 1 / 5,
  C3 = 3 / 10,
  C4 = 4 / 5,
  C5 = 8 / 9;
const A21 = 1 / 5;
const A31 = 3 / 40,
  A32 = 9 / 40;
const A41 = 44 / 45,
  A42 = -56 / 15,
  A43 = 32 / 9;
const A51 = 19372 / 6561,
  A52 = -25360 / 2187,
  A53 = 64448 / 6561,
  A54 = -212 / 729;
const A61 = 9017 / 3168,
  A62 = -355 / 33,
  A63 = 46732 / 5247,
  A64 = 49 / 176,
  A65 = -5103 / 18656;
const A71 = 35 / 384,
  A73 = 500 / 1113,
  A74 = 125 / 192,
  A75 = -2187 / 6784,
  A76 = 11 / 84;
const E1 = 71 / 57600,
  E3 = -71 / 16695,
  E4 = 71 / 1920,
  E5 = -17253 / 339200,
  E6 = 22 / 525;
const E7 = -1 / 40;
// Dense-output weights (Hairer, Norsett & Wanner, "Solving ODEs I", DOPRI5 contd5).
const D1 = -12715105075 / 11282082432,
  D3 = 87487479700 / 32700410799;
const D4 = -10690763975 / 1880347072,
  D5 = 701980252875 / 199316789632;
const D6 = -1453857185 / 822651844,
  D7 = 69997945 / 29380423;

const SAFETY = 0.9;
const FAC_MIN = 0.2;
const FAC_MAX = 10;

export class Dopri5 {
  readonly dim: number;
  private readonly y: Float64Array;
  private readonly yNew: Float64Array;
  private readonly yStage: Float64Array;
  private readonly k1: Float64Array;
  private readonly k2: Float64Array;
  private readonly k3: Float64Array;
  private readonly k4: Float64Array;
  private readonly k5: Float64Array;
  private readonly k6: Float64Array;
  private readonly k7: Float64Array;
  // Dense-output polynomial coefficients of the last accepted step.
  private readonly r1: Float64Array;
  private readonly r2: Float64Array;
  private readonly r3: Float64Array;
  private readonly r4: Float64Array;
  private readonly r5: Float64Array;

  constructor(dim: number) {
    this.dim = dim;
    const mk = (): Float64Array => new Float64Array(dim);
    this.y = mk();
    this.yNew = mk();
    this.yStage = mk();
    this.k1 = mk();
    this.k2 = mk();
    this.k3 = mk();
    this.k4 = mk();
    this.k5 = mk();
    this.k6 = mk();
    this.k7 = mk();
    this.r1 = mk();
    this.r2 = mk();
    this.r3 = mk();
    this.r4 = mk();
    this.r5 = mk();
  }

  /**
   * Integrates from tGrid[0] (where y = y0) and writes y at every grid time into out, time-major:
   * out[i * dim + j] = y_j(tGrid[i]). tGrid must be strictly increasing. On failure the rows not
   * reached are left as they were and the status says why.
   */
  solve(
    f: OdeRhs,
    params: Float64Array,
    y0: ArrayLike<number>,
    tGrid: ArrayLike<number>,
    out: Float64Array,
    opts: DopriOptions,
  ): OdeResult {
    const d = this.dim;
    const { atol, rtol } = opts;
    const maxSteps = opts.maxSteps ?? 100000;
    const { y, yNew, yStage: ys, k1, k2, k3, k4, k5, k6, k7 } = this;
    const nT = tGrid.length;
    let t = tGrid[0];
    const tEnd = tGrid[nT - 1];
    for (let j = 0; j < d; j++) {
      y[j] = y0[j];
      out[j] = y0[j];
    }
    let next = 1; // next grid index to fill
    const result: OdeResult = { status: 'ok', steps: 0, rejected: 0, evals: 0 };
    if (nT === 1) return result;

    f(t, y, k1, params);
    result.evals++;
    let h = this.initialStep(f, params, t, tEnd - t, atol, rtol);
    result.evals++;
    let lastRejected = false;

    while (next < nT) {
      if (result.steps + result.rejected >= maxSteps) {
        result.status = 'max_steps';
        return result;
      }
      if (h <= 16 * Number.EPSILON * Math.max(1, Math.abs(t))) {
        result.status = 'step_underflow';
        return result;
      }
      // Never step past the end: the dense output covers grid points inside the step.
      let isLast = false;
      if (t + h >= tEnd) {
        h = tEnd - t;
        isLast = true;
      }

      for (let j = 0; j < d; j++) ys[j] = y[j] + h * A21 * k1[j];
      f(t + C2 * h, ys, k2, params);
      for (let j = 0; j < d; j++) ys[j] = y[j] + h * (A31 * k1[j] + A32 * k2[j]);
      f(t + C3 * h, ys, k3, params);
      for (let j = 0; j < d; j++) ys[j] = y[j] + h * (A41 * k1[j] + A42 * k2[j] + A43 * k3[j]);
      f(t + C4 * h, ys, k4, params);
      for (let j = 0; j < d; j++) {
        ys[j] = y[j] + h * (A51 * k1[j] + A52 * k2[j] + A53 * k3[j] + A54 * k4[j]);
      }
      f(t + C5 * h, ys, k5, params);
      for (let j = 0; j < d; j++) {
        ys[j] = y[j] + h * (A61 * k1[j] + A62 * k2[j] + A63 * k3[j] + A64 * k4[j] + A65 * k5[j]);
      }
      f(t + h, ys, k6, params);
      for (let j = 0; j < d; j++) {
        yNew[j] = y[j] + h * (A71 * k1[j] + A73 * k3[j] + A74 * k4[j] + A75 * k5[j] + A76 * k6[j]);
      }
      f(t + h, yNew, k7, params);
      result.evals += 6;

      // RMS of the scaled local error estimate, as Hairer and torchdiffeq do.
      let errSq = 0;
      for (let j = 0; j < d; j++) {
        const e = h * (E1 * k1[j] + E3 * k3[j] + E4 * k4[j] + E5 * k5[j] + E6 * k6[j] + E7 * k7[j]);
        const sc = atol + rtol * Math.max(Math.abs(y[j]), Math.abs(yNew[j]));
        const r = e / sc;
        errSq += r * r;
      }
      const err = Math.sqrt(errSq / d);

      // A non-finite error (overflow, NaN) counts as a rejected step and shrinks h hard.
      if (!(err <= 1)) {
        result.rejected++;
        const fac = Number.isFinite(err)
          ? Math.max(FAC_MIN, SAFETY * Math.pow(err, -0.2))
          : FAC_MIN;
        h *= Math.min(1, fac);
        lastRejected = true;
        continue;
      }

      const tNew = t + h;
      const reachedEnd = isLast || tNew >= tEnd;
      // Fill every grid time inside (t, tNew] from the dense output.
      if (next < nT && (tGrid[next] <= tNew || reachedEnd)) {
        this.prepareDense(h);
        while (next < nT && (tGrid[next] <= tNew || reachedEnd)) {
          const s = (tGrid[next] - t) / h;
          this.interpolate(s, out, next * d);
          next++;
        }
      }
      result.steps++;
      t = reachedEnd ? tEnd : tNew;
      for (let j = 0; j < d; j++) {
        y[j] = yNew[j];
        k1[j] = k7[j]; // first-same-as-last
      }
      let fac = err === 0 ? FAC_MAX : SAFETY * Math.pow(err, -0.2);
      fac = Math.min(lastRejected ? 1 : FAC_MAX, Math.max(FAC_MIN, fac));
      h *= fac;
      lastRejected = false;
    }
    return result;
  }

  /** Hairer's starting-step heuristic; k1 holds f(t0, y0). */
  private initialStep(
    f: OdeRhs,
    params: Float64Array,
    t0: number,
    span: number,
    atol: number,
    rtol: number,
  ): number {
    const d = this.dim;
    const { y, k1, k2, yStage } = this;
    let d0 = 0;
    let d1 = 0;
    for (let j = 0; j < d; j++) {
      const sc = atol + rtol * Math.abs(y[j]);
      d0 += (y[j] / sc) ** 2;
      d1 += (k1[j] / sc) ** 2;
    }
    d0 = Math.sqrt(d0 / d);
    d1 = Math.sqrt(d1 / d);
    let h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
    h0 = Math.min(h0, span);
    for (let j = 0; j < d; j++) yStage[j] = y[j] + h0 * k1[j];
    f(t0 + h0, yStage, k2, params);
    let d2 = 0;
    for (let j = 0; j < d; j++) {
      const sc = atol + rtol * Math.abs(y[j]);
      d2 += ((k2[j] - k1[j]) / sc) ** 2;
    }
    d2 = Math.sqrt(d2 / d) / h0;
    const m = Math.max(d1, d2);
    const h1 = m <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / m, 1 / 5);
    const h = Math.min(100 * h0, h1, span);
    return Number.isFinite(h) && h > 0 ? h : Math.min(1e-6, span);
  }

  private prepareDense(h: number): void {
    const { y, yNew, k1, k3, k4, k5, k6, k7, r1, r2, r3, r4, r5 } = this;
    for (let j = 0; j < this.dim; j++) {
      const dy = yNew[j] - y[j];
      const bspl = h * k1[j] - dy;
      r1[j] = y[j];
      r2[j] = dy;
      r3[j] = bspl;
      r4[j] = dy - h * k7[j] - bspl;
      r5[j] = h * (D1 * k1[j] + D3 * k3[j] + D4 * k4[j] + D5 * k5[j] + D6 * k6[j] + D7 * k7[j]);
    }
  }

  private interpolate(s: number, out: Float64Array, offset: number): void {
    const s1 = 1 - s;
    const { r1, r2, r3, r4, r5 } = this;
    for (let j = 0; j < this.dim; j++) {
      out[offset + j] = r1[j] + s * (r2[j] + s1 * (r3[j] + s * (r4[j] + s1 * r5[j])));
    }
  }
}

/**
 * Explicit Euler with a fixed step, reporting y at the grid times by linear interpolation between
 * steps (the torchdiffeq fixed-grid behaviour RABI falls back to). Returns false if any value went
 * non-finite.
 */
export function eulerFixed(
  f: OdeRhs,
  params: Float64Array,
  y0: ArrayLike<number>,
  tGrid: ArrayLike<number>,
  step: number,
  out: Float64Array,
  work: { y: Float64Array; yNext: Float64Array; dy: Float64Array },
): boolean {
  const d = y0.length;
  const { y, yNext, dy } = work;
  const nT = tGrid.length;
  const t0 = tGrid[0];
  const tEnd = tGrid[nT - 1];
  for (let j = 0; j < d; j++) {
    y[j] = y0[j];
    out[j] = y0[j];
  }
  let next = 1;
  const nSteps = Math.ceil((tEnd - t0) / step - 1e-9);
  let t = t0;
  for (let i = 1; i <= nSteps && next < nT; i++) {
    // Step ends are computed from the index so rounding does not drift; the last one lands on tEnd.
    const tNew = i === nSteps ? tEnd : t0 + i * step;
    const hi = tNew - t;
    f(t, y, dy, params);
    let finite = true;
    for (let j = 0; j < d; j++) {
      yNext[j] = y[j] + hi * dy[j];
      if (!Number.isFinite(yNext[j])) finite = false;
    }
    if (!finite) return false;
    while (next < nT && (tGrid[next] <= tNew || i === nSteps)) {
      const w = (tGrid[next] - t) / hi;
      for (let j = 0; j < d; j++) out[next * d + j] = y[j] + w * (yNext[j] - y[j]);
      next++;
    }
    for (let j = 0; j < d; j++) y[j] = yNext[j];
    t = tNew;
  }
  return true;
}

/** n evenly spaced points from a to b inclusive (torch.linspace). */
export function linspace(a: number, b: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = a;
    return out;
  }
  const step = (b - a) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = a + i * step;
  out[n - 1] = b;
  return out;
}
