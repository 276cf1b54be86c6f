// How much one training depends on which rows validate it. At 1k a tenth of the budget, 100 rows,
// chooses the early stop; on slcp sbi's recipe built here stopped after 52 to 243 epochs over twelve
// seeds where sbi's own stopped after 183 to 247 (BENCHMARKS.md, fifteenth session). This trains one
// architecture on one cell's rows (the rows sbi-parity trains both tools on) with the same
// initialization and shuffles under several validation splits, and reports each run's stop, best
// validation NLL, held-out NLL on fresh rows and its learning curve every 10 epochs.
//
//   npm run bench -- validation-split --task slcp [--n 1000] [--seed 0] [--splits default,a,b,c]
//        [--config JSON] [--hp JSON] [--heldout 10000] [--tfjs] [--backend wasm]
//
// `default` is the split train itself draws; any other name draws its own. --tfjs trains on tfjs
// ops instead of the fused step (the same curve is expected: a check on the step).
import { initBackend } from '../sbi/backend.js';
import type { NPEHyperparameters } from '../sbi/npe-hyperparameters.js';
import { DEFAULT_TRAIN_ESTIMATOR, trainDefaults } from '../sbi/train-defaults.js';
import {
  benchTask,
  cellDataset,
  cellRng,
  heldoutDataset,
  heldoutNll,
  trainCell,
} from './accuracy-core.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';

export interface SplitRun {
  split: string;
  epochs: number;
  bestEpoch: number;
  bestValLoss: number;
  heldoutNll: number | null;
  /** Training and validation NLL at epochs 10, 20, ... */
  curve: { epoch: number; train: number; val: number }[];
}

/** Every 10th epoch's losses (1-based epochs), as the bench prints them. */
export function everyTenth(
  train: readonly number[],
  val: readonly number[],
): { epoch: number; train: number; val: number }[] {
  const out: { epoch: number; train: number; val: number }[] = [];
  for (let e = 10; e <= Math.min(train.length, val.length); e += 10)
    out.push({ epoch: e, train: train[e - 1]!, val: val[e - 1]! });
  return out;
}

function jsonObject(a: Map<string, string>, key: string): Record<string, unknown> {
  const v = a.get(key);
  if (v === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new Error(`--${key} must be a JSON object, not ${v}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new Error(`--${key} must be a JSON object, not ${v}`);
  return parsed as Record<string, unknown>;
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const task = benchTask(a.get('task') ?? 'slcp');
  const n = numberArg(a, 'n', 1000);
  const seed = numberArg(a, 'seed', 0);
  const splits = (a.get('splits') ?? 'default,a,b,c').split(',').map((s) => s.trim());
  if (splits.some((s) => s === ''))
    throw new Error('--splits must list split names, not an empty one');
  const heldoutRows = numberArg(a, 'heldout', 10000);
  const config = jsonObject(a, 'config');
  const defaults = trainDefaults('robustsbi', DEFAULT_TRAIN_ESTIMATOR);
  const hp = {
    ...defaults.hyperparameters,
    ...(jsonObject(a, 'hp') as Partial<NPEHyperparameters>),
  };
  const architecture = { ...defaults.architecture, ...config };
  const backend = await initBackend(a.get('backend') ?? 'wasm');
  const cell = cellRng(seed, task.name, n);
  const data = cellDataset(task, n, cell);
  const heldout = heldoutRows > 0 ? heldoutDataset(task, heldoutRows) : null;
  console.error(`backend ${backend.name}; ${task.name}, N = ${n}, seed ${seed}`);
  const runs: SplitRun[] = [];
  for (const split of splits) {
    const { trained } = await trainCell({
      task,
      data,
      cell,
      estimator: DEFAULT_TRAIN_ESTIMATOR,
      config: architecture,
      hyperparameters: hp,
      ...(a.has('tfjs') ? { fused: false } : {}),
      ...(split === 'default' ? {} : { split }),
    });
    const run: SplitRun = {
      split,
      epochs: trained.trainLosses.length,
      bestEpoch: trained.bestEpoch,
      bestValLoss: trained.bestValLoss,
      heldoutNll: heldout ? heldoutNll(trained.model, task, heldout) : null,
      curve: everyTenth(trained.trainLosses, trained.valLosses),
    };
    trained.model.dispose();
    runs.push(run);
    const nll = run.heldoutNll === null ? '-' : run.heldoutNll.toFixed(3);
    const curve = run.curve.map((c) => `${c.train.toFixed(2)}/${c.val.toFixed(2)}`).join(' ');
    console.log(
      `split ${split}: ${run.epochs} epochs, best validation ${run.bestValLoss.toFixed(3)} at ${run.bestEpoch}, held-out ${nll} | train/val every 10: ${curve}`,
    );
  }
  console.log(JSON.stringify({ bench: 'validation-split', task: task.name, n, seed, runs }));
}

if (isMain(import.meta.url)) runMain(cli);
