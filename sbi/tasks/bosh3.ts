// Bogacki-Shampine 3(2) (torchdiffeq's "bosh3", which RABI's hodgkin_huxley uses) with cubic
// Hermite dense output between accepted steps, run by the adaptive driver in embedded-rk.ts.
import { EmbeddedRk, type OdeRhs } from './embedded-rk.js';

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

/** Adaptive Bogacki-Shampine 3(2) for systems of dimension dim. */
export class Bosh3 extends EmbeddedRk {
  constructor(dim: number) {
    super({ order: 3, stages: 4, denseVectors: 0 }, dim);
  }

  protected step(f: OdeRhs, params: Float64Array, t: number, h: number): void {
    const { dim: d, y, yNew, yStage: ys, err, k } = this;
    const k1 = k[0],
      k2 = k[1],
      k3 = k[2],
      k4 = k[3];
    for (let j = 0; j < d; j++) ys[j] = y[j] + h * A21 * k1[j];
    f(t + C2 * h, ys, k2, params);
    for (let j = 0; j < d; j++) ys[j] = y[j] + h * A32 * k2[j];
    f(t + C3 * h, ys, k3, params);
    for (let j = 0; j < d; j++) yNew[j] = y[j] + h * (B1 * k1[j] + B2 * k2[j] + B3 * k3[j]);
    f(t + h, yNew, k4, params);
    for (let j = 0; j < d; j++) {
      err[j] = h * (E1 * k1[j] + E2 * k2[j] + E3 * k3[j] + E4 * k4[j]);
    }
  }

  protected prepareDense(): void {
    // The Hermite cubic needs nothing beyond y, yNew and the end-point slopes.
  }

  /** Cubic Hermite through (y, k1) at s = 0 and (yNew, k4) at s = 1: 3rd-order, like the step. */
  protected interpolate(s: number, h: number, out: Float64Array, offset: number): void {
    const { dim: d, y, yNew, k } = this;
    const k1 = k[0],
      k4 = k[3];
    const s2 = s * s;
    const s3 = s2 * s;
    const h00 = 2 * s3 - 3 * s2 + 1;
    const h10 = s3 - 2 * s2 + s;
    const h01 = -2 * s3 + 3 * s2;
    const h11 = s3 - s2;
    for (let j = 0; j < d; j++) {
      out[offset + j] = h00 * y[j] + h10 * h * k1[j] + h01 * yNew[j] + h11 * h * k4[j];
    }
  }
}
