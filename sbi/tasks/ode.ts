// Dormand-Prince 5(4) with Hairer's 4th-order dense output, run by the adaptive driver in
// embedded-rk.ts, plus the fixed-step Euler that RABI falls back to.
import { EmbeddedRk, type OdeRhs } from './embedded-rk.js';

export type { OdeOptions, OdeResult, OdeRhs, OdeStatus } from './embedded-rk.js';

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

/** Adaptive Dormand-Prince 5(4) for systems of dimension dim. */
export class Dopri5 extends EmbeddedRk {
  constructor(dim: number) {
    super({ order: 5, stages: 7, denseVectors: 5 }, dim);
  }

  protected step(f: OdeRhs, params: Float64Array, t: number, h: number): void {
    const { dim: d, y, yNew, yStage: ys, err, k } = this;
    const k1 = k[0],
      k2 = k[1],
      k3 = k[2],
      k4 = k[3],
      k5 = k[4],
      k6 = k[5],
      k7 = k[6];
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
    for (let j = 0; j < d; j++) {
      err[j] = h * (E1 * k1[j] + E3 * k3[j] + E4 * k4[j] + E5 * k5[j] + E6 * k6[j] + E7 * k7[j]);
    }
  }

  protected prepareDense(h: number): void {
    const { dim: d, y, yNew, k, dense } = this;
    const k1 = k[0],
      k3 = k[2],
      k4 = k[3],
      k5 = k[4],
      k6 = k[5],
      k7 = k[6];
    const r1 = dense[0],
      r2 = dense[1],
      r3 = dense[2],
      r4 = dense[3],
      r5 = dense[4];
    for (let j = 0; j < d; j++) {
      const dy = yNew[j] - y[j];
      const bspl = h * k1[j] - dy;
      r1[j] = y[j];
      r2[j] = dy;
      r3[j] = bspl;
      r4[j] = dy - h * k7[j] - bspl;
      r5[j] = h * (D1 * k1[j] + D3 * k3[j] + D4 * k4[j] + D5 * k5[j] + D6 * k6[j] + D7 * k7[j]);
    }
  }

  protected interpolate(s: number, _h: number, out: Float64Array, offset: number): void {
    const { dim: d, dense } = this;
    const r1 = dense[0],
      r2 = dense[1],
      r3 = dense[2],
      r4 = dense[3],
      r5 = dense[4];
    const s1 = 1 - s;
    for (let j = 0; j < d; j++) {
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
