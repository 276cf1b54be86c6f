// RABI's spatial_sir (rbibm/tasks/spatial_sir.py, config/task/spatial_sir.yaml: N_grid 30, T 10).
// theta = (beta, gamma) ~ LogNormal(0, 0.5) per dimension. A stochastic epidemic on a 30 x 30 grid:
// every cell starts infected with probability 4/900; each of T steps, with fresh U ~ Uniform(0, 1)
// per cell,
//   a susceptible cell becomes infected if (infected cells in its 3x3 block, zero-padded) * beta / 8 > U;
//   an infected cell recovers if gamma > U' (a second uniform);
//   next infected = (old infected or newly infected) and not old recovered;
//   next recovered = old recovered or recovering.
// So a cell that recovers in step t still counts as infected after step t (it leaves the infected
// set one step later), exactly as RABI's update does. The observation is an imperfect test per cell:
// x ~ Beta(inf + 0.05, 1 - inf + 0.05), row-major over the grid.
// Deviation: RABI draws one uniform grid per step and broadcasts it over its whole batch (100 rows),
// so the rows of a batch share their random numbers; here every row draws its own. In float32 a Beta
// draw can round to exactly 0 or 1, so x lies in [0, 1] (as in RABI's float32 torch).
import type { RandomStream, Task } from '../types.js';
import { LogNormalPrior } from './priors.js';

export const SPATIAL_SIR_GRID = 30;
export const SPATIAL_SIR_T = 10;
/** 1 - test accuracy 0.95. */
export const SPATIAL_SIR_TEST_ERROR = 0.05;

/**
 * One step of the grid epidemic in place. inf and rec are n x n 0/1 grids; uInf and uRec hold one
 * uniform per cell. Returns the number of infected cells after the step.
 */
export function spatialSirStep(
  inf: Uint8Array,
  rec: Uint8Array,
  beta: number,
  gamma: number,
  uInf: ArrayLike<number>,
  uRec: ArrayLike<number>,
  n: number,
  nextInf: Uint8Array,
): number {
  let count = 0;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const k = r * n + c;
      let newly = false;
      if (!inf[k] && !rec[k]) {
        let nb = 0;
        for (let dr = -1; dr <= 1; dr++) {
          const rr = r + dr;
          if (rr < 0 || rr >= n) continue;
          for (let dc = -1; dc <= 1; dc++) {
            const cc = c + dc;
            if (cc >= 0 && cc < n) nb += inf[rr * n + cc];
          }
        }
        newly = (nb * beta) / 8 > uInf[k];
      }
      const ni = (newly || inf[k] === 1) && !rec[k] ? 1 : 0;
      nextInf[k] = ni;
      count += ni;
    }
  }
  // Recovery reads the old infected grid, so it runs before inf is overwritten.
  for (let k = 0; k < n * n; k++) {
    if (inf[k] && gamma > uRec[k]) rec[k] = 1;
    inf[k] = nextInf[k];
  }
  return count;
}

export class SpatialSirTask implements Task {
  readonly name = 'spatial_sir';
  /** About 1,000 to 3,000 simulations per CPU-second (BENCHMARKS.md): a block is a minute or so. */
  readonly simulationBlock = 100_000;
  readonly thetaDim = 2;
  readonly xDim: number;
  readonly paramNames = ['beta', 'gamma'];
  readonly prior = new LogNormalPrior([0, 0], [0.5, 0.5]);
  readonly grid: number;
  readonly steps: number;
  private readonly inf: Uint8Array;
  private readonly rec: Uint8Array;
  private readonly nextInf: Uint8Array;
  private readonly uInf: Float64Array;
  private readonly uRec: Float64Array;

  constructor(grid = SPATIAL_SIR_GRID, steps = SPATIAL_SIR_T) {
    this.grid = grid;
    this.steps = steps;
    this.xDim = grid * grid;
    this.inf = new Uint8Array(this.xDim);
    this.rec = new Uint8Array(this.xDim);
    this.nextInf = new Uint8Array(this.xDim);
    this.uInf = new Float64Array(this.xDim);
    this.uRec = new Float64Array(this.xDim);
  }

  /** Runs the epidemic for one (beta, gamma); the final grids are left in `infected` / `recovered`. */
  runEpidemic(beta: number, gamma: number, rng: RandomStream): void {
    const { inf, rec, uInf, uRec } = this;
    const cells = this.xDim;
    const p0 = 4 / cells;
    let count = 0;
    rec.fill(0);
    for (let k = 0; k < cells; k++) {
      inf[k] = rng.uniform() < p0 ? 1 : 0;
      count += inf[k];
    }
    for (let t = 0; t < this.steps && count > 0; t++) {
      rng.fillUniform(uInf);
      rng.fillUniform(uRec);
      count = spatialSirStep(inf, rec, beta, gamma, uInf, uRec, this.grid, this.nextInf);
    }
  }

  get infected(): Uint8Array {
    return this.inf;
  }

  get recovered(): Uint8Array {
    return this.rec;
  }

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const xd = this.xDim;
    const out = new Float32Array(n * xd);
    const a = SPATIAL_SIR_TEST_ERROR;
    // One draw advances the caller's stream (a second call gets new numbers, as with the other
    // tasks); each row then has its own fork, so its draws do not depend on how long earlier
    // epidemics ran.
    const batch = rng.fork(`batch-${rng.int(2 ** 30)}`);
    for (let r = 0; r < n; r++) {
      const beta = theta[2 * r];
      const gamma = theta[2 * r + 1];
      const o = r * xd;
      if (!Number.isFinite(beta) || !Number.isFinite(gamma)) {
        out.fill(NaN, o, o + xd);
        continue;
      }
      const rowRng = batch.fork(r);
      this.runEpidemic(beta, gamma, rowRng);
      for (let k = 0; k < xd; k++) {
        const i = this.inf[k];
        out[o + k] = rowRng.beta(i + a, 1 - i + a);
      }
    }
    return out;
  }
}

export function spatialSir(): SpatialSirTask {
  return new SpatialSirTask();
}
