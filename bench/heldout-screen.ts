// Screens variants of robustsbi train's default by held-out NLL, paired: every variant trains on the
// same rows (the parity bench's seed-0 cell) under several training streams, and is scored by mean
// -log q(theta | x) over the parity bench's held-out rows. sbi-parity --obs 0 --keep DIR gives
// sbi's figure on the same rows; bench/torch/sbi_made_ablation.py gives sbi's own variants.
//
//   node dist/bench/heldout-screen.js (or npm run bench -- heldout-screen) --tasks sir,two_moons
//        [--n 1000] [--train-seeds 3] [--heldout 10000] [--backend wasm]
//        [--variant 'T3N={"hidden":[50,50,50],"affine":"nflows"}' ...; default: the default alone]
//        (a variant's "hp" object overrides training hyperparameters: '{"hp":{"anneals":1}}')
//
// Training stream s > 0 is the cell's stream forked by s: the split, initialization and shuffles
// change, the rows do not, so the spread over s is the training noise a variant must beat.
import { initBackend } from '../sbi/backend.js';
import { DEFAULT_TRAIN_ESTIMATOR, trainDefaults } from '../sbi/train-defaults.js';
import {
  benchTask,
  cellDataset,
  cellRng,
  heldoutDataset,
  heldoutNll,
  meanSd,
  trainCell,
} from './accuracy-core.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';

/** `label={"key":value}` pairs, in order; the default (no overrides) when none is given. */
export function parseVariants(specs: readonly string[]): [string, Record<string, unknown>][] {
  if (specs.length === 0) return [['default', {}]];
  return specs.map((spec) => {
    const eq = spec.indexOf('=');
    if (eq < 1) throw new Error(`--variant must be label={json}, not ${spec}`);
    const config: unknown = JSON.parse(spec.slice(eq + 1));
    if (typeof config !== 'object' || config === null || Array.isArray(config))
      throw new Error(`--variant ${spec.slice(0, eq)}: its settings must be a JSON object`);
    return [spec.slice(0, eq), config as Record<string, unknown>];
  });
}

export async function cli(argv: readonly string[]): Promise<void> {
  // --variant may repeat: parseArgs keeps the last, so collect them here.
  const variantSpecs: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--variant' && argv[i + 1] !== undefined) variantSpecs.push(argv[++i]!);
    else rest.push(argv[i]!);
  }
  const a = parseArgs(rest);
  const tasks = (a.get('tasks') ?? 'sir').split(',');
  const n = numberArg(a, 'n', 1000);
  const seeds = numberArg(a, 'train-seeds', 3);
  const heldoutRows = numberArg(a, 'heldout', 10000);
  const variants = parseVariants(variantSpecs);
  const backend = await initBackend(a.get('backend'));
  const defaults = trainDefaults('robustsbi', DEFAULT_TRAIN_ESTIMATOR);
  console.log(
    `backend ${backend.name}; N = ${n}; ${seeds} training streams; ${heldoutRows} held-out rows`,
  );
  console.log(
    '| task | variant | held-out NLL per training stream | mean | best validation NLL | epochs | train CPU s |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const name of tasks) {
    const task = benchTask(name);
    const data = cellDataset(task, n, cellRng(0, task.name, n));
    const heldout = heldoutDataset(task, heldoutRows);
    for (const [label, config] of variants) {
      const { hp, ...architecture } = config as { hp?: Record<string, unknown> };
      const nll: number[] = [];
      const val: number[] = [];
      const epochs: number[] = [];
      const cpu: number[] = [];
      for (let s = 0; s < seeds; s++) {
        const base = cellRng(0, task.name, n);
        const cell = s === 0 ? base : base.fork(`train-seed-${s}`);
        const { trained, trainCpuS } = await trainCell({
          task,
          data,
          cell,
          estimator: DEFAULT_TRAIN_ESTIMATOR,
          config: { ...defaults.architecture, ...architecture },
          hyperparameters: { ...defaults.hyperparameters, ...hp },
        });
        nll.push(heldoutNll(trained.model, task, heldout));
        val.push(trained.bestValLoss);
        epochs.push(trained.epochs);
        cpu.push(trainCpuS);
        trained.model.dispose();
      }
      console.log(
        `| ${name} | ${label} | ${nll.map((v) => v.toFixed(3)).join(', ')} | **${meanSd(nll).mean.toFixed(3)}** | ${val.map((v) => v.toFixed(3)).join(', ')} | ${epochs.join('/')} | ${cpu.map((v) => v.toFixed(1)).join('/')} |`,
      );
    }
  }
}

if (isMain(import.meta.url)) await runMain(cli);
