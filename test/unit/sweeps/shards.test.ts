// How the pipeline cuts large work into activities (sweeps/expand.ts): a test set into one shard per
// chunk of attackBatchSize points, a set of blocks into at most MAX_BLOCK_ACTIVITIES runs of
// consecutive blocks, so that a pipeline's history stays far below Temporal's 50,000 events.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_BLOCK_ACTIVITIES, blockRanges, evaluationShardCount } from '../../../sweeps/expand.js';

describe('shards and block runs', () => {
  test('one evaluation shard per chunk of attackBatchSize test points, at least one', () => {
    assert.equal(evaluationShardCount({ nTest: 1000, attackBatchSize: 1000 }), 1);
    assert.equal(evaluationShardCount({ nTest: 1001, attackBatchSize: 1000 }), 2);
    assert.equal(evaluationShardCount({ nTest: 10_000, attackBatchSize: 1000 }), 10);
    assert.equal(evaluationShardCount({ nTest: 20, attackBatchSize: 1000 }), 1);
  });

  test('a block per activity up to the cap, then runs of consecutive blocks covering every one once', () => {
    assert.deepEqual(blockRanges(3), [
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
    assert.equal(blockRanges(MAX_BLOCK_ACTIVITIES).length, MAX_BLOCK_ACTIVITIES);
    for (const blocks of [MAX_BLOCK_ACTIVITIES + 1, 1_000, 18_751]) {
      const runs = blockRanges(blocks);
      assert.ok(runs.length <= MAX_BLOCK_ACTIVITIES, `${blocks}: ${runs.length} activities`);
      assert.equal(runs[0]![0], 0);
      assert.equal(runs[runs.length - 1]![1], blocks - 1);
      for (let i = 1; i < runs.length; i++) assert.equal(runs[i]![0], runs[i - 1]![1] + 1);
    }
  });
});
