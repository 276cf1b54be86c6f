// The candidate race's readings: stops under sbi's rule, the winner's largest deficit, the margin
// drop, on curves small enough to follow by hand.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  firstStop,
  largestDeficit,
  marginDrop,
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

  test('marginDrop names the first epoch the loser trails by more than the margin', () => {
    const winner = [5, 4, 2, 1];
    const loser = [3, 3, 3];
    assert.equal(marginDrop(winner, loser, 0.5, 0), 3);
    assert.equal(marginDrop(winner, loser, 1.5, 0), 4);
    assert.equal(marginDrop(winner, loser, 2, 0), undefined);
  });
});
