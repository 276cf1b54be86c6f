// Adaptive Bogacki-Shampine 3(2) (torchdiffeq's "bosh3", which RABI's hodgkin_huxley uses), with
// cubic Hermite dense output between accepted steps. Same calling convention and work-array reuse
// as Dopri5 in ode.ts, so one solver object serves many parameter rows.
import type { DopriOptions, OdeResult, OdeRhs } from './ode.js';

// Butcher tableau (Bogacki & Shampine 1989). The 3rd-order solution is propagated; the embedded
// 2nd-order one uses the FSAL stage k4 = f(t + h, yNew). Error weights E = b3 - b2.
const C2 = 1 / 2,
  C3 = 3 / 4;
const A21 = 1 / 2;
const A32 = 3 / 4;
const B1 = 2 / 9,
  B2 = 1 / 3,
  B3 = 4 / 9;
const E1 = 2 / 9 - 7 / 24,
  E2 = 1 / 3 - 1 / 4,
  E3 = 4 / 9 - 1 / 3,
  E4 = -1 / 8;

const SAFETY = 0.9;
const FAC_MIN = 0.2;
const FAC_MAX = 10;
/** Step-size exponent: 1 / (order of the embedded estimate + 1). */
const EXPONENT = -1 / 3;

export class Bosh3 {
  readonly dim: number;
  private readonly y: Float64Array;
  private readonly yNew: Float64Array;
  private readonly yStage: Float64Array;
  private readonly k1: Float64Array;
  private readonly k2: Float64Array;
  private readonly k3: Float64Array;
  private readonly k4: Float64Array;

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
    const { y, yNew, yStage: ys, k1, k2, k3, k4 } = this;
    const nT = tGrid.length;
    let t = tGrid[0];
    const tEnd = tGrid[nT - 1];
    for (let j = 0; j < d; j++) {
      y[j] = y0[j];
      out[j] = y0[j];
    }
    let next = 1;
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
      let isLast = false;
      if (t + h >= tEnd) {
        h = tEnd - t;
        isLast = true;
      }

      for (let j = 0; j < d; j++) ys[j] = y[j] + h * A21 * k1[j];
      f(t + C2 * h, ys, k2, params);
      for (let j = 0; j < d; j++) ys[j] = y[j] + h * A32 * k2[j];
      f(t + C3 * h, ys, k3, params);
      for (let j = 0; j < d; j++) yNew[j] = y[j] + h * (B1 * k1[j] + B2 * k2[j] + B3 * k3[j]);
      f(t + h, yNew, k4, params);
      result.evals += 3;

      let errSq = 0;
      for (let j = 0; j < d; j++) {
        const e = h * (E1 * k1[j] + E2 * k2[j] + E3 * k3[j] + E4 * k4[j]);
        const sc = atol + rtol * Math.max(Math.abs(y[j]), Math.abs(yNew[j]));
        const r = e / sc;
        errSq += r * r;
      }
      const err = Math.sqrt(errSq / d);

      if (!(err <= 1)) {
        result.rejected++;
        const fac = Number.isFinite(err)
          ? Math.max(FAC_MIN, SAFETY * Math.pow(err, EXPONENT))
          : FAC_MIN;
        h *= Math.min(1, fac);
        lastRejected = true;
        continue;
      }

      const tNew = t + h;
      const reachedEnd = isLast || tNew >= tEnd;
      while (next < nT && (tGrid[next] <= tNew || reachedEnd)) {
        this.hermite((tGrid[next] - t) / h, h, out, next * d);
        next++;
      }
      result.steps++;
      t = reachedEnd ? tEnd : tNew;
      for (let j = 0; j < d; j++) {
        y[j] = yNew[j];
        k1[j] = k4[j];
      }
      let fac = err === 0 ? FAC_MAX : SAFETY * Math.pow(err, EXPONENT);
      fac = Math.min(lastRejected ? 1 : FAC_MAX, Math.max(FAC_MIN, fac));
      h *= fac;
      lastRejected = false;
    }
    return result;
  }

  /** Cubic Hermite through (y, k1) at s = 0 and (yNew, k4) at s = 1: 3rd-order, like the step. */
  private hermite(s: number, h: number, out: Float64Array, offset: number): void {
    const { y, yNew, k1, k4 } = this;
    const s2 = s * s;
    const s3 = s2 * s;
    const h00 = 2 * s3 - 3 * s2 + 1;
    const h10 = s3 - 2 * s2 + s;
    const h01 = -2 * s3 + 3 * s2;
    const h11 = s3 - s2;
    for (let j = 0; j < this.dim; j++) {
      out[offset + j] = h00 * y[j] + h10 * h * k1[j] + h01 * yNew[j] + h11 * h * k4[j];
    }
  }

  /** Hairer's starting-step heuristic for a 3rd-order method; k1 holds f(t0, y0). */
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
    const h1 = m <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / m, 1 / 3);
    const h = Math.min(100 * h0, h1, span);
    return Number.isFinite(h) && h > 0 ? h : Math.min(1e-6, span);
  }
}
