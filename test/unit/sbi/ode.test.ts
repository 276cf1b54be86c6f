import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Dopri5, eulerFixed, linspace, type OdeRhs } from '../../../sbi/tasks/ode.js';

const decay: OdeRhs = (_t, y, dy, p) => {
  dy[0] = -p[0] * y[0];
};
// y'' = -w^2 y as (y, v).
const oscillator: OdeRhs = (_t, y, dy, p) => {
  dy[0] = y[1];
  dy[1] = -p[0] * p[0] * y[0];
};
const blowUp: OdeRhs = (_t, y, dy) => {
  dy[0] = y[0] * y[0];
};

function oscillatorMaxError(tol: number, nGrid: number, tEnd = 20): number {
  const w = 1.7;
  const solver = new Dopri5(2);
  const grid = linspace(0, tEnd, nGrid);
  const out = new Float64Array(nGrid * 2);
  const res = solver.solve(oscillator, Float64Array.of(w), [1, 0], grid, out, {
    atol: tol,
    rtol: tol,
  });
  assert.equal(res.status, 'ok');
  let maxErr = 0;
  for (let i = 0; i < nGrid; i++) {
    maxErr = Math.max(maxErr, Math.abs(out[2 * i] - Math.cos(w * grid[i])));
    maxErr = Math.max(maxErr, Math.abs(out[2 * i + 1] + w * Math.sin(w * grid[i])));
  }
  return maxErr;
}

describe('Dopri5', () => {
  test('exponential decay matches exp(-k t) at every grid time', () => {
    const solver = new Dopri5(1);
    const grid = linspace(0, 5, 21);
    const out = new Float64Array(21);
    const res = solver.solve(decay, Float64Array.of(1.3), [2], grid, out, {
      atol: 1e-10,
      rtol: 1e-10,
    });
    assert.equal(res.status, 'ok');
    assert.equal(out[0], 2);
    for (let i = 0; i < grid.length; i++) {
      assert.ok(Math.abs(out[i] - 2 * Math.exp(-1.3 * grid[i])) < 1e-9, `t=${grid[i]}: ${out[i]}`);
    }
  });

  test('harmonic oscillator over 5 periods stays within tolerance', () => {
    assert.ok(oscillatorMaxError(1e-10, 50) < 1e-8);
  });

  test('dense output between steps is accurate (grid much finer than steps)', () => {
    // 2001 grid points, steps of order 0.1: nearly every point is interpolated.
    assert.ok(oscillatorMaxError(1e-10, 2001) < 1e-8);
    // At tolerance 1e-6 the global error over 5 periods is ~2e-5 on the grid; interpolation must not add to it.
    assert.ok(oscillatorMaxError(1e-6, 2001) < 5e-5);
  });

  test('global error shrinks with the tolerance', () => {
    const e4 = oscillatorMaxError(1e-4, 50);
    const e7 = oscillatorMaxError(1e-7, 50);
    const e10 = oscillatorMaxError(1e-10, 50);
    assert.ok(e4 > e7 && e7 > e10, `${e4} ${e7} ${e10}`);
    // Three decades of tolerance buy at least two decades of error.
    assert.ok(e4 / e7 > 100 && e7 / e10 > 100, `${e4} ${e7} ${e10}`);
    assert.ok(e4 < 1e-2);
  });

  test('fewer steps at looser tolerance, with the 5th-order step-count law', () => {
    const solver = new Dopri5(2);
    const grid = linspace(0, 20, 2);
    const out = new Float64Array(4);
    const loose = solver.solve(oscillator, Float64Array.of(1), [1, 0], grid, out, {
      atol: 1e-5,
      rtol: 1e-5,
    });
    const tight = solver.solve(oscillator, Float64Array.of(1), [1, 0], grid, out, {
      atol: 1e-10,
      rtol: 1e-10,
    });
    // steps ~ tol^(-1/5): 5 decades => factor 10.
    const ratio = tight.steps / loose.steps;
    assert.ok(ratio > 6 && ratio < 16, `ratio ${ratio}`);
  });

  test('a solver object is reusable across rows (no state leaks between solves)', () => {
    const solver = new Dopri5(1);
    const grid = linspace(0, 3, 7);
    const a = new Float64Array(7);
    const b = new Float64Array(7);
    const opts = { atol: 1e-8, rtol: 1e-8 };
    solver.solve(decay, Float64Array.of(0.5), [1], grid, a, opts);
    solver.solve(decay, Float64Array.of(5), [3], grid, b, opts);
    const c = new Float64Array(7);
    solver.solve(decay, Float64Array.of(0.5), [1], grid, c, opts);
    assert.deepEqual(a, c);
  });

  test('a finite-time blow-up fails instead of returning garbage', () => {
    const solver = new Dopri5(1);
    const out = new Float64Array(3);
    const res = solver.solve(blowUp, new Float64Array(0), [1], [0, 0.5, 2], out, {
      atol: 1e-6,
      rtol: 1e-6,
    });
    assert.notEqual(res.status, 'ok');
    // y(0.5) = 1 / (1 - 0.5) = 2 was reached before the singularity at t = 1.
    assert.ok(Math.abs(out[1] - 2) < 1e-5);
  });

  test('maxSteps bounds the work', () => {
    const solver = new Dopri5(2);
    const out = new Float64Array(4);
    const res = solver.solve(oscillator, Float64Array.of(1), [1, 0], [0, 100], out, {
      atol: 1e-10,
      rtol: 1e-10,
      maxSteps: 10,
    });
    assert.equal(res.status, 'max_steps');
    assert.equal(res.steps + res.rejected, 10);
  });
});

describe('eulerFixed', () => {
  const work = () => ({
    y: new Float64Array(1),
    yNext: new Float64Array(1),
    dy: new Float64Array(1),
  });

  test('first-order convergence on exponential decay', () => {
    const grid = linspace(0, 2, 9);
    const err = (step: number): number => {
      const out = new Float64Array(9);
      assert.ok(eulerFixed(decay, Float64Array.of(1), [1], grid, step, out, work()));
      let m = 0;
      for (let i = 0; i < 9; i++) m = Math.max(m, Math.abs(out[i] - Math.exp(-grid[i])));
      return m;
    };
    const e1 = err(1e-2);
    const e2 = err(5e-3);
    assert.ok(e1 < 1e-2 && e1 > 1e-4, `${e1}`);
    assert.ok(Math.abs(e1 / e2 - 2) < 0.1, `${e1 / e2}`);
  });

  test('reports non-finite values', () => {
    const out = new Float64Array(2);
    assert.equal(eulerFixed(blowUp, new Float64Array(0), [1], [0, 5], 1e-2, out, work()), false);
  });
});
