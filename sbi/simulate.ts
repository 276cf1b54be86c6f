// Draws a training set from a task: theta from the prior, x from the simulator, each from its own
// fork of the stream, then drops (and counts) the rows a simulator could not finish.
//
// A dataset is a sequence of blocks of the task's `simulationBlock` rows (the last one shorter):
// block 0 draws from the given stream, as every dataset of one block always has, and block b > 0
// from its fork `block/b`. So the rows are a function of (task, n, seed) alone, and the blocks can
// be drawn apart (one activity each, on any worker) and joined into the very same bytes.
import { dropNonFinite } from './training-data.js';
import type { RandomStream, Task } from './types.js';

export interface SimulatedDataset {
  theta: Float32Array;
  x: Float32Array;
  /** Finite rows kept. */
  n: number;
  /** Rows dropped because theta or x held NaN or +-Infinity. */
  dropped: number;
}

/** Rows per block of a task without its own figure: more than any of today's cheap tasks draws. */
export const DEFAULT_SIMULATION_BLOCK = 1_000_000;

/** The rows of one block of `task`'s datasets. */
export function simulationBlockRows(task: Pick<Task, 'simulationBlock'>): number {
  return task.simulationBlock ?? DEFAULT_SIMULATION_BLOCK;
}

function checkCount(n: number): void {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`The number of simulations must be a positive integer, got ${n}.`);
}

/** How many blocks a dataset of n rows of `task` has. */
export function simulationBlockCount(task: Pick<Task, 'simulationBlock'>, n: number): number {
  checkCount(n);
  return Math.ceil(n / simulationBlockRows(task));
}

/** Block `block` of the dataset of n rows drawn from `rng`. */
export function simulateBlock(
  task: Task,
  n: number,
  rng: RandomStream,
  block: number,
): SimulatedDataset {
  const count = simulationBlockCount(task, n);
  if (!Number.isInteger(block) || block < 0 || block >= count)
    throw new RangeError(
      `A dataset of ${n} ${task.name} rows has blocks 0 to ${count - 1}, not ${block}.`,
    );
  const size = simulationBlockRows(task);
  const rows = Math.min(size, n - block * size);
  const r = block === 0 ? rng : rng.fork(`block/${block}`);
  const theta = task.prior.sample(rows, r.fork('prior'));
  const x = task.simulate(theta, rows, r.fork('simulator'));
  return dropNonFinite(theta, x, rows, task.thetaDim, task.xDim);
}

/** The blocks in order, as one dataset. */
export function joinBlocks(
  blocks: readonly SimulatedDataset[],
  thetaDim: number,
  xDim: number,
): SimulatedDataset {
  if (blocks.length === 1) return blocks[0]!;
  const n = blocks.reduce((s, b) => s + b.n, 0);
  const theta = new Float32Array(n * thetaDim);
  const x = new Float32Array(n * xDim);
  let row = 0;
  for (const b of blocks) {
    theta.set(b.theta, row * thetaDim);
    x.set(b.x, row * xDim);
    row += b.n;
  }
  return { theta, x, n, dropped: blocks.reduce((s, b) => s + b.dropped, 0) };
}

export function simulateDataset(task: Task, n: number, rng: RandomStream): SimulatedDataset {
  const blocks = Array.from({ length: simulationBlockCount(task, n) }, (_, b) =>
    simulateBlock(task, n, rng, b),
  );
  return joinBlocks(blocks, task.thetaDim, task.xDim);
}
