// Where robustsbi's training and sbi's part. sbi 0.27's NPE() runs on one cell's rows
// (bench/torch/sbi_same_start.py records its validation split, z-score and initial MAF); then
// robustsbi's trainer, on sbi's recipe and sbi's MADE (bench/nflows-weights.ts), runs from that same
// start on the same split, and from robustsbi's own initialization on the same split. If the first
// lands where sbi does, the loop and optimizer are sbi's, and what remains between the tools on a
// cell is the draw of split and initialization. With --inits K, K more of sbi's initial MAFs and K of
// robustsbi's per split, all trained by robustsbi, compare the two initializations alone.
//
//   npm run bench -- sbi-same-start [--task slcp] [--n 1000] [--seeds 0,1] [--torch-seeds same|0,1]
//        [--inits 0] [--heldout 10000] [--backend wasm] [--keep DIR]
//
// --torch-seeds same (the default) gives sbi each cell's own seed, as sbi-parity does.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../sbi/backend.js';
import { createEstimator } from '../sbi/estimators/index.js';
import { trainNPE } from '../sbi/npe.js';
import { DEFAULT_TRAIN_ESTIMATOR, trainDefaults } from '../sbi/train-defaults.js';
import type { SimulatedDataset } from '../sbi/simulate.js';
import type { DensityEstimator, RandomStream, Task, ZScore } from '../sbi/types.js';
import {
  benchTask,
  cellDataset,
  cellRng,
  heldoutDataset,
  heldoutNll,
  meanSd,
} from './accuracy-core.js';
import { isMain, numberArg, numberListArg, parseArgs, runMain } from './args.js';
import {
  nflowsWeights,
  ordersFromPermutations,
  sbiMadeConfig,
  type NflowsMadeLayer,
} from './nflows-weights.js';
import { priorSpec, writeExchange, type ExchangeMeta } from './sbi-exchange.js';
import { sbiPython } from './sbi-venv.js';
import { repoRoot } from './train-throughput.js';

const SCRIPT = join(repoRoot(), 'bench', 'torch', 'sbi_same_start.py');

/** What bench/torch/sbi_same_start.py records of one sbi run. */
export interface SbiStart {
  torchSeed: number;
  thetaDim: number;
  xDim: number;
  hidden: number;
  train: number[];
  val: number[];
  thetaStd: number[];
  xStd: number[];
  layers: NflowsMadeLayer[];
  extraInits: NflowsMadeLayer[][];
  epochs: number;
  bestValLoss: number;
  heldoutNll: number | null;
  trainCpuS: number;
}

export interface SameStartRun {
  seed: number;
  torchSeed: number;
  /**
   * 'sbi': sbi's own run; 'from-sbi': robustsbi from sbi's start; 'own': robustsbi's initialization;
   * 'sbi-init' / 'own-init': the extra initializations of --inits, numbered by `init`.
   */
  run: 'sbi' | 'from-sbi' | 'own' | 'sbi-init' | 'own-init';
  init?: number;
  epochs: number;
  bestValLoss: number;
  heldoutNll: number | null;
}

/**
 * The cell's rows reordered so that sbi's training rows come first and its validation rows last,
 * which is the split trainNPE's validationRows: 'last' takes.
 */
export function rowsWithValidationLast(
  data: SimulatedDataset,
  thetaDim: number,
  xDim: number,
  train: readonly number[],
  val: readonly number[],
): SimulatedDataset {
  const rows = [...train, ...val];
  if (
    rows.length !== data.n ||
    new Set(rows).size !== data.n ||
    rows.some((r) => !(r >= 0 && r < data.n))
  )
    throw new Error(`sbi's split does not cover the ${data.n} rows once each`);
  const theta = new Float32Array(data.n * thetaDim);
  const x = new Float32Array(data.n * xDim);
  rows.forEach((r, i) => {
    theta.set(data.theta.subarray(r * thetaDim, (r + 1) * thetaDim), i * thetaDim);
    x.set(data.x.subarray(r * xDim, (r + 1) * xDim), i * xDim);
  });
  return { theta, x, n: data.n, dropped: 0 };
}

/** Mean, sd and paired t of a[i] - b[i]. */
export function pairedDifference(
  a: readonly number[],
  b: readonly number[],
): { n: number; mean: number; sd: number; t: number } {
  if (a.length !== b.length || a.length < 2)
    throw new Error(
      `a paired difference needs two equal lists of 2 or more, got ${a.length} and ${b.length}`,
    );
  const { mean, sd } = meanSd(a.map((v, i) => v - b[i]!));
  return { n: a.length, mean, sd, t: sd > 0 ? (mean / sd) * Math.sqrt(a.length) : NaN };
}

/** Largest relative difference between two lists of standard deviations. */
function relDiff(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!) / Math.abs(v)));
}

async function trainFrom(opts: {
  task: Task;
  /** The cell's rows with sbi's validation rows last (rowsWithValidationLast). */
  rows: SimulatedDataset;
  start: SbiStart;
  cell: RandomStream;
  init: { layers: NflowsMadeLayer[] } | { rng: RandomStream };
  heldout: SimulatedDataset | null;
}): Promise<{ epochs: number; bestValLoss: number; heldoutNll: number | null }> {
  const { task, start } = opts;
  const config = sbiMadeConfig(start.hidden, start.layers.length);
  const hp = {
    ...trainDefaults('robustsbi', DEFAULT_TRAIN_ESTIMATOR).hyperparameters,
    anneals: 0,
    dropLast: true,
  };
  const trained = await trainNPE({
    data: opts.rows,
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    rng: opts.cell.fork('train'),
    validationRows: 'last',
    hyperparameters: { ...hp, valSize: start.val.length },
    createModel: (zscore: ZScore): DensityEstimator => {
      const d = Math.max(
        relDiff(zscore.thetaStd, start.thetaStd),
        relDiff(zscore.xStd, start.xStd),
      );
      if (d > 1e-4)
        throw new Error(`robustsbi's z-score on sbi's training rows differs from sbi's by ${d}`);
      if ('rng' in opts.init)
        return createEstimator('maf', {
          thetaDim: task.thetaDim,
          xDim: task.xDim,
          zscore,
          rng: opts.init.rng,
          config,
        });
      const orders = ordersFromPermutations(
        opts.init.layers.map((L) => L.perm),
        task.thetaDim,
      );
      const est = createEstimator('maf', {
        thetaDim: task.thetaDim,
        xDim: task.xDim,
        zscore,
        rng: opts.cell.fork('model'),
        config: { ...config, orders },
      });
      est.setWeights(nflowsWeights({ ...start, layers: opts.init.layers }, orders));
      return est;
    },
  });
  const out = {
    epochs: trained.trainLosses.length,
    bestValLoss: trained.bestValLoss,
    heldoutNll: opts.heldout ? heldoutNll(trained.model, task, opts.heldout) : null,
  };
  trained.model.dispose();
  return out;
}

function summarize(
  runs: readonly SameStartRun[],
  a: SameStartRun['run'],
  b: SameStartRun['run'],
): string {
  const key = (r: SameStartRun): string => `${r.seed}/${r.torchSeed}/${r.init ?? ''}`;
  const bs = new Map(runs.filter((r) => r.run === b).map((r) => [key(r), r]));
  const pairs = runs
    .filter((r) => r.run === a && bs.has(key(r)))
    .map((r) => [r, bs.get(key(r))!] as const)
    .filter(([x, y]) => x.heldoutNll !== null && y.heldoutNll !== null);
  if (pairs.length < 2) return `${a} against ${b}: fewer than 2 pairs`;
  const p = pairedDifference(
    pairs.map(([x]) => x.heldoutNll!),
    pairs.map(([, y]) => y.heldoutNll!),
  );
  return `${a} - ${b}, held-out NLL over ${p.n} pairs: ${p.mean >= 0 ? '+' : ''}${p.mean.toFixed(4)} (sd ${p.sd.toFixed(4)}, t ${p.t.toFixed(2)})`;
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const task = benchTask(a.get('task') ?? 'slcp');
  const prior = priorSpec(task.prior);
  if (prior.kind !== 'box')
    throw new Error(`sbi-same-start runs tasks with a box prior; ${task.name}'s is ${prior.kind}`);
  const n = numberArg(a, 'n', 1000);
  const seeds = numberListArg(
    a,
    'seeds',
    '0',
    (v) => Number.isInteger(v) && v >= 0,
    'non-negative integers',
  );
  // null: each cell's own seed, as sbi-parity gives sbi.
  const torchSeeds =
    (a.get('torch-seeds') ?? 'same') === 'same'
      ? null
      : numberListArg(
          a,
          'torch-seeds',
          '0',
          (v) => Number.isInteger(v) && v >= 0,
          'non-negative integers or same',
        );
  const inits = numberArg(a, 'inits', 0);
  if (!Number.isInteger(inits) || inits < 0)
    throw new Error(`--inits must be a non-negative integer, not ${inits}`);
  const heldoutRows = numberArg(a, 'heldout', 10000);
  const sbi = sbiPython(a.has('install-sbi'));
  if (!sbi.ok) throw new Error(`sbi: unavailable (${sbi.reason})`);
  const backend = await initBackend(a.get('backend') ?? 'wasm');
  const heldout = heldoutRows > 0 ? heldoutDataset(task, heldoutRows) : null;
  const keep = a.get('keep');
  const root = keep ?? mkdtempSync(join(tmpdir(), 'robustsbi-same-start-'));
  console.error(`backend ${backend.name}; ${task.name}, N = ${n}; exchange under ${root}`);
  const runs: SameStartRun[] = [];
  const report = (r: SameStartRun): void => {
    runs.push(r);
    console.log(
      `seed ${r.seed} torch ${r.torchSeed} ${r.run}${r.init === undefined ? '' : ` ${r.init}`}: ${r.epochs} epochs, best validation ${r.bestValLoss.toFixed(3)}, held-out ${r.heldoutNll === null ? '-' : r.heldoutNll.toFixed(3)}`,
    );
  };
  try {
    for (const seed of seeds) {
      const cell = cellRng(seed, task.name, n);
      const data = cellDataset(task, n, cell);
      const dir = join(root, `${task.name}-${n}-s${seed}`);
      mkdirSync(dir, { recursive: true });
      const meta: ExchangeMeta = {
        thetaDim: task.thetaDim,
        xDim: task.xDim,
        n: data.n,
        observations: 0,
        samples: 0,
        seed,
        prior,
        logQAtReference: false,
        ...(heldout ? { heldout: heldout.n } : {}),
      };
      writeExchange(dir, meta, data.theta, data.x, new Float32Array(0), [], heldout ?? undefined);
      const ts = torchSeeds ?? [seed];
      const r = spawnSync(
        sbi.python,
        [SCRIPT, dir, '--torch-seeds', ts.join(','), '--inits', String(inits)],
        {
          cwd: dir,
          stdio: ['ignore', 'ignore', 'inherit'],
          env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
        },
      );
      if (r.status !== 0)
        throw new Error(`sbi on ${task.name} at ${n}, seed ${seed}, failed (exit ${r.status})`);
      for (const t of ts) {
        const start = JSON.parse(
          readFileSync(join(dir, `sbi-start-${t}.json`), 'utf8'),
        ) as SbiStart;
        const base = { seed, torchSeed: t };
        report({
          ...base,
          run: 'sbi',
          epochs: start.epochs,
          bestValLoss: start.bestValLoss,
          heldoutNll: start.heldoutNll,
        });
        const rows = rowsWithValidationLast(data, task.thetaDim, task.xDim, start.train, start.val);
        const common = { task, rows, start, cell, heldout };
        report({
          ...base,
          run: 'from-sbi',
          ...(await trainFrom({ ...common, init: { layers: start.layers } })),
        });
        report({
          ...base,
          run: 'own',
          ...(await trainFrom({ ...common, init: { rng: cell.fork('model') } })),
        });
        for (let k = 0; k < start.extraInits.length; k++) {
          report({
            ...base,
            run: 'sbi-init',
            init: k,
            ...(await trainFrom({ ...common, init: { layers: start.extraInits[k]! } })),
          });
          report({
            ...base,
            run: 'own-init',
            init: k,
            ...(await trainFrom({ ...common, init: { rng: cell.fork(`model/extra/${t}/${k}`) } })),
          });
        }
      }
    }
  } finally {
    if (keep === undefined) rmSync(root, { recursive: true, force: true });
  }
  console.log(summarize(runs, 'from-sbi', 'sbi'));
  console.log(summarize(runs, 'own', 'from-sbi'));
  if (inits > 0) console.log(summarize(runs, 'own-init', 'sbi-init'));
  console.log(JSON.stringify({ bench: 'sbi-same-start', task: task.name, n, seeds, inits, runs }));
}

if (isMain(import.meta.url)) runMain(cli);
