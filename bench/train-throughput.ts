// Speed bar of issue 3: MAF training throughput (simulations per second, one core) on
// gaussian_linear at RABI's settings (3 transforms, MADE [100, 100], Adam 1e-3, batch 512, clip 75),
// per available tfjs backend, against the same model and loop in PyTorch
// (bench/torch/maf_throughput.py), all run by this one command.
//
//   node dist/bench/train-throughput.js [--n 10000] [--epochs 20]
//                                       [--backends cpu,wasm,wasm-ops,tfjs-node]
//                                       [--no-torch] [--no-install] [--reps 1] [--json]
// runTrainThroughput (exported) returns the same figures to the suite (bench/suite.ts).
//
// Each backend runs in its own child process (clean peak RSS, one backend per process), with
// native thread pools pinned to one thread. Throughput = training rows * epochs / the summed wall
// time of those epochs (each epoch: shuffled minibatch steps, a validation pass, a weight snapshot
// on improvement), and the same per second of the process's CPU time over those epochs (trainNPE's
// epochCpuMs; torch: process_time around its epoch loop); simulation, z-scoring and model setup
// are excluded on both sides.
// On host backends (cpu, wasm) trainNPE takes the MAF's fused wasm step (sbi/estimators/maf-fused.ts);
// `<backend>-ops` runs the same backend with the step as tfjs ops (trainNPE's fused: false), the
// implementation before the fused step, for a before/after ratio in one invocation.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../sbi/backend.js';
import { createEstimator } from '../sbi/estimators/index.js';
import { trainNPE } from '../sbi/npe.js';
import { createRng } from '../sbi/rng.js';
import { simulateDataset } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';
import { isMain, parseArgs, runMain } from './args.js';
import { torchPython } from './torch-venv.js';

export interface Row {
  impl: string;
  /** tfjs rows: whether the epochs ran the fused wasm step or tfjs ops. */
  step?: 'fused' | 'tfjs ops';
  ok: boolean;
  reason?: string;
  simulationsPerSecond?: number;
  /** Training rows per second of this process's CPU time (user + system) during the epochs. */
  simulationsPerCpuSecond?: number;
  trainS?: number;
  cpuS?: number;
  epochs?: number;
  nTrain?: number;
  peakRssMb?: number;
  peakTfMb?: number;
  finalValLoss?: number;
  version?: string;
  /** Each repetition's (sims/s, sims/CPU-s); the row's other figures are of the median one by CPU. */
  reps?: { simulationsPerSecond: number; simulationsPerCpuSecond: number }[];
}

const ONE_THREAD_ENV = {
  TF_NUM_INTRAOP_THREADS: '1',
  TF_NUM_INTEROP_THREADS: '1',
  OMP_NUM_THREADS: '1',
  MKL_NUM_THREADS: '1',
};

export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the repository root');
    d = up;
  }
  return d;
}

/** Child mode: train on one backend and print one JSON line. */
async function worker(backend: string, n: number, epochs: number, valSize: number): Promise<void> {
  const ops = backend.endsWith('-ops');
  const report = await initBackend(ops ? backend.slice(0, -'-ops'.length) : backend);
  const task = getTask('gaussian_linear');
  const rng = createRng(0);
  const data = simulateDataset(task, n, rng.fork('data'));
  let peakRss = process.memoryUsage().rss;
  let peakTf = tf.memory().numBytes;
  let trainMs = 0;
  let trainCpuMs = 0;
  let lastVal = NaN;
  const result = await trainNPE({
    data,
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    rng: rng.fork('train'),
    createModel: (zscore) =>
      createEstimator('maf', {
        thetaDim: task.thetaDim,
        xDim: task.xDim,
        zscore,
        rng: rng.fork('model'),
      }),
    // Fixed epochs: patience high enough that early stopping never fires.
    hyperparameters: { maxEpochs: epochs, patience: 1e9, valSize },
    fused: !ops,
    onEpoch: (p) => {
      trainMs += p.epochMs;
      // CPU time as well as wall time: on a shared machine wall time measures the neighbours too.
      trainCpuMs += p.epochCpuMs;
      lastVal = p.valLoss;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      peakTf = Math.max(peakTf, tf.memory().numBytes);
    },
  });
  const cpuS = trainCpuMs / 1000;
  const row: Row = {
    impl: `tfjs-${report.name}${ops ? '-ops' : ''}`,
    step: result.fused ? 'fused' : 'tfjs ops',
    simulationsPerCpuSecond: (result.nTrain * result.epochs) / cpuS,
    cpuS,
    ok: true,
    simulationsPerSecond: (result.nTrain * result.epochs) / (trainMs / 1000),
    trainS: trainMs / 1000,
    epochs: result.epochs,
    nTrain: result.nTrain,
    peakRssMb: peakRss / 2 ** 20,
    peakTfMb: peakTf / 2 ** 20,
    finalValLoss: lastVal,
    version: tf.version.tfjs,
  };
  result.model.dispose();
  console.log(JSON.stringify(row));
}

function runChild(
  cmd: string,
  argv: string[],
  impl: string,
  parse: (o: Record<string, unknown>) => Row,
): Row {
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8',
    env: { ...process.env, ...ONE_THREAD_ENV },
    maxBuffer: 64 * 2 ** 20,
  });
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || line === undefined) {
    const err = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n');
    const msg = [...err].reverse().find((l) => /^\s*\w*Error: /.test(l)) ?? err.pop() ?? '';
    return { impl, ok: false, reason: msg.trim().slice(0, 160) };
  }
  return parse(JSON.parse(line) as Record<string, unknown>);
}

function fmt(v: number | undefined, digits = 0): string {
  return v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

export interface ThroughputOptions {
  n: number;
  epochs: number;
  valSize?: number;
  backends: string[];
  /** Skip the PyTorch reference. */
  noTorch?: boolean;
  /** Never create the torch venv (report torch as unavailable when it is missing). */
  noInstall?: boolean;
  /** How the caller's command creates the torch venv, for the reason it is missing. */
  installHint?: string;
  /**
   * Repetitions of the whole sequence (each backend, then torch), interleaved so that both sides see
   * the same machine; each row reports its median repetition by CPU throughput (default 1).
   */
  reps?: number;
}

export interface ThroughputFigures {
  task: 'gaussian_linear';
  estimator: 'maf';
  n: number;
  epochs: number;
  valSize: number;
  /** One row per tfjs backend asked for, then torch (ok: false with a reason when unavailable). */
  rows: Row[];
}

export const THROUGHPUT_DEFAULTS: ThroughputOptions = {
  n: 10000,
  epochs: 20,
  backends: ['cpu', 'wasm', 'wasm-ops', 'tfjs-node'],
};

/**
 * The repetitions of one implementation as one row: the median repetition by CPU throughput (the
 * lower middle of an even count), with every repetition's throughputs; the first failure if any failed.
 */
export function medianRow(runs: readonly Row[]): Row {
  const failed = runs.find((r) => !r.ok);
  if (failed || runs.length === 0) return failed ?? { impl: '?', ok: false, reason: 'no runs' };
  const sorted = [...runs].sort((a, b) => a.simulationsPerCpuSecond! - b.simulationsPerCpuSecond!);
  return {
    ...sorted[(sorted.length - 1) >> 1]!,
    reps: runs.map((r) => ({
      simulationsPerSecond: r.simulationsPerSecond!,
      simulationsPerCpuSecond: r.simulationsPerCpuSecond!,
    })),
  };
}

export async function runTrainThroughput(opts: ThroughputOptions): Promise<ThroughputFigures> {
  const reps = Math.max(1, opts.reps ?? 1);
  const runs: Row[][] = [];
  for (let r = 0; r < reps; r++) {
    if (reps > 1) console.error(`throughput: repetition ${r + 1} of ${reps}`);
    const once = await runTrainThroughputOnce(opts);
    once.rows.forEach((row, i) => (runs[i] ??= []).push(row));
  }
  const valSize = opts.valSize ?? Math.round(opts.n / 10);
  return {
    task: 'gaussian_linear',
    estimator: 'maf',
    n: opts.n,
    epochs: opts.epochs,
    valSize,
    rows: runs.map(medianRow),
  };
}

async function runTrainThroughputOnce(opts: ThroughputOptions): Promise<ThroughputFigures> {
  const { n, epochs } = opts;
  const valSize = opts.valSize ?? Math.round(n / 10);
  const self = fileURLToPath(import.meta.url);
  // Under tsx the child needs the loader too; compiled, plain node is enough.
  const nodeArgs = self.endsWith('.ts') ? ['--import', 'tsx', self] : [self];
  const rows: Row[] = [];
  for (const b of opts.backends) {
    console.error(`tfjs ${b}: training ${epochs} epochs on ${n} simulations...`);
    rows.push(
      runChild(
        process.execPath,
        [
          ...nodeArgs,
          '--worker',
          b,
          '--n',
          String(n),
          '--epochs',
          String(epochs),
          '--val-size',
          String(valSize),
        ],
        `tfjs-${b}`,
        (o) => o as unknown as Row,
      ),
    );
  }

  let torch: Row;
  if (opts.noTorch) torch = { impl: 'torch', ok: false, reason: 'skipped (--no-torch)' };
  else {
    const py = torchPython(!opts.noInstall, opts.installHint);
    if (!py.ok) torch = { impl: 'torch', ok: false, reason: py.reason };
    else {
      console.error(`torch: training ${epochs} epochs on ${n} simulations...`);
      const script = join(repoRoot(), 'bench', 'torch', 'maf_throughput.py');
      torch = runChild(
        py.python,
        [
          script,
          '--n',
          String(n),
          '--epochs',
          String(epochs),
          '--val-fraction',
          String(valSize / n),
          '--threads',
          '1',
        ],
        'torch',
        (o) => ({
          impl: 'torch',
          ok: true,
          simulationsPerSecond: o.simulations_per_second as number,
          simulationsPerCpuSecond: o.simulations_per_cpu_second as number,
          trainS: o.train_s as number,
          cpuS: o.train_cpu_s as number,
          epochs: o.epochs as number,
          nTrain: o.n_train as number,
          peakRssMb: o.peak_rss_mb as number,
          finalValLoss: o.final_val_loss as number,
          version: o.torch_version as string,
        }),
      );
    }
  }
  rows.push(torch);
  return { task: 'gaussian_linear', estimator: 'maf', n, epochs, valSize, rows };
}

export function throughputTable(f: ThroughputFigures): string {
  const rows = f.rows;
  const torch = rows.find((r) => r.impl === 'torch') ?? { impl: 'torch', ok: false };
  const header = [
    'impl',
    'step',
    'sims/s (wall)',
    'ratio tfjs/torch',
    'sims/CPU-s',
    'ratio (CPU)',
    'train s',
    'CPU s',
    'epochs',
    'n train',
    'peak RSS MB',
    'peak tf MB',
    'final val NLL',
    'reps: ratio (CPU) each',
  ];
  const table = rows.map((r) =>
    r.ok
      ? [
          r.impl,
          r.step ?? '-',
          fmt(r.simulationsPerSecond),
          torch.ok && r.impl !== 'torch'
            ? fmt(r.simulationsPerSecond! / torch.simulationsPerSecond!, 2)
            : '-',
          fmt(r.simulationsPerCpuSecond),
          torch.ok && r.impl !== 'torch'
            ? fmt(r.simulationsPerCpuSecond! / torch.simulationsPerCpuSecond!, 3)
            : '-',
          fmt(r.trainS, 1),
          fmt(r.cpuS, 1),
          String(r.epochs),
          String(r.nTrain),
          fmt(r.peakRssMb),
          fmt(r.peakTfMb, 1),
          fmt(r.finalValLoss, 3),
          torch.ok && r.impl !== 'torch' && r.reps && torch.reps
            ? r.reps
                .map((x, i) =>
                  fmt(x.simulationsPerCpuSecond / torch.reps![i]!.simulationsPerCpuSecond, 2),
                )
                .join(', ')
            : '-',
        ]
      : [r.impl, '', `unavailable (${r.reason})`, '', '', '', '', '', '', '', '', '', ''],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => (t[i] ?? '').length)));
  const line = (cells: string[]): string =>
    '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [
    line(header),
    '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|',
    ...table.map(line),
  ].join('\n');
}

export function throughputOptions(a: Map<string, string>): ThroughputOptions {
  const n = Number(a.get('n') ?? THROUGHPUT_DEFAULTS.n);
  return {
    n,
    epochs: Number(a.get('epochs') ?? THROUGHPUT_DEFAULTS.epochs),
    ...(a.has('val-size') ? { valSize: Number(a.get('val-size')) } : {}),
    backends: a.get('backends')?.split(',') ?? THROUGHPUT_DEFAULTS.backends,
    noTorch: a.has('no-torch'),
    noInstall: a.has('no-install'),
    installHint: 'run without --no-install to create it',
    ...(a.has('reps') ? { reps: Number(a.get('reps')) } : {}),
  };
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const o = throughputOptions(a);
  if (a.has('worker')) {
    return worker(a.get('worker')!, o.n, o.epochs, o.valSize ?? Math.round(o.n / 10));
  }
  const f = await runTrainThroughput(o);
  if (a.has('json')) {
    console.log(JSON.stringify({ bench: 'train-throughput', ...f }));
    return;
  }
  console.log(throughputTable(f));
  console.log(JSON.stringify({ bench: 'train-throughput', ...f }));
}

if (isMain(import.meta.url)) await runMain(cli);
