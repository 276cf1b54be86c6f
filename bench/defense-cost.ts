// Cost of the training-time defenses (issue 4): wall time of NPE training with none, noise, fim,
// fim-fast (and its sample-source variants), adversarial and trades on the same gaussian_linear data
// with a MAF, as ratios to none, with each run's peak resident memory; then, on one batch, where the
// exact FIM estimator's time goes (the sequential MAF sampler versus the rest), and how the fim-fast
// variants' trace values and weight gradients compare with the exact estimator's.
// --n is the number of training rows; trainNPE's 256 validation rows are simulated on top of them.
//
//   node --import tsx bench/defense-cost.ts [--n 2000] [--epochs 2] [--beta 0.01] [--backend wasm]
//        [--defenses none,noise,fim,...] [--reps 5] [--seed 0] [--part train|batch|all] [--json]
// runDefenseCost (exported) runs the training part and returns its rows and ratios to the suite.
//
// fim-fast is the default (batch theta, half the batch); the :suffix variants change one thing
// (:full whole batch, :quarter a quarter, :model detached draws + score-function term, :detached
// without that term, :rsample reparameterized draws; the last three on the whole batch).
// Each training run is a child process of its own, so its peak RSS (process.resourceUsage().maxRSS)
// is its own. Every run trains the same fixed number of epochs (no early stopping), so the ratios
// are per-epoch costs. The defense's effect is shown beside its cost: the validation NLL and the mean
// exact FIM trace tr I_x on held-out x after training (what the regularizers push down).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../sbi/backend.js';
import { createDefense } from '../sbi/defenses/index.js';
import {
  FimFastDefense,
  detachedSamples,
  probeSetup,
  squaredDirectionalScores,
} from '../sbi/defenses/fim-fast.js';
import {
  FimTraceDefense,
  fimTraceRegularizer,
  finiteMeanTrace,
  squaredScores,
} from '../sbi/defenses/fim-trace.js';
import { createEstimator } from '../sbi/estimators/index.js';
import { trainNPE, type DefenseContext, type TrainingDefense } from '../sbi/npe.js';
import { DEFAULT_NPE_HYPERPARAMETERS } from '../sbi/npe-hyperparameters.js';
import { createRng } from '../sbi/rng.js';
import { simulateDataset } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';
import type { DensityEstimator } from '../sbi/types.js';
import { isMain, parseArgs, runMain } from './args.js';

interface Variant {
  label: string;
  make(beta: number): TrainingDefense | undefined;
}

const VARIANTS: Variant[] = [
  { label: 'none', make: () => undefined },
  { label: 'noise', make: () => createDefense('noise') },
  { label: 'fim', make: (beta) => createDefense('fim', { beta }) },
  { label: 'fim-fast', make: (beta) => createDefense('fim-fast', { beta }) },
  { label: 'fim-fast:full', make: (beta) => new FimFastDefense({ beta, batchFraction: 1 }) },
  { label: 'fim-fast:quarter', make: (beta) => new FimFastDefense({ beta, batchFraction: 0.25 }) },
  {
    label: 'fim-fast:model',
    make: (beta) => new FimFastDefense({ beta, samples: 'model', batchFraction: 1 }),
  },
  {
    label: 'fim-fast:detached',
    make: (beta) =>
      new FimFastDefense({ beta, samples: 'model', scoreFunction: false, batchFraction: 1 }),
  },
  {
    label: 'fim-fast:rsample',
    make: (beta) => new FimFastDefense({ beta, samples: 'rsample', batchFraction: 1 }),
  },
  { label: 'adversarial', make: () => createDefense('adversarial') },
  { label: 'trades', make: () => createDefense('trades') },
];

export interface DefenseCostOptions {
  n: number;
  epochs: number;
  beta: number;
  /** Repetitions of each timing in the per-batch part. */
  reps: number;
  seed: number;
  backend: string;
  /** Variant labels (VARIANTS); all of them when absent. */
  defenses?: string[];
}

export const DEFENSE_COST_DEFAULTS: DefenseCostOptions = {
  n: 2000,
  epochs: 2,
  beta: 0.01,
  reps: 3,
  seed: 0,
  backend: 'wasm',
};

// The settings of this process (set once by configure: by the CLI, or from a child's arguments).
let N = DEFENSE_COST_DEFAULTS.n;
let EPOCHS = DEFENSE_COST_DEFAULTS.epochs;
let BETA = DEFENSE_COST_DEFAULTS.beta;
let REPS = DEFENSE_COST_DEFAULTS.reps;
let SEED = DEFENSE_COST_DEFAULTS.seed;
let BACKEND = DEFENSE_COST_DEFAULTS.backend;

function configure(o: DefenseCostOptions): void {
  ({ n: N, epochs: EPOCHS, beta: BETA, reps: REPS, seed: SEED, backend: BACKEND } = o);
}

/** The arguments that give a child process the same settings. */
function settingArgs(o: DefenseCostOptions): string[] {
  return [
    '--n',
    String(o.n),
    '--epochs',
    String(o.epochs),
    '--beta',
    String(o.beta),
    '--reps',
    String(o.reps),
    '--seed',
    String(o.seed),
    '--backend',
    o.backend,
  ];
}

const TASK = getTask('gaussian_linear');
const N_VAL = 256;
/** Exact M = 5 gradients averaged into the reference, and draws per variant, in the agreement table. */
const REF = 6;
const DRAWS = 2;
const N_HELD = 256;

/** N training rows and N_VAL validation rows (trainNPE splits them off), then N_HELD held-out x. */
function data(): {
  train: { theta: Float32Array; x: Float32Array; n: number };
  held: Float32Array;
} {
  const n = N + N_VAL;
  const all = simulateDataset(TASK, n + N_HELD, createRng(SEED).fork('data'));
  const d = TASK.xDim;
  return {
    train: { theta: all.theta.subarray(0, n * TASK.thetaDim), x: all.x.subarray(0, n * d), n },
    held: all.x.slice(n * d, (n + N_HELD) * d),
  };
}

/** Mean exact tr I_x over held-out x (32 samples per x). */
function meanTrace(model: DensityEstimator, held: Float32Array): number {
  return tf.tidy(() => {
    const x = tf.tensor2d(held, [held.length / TASK.xDim, TASK.xDim]);
    return tf.mean(squaredScores(model, x, 32, createRng(7))).dataSync()[0]!;
  });
}

async function child(label: string): Promise<void> {
  await initBackend(BACKEND);
  const variant = VARIANTS.find((v) => v.label === label);
  if (!variant) throw new Error(`unknown variant ${label}`);
  const { train, held } = data();
  const defense = variant.make(BETA);
  const epochCpuMs: number[] = [];
  const epochMs: number[] = [];
  const started = performance.now();
  const result = await trainNPE({
    data: train,
    thetaDim: TASK.thetaDim,
    xDim: TASK.xDim,
    rng: createRng(SEED).fork('train'),
    hyperparameters: { maxEpochs: EPOCHS, minEpochs: EPOCHS, patience: 1e6, valSize: N_VAL },
    createModel: (zscore) =>
      createEstimator('maf', {
        thetaDim: TASK.thetaDim,
        xDim: TASK.xDim,
        zscore,
        rng: createRng(SEED).fork('init'),
      }),
    ...(defense ? { defense } : {}),
    onEpoch: (p) => {
      epochCpuMs.push(p.epochCpuMs);
      epochMs.push(p.epochMs);
    },
  });
  const ms = performance.now() - started;
  const out: DefenseCostRow = {
    label,
    ms,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    nTrain: result.nTrain,
    batchSize: DEFAULT_NPE_HYPERPARAMETERS.batchSize,
    step: result.fused ? 'fused' : 'tfjs ops',
    epochMs,
    epochCpuMs,
    valNll: result.valLosses[result.valLosses.length - 1]!,
    trace: meanTrace(result.model, held),
  };
  result.model.dispose();
  defense?.dispose?.();
  console.log(JSON.stringify(out));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median wall time of f (ms) over REPS runs after one warm-up; f's tensors are released. */
function timeIt(f: () => void): number {
  tf.tidy(f);
  const ts: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    tf.tidy(f);
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** Runs f inside tf.tidy and returns its plain (non-tensor) result. */
function scoped<T>(f: () => T): T {
  let out: T | undefined;
  tf.tidy(() => {
    out = f();
  });
  return out as T;
}

function flatGrad(model: DensityEstimator, f: () => tf.Scalar): Float64Array {
  const vars = model.trainableVariables();
  return scoped(() => {
    const { grads } = tf.variableGrads(f, vars);
    const out: number[] = [];
    for (const v of vars)
      out.push(...(grads[v.name] ? grads[v.name]!.dataSync() : new Float32Array(v.size)));
    return Float64Array.from(out);
  });
}

function cosine(a: Float64Array, b: Float64Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** One batch of 512 on a MAF trained EPOCHS epochs without defense: time split and estimator agreement. */
async function perBatch(): Promise<void> {
  await initBackend(BACKEND);
  const { train } = data();
  const result = await trainNPE({
    data: train,
    thetaDim: TASK.thetaDim,
    xDim: TASK.xDim,
    rng: createRng(SEED).fork('train'),
    hyperparameters: { maxEpochs: EPOCHS, minEpochs: EPOCHS, patience: 1e6, valSize: N_VAL },
    createModel: (zscore) =>
      createEstimator('maf', {
        thetaDim: TASK.thetaDim,
        xDim: TASK.xDim,
        zscore,
        rng: createRng(SEED).fork('init'),
      }),
  });
  const model = result.model;
  const B = 512;
  const M = 5;
  const x = tf.tensor2d(train.x.subarray(0, B * TASK.xDim), [B, TASK.xDim]);
  const theta = tf.tensor2d(train.theta.subarray(0, B * TASK.thetaDim), [B, TASK.thetaDim]);
  const vars = model.trainableVariables();
  const ctx = (seed: number): DefenseContext => ({
    model,
    rng: createRng(seed),
    epoch: 0,
    step: 1,
    xScale: 1,
  });
  const grads = (f: () => tf.Scalar) => () => void tf.variableGrads(f, vars);
  const step = (make: () => TrainingDefense) => () => {
    const d = make();
    d.extraGrads!(theta, x, ctx(1));
    d.dispose?.();
  };

  const predrawn = tf.keep(detachedSamples(model, x, M, createRng(3)));
  const t = {
    nllStep: timeIt(grads(() => tf.neg(tf.mean(model.logProb(theta, x))) as tf.Scalar)),
    fim: timeIt(step(() => new FimTraceDefense({ beta: BETA }))),
    sampleForward: timeIt(() => void model.sample(x, M, createRng(2))),
    rsampleForwardBackward: timeIt(
      grads(() => tf.sum(model.rsample(x, M, createRng(2))) as tf.Scalar),
    ),
    scoreDoubleBackpropOnly: timeIt(
      grads(() => {
        const flat = tf.reshape(predrawn, [M * B, TASK.thetaDim]) as tf.Tensor2D;
        const s = tf.grad((xx: tf.Tensor) => tf.sum(model.logProb(flat, xx as tf.Tensor2D)))(
          tf.tile(x, [M, 1]),
        );
        return finiteMeanTrace(tf.reshape(tf.sum(tf.square(s), 1), [M, B]) as tf.Tensor2D, BETA);
      }),
    ),
    fimFast: timeIt(
      step(() => new FimFastDefense({ beta: BETA, batchFraction: 1, samples: 'model' })),
    ),
    fimFastDetached: timeIt(
      step(
        () =>
          new FimFastDefense({
            beta: BETA,
            batchFraction: 1,
            samples: 'model',
            scoreFunction: false,
          }),
      ),
    ),
    fimFastRsample: timeIt(
      step(() => new FimFastDefense({ beta: BETA, batchFraction: 1, samples: 'rsample' })),
    ),
    fimFastDataFull: timeIt(
      step(() => new FimFastDefense({ beta: BETA, batchFraction: 1, samples: 'data' })),
    ),
    fimFastData: timeIt(step(() => new FimFastDefense({ beta: BETA }))),
  };
  predrawn.dispose();
  const pct = (v: number): string => `${((100 * v) / t.fim).toFixed(0)}%`;
  console.log(
    `\n### Where one exact FIM step goes (batch ${B}, M = ${M}, MAF [100, 100] x 3, trained ${EPOCHS} epochs)\n`,
  );
  console.log('| part | ms (median of ' + REPS + ') | share of the exact FIM gradient |');
  console.log('|---|---|---|');
  console.log(
    `| NLL gradient (the undefended step's work) | ${t.nllStep.toFixed(0)} | ${pct(t.nllStep)} |`,
  );
  console.log(
    `| exact FIM gradient (rsample + score + double backprop) | ${t.fim.toFixed(0)} | 100% |`,
  );
  console.log(
    `| sampler forward only (M x B draws, no tape) | ${t.sampleForward.toFixed(0)} | ${pct(t.sampleForward)} |`,
  );
  console.log(
    `| sampler forward + first-order backward | ${t.rsampleForwardBackward.toFixed(0)} | ${pct(t.rsampleForwardBackward)} |`,
  );
  console.log(
    `| score + double backprop on pre-drawn samples | ${t.scoreDoubleBackpropOnly.toFixed(0)} | ${pct(t.scoreDoubleBackpropOnly)} |`,
  );
  console.log(
    `| => attributable to sampling through the flow (total - score-only) | ${(t.fim - t.scoreDoubleBackpropOnly).toFixed(0)} | ${pct(t.fim - t.scoreDoubleBackpropOnly)} |`,
  );
  console.log(
    `| fim-fast:model (detached draws + score-function term) | ${t.fimFast.toFixed(0)} | ${pct(t.fimFast)} |`,
  );
  console.log(
    `| fim-fast:detached (no score-function term) | ${t.fimFastDetached.toFixed(0)} | ${pct(t.fimFastDetached)} |`,
  );
  console.log(
    `| fim-fast:rsample (pathwise, first order) | ${t.fimFastRsample.toFixed(0)} | ${pct(t.fimFastRsample)} |`,
  );
  console.log(
    `| fim-fast:full (batch theta, whole batch) | ${t.fimFastDataFull.toFixed(0)} | ${pct(t.fimFastDataFull)} |`,
  );
  console.log(
    `| fim-fast (default: batch theta, no sampling, half the batch) | ${t.fimFastData.toFixed(0)} | ${pct(t.fimFastData)} |`,
  );

  // Agreement with the exact estimator on this batch: the trace value (means over 64 samples per x)
  // and the per-step weight gradient (M = 5, one probe) against the mean of 8 exact M = 5 gradients.
  const exactTrace = tf.tidy(
    () => tf.mean(squaredScores(model, x, 64, createRng(11))).dataSync()[0]!,
  );
  const fastTrace = tf.tidy(() => {
    const rng = createRng(12);
    const setup = probeSetup(
      x,
      detachedSamples(model, x, 64, rng),
      1,
      'rademacher',
      1e-2 * Math.min(...model.zscore.xStd),
      rng,
    );
    return tf.mean(squaredDirectionalScores(model, setup)).dataSync()[0]!;
  });
  const dataTrace = tf.tidy(() => {
    const rng = createRng(13);
    const setup = probeSetup(
      x,
      tf.tile(tf.expandDims(theta, 0), [64, 1, 1]) as tf.Tensor3D,
      1,
      'rademacher',
      1e-2 * Math.min(...model.zscore.xStd),
      rng,
    );
    return tf.mean(squaredDirectionalScores(model, setup)).dataSync()[0]!;
  });
  let ref: Float64Array | undefined;
  for (let r = 0; r < REF; r++) {
    const g = flatGrad(model, () =>
      fimTraceRegularizer(model, x, createRng(1000 + r), { beta: 1, mcSamples: M }),
    );
    ref = ref ? ref.map((v, i) => v + g[i]! / REF) : g.map((v) => v / REF);
  }
  const viaDefense = (make: () => FimTraceDefense | FimFastDefense) => (seed: number) =>
    scoped(() => {
      const d = make();
      const g = d.extraGrads(theta, x, ctx(seed));
      const out: number[] = [];
      for (const v of vars)
        out.push(...(g[v.name] ? g[v.name]!.dataSync() : new Float32Array(v.size)));
      d.dispose();
      return Float64Array.from(out);
    });
  const meanCos = (f: (seed: number) => Float64Array): number => {
    let s = 0;
    for (let r = 0; r < DRAWS; r++) s += cosine(ref!, f(r)) / DRAWS;
    return s;
  };
  const cos = {
    fim: meanCos(viaDefense(() => new FimTraceDefense({ beta: 1 }))),
    fimFast: meanCos(
      viaDefense(() => new FimFastDefense({ beta: 1, batchFraction: 1, samples: 'model' })),
    ),
    detached: meanCos(
      viaDefense(
        () =>
          new FimFastDefense({ beta: 1, batchFraction: 1, samples: 'model', scoreFunction: false }),
      ),
    ),
    rsample: meanCos(
      viaDefense(() => new FimFastDefense({ beta: 1, batchFraction: 1, samples: 'rsample' })),
    ),
    dataFull: meanCos(
      viaDefense(() => new FimFastDefense({ beta: 1, batchFraction: 1, samples: 'data' })),
    ),
    data: meanCos(viaDefense(() => new FimFastDefense({ beta: 1 }))),
  };
  console.log(`\n### Estimator agreement on the same batch\n`);
  console.log(
    `mean tr I_x: exact ${exactTrace.toFixed(2)}, fim-fast central differences on model samples ${fastTrace.toFixed(2)} ` +
      `(${((100 * (fastTrace - exactTrace)) / exactTrace).toFixed(1)}%), on the batch's own theta ${dataTrace.toFixed(2)} ` +
      `(${((100 * (dataTrace - exactTrace)) / exactTrace).toFixed(1)}%).\n`,
  );
  console.log(`| one-step gradient (M = 5) | mean cosine to the mean of ${REF} exact gradients |`);
  console.log('|---|---|');
  console.log(`| fim (exact, independent draws: the noise floor) | ${cos.fim.toFixed(3)} |`);
  console.log(`| fim-fast:model (score-function term) | ${cos.fimFast.toFixed(3)} |`);
  console.log(`| fim-fast:detached | ${cos.detached.toFixed(3)} |`);
  console.log(`| fim-fast:rsample | ${cos.rsample.toFixed(3)} |`);
  console.log(`| fim-fast:full (batch theta, whole batch) | ${cos.dataFull.toFixed(3)} |`);
  console.log(`| fim-fast (default: batch theta, half the batch) | ${cos.data.toFixed(3)} |`);
  x.dispose();
  theta.dispose();
  model.dispose();
}

export interface DefenseCostRow {
  label: string;
  ms: number;
  maxRssMB: number;
  valNll: number;
  trace: number;
  /** Training rows (the validation rows are on top of them). */
  nTrain: number;
  batchSize: number;
  /** Whether trainNPE ran the fused wasm step or tfjs ops. */
  step: 'fused' | 'tfjs ops';
  /** Wall and process-CPU milliseconds of each epoch (trainNPE's onEpoch; validation included). */
  epochMs: number[];
  epochCpuMs: number[];
  /** Training time relative to `none` (absent when none was not run or failed). */
  ratioToNone?: number;
}

export interface DefenseCostFigures {
  settings: DefenseCostOptions & { nVal: number };
  rows: DefenseCostRow[];
  /** Variants whose child process failed, with the end of its stderr. */
  failed: { label: string; reason: string }[];
}

/** Trains every variant in its own child process (peak RSS its own) and returns the rows. */
export function runDefenseCost(o: DefenseCostOptions): DefenseCostFigures {
  const labels = o.defenses ?? VARIANTS.map((v) => v.label);
  const self = fileURLToPath(import.meta.url);
  const rows: DefenseCostRow[] = [];
  const failed: DefenseCostFigures['failed'] = [];
  for (const label of labels) {
    process.stderr.write(`defense-cost: ${label}...\n`);
    const r = spawnSync(
      process.execPath,
      [...process.execArgv, self, ...settingArgs(o), '--child', label],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) {
      failed.push({ label, reason: `exit ${r.status}: ${r.stderr.slice(-500)}` });
      process.stderr.write(`${label}: failed (${r.status}) ${r.stderr.slice(-500)}\n`);
      continue;
    }
    rows.push(JSON.parse(line) as DefenseCostRow);
  }
  const base = rows.find((r) => r.label === 'none');
  if (base) for (const r of rows) r.ratioToNone = r.ms / base.ms;
  return { settings: { ...o, nVal: N_VAL }, rows, failed };
}

export function defenseCostTable(f: DefenseCostFigures): string {
  return [
    '| defense | step | train time (s) | ratio to none | peak RSS (MB) | val NLL | mean tr I_x (held-out) |',
    '|---|---|---|---|---|---|---|',
    ...f.rows.map(
      (r) =>
        `| ${r.label} | ${r.step} | ${(r.ms / 1000).toFixed(1)} | ${r.ratioToNone?.toFixed(2) ?? '-'} | ${r.maxRssMB.toFixed(0)} | ${r.valNll.toFixed(3)} | ${r.trace.toFixed(1)} |`,
    ),
    ...f.failed.map((x) => `| ${x.label} | | failed | | | | |`),
  ].join('\n');
}

export function defenseCostOptions(a: Map<string, string>): DefenseCostOptions {
  const d = DEFENSE_COST_DEFAULTS;
  const num = (k: string, v: number) => Number(a.get(k) ?? v);
  return {
    n: num('n', d.n),
    epochs: num('epochs', d.epochs),
    beta: num('beta', d.beta),
    reps: num('reps', d.reps),
    seed: num('seed', d.seed),
    backend: a.get('backend') ?? d.backend,
    ...(a.has('defenses') ? { defenses: a.get('defenses')!.split(',') } : {}),
  };
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const o = defenseCostOptions(a);
  configure(o);
  const only = a.get('child');
  if (only !== undefined) return child(only);
  const part = a.get('part') ?? 'all';
  if (part === 'batch') return perBatch();
  const f = runDefenseCost(o);
  if (a.has('json')) {
    console.log(JSON.stringify(f));
    return;
  }
  console.log(
    `## Defense cost (bench/defense-cost.ts)\n\ngaussian_linear, MAF (RABI defaults), ${N} training simulations + ${N_VAL} validation, ` +
      `${EPOCHS} epochs of batch 512 for every defense, beta ${BETA} for the FIM variants, backend ${BACKEND}, ` +
      `${new Date().toISOString().slice(0, 16)}Z.\n`,
  );
  console.log(defenseCostTable(f));
  if (part === 'train') return;
  const self = fileURLToPath(import.meta.url);
  const batch = spawnSync(
    process.execPath,
    [...process.execArgv, self, ...settingArgs(o), '--part', 'batch'],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  process.stdout.write(
    batch.status === 0 ? batch.stdout : `per-batch part failed: ${batch.stderr.slice(-800)}\n`,
  );
}

if (isMain(import.meta.url)) await runMain(cli);
