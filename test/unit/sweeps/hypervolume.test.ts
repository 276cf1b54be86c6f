import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  boundsOf,
  frontIndices,
  hypervolume2d,
  hypervolumeByRound,
  hypervolumeStalled,
  normalizedHypervolume,
} from '../../../sweeps/hypervolume.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

describe('hypervolume2d', () => {
  test('one point: the rectangle up to the reference', () => {
    close(hypervolume2d([{ x: 1, y: 2 }], { x: 4, y: 5 }), 3 * 3);
  });

  test('a staircase: the union of the rectangles, counted once', () => {
    // Rectangles [1,4]x[3,5], [2,4]x[2,5], [3,4]x[1,5]: areas of the slabs 2*3 + ... by hand:
    // union = 3*2 (y in [3,5]) + 2*1 (y in [2,3]) + 1*1 (y in [1,2]) = 9.
    const pts = [
      { x: 3, y: 1 },
      { x: 1, y: 3 },
      { x: 2, y: 2 },
    ];
    close(hypervolume2d(pts, { x: 4, y: 5 }), 9);
  });

  test('dominated points, duplicates and points past the reference add nothing', () => {
    const front = [
      { x: 1, y: 3 },
      { x: 3, y: 1 },
    ];
    const base = hypervolume2d(front, { x: 4, y: 4 });
    close(base, 3 * 1 + 1 * 2); // y in [3,4]: x from 1; y in [1,3]: x from 3
    const more = [...front, { x: 2, y: 3.5 }, { x: 1, y: 3 }, { x: 5, y: 0 }, { x: 0, y: 9 }];
    close(hypervolume2d(more, { x: 4, y: 4 }), base);
  });

  test('non-finite points are ignored and an empty set has none', () => {
    close(hypervolume2d([{ x: NaN, y: 0 }], { x: 1, y: 1 }), 0);
    close(hypervolume2d([], { x: 1, y: 1 }), 0);
  });

  test('the front is the non-dominated points by increasing x, one of each duplicate', () => {
    const pts = [
      { x: 2, y: 2 },
      { x: 1, y: 3 },
      { x: 2, y: 2 },
      { x: 3, y: 3 },
      { x: 3, y: 1 },
    ];
    assert.deepEqual(frontIndices(pts), [1, 0, 4]);
  });
});

describe('normalized hypervolume', () => {
  test('the bounds of a set map it to the unit square; its extremes give 1.1^2 - the rest', () => {
    const pts = [
      { x: 10, y: 0 },
      { x: 20, y: -5 },
    ];
    const b = boundsOf(pts)!;
    assert.deepEqual(b, { x0: 10, x1: 20, y0: -5, y1: 0 });
    // Normalized: (0, 1) and (1, 0) against (1.1, 1.1): 1.1*0.1 + 0.1*1.0 = 0.21.
    close(normalizedHypervolume(pts, b), 0.21);
  });

  test('by round: bounds of the first round, cumulative sets, non-decreasing', () => {
    const pts = [
      { round: 1, x: 0, y: 1 },
      { round: 1, x: 1, y: 0 },
      { round: 2, x: 0.5, y: 0.5 },
      { round: 3, x: 0.9, y: 0.9 },
    ];
    const hv = hypervolumeByRound(pts);
    assert.equal(hv.length, 4);
    close(hv[0]!, 0);
    close(hv[1]!, 0.21);
    close(hv[2]!, 0.21 + 0.25);
    close(hv[3]!, hv[2]!);
  });

  test('the stop rule: the gain over the last k rounds below the tolerance', () => {
    const stop = { rounds: 2, tolerance: 0.01 };
    assert.equal(hypervolumeStalled([0.5, 0.6], stop), false);
    assert.equal(hypervolumeStalled([0.5, 0.6, 0.605], stop), false);
    assert.equal(hypervolumeStalled([0.5, 0.6, 0.605, 0.609], stop), true);
  });
});
