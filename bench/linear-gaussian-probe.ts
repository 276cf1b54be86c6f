// What a closed-form linear-Gaussian q(theta | x) = N(W f(x) + b, Sigma) would score beside robustsbi
// train's flows, on exactly the rows they see: the parity bench's cell (seed, task, N), the x
// transform train would choose, trainNPE's own split (splitOrder from the cell's training stream),
// fitted by least squares on the training rows (the probe of sbi/x-transform-choice.ts), scored by
// its NLL on the validation rows (comparable to a flow's best validation NLL: same rows, raw theta
// units) and on the parity bench's held-out rows. No training: a candidate that costs nothing.
//
//   node dist/bench/linear-gaussian-probe.js (or npm run bench -- linear-gaussian-probe)
//        --tasks gaussian_linear,slcp [--n 1000] [--seeds 0,1,2] [--heldout 10000]
//
// sbi-parity --obs 0 --config '{...}' --hp '{"anneals":0}' gives a flow's validation and held-out NLL
// on the same cell, so a candidate set with this model in it can be read off both tables.
import type { Task } from '../sbi/types.js';
import { linearGaussianValNll } from '../sbi/x-transform-choice.js';
import { transformRows, type XTransformSpec } from '../sbi/x-transform.js';
import { defaultValSize, dropNonFinite, splitOrder } from '../sbi/training-data.js';
import type { SimulatedDataset } from '../sbi/simulate.js';
import {
  benchTask,
  cellDataset,
  cellRng,
  cellXTransform,
  heldoutDataset,
} from './accuracy-core.js';
import { isMain, numberArg, numberListArg, parseArgs, runMain } from './args.js';

export interface LinearGaussianCell {
  /** Mean -log q over the rows trainNPE validates on, raw theta units. */
  valNll: number;
  /** Mean -log q over the finite held-out rows. */
  heldoutNll: number;
  nTrain: number;
  nVal: number;
  xTransform: XTransformSpec | undefined;
}

/** x as train would feed it (transformed where the probe chose so), with non-finite rows dropped. */
function prepared(task: Task, data: SimulatedDataset, xTransform: XTransformSpec | undefined) {
  const x = xTransform
    ? transformRows(xTransform, data.x.subarray(0, data.n * task.xDim), data.n)
    : data.x;
  return dropNonFinite(data.theta, x, data.n, task.thetaDim, task.xDim);
}

/**
 * The parity cell's rows as robustsbi train's default sees them (x transformed where it would be,
 * non-finite rows dropped) and trainNPE's split of them: indices into `rows`.
 */
export function cellSplit(task: Task, n: number, seed: number) {
  const cell = cellRng(seed, task.name, n);
  const data = cellDataset(task, n, cell);
  const xTransform = cellXTransform(task, data, cell).transform;
  const rows = prepared(task, data, xTransform);
  const nVal = defaultValSize(rows.n);
  // trainCell trains on the cell's 'train' fork, which trainNPE splits from.
  const order = splitOrder(rows.n, nVal, undefined, cell.fork('train'));
  return {
    cell,
    data,
    rows,
    xTransform,
    val: Array.from(order.subarray(0, nVal)),
    train: Array.from(order.subarray(nVal)),
  };
}

/** The closed-form fit on the cell's training rows, scored on its validation and held-out rows. */
export function linearGaussianCell(
  task: Task,
  n: number,
  seed: number,
  heldout: SimulatedDataset,
): LinearGaussianCell {
  const { thetaDim: D, xDim: C } = task;
  const { rows, xTransform, val, train } = cellSplit(task, n, seed);
  const held = prepared(task, heldout, xTransform);
  // One array holds the cell's rows and then the held-out ones, so one fit scores both.
  const theta = new Float32Array((rows.n + held.n) * D);
  theta.set(rows.theta.subarray(0, rows.n * D));
  theta.set(held.theta.subarray(0, held.n * D), rows.n * D);
  const f = new Float32Array((rows.n + held.n) * C);
  f.set(rows.x.subarray(0, rows.n * C));
  f.set(held.x.subarray(0, held.n * C), rows.n * C);
  const heldRows = Array.from({ length: held.n }, (_, i) => rows.n + i);
  return {
    valNll: linearGaussianValNll(theta, f, D, C, train, val),
    heldoutNll: linearGaussianValNll(theta, f, D, C, train, heldRows),
    nTrain: train.length,
    nVal: val.length,
    xTransform,
  };
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const tasks = (a.get('tasks') ?? 'gaussian_linear').split(',');
  const n = numberArg(a, 'n', 1000);
  const seeds = numberListArg(a, 'seeds', '0,1,2');
  const heldoutRows = numberArg(a, 'heldout', 10000);
  console.log(`N = ${n}; ${heldoutRows} held-out rows; linear-Gaussian fit by least squares`);
  console.log('| task | seed | x | validation NLL | held-out NLL |');
  console.log('|---|---|---|---|---|');
  for (const name of tasks) {
    const task = benchTask(name);
    const heldout = heldoutDataset(task, heldoutRows);
    for (const seed of seeds) {
      const r = linearGaussianCell(task, n, seed, heldout);
      console.log(
        `| ${name} | ${seed} | ${r.xTransform ? 'log' : 'as simulated'} | ${r.valNll.toFixed(3)} | ${r.heldoutNll.toFixed(3)} |`,
      );
    }
  }
}

if (isMain(import.meta.url)) await runMain(cli);
