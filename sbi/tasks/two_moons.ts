// sbibm's two_moons (sbibm/tasks/two_moons/task.py): theta ~ U(-1, 1)^2,
//   a ~ U(-pi/2, pi/2), r ~ N(0.1, 0.01^2), p = (r cos a + 0.25, r sin a),
//   x = p + (-|z0|, z1) with z = R(-pi/4) theta, i.e. z0 = (theta1 + theta2)/sqrt2, z1 = (theta2 - theta1)/sqrt2.
import type { RandomStream, Task } from '../types.js';
import { BoxUniformPrior, indexedNames } from './priors.js';

const A_LOW = -Math.PI / 2;
const A_HIGH = Math.PI / 2;
const BASE_OFFSET = 0.25;
const R_LOC = 0.1;
const R_SCALE = 0.01;
const SQRT1_2 = Math.SQRT1_2;

export class TwoMoonsTask implements Task {
  readonly name = 'two_moons';
  readonly thetaDim = 2;
  readonly xDim = 2;
  readonly paramNames = indexedNames('theta', 2);
  readonly prior = new BoxUniformPrior([-1, -1], [1, 1]);

  /** The noise-free shift g(theta) = (-|z0|, z1) that the simulator adds to the crescent point p. */
  static shift(t0: number, t1: number, out: Float64Array): void {
    out[0] = -Math.abs((t0 + t1) * SQRT1_2);
    out[1] = (t1 - t0) * SQRT1_2;
  }

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const out = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      const a = A_LOW + (A_HIGH - A_LOW) * rng.uniform();
      const r = R_LOC + R_SCALE * rng.normal();
      const t0 = theta[2 * i];
      const t1 = theta[2 * i + 1];
      out[2 * i] = r * Math.cos(a) + BASE_OFFSET - Math.abs((t0 + t1) * SQRT1_2);
      out[2 * i + 1] = r * Math.sin(a) + (t1 - t0) * SQRT1_2;
    }
    return out;
  }

  /**
   * The exact log-likelihood log p(xo | theta): p = xo - g(theta) must lie right of the offset
   * (u = p0 - 0.25 >= 0), and its density is N(|p - (0.25, 0)|; 0.1, 0.01^2) / (pi r), the polar
   * Jacobian included. (sbibm's `_likelihood` leaves out the 1/(pi r) factor.)
   */
  logLikelihood(theta: Float32Array, n: number, xo: Float32Array): Float64Array {
    const out = new Float64Array(n);
    const logNorm = -0.5 * Math.log(2 * Math.PI * R_SCALE * R_SCALE) - Math.log(Math.PI);
    for (let i = 0; i < n; i++) {
      const t0 = theta[2 * i];
      const t1 = theta[2 * i + 1];
      const u = xo[0] + Math.abs((t0 + t1) * SQRT1_2) - BASE_OFFSET;
      const v = xo[1] - (t1 - t0) * SQRT1_2;
      if (u < 0) {
        out[i] = -Infinity;
        continue;
      }
      const r = Math.sqrt(u * u + v * v);
      const e = (r - R_LOC) / R_SCALE;
      out[i] = logNorm - 0.5 * e * e - Math.log(r);
    }
    return out;
  }

  /**
   * Exact posterior samples by inverting the simulator, as sbibm does: draw the crescent point p
   * from its noise distribution, solve xo = p + g(theta) for theta (z0 = +-(p0 - xo0), each branch
   * with probability 1/2, z1 = xo1 - p1, theta = R(pi/4) z), and keep draws inside the prior box.
   * One correction to sbibm: a draw with p0 < xo0 has no preimage (|z0| would be negative) and is
   * rejected; sbibm keeps it, which matters only for xo0 near the crescent.
   */
  referencePosterior(xo: Float32Array, n: number, rng: RandomStream): Float32Array {
    const out = new Float32Array(n * 2);
    const maxTries = Math.max(1e6, 1e4 * n);
    let kept = 0;
    let tries = 0;
    while (kept < n) {
      if (++tries > maxTries) {
        throw new Error(
          `two_moons: reference sampler accepted ${kept} of ${tries - 1} draws; xo=[${xo[0]}, ${xo[1]}] is outside the model's range`,
        );
      }
      const a = A_LOW + (A_HIGH - A_LOW) * rng.uniform();
      const r = R_LOC + R_SCALE * rng.normal();
      const flip = rng.uniform() < 0.5;
      const p0 = r * Math.cos(a) + BASE_OFFSET;
      const p1 = r * Math.sin(a);
      let q0 = p0 - xo[0];
      if (q0 < 0) continue;
      if (flip) q0 = -q0;
      const q1 = xo[1] - p1;
      const t0 = (q0 - q1) * SQRT1_2;
      const t1 = (q0 + q1) * SQRT1_2;
      if (t0 < -1 || t0 > 1 || t1 < -1 || t1 > 1) continue;
      out[2 * kept] = t0;
      out[2 * kept + 1] = t1;
      kept++;
    }
    return out;
  }
}

export function twoMoons(): TwoMoonsTask {
  return new TwoMoonsTask();
}
