// Datasets as blocks (sbi/simulate.ts): a dataset of one block is drawn exactly as before blocks
// existed, and the blocks of a larger one, drawn apart in any order, join into the bytes one call
// draws, with the dropped rows of each counted.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRng } from '../../../sbi/rng.js';
import {
  joinBlocks,
  simulateBlock,
  simulateDataset,
  simulationBlockCount,
} from '../../../sbi/simulate.js';
import { encodeSimulations } from '../../../sbi/simulation-file.js';
import { getTask } from '../../../sbi/tasks/index.js';
import { dropNonFinite } from '../../../sbi/training-data.js';
import type { RandomStream, Task } from '../../../sbi/types.js';

/** A registered task with blocks of `rows` rows (its methods inherited). */
function withBlock(task: Task, rows: number): Task {
  return Object.create(task, { simulationBlock: { value: rows } }) as Task;
}

/** two_moons whose simulator fails (NaN) on every 7th row of each call. */
function failingEvery7th(): Task {
  const base = getTask('two_moons');
  return Object.create(base, {
    simulate: {
      value: (theta: Float32Array, n: number, rng: RandomStream) => {
        const x = base.simulate(theta, n, rng);
        for (let i = 0; i < n; i += 7) x[i * base.xDim] = NaN;
        return x;
      },
    },
  }) as Task;
}

const bytes = (task: Task, d: ReturnType<typeof simulateDataset>) =>
  encodeSimulations({ task: task.name, seed: 0, thetaDim: task.thetaDim, xDim: task.xDim, ...d });

describe('simulated datasets', () => {
  test('of one block are drawn as before blocks: prior and simulator forks of the given stream', () => {
    const task = getTask('gaussian_linear');
    const rng = createRng(11);
    const theta = task.prior.sample(300, rng.fork('prior'));
    const before = dropNonFinite(
      theta,
      task.simulate(theta, 300, rng.fork('simulator')),
      300,
      task.thetaDim,
      task.xDim,
    );
    assert.equal(simulationBlockCount(task, 300), 1);
    assert.deepEqual(bytes(task, simulateDataset(task, 300, createRng(11))), bytes(task, before));
  });

  test('of several blocks join, in any order of drawing, into the bytes of one call', () => {
    const task = withBlock(getTask('gaussian_linear'), 40);
    assert.equal(simulationBlockCount(task, 130), 4);
    const whole = simulateDataset(task, 130, createRng(5));
    assert.equal(whole.n, 130);
    const drawn = new Map<number, ReturnType<typeof simulateBlock>>();
    for (const b of [3, 1, 0, 2]) drawn.set(b, simulateBlock(task, 130, createRng(5), b));
    assert.deepEqual(
      [0, 1, 2, 3].map((b) => drawn.get(b)!.n),
      [40, 40, 40, 10],
    );
    const joined = joinBlocks(
      [0, 1, 2, 3].map((b) => drawn.get(b)!),
      task.thetaDim,
      task.xDim,
    );
    assert.deepEqual(bytes(task, joined), bytes(task, whole));
    // Block 0 is the one-block draw of its rows; block 1 comes from a stream of its own.
    assert.deepEqual(
      bytes(task, drawn.get(0)!),
      bytes(task, simulateDataset(getTask('gaussian_linear'), 40, createRng(5))),
    );
    assert.notDeepEqual([...drawn.get(1)!.theta], [...drawn.get(0)!.theta]);
  });

  test('count the rows each block drops', () => {
    const task = withBlock(failingEvery7th(), 20);
    const whole = simulateDataset(task, 50, createRng(2));
    // Rows 0, 7, 14 of blocks of 20, 20 and 10 rows: 3 + 3 + 2 dropped.
    assert.equal(whole.dropped, 8);
    assert.equal(whole.n, 42);
    assert.ok(whole.x.every(Number.isFinite));
  });

  test('refuse a block the dataset does not have and a non-positive size', () => {
    const task = withBlock(getTask('gaussian_linear'), 40);
    assert.throws(() => simulateBlock(task, 130, createRng(0), 4), /blocks 0 to 3, not 4/);
    assert.throws(() => simulateBlock(task, 130, createRng(0), -1), RangeError);
    assert.throws(() => simulateDataset(task, 0, createRng(0)), /positive integer/);
  });
});
