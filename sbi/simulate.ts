// Draws a training set from a task: theta from the prior, x from the simulator, each from its own
// fork of the stream, then drops (and counts) the rows a simulator could not finish.
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

export function simulateDataset(task: Task, n: number, rng: RandomStream): SimulatedDataset {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`The number of simulations must be a positive integer, got ${n}.`);
  const theta = task.prior.sample(n, rng.fork('prior'));
  const x = task.simulate(theta, n, rng.fork('simulator'));
  return dropNonFinite(theta, x, n, task.thetaDim, task.xDim);
}
