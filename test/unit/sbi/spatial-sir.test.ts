import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../../sbi/rng.js';
import { SpatialSirTask, spatialSir, spatialSirStep } from '../../../sbi/tasks/spatial_sir.js';

const N = 9;
const zeros = new Float64Array(N * N);
/** Uniforms just under 1: every rule "rate > U" fails unless the rate reaches 1. */
const nearOne = new Float64Array(N * N).fill(1 - 1e-12);

function grid(cells: number[]): Uint8Array {
  const g = new Uint8Array(N * N);
  for (const k of cells) g[k] = 1;
  return g;
}

describe('spatialSirStep', () => {
  test('beta = 8 infects exactly the 3x3 block around each infected cell per step (zero-padded edges)', () => {
    const inf = grid([4 * N + 4]);
    const rec = new Uint8Array(N * N);
    const next = new Uint8Array(N * N);
    for (let step = 1; step <= 5; step++) {
      const count = spatialSirStep(inf, rec, 8, 0, nearOne, zeros, N, next);
      // (2 step + 1)^2 square around the centre, clipped to the 9 x 9 grid.
      const side = Math.min(2 * step + 1, N);
      assert.equal(count, side * side, `step ${step}`);
      for (let r = 0; r < N; r++) {
        for (let c = 0; c < N; c++) {
          const inside = Math.abs(r - 4) <= step && Math.abs(c - 4) <= step;
          assert.equal(inf[r * N + c], inside ? 1 : 0);
        }
      }
    }
    assert.ok(rec.every((v) => v === 0));
  });

  test('infection needs count * beta / 8 > U: one neighbour at beta 4 infects where U < 0.5 only', () => {
    const inf = grid([0]);
    const rec = new Uint8Array(N * N);
    const u = new Float64Array(N * N).fill(0.6);
    u[1] = 0.4; // right neighbour
    spatialSirStep(inf, rec, 4, 0, u, zeros, N, new Uint8Array(N * N));
    assert.deepEqual(
      [...inf].map((v, k) => (v ? k : -1)).filter((k) => k >= 0),
      [0, 1],
    );
  });

  test('a recovering cell stays infected for the step it recovers in, then leaves (RABI update order)', () => {
    const inf = grid([40]);
    const rec = new Uint8Array(N * N);
    const next = new Uint8Array(N * N);
    // gamma = 1 > U always; beta = 0: no spread.
    assert.equal(spatialSirStep(inf, rec, 0, 1, zeros, zeros, N, next), 1);
    assert.equal(inf[40], 1);
    assert.equal(rec[40], 1);
    assert.equal(spatialSirStep(inf, rec, 0, 1, zeros, zeros, N, next), 0);
    assert.equal(inf[40], 0);
    assert.equal(rec[40], 1);
    // A recovered cell is never reinfected, whatever its neighbours.
    const inf2 = grid([39, 41]);
    spatialSirStep(inf2, rec, 8, 0, zeros, nearOne, N, next);
    assert.equal(inf2[40], 0);
  });
});

function meanInfected(beta: number, gamma: number, rows: number, seed: number): number {
  const task = new SpatialSirTask();
  const rng = createRng(seed);
  let s = 0;
  for (let r = 0; r < rows; r++) {
    task.runEpidemic(beta, gamma, rng.fork(r));
    for (const v of task.infected) s += v;
  }
  return s / rows / task.xDim;
}

describe('spatial_sir', () => {
  test('initial infections are Bernoulli(4/900) per cell', () => {
    const task = new SpatialSirTask(30, 0);
    const rng = createRng(2);
    const rows = 300;
    let s = 0;
    for (let r = 0; r < rows; r++) {
      task.runEpidemic(1, 1, rng.fork(r));
      for (const v of task.infected) s += v;
    }
    // Mean 1200, sd ~ 34.6: 5 sd.
    assert.ok(Math.abs(s - 4 * rows) < 5 * Math.sqrt(4 * rows), `${s} initial infections`);
  });

  test('higher beta spreads more, higher gamma leaves fewer infected at T', () => {
    const low = meanInfected(0.5, 0.3, 60, 1);
    const high = meanInfected(2.5, 0.3, 60, 1);
    assert.ok(high > 2 * low, `beta 2.5: ${high}, beta 0.5: ${low}`);
    const slowRecovery = meanInfected(2, 0.2, 60, 4);
    const fastRecovery = meanInfected(2, 2, 60, 4);
    assert.ok(fastRecovery < slowRecovery / 2, `${fastRecovery} vs ${slowRecovery}`);
  });

  test('x lies in [0, 1] and separates infected from healthy cells as the Beta test does', () => {
    const task = spatialSir();
    const n = 20;
    const theta = new Float32Array(2 * n).fill(2);
    for (let r = 0; r < n; r++) theta[2 * r + 1] = 0.3;
    const rng = createRng(9);
    const x = task.simulate(theta, n, rng);
    assert.ok(x.every((v) => v >= 0 && v <= 1));
    // Re-run each row's epidemic on the same fork to know which cells were infected.
    const batch = createRng(9).fork(`batch-${createRng(9).int(2 ** 30)}`);
    let sInf = 0;
    let nInf = 0;
    let sOk = 0;
    let nOk = 0;
    for (let r = 0; r < n; r++) {
      task.runEpidemic(2, 0.3, batch.fork(r));
      for (let k = 0; k < 900; k++) {
        if (task.infected[k]) {
          sInf += x[900 * r + k];
          nInf++;
        } else {
          sOk += x[900 * r + k];
          nOk++;
        }
      }
    }
    assert.ok(nInf > 100 && nOk > 100);
    // Beta(1.05, 0.05) has mean 0.9545; Beta(0.05, 1.05) has mean 0.0455.
    assert.ok(Math.abs(sInf / nInf - 1.05 / 1.1) < 0.02, `infected mean ${sInf / nInf}`);
    assert.ok(Math.abs(sOk / nOk - 0.05 / 1.1) < 0.01, `healthy mean ${sOk / nOk}`);
  });

  test('deterministic under a seed, row-independent, prior LogNormal(0, 0.5)', () => {
    const task = spatialSir();
    const theta = task.prior.sample(6, createRng(1));
    const x = task.simulate(theta, 6, createRng(3));
    assert.deepEqual(x, spatialSir().simulate(theta, 6, createRng(3)));
    // Row 0 alone draws what it drew in the batch; a second call on the same stream draws anew.
    assert.deepEqual(task.simulate(theta.subarray(0, 2), 1, createRng(3)), x.subarray(0, 900));
    const r3 = createRng(3);
    const first = task.simulate(theta, 2, r3);
    const second = task.simulate(theta, 2, r3);
    assert.notDeepEqual(first, second);
    const big = task.prior.sample(20000, createRng(8));
    let s = 0;
    let ss = 0;
    for (const v of big) {
      assert.ok(v > 0);
      s += Math.log(v);
      ss += Math.log(v) ** 2;
    }
    const m = s / big.length;
    assert.ok(Math.abs(m) < 0.02, `mean log ${m}`);
    assert.ok(Math.abs(Math.sqrt(ss / big.length - m * m) - 0.5) < 0.02);
    // logProb at theta = (1, 1): two N(0, 0.5) densities at 0 times the 1/theta Jacobian 1.
    const lp = task.prior.logProb(Float32Array.of(1, 1), 1)[0];
    assert.ok(Math.abs(lp - 2 * -Math.log(0.5 * Math.sqrt(2 * Math.PI))) < 1e-12);
    assert.equal(task.prior.logProb(Float32Array.of(-1, 1), 1)[0], -Infinity);
  });
});
