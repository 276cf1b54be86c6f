// Measures the per-unit rates a sweep plan needs (sweeps/plan.ts Rates) on this machine and tensor
// backend, with small real runs of the code the activities run: the task's simulator, trainNPE with
// the trial's estimator and defense built as activities/train.ts builds them, and the attacks and
// metrics of sbi/evaluation.ts on a briefly trained model. Each measurement is a second or a few, so
// that a calibration of a whole spec takes a minute or two on two cores.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attackInBatches, type AttackName } from '../sbi/attacks/index.js';
import { clipBoxOf } from '../sbi/attacks/eps.js';
import { createDefense, type DefenseOptions } from '../sbi/defenses/index.js';
import { createEstimator, taskEstimatorDefaults } from '../sbi/estimators/index.js';
import { expectedCoverage } from '../sbi/metrics/coverage.js';
import { discrepancyUnderAttack } from '../sbi/metrics/robustness.js';
import { trainNPE } from '../sbi/npe.js';
import { DEFAULT_NPE_HYPERPARAMETERS } from '../sbi/npe-hyperparameters.js';
import { createRng } from '../sbi/rng.js';
import { simulateDataset } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';
import { defaultThetaTransform } from '../sbi/transforms.js';
import type { DensityEstimator, Task } from '../sbi/types.js';
import type { Objective } from '../sweeps/names.js';
import {
  attackRateKey,
  metricRateKey,
  trainRateKey,
  type EvaluateUnit,
  type MissingRates,
  type Rates,
  type TrainUnit,
} from '../sweeps/plan.js';

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Seconds per simulation: draws of doubling size until one takes 0.3 s (or 20,000 rows). */
export function measureSimulate(taskName: string): number {
  const task = getTask(taskName);
  simulateDataset(task, 8, createRng(1)); // warm-up (lazy tables, JIT)
  for (let n = 16; ; n *= 2) {
    const t0 = performance.now();
    simulateDataset(task, n, createRng(n));
    const s = seconds(t0);
    if (s >= 0.3 || n >= 20_000) return s / n;
  }
}

/** A defense as activities/train.ts builds it, at its default beta and eps (they do not change the work). */
function defenseFor(d: TrainUnit['defense']) {
  const o: DefenseOptions = {};
  if (d.mcSamples !== undefined) o.mcSamples = d.mcSamples;
  if (d.probes !== undefined) o.fast = { probes: d.probes };
  return createDefense(d.name, o);
}

interface Trained {
  model: DensityEstimator;
  /** Median wall seconds of the epochs after the first, and the rows of one epoch. */
  epochSeconds: number;
  rows: number;
}

/** Thrown through trainNPE's signal to end a calibration run early. */
class EnoughEpochs extends Error {}

/**
 * Trains `rows` simulations for up to `epochs` epochs. An epoch of over 2 s ends the run after it:
 * the warm-up in it is small beside it, and an expensive defense then costs one epoch to measure.
 */
async function trainBriefly(
  task: Task,
  u: Pick<TrainUnit, 'kind' | 'architecture' | 'defense' | 'batchSize'>,
  rows: number,
  epochs: number,
): Promise<Trained> {
  const data = simulateDataset(task, rows, createRng(7));
  const rng = createRng(11);
  const defense = defenseFor(u.defense);
  const times: number[] = [];
  const stop = new AbortController();
  let model: DensityEstimator | undefined;
  try {
    const r = await trainNPE({
      data: { theta: data.theta, x: data.x, n: data.n },
      thetaDim: task.thetaDim,
      xDim: task.xDim,
      rng: rng.fork('train'),
      hyperparameters: {
        ...DEFAULT_NPE_HYPERPARAMETERS,
        batchSize: u.batchSize,
        maxEpochs: epochs,
        minEpochs: epochs,
        patience: epochs + 1,
      },
      thetaTransform: defaultThetaTransform(task),
      createModel: (zscore) =>
        (model = createEstimator(u.kind, {
          thetaDim: task.thetaDim,
          xDim: task.xDim,
          zscore,
          config: { ...taskEstimatorDefaults(task.name), ...u.architecture },
          rng: rng.fork('init'),
        })),
      ...(defense ? { defense } : {}),
      signal: stop.signal,
      onEpoch: (e) => {
        times.push(e.epochMs / 1000);
        if (e.epochMs > 2000) stop.abort(new EnoughEpochs());
      },
    });
    model = r.model;
  } catch (err) {
    if (!(err instanceof EnoughEpochs) || !model) throw err;
  } finally {
    defense?.dispose?.();
  }
  const later = (times.length > 1 ? times.slice(1) : times).sort((a, b) => a - b);
  return { model, epochSeconds: later[Math.floor(later.length / 2)]!, rows: data.n };
}

/**
 * Seconds per epoch and row of a training: on two batches' rows (at least 256, at most 1,024 or the
 * budget), three epochs with the first left out (it builds the model and warms the kernels), or
 * the first alone when it took over 2 s.
 */
export async function measureTrain(u: TrainUnit): Promise<number> {
  const task = getTask(u.task);
  const rows = Math.min(u.rows, Math.max(256, Math.min(1024, 2 * u.batchSize)));
  const t = await trainBriefly(task, u, rows, 3);
  try {
    t.model.dispose();
  } catch {
    // Disposed already by a training that ended early.
  }
  return t.epochSeconds / t.rows;
}

/** A model to attack: one epoch on 256 rows (an attack's cost does not depend on the training). */
async function modelFor(u: EvaluateUnit): Promise<{ task: Task; model: DensityEstimator }> {
  const task = getTask(u.task);
  const t = await trainBriefly(
    task,
    { kind: u.kind, architecture: u.architecture, defense: { name: 'none' }, batchSize: 128 },
    256,
    1,
  );
  return { task, model: t.model };
}

/** Seconds per test point and attack step (per point for noise and fim-eigen). */
export async function measureAttack(
  est: DensityEstimator,
  task: Task,
  u: EvaluateUnit,
  objective: Objective,
): Promise<number> {
  const points = Math.min(u.nTest, 32);
  const test = simulateDataset(task, points, createRng(3));
  const box = clipBoxOf(test.x);
  const iterates = u.attack !== 'noise' && u.attack !== 'fim-eigen';
  const run = (steps: number) =>
    attackInBatches(
      u.attack as AttackName,
      { estimator: est, epsAbs: 0.5, box, rng: createRng(5) },
      test.x,
      test.theta,
      { divergence: objective, mcSamples: u.mcSamples, ...(iterates ? { steps } : {}) },
      points,
    );
  await run(1); // warm-up
  const steps = iterates ? 2 : 1;
  const t0 = performance.now();
  await run(steps);
  return seconds(t0) / (test.n * steps);
}

/** Seconds per test point and sample of the KL and of expected coverage. */
export async function measureMetrics(
  est: DensityEstimator,
  task: Task,
  u: EvaluateUnit,
  objective: Objective,
): Promise<{ kl: number; coverage: number }> {
  const points = Math.min(u.nTest, 16);
  const test = simulateDataset(task, points, createRng(4));
  const adv = test.x.map((v) => v * 1.01);
  const kSamples = Math.min(u.evalSamples, 64);
  const cSamples = Math.min(u.coverageSamples, 100);
  await discrepancyUnderAttack(est, objective, test.x, adv, createRng(6), { samples: 4 }); // warm-up
  let t0 = performance.now();
  await discrepancyUnderAttack(est, objective, test.x, adv, createRng(6), { samples: kSamples });
  const kl = seconds(t0) / (test.n * kSamples);
  t0 = performance.now();
  await expectedCoverage(est, adv, test.theta, createRng(8), { samples: cSamples });
  const coverage = seconds(t0) / (test.n * cSamples);
  return { kl, coverage };
}

/** One rate to measure. */
export type MeasureItem =
  | { kind: 'simulate'; task: string }
  | { kind: 'train'; unit: TrainUnit }
  | { kind: 'attack' | 'metric'; unit: EvaluateUnit; objective: Objective };

export function itemsOf(missing: MissingRates): MeasureItem[] {
  return [
    ...missing.simulate.map((task) => ({ kind: 'simulate' as const, task })),
    ...missing.train.map((unit) => ({ kind: 'train' as const, unit })),
    ...missing.attack.map((a) => ({ kind: 'attack' as const, ...a })),
    ...missing.metric.map((m) => ({ kind: 'metric' as const, ...m })),
  ];
}

export function describeItem(it: MeasureItem): string {
  switch (it.kind) {
    case 'simulate':
      return `simulate ${it.task}`;
    case 'train':
      return `train ${it.unit.task} ${it.unit.kind} ${it.unit.defense.name} batch ${it.unit.batchSize}${Object.keys(it.unit.architecture).length ? ` ${JSON.stringify(it.unit.architecture)}` : ''}`;
    case 'attack':
      return `attack ${it.unit.task} ${it.unit.kind} ${it.unit.attack} ${it.objective}`;
    case 'metric':
      return `metrics ${it.unit.task} ${it.unit.kind} ${it.objective}`;
  }
}

/** What one child process reports per item, one JSON line each. */
type ChildLine =
  | { i: number; value: number | { kl: number; coverage: number }; seconds: number }
  | { i: number; error: string; seconds: number };

/**
 * The child's side: measures `items` in order on `backend`, printing a line per item. It stops at the
 * first failure, because a failed wasm kernel (out of memory) leaves the backend unusable.
 */
async function childMain(backend: string, items: MeasureItem[]): Promise<void> {
  const { initBackend } = await import('../sbi/backend.js');
  await initBackend(backend);
  const models = new Map<string, { task: Task; model: DensityEstimator }>();
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const t0 = performance.now();
    try {
      let value: number | { kl: number; coverage: number };
      if (it.kind === 'simulate') value = measureSimulate(it.task);
      else if (it.kind === 'train') value = await measureTrain(it.unit);
      else {
        const k = metricRateKey(it.unit, 'rkl');
        let m = models.get(k);
        if (!m) models.set(k, (m = await modelFor(it.unit)));
        value =
          it.kind === 'attack'
            ? await measureAttack(m.model, m.task, it.unit, it.objective)
            : await measureMetrics(m.model, m.task, it.unit, it.objective);
      }
      process.stdout.write(`${JSON.stringify({ i, value, seconds: seconds(t0) })}\n`);
    } catch (err) {
      const line: ChildLine = { i, error: (err as Error).message, seconds: seconds(t0) };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return;
    }
  }
}

export interface MeasureProgress {
  (what: string, seconds: number, error?: string): void;
}

/** Runs a measuring child over `items`; resolves with its lines. */
function runChild(
  backend: string,
  items: MeasureItem[],
  say: MeasureProgress,
): Promise<ChildLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), CHILD_FLAG, backend],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const lines: ChildLine[] = [];
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (!l.startsWith('{')) return;
      const line = JSON.parse(l) as ChildLine;
      lines.push(line);
      say(describeItem(items[line.i]!), line.seconds, 'error' in line ? line.error : undefined);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0 && lines.length === 0)
        reject(
          new Error(
            `the measuring process failed (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`,
          ),
        );
      else resolve(lines);
    });
    child.stdin!.end(JSON.stringify(items));
  });
}

export interface Measured {
  rates: Rates;
  /** Items that could not be measured, with the error (e.g. a kernel out of memory). */
  failed: { what: string; error: string }[];
}

/**
 * Measures every rate in `missing` into a copy of `rates`, in child processes on `backend`: a
 * failure (a wasm kernel out of memory aborts its backend for good) costs only that item, and the
 * next child goes on with the rest. `say` hears each item as it is done.
 */
export async function measureMissing(
  missing: MissingRates,
  rates: Rates,
  backend: string,
  say: MeasureProgress = () => {},
): Promise<Measured> {
  const out: Rates = {
    simulate: { ...rates.simulate },
    train: { ...rates.train },
    attack: { ...rates.attack },
    metric: { ...rates.metric },
  };
  const failed: Measured['failed'] = [];
  let items = itemsOf(missing);
  while (items.length > 0) {
    const lines = await runChild(backend, items, say);
    let next = lines.length;
    for (const line of lines) {
      const it = items[line.i]!;
      if ('error' in line) {
        failed.push({ what: describeItem(it), error: line.error });
        next = line.i + 1;
        continue;
      }
      const v = line.value;
      if (it.kind === 'simulate') out.simulate[it.task] = v as number;
      else if (it.kind === 'train') out.train[trainRateKey(it.unit)] = v as number;
      else if (it.kind === 'attack') out.attack[attackRateKey(it.unit, it.objective)] = v as number;
      else out.metric[metricRateKey(it.unit, it.objective)] = v as { kl: number; coverage: number };
    }
    // A child that died without a line for its next item: count that item as failed and go on.
    if (next === lines.length && lines.length < items.length && !lines.some((l) => 'error' in l)) {
      failed.push({ what: describeItem(items[next]!), error: 'the measuring process died' });
      next++;
    }
    items = items.slice(next);
  }
  return { rates: out, failed };
}

const CHILD_FLAG = '--robustsbi-calibration-child';

if (process.argv[2] === CHILD_FLAG && process.argv[1] === fileURLToPath(import.meta.url)) {
  let input = '';
  process.stdin.on('data', (d: Buffer) => (input += d.toString()));
  process.stdin.on('end', () => {
    childMain(process.argv[3]!, JSON.parse(input) as MeasureItem[]).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  });
}
