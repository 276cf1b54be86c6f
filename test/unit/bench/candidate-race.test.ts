// The candidate race's readings: stops under sbi's rule, the winner's largest deficit, the margin
// drop, on curves small enough to follow by hand.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  firstStop,
  largestDeficit,
  marginRace,
  runningBest,
} from '../../../bench/candidate-race.js';

describe('candidate race', () => {
  test('runningBest carries the lowest loss so far, past the curve and over NaN', () => {
    assert.deepEqual(runningBest([3, 2, NaN, 2.5, 1], 6), [3, 2, 2, 2, 1, 1]);
    assert.deepEqual(runningBest([NaN, 4]), [Infinity, 4]);
  });

  test('firstStop stops once more than `patience` epochs in a row fail to improve', () => {
    // Best 1 at epoch 2; epochs 3 to 5 do not improve: patience 2 stops at epoch 5, patience 3 never.
    const val = [2, 1, 1.5, 1.2, 1.1, 0.5];
    assert.deepEqual(firstStop(val, 2), { epoch: 5, best: 1 });
    assert.deepEqual(firstStop(val, 3), { epoch: 6, best: 0.5 });
    // An improvement resets the counter (sbi's rule), so two short plateaus never stop patience 2.
    assert.deepEqual(firstStop([5, 6, 7, 4, 6, 7, 3], 2), { epoch: 7, best: 3 });
  });

  test('largestDeficit is how far the eventual winner trailed, from the given epoch on', () => {
    const winner = [5, 4, 2, 1];
    const loser = [3, 3, 3];
    // Running bests: winner 5, 4, 2, 1; loser 3, 3, 3, 3: deficits 2, 1, -1, -2.
    assert.equal(largestDeficit(winner, loser, 0), 2);
    assert.equal(largestDeficit(winner, loser, 1), 1);
    assert.equal(largestDeficit(winner, loser, 2), -1);
  });

  test('marginRace ends at the first gap wider than the margin and drops the one behind', () => {
    const a = [5, 4, 2, 1];
    const b = [3, 3, 3];
    // Running bests: a 5, 4, 2, 1; b 3, 3, 3, 3: gaps a - b = 2, 1, -1, -2.
    assert.deepEqual(marginRace(a, b, 0.5, 0), { epoch: 1, dropped: 0 });
    // From epoch 3 on: a leads by 1 there, so b is dropped, though a trailed earlier.
    assert.deepEqual(marginRace(a, b, 0.5, 2), { epoch: 3, dropped: 1 });
    assert.deepEqual(marginRace(a, b, 1.5, 1), { epoch: 4, dropped: 1 });
    assert.equal(marginRace(a, b, 2, 0), undefined);
  });
});
