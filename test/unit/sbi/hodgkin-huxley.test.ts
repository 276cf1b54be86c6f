import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../../sbi/rng.js';
import { Bosh3 } from '../../../sbi/tasks/bosh3.js';
import {
  HH_PRIOR_HIGH,
  HH_PRIOR_LOW,
  HH_V0,
  hhSteadyGates,
  hodgkinHuxley,
  hodgkinHuxleyRhs,
} from '../../../sbi/tasks/hodgkin_huxley.js';
import { Dopri5, linspace, type OdeRhs } from '../../../sbi/tasks/ode.js';

const oscillator: OdeRhs = (_t, y, dy, p) => {
  dy[0] = y[1];
  dy[1] = -p[0] * p[0] * y[0];
};

function oscillatorError(tol: number, nGrid: number): { err: number; steps: number } {
  const w = 1.7;
  const grid = linspace(0, 20, nGrid);
  const out = new Float64Array(2 * nGrid);
  const res = new Bosh3(2).solve(oscillator, Float64Array.of(w), [1, 0], grid, out, {
    atol: tol,
    rtol: tol,
  });
  assert.equal(res.status, 'ok');
  let err = 0;
  for (let i = 0; i < nGrid; i++) err = Math.max(err, Math.abs(out[2 * i] - Math.cos(w * grid[i])));
  return { err, steps: res.steps };
}

describe('Bosh3 (Bogacki-Shampine 3(2))', () => {
  test('exponential decay matches exp(-k t) on the grid', () => {
    const grid = linspace(0, 5, 21);
    const out = new Float64Array(21);
    const decay: OdeRhs = (_t, y, dy, p) => {
      dy[0] = -p[0] * y[0];
    };
    const res = new Bosh3(1).solve(decay, Float64Array.of(1.3), [2], grid, out, {
      atol: 1e-9,
      rtol: 1e-9,
    });
    assert.equal(res.status, 'ok');
    for (let i = 0; i < 21; i++) assert.ok(Math.abs(out[i] - 2 * Math.exp(-1.3 * grid[i])) < 1e-7);
  });

  test('error falls with the tolerance and the step count follows the 3rd-order law', () => {
    const loose = oscillatorError(1e-5, 50);
    const tight = oscillatorError(1e-8, 50);
    assert.ok(tight.err < loose.err / 100, `${tight.err} vs ${loose.err}`);
    assert.ok(tight.err < 1e-5);
    // steps ~ tol^(-1/3): 1000x tighter is ~10x the steps.
    const ratio = tight.steps / loose.steps;
    assert.ok(ratio > 6 && ratio < 15, `step ratio ${ratio}`);
  });

  test('dense output (grid much finer than the steps) is as accurate as the steps', () => {
    assert.ok(oscillatorError(1e-8, 4001).err < 2e-5);
  });
});

/** V at which the steady-state current balance (gates at their V-steady state, no input) is zero. */
function restingPotential(theta: number[]): number {
  const dy = new Float64Array(5);
  const p = Float64Array.from([...theta, 0]);
  const f = (v: number): number => {
    hodgkinHuxleyRhs(0, Float64Array.from([v, ...hhSteadyGates(v)]), dy, p);
    return dy[0];
  };
  let lo = -100;
  let hi = -60;
  assert.ok(f(lo) > 0 && f(hi) < 0);
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) > 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

const TYPICAL = [50, 1.5, 0.07, 1, -70, 53, -107];

describe('hodgkin_huxley', () => {
  test('without the step current the neuron relaxes monotonically towards its resting potential', () => {
    const task = hodgkinHuxley();
    task.current = 0;
    const vRest = restingPotential(TYPICAL);
    assert.ok(Math.abs(vRest - HH_V0) < 5, `resting potential ${vRest}`);
    assert.ok(task.solveRow(TYPICAL, 0));
    const v = (i: number): number => task.trajectory[5 * i];
    assert.equal(v(0), HH_V0);
    const d0 = Math.abs(HH_V0 - vRest);
    for (let i = 1; i < 200; i++) {
      // Never farther from rest than at the start (small solver slack), and no spike.
      assert.ok(Math.abs(v(i) - vRest) <= d0 + 0.05, `t index ${i}: V ${v(i)}, rest ${vRest}`);
    }
    assert.ok(Math.abs(v(199) - vRest) < d0, 'V did not move towards rest');
  });

  test('under the step current a typical neuron spikes, only while the current is on', () => {
    const task = hodgkinHuxley();
    assert.ok(task.solveRow(TYPICAL, 0));
    const t = task.times;
    let spikes = 0;
    for (let i = 1; i < 200; i++) {
      const v0 = task.trajectory[5 * (i - 1)];
      const v1 = task.trajectory[5 * i];
      if (v0 < 0 && v1 >= 0) {
        spikes++;
        assert.ok(t[i] > 10 && t[i] < 52, `spike at t = ${t[i]}`);
      }
      if (t[i] < 10) assert.ok(Math.abs(v1 - HH_V0) < 1, `V moved before the current: ${v1}`);
    }
    assert.ok(spikes >= 2, `${spikes} spikes`);
  });

  test('V stays in [min(E_K, E_leak), E_Na] (the invariant region) and gates in [0, 1] for prior draws', () => {
    const task = hodgkinHuxley();
    const n = 40;
    const theta = task.prior.sample(n, createRng(3));
    let spiking = 0;
    for (let r = 0; r < n; r++) {
      const row = Array.from(theta.subarray(7 * r, 7 * r + 7));
      assert.ok(task.solveRow(row, 0));
      const lo = Math.min(row[6], row[4]);
      const hi = row[5];
      let vmax = -Infinity;
      for (let i = 0; i < 200; i++) {
        const v = task.trajectory[5 * i];
        vmax = Math.max(vmax, v);
        assert.ok(v >= lo - 0.5 && v <= hi + 0.5, `row ${r}: V ${v} outside [${lo}, ${hi}]`);
        for (let g = 1; g < 5; g++) {
          const x = task.trajectory[5 * i + g];
          // Slack for the solver's rtol 1e-3: the fast m gate may overshoot 1 by that much.
          assert.ok(x >= -5e-3 && x <= 1 + 5e-3, `gate ${g} = ${x}`);
        }
      }
      if (vmax > 0) spiking++;
    }
    // The bound is not met trivially by silent neurons: draws do spike towards E_Na.
    assert.ok(spiking > n / 2, `${spiking} of ${n} spiking`);
  });

  test('at tight tolerances Bosh3 and Dopri5 agree on the spiking HH trajectory (cross-check of rhs and solver)', () => {
    const task = hodgkinHuxley();
    const p = Float64Array.from([...TYPICAL, task.current]);
    const y0 = [HH_V0, ...hhSteadyGates(HH_V0)];
    const a = new Float64Array(1000);
    const b = new Float64Array(1000);
    new Dopri5(5).solve(hodgkinHuxleyRhs, p, y0, task.times, a, { atol: 1e-10, rtol: 1e-10 });
    const res = new Bosh3(5).solve(hodgkinHuxleyRhs, p, y0, task.times, b, {
      atol: 1e-9,
      rtol: 1e-8,
    });
    assert.equal(res.status, 'ok');
    let err = 0;
    for (let i = 0; i < 200; i++) err = Math.max(err, Math.abs(a[5 * i] - b[5 * i]));
    assert.ok(err < 0.05, `max |dV| ${err} mV`);
  });

  test('x is the trajectory plus N(0, 0.5^2) noise, deterministic under a seed', () => {
    const task = hodgkinHuxley();
    const theta = Float32Array.from([...TYPICAL, ...TYPICAL]);
    const x = task.simulate(theta, 2, createRng(11));
    assert.deepEqual(x, hodgkinHuxley().simulate(theta, 2, createRng(11)));
    assert.ok(task.solveRow(theta, 0));
    let s = 0;
    let ss = 0;
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < 200; i++) {
        const e = x[200 * r + i] - task.trajectory[5 * i];
        s += e;
        ss += e * e;
      }
    }
    const sd = Math.sqrt(ss / 400 - (s / 400) ** 2);
    assert.ok(Math.abs(s / 400) < 0.1, `noise mean ${s / 400}`);
    assert.ok(sd > 0.42 && sd < 0.58, `noise sd ${sd}`);
  });

  test('the prior is RABI box: draws inside, density -Infinity outside, constant inside', () => {
    const task = hodgkinHuxley();
    assert.deepEqual(task.prior.support.lower, [...HH_PRIOR_LOW]);
    assert.deepEqual(task.prior.support.upper, [...HH_PRIOR_HIGH]);
    const theta = task.prior.sample(500, createRng(5));
    const lp = task.prior.logProb(theta, 500);
    const vol = HH_PRIOR_LOW.reduce((a, l, j) => a + Math.log(HH_PRIOR_HIGH[j] - l), 0);
    for (let i = 0; i < 500; i++) assert.ok(Math.abs(lp[i] + vol) < 1e-9);
    const out = Float32Array.from(TYPICAL);
    out[1] = 5.5;
    assert.equal(task.prior.logProb(out, 1)[0], -Infinity);
  });
});
