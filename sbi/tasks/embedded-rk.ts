// The adaptive driver shared by the embedded explicit Runge-Kutta pairs (Dopri5 in ode.ts, Bosh3 in
// bosh3.ts): Hairer's initial step, the step-size controller, dense output onto the caller's grid
// and the max_steps / step_underflow failures. A method supplies only its stages, error estimate
// and interpolant. One solver object serves many parameter rows: all work arrays are allocated
// once, so a sweep of 1e5 simulations does no per-row allocation.

/** dy = f(t, y; params). Must write every entry of dy and must not keep references to y or dy. */
export type OdeRhs = (t: number, y: Float64Array, dy: Float64Array, params: Float64Array) => void;

export interface OdeOptions {
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

/** What a method declares to the driver. */
export interface RkShape {
  /**
   * Order p of the propagated solution (one more than the embedded one): the controller scales h
   * by err^(-1/p) and Hairer's initial step is (0.01 / max(|f'|, |f''|))^(1/p).
   */
  readonly order: number;
  /** Stage vectors, k[0] included; each step costs stages - 1 rhs evaluations. */
  readonly stages: number;
  /** Dense-output coefficient vectors the method keeps (0 if it interpolates from y, yNew and k). */
  readonly denseVectors: number;
}

const SAFETY = 0.9;
const FAC_MIN = 0.2;
const FAC_MAX = 10;

/**
 * The driver; a method (an embedded pair with the first-same-as-last property) is a subclass that
 * writes out its stages, error estimate and interpolant. Methods are spelled out stage by stage,
 * not as a generic tableau loop, so each keeps its exact floating-point expression order; and as
 * subclass methods (distinct receiver maps), so V8 can still inline them into solve when one
 * process runs several methods.
 */
export abstract class EmbeddedRk {
  readonly dim: number;
  /** State at the start of the step. */
  protected readonly y: Float64Array;
  /** The propagated solution at t + h. */
  protected readonly yNew: Float64Array;
  /** Scratch for stage arguments. */
  protected readonly yStage: Float64Array;
  /** Local error estimate per component (unscaled). */
  protected readonly err: Float64Array;
  /** Stage derivatives; k[0] = f(t, y) on entry to step, k[stages - 1] = f(t + h, yNew) on exit (FSAL). */
  protected readonly k: readonly Float64Array[];
  /** The interpolant's coefficients, for methods that precompute them once per step. */
  protected readonly dense: readonly Float64Array[];
  private readonly order: number;
  /** -1 / order, the controller's exponent. */
  private readonly expo: number;

  constructor(method: RkShape, dim: number) {
    this.order = method.order;
    this.dim = dim;
    this.expo = -1 / method.order;
    const mk = (): Float64Array => new Float64Array(dim);
    this.y = mk();
    this.yNew = mk();
    this.yStage = mk();
    this.err = mk();
    this.k = Array.from({ length: method.stages }, mk);
    this.dense = Array.from({ length: method.denseVectors }, mk);
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
    opts: OdeOptions,
  ): OdeResult {
    const d = this.dim;
    const { atol, rtol } = opts;
    const maxSteps = opts.maxSteps ?? 100000;
    const expo = this.expo;
    const { y, yNew, err: errVec, k } = this;
    const k1 = k[0];
    const kLast = k[k.length - 1];
    const evalsPerStep = k.length - 1;
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

      this.step(f, params, t, h);
      result.evals += evalsPerStep;

      // RMS of the scaled local error estimate, as Hairer and torchdiffeq do.
      let errSq = 0;
      for (let j = 0; j < d; j++) {
        const sc = atol + rtol * Math.max(Math.abs(y[j]), Math.abs(yNew[j]));
        const r = errVec[j] / sc;
        errSq += r * r;
      }
      const err = Math.sqrt(errSq / d);

      // A non-finite error (overflow, NaN) counts as a rejected step and shrinks h hard.
      if (!(err <= 1)) {
        result.rejected++;
        const fac = Number.isFinite(err)
          ? Math.max(FAC_MIN, SAFETY * Math.pow(err, expo))
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
          this.interpolate((tGrid[next] - t) / h, h, out, next * d);
          next++;
        }
      }
      result.steps++;
      t = reachedEnd ? tEnd : tNew;
      for (let j = 0; j < d; j++) {
        y[j] = yNew[j];
        k1[j] = kLast[j]; // first-same-as-last
      }
      let fac = err === 0 ? FAC_MAX : SAFETY * Math.pow(err, expo);
      fac = Math.min(lastRejected ? 1 : FAC_MAX, Math.max(FAC_MIN, fac));
      h *= fac;
      lastRejected = false;
    }
    return result;
  }

  /** Hairer's starting-step heuristic for a method of this order; k[0] holds f(t0, y0). */
  private initialStep(
    f: OdeRhs,
    params: Float64Array,
    t0: number,
    span: number,
    atol: number,
    rtol: number,
  ): number {
    const d = this.dim;
    const { y, yStage } = this;
    const k1 = this.k[0];
    const k2 = this.k[1];
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
    const h1 = m <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / m, 1 / this.order);
    const h = Math.min(100 * h0, h1, span);
    return Number.isFinite(h) && h > 0 ? h : Math.min(1e-6, span);
  }

  /** From y and k[0], fills k[1..], yNew and err for the step [t, t + h]. */
  protected abstract step(f: OdeRhs, params: Float64Array, t: number, h: number): void;

  /** Called once per accepted step that covers grid times, before any interpolate. */
  protected abstract prepareDense(h: number): void;

  /** Writes y(t + s h), 0 < s <= 1, into out[offset .. offset + dim). */
  protected abstract interpolate(s: number, h: number, out: Float64Array, offset: number): void;
}
