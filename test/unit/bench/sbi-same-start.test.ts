// The pure pieces of bench/sbi-same-start.ts: sbi's split as trainNPE's validationRows: 'last'
// takes it, and the paired difference the bench reports.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pairedDifference, rowsWithValidationLast } from '../../../bench/sbi-same-start.js';

describe('sbi-same-start', () => {
  const data = {
    theta: Float32Array.from([0, 0, 1, 10, 2, 20, 3, 30]),
    x: Float32Array.from([100, 101, 102, 103]),
    n: 4,
    dropped: 0,
  };

  test("sbi's training rows come first, its validation rows last, each row whole", () => {
    const r = rowsWithValidationLast(data, 2, 1, [3, 0, 2], [1]);
    assert.deepEqual(Array.from(r.theta), [3, 30, 0, 0, 2, 20, 1, 10]);
    assert.deepEqual(Array.from(r.x), [103, 100, 102, 101]);
    assert.equal(r.n, 4);
  });

  test('a split that misses or repeats a row is refused', () => {
    assert.throws(() => rowsWithValidationLast(data, 2, 1, [3, 0, 2], [2]), /once each/);
    assert.throws(() => rowsWithValidationLast(data, 2, 1, [3, 0], [1]), /once each/);
    assert.throws(() => rowsWithValidationLast(data, 2, 1, [3, 0, 4], [1]), /once each/);
  });

  test('paired difference: mean, sample sd and t of a - b', () => {
    const p = pairedDifference([1, 2, 3, 6], [0, 0, 0, 2]);
    // differences 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), t = 2.5 / (sd / 2)
    assert.equal(p.n, 4);
    assert.ok(Math.abs(p.mean - 2.5) < 1e-12);
    assert.ok(Math.abs(p.sd - Math.sqrt(5 / 3)) < 1e-12);
    assert.ok(Math.abs(p.t - 2.5 / (Math.sqrt(5 / 3) / 2)) < 1e-12);
    assert.throws(() => pairedDifference([1], [1]), /2 or more/);
    assert.throws(() => pairedDifference([1, 2], [1]), /equal lists/);
  });
});
