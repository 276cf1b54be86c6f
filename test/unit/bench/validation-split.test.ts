// The validation-split bench's pieces: its curve sampling, and that a named split is a
// deterministic draw of other validation rows.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend } from '../../../sbi/backend.js';
import { benchTask, cellDataset, cellRng, trainCell } from '../../../bench/accuracy-core.js';
import { everyTenth } from '../../../bench/validation-split.js';

before(async () => {
  await initBackend('cpu');
});

describe('validation-split bench', () => {
  test('everyTenth takes epochs 10, 20, ... of the shorter curve', () => {
    const train = Array.from({ length: 25 }, (_, i) => 100 - i);
    const val = Array.from({ length: 21 }, (_, i) => 200 - i);
    assert.deepEqual(everyTenth(train, val), [
      { epoch: 10, train: 91, val: 191 },
      { epoch: 20, train: 81, val: 181 },
    ]);
    assert.deepEqual(everyTenth(train.slice(0, 9), val), []);
  });

  test('a named split validates on other rows, the same ones every time', async () => {
    const task = benchTask('two_moons');
    const cell = cellRng(0, task.name, 200);
    const data = cellDataset(task, 200, cell);
    const run = async (split?: string) => {
      const { trained } = await trainCell({
        task,
        data,
        cell,
        estimator: 'maf',
        config: { hidden: [8], numTransforms: 1 },
        hyperparameters: { maxEpochs: 1, minEpochs: 1, batchSize: 50 },
        ...(split ? { split } : {}),
      });
      const out = { val: trained.valLosses[0]!, weights: trained.model.getWeights() };
      trained.model.dispose();
      return out;
    };
    const plain = await run();
    const again = await run();
    const other = await run('a');
    // Deterministic without a split; a named split changes the rows validated on, and draws them
    // again the same way (the same model to the weight).
    assert.equal(again.val, plain.val);
    assert.notEqual(other.val, plain.val);
    const otherAgain = await run('a');
    assert.equal(otherAgain.val, other.val);
    assert.deepEqual(otherAgain.weights, other.weights);
  });
});
