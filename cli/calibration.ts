// Measures the per-unit rates a sweep plan needs (sweeps/plan.ts Rates) on this machine and tensor
// backend, with small real runs of the code the activities run: the task's simulator, trainNPE with
// the trial's estimator and defense built as activities/train.ts builds them, and the attacks and
// metrics of sbi/evaluation.ts on a briefly trained model. Each measurement is a second or a few, so
// that a calibration of a whole spec takes a minute or two on two cores.
import { attackInBatches, type AttackName } from '../sbi/attacks/index.js';
import { clipBoxOf } from '../sbi/attacks/eps.js';
import { createDefense, type DefenseOptions } from '../sbi/defenses/index.js';
import { createEstimator, taskEstimatorDefaults } from '../sbi/estimators/index.js';
import { expectedCoverage } from '../sbi/metrics/coverage.js';
import { klUnderAttack } from '../sbi/metrics/robustness.js';
import { DEFAULT_NPE_HYPERPARAMETERS, trainNPE } from '../sbi/npe.js';
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
        createEstimator(u.kind, {
          thetaDim: task.thetaDim,
          xDim: task.xDim,
          zscore,
          config: { ...taskEstimatorDefaults(task.name), ...u.architecture },
          rng: rng.fork('init'),
        }),
      ...(defense ? { defense } : {}),
      onEpoch: (e) => void times.push(e.epochMs / 1000),
    });
    const later = (times.length > 1 ? times.slice(1) : times).sort((a, b) => a - b);
    return { model: r.model, epochSeconds: later[Math.floor(later.length / 2)]!, rows: data.n };
  } finally {
    defense?.dispose?.();
  }
}

/**
 * Seconds per epoch and row of a training: three epochs on at least four batches (1,024 rows or
 * the budget, whichever is smaller), the first left out (it builds the model and warms the kernels).
 */
export async function measureTrain(u: TrainUnit): Promise<number> {
  const task = getTask(u.task);
  const rows = Math.max(Math.min(u.rows, 1024), Math.min(u.rows, 4 * u.batchSize));
  const t = await trainBriefly(task, u, rows, 3);
  t.model.dispose();
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
  const points = Math.min(u.nTest, 64);
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
  const steps = iterates ? 3 : 1;
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
  const points = Math.min(u.nTest, 32);
  const test = simulateDataset(task, points, createRng(4));
  const adv = test.x.map((v) => v * 1.01);
  const kSamples = Math.min(u.evalSamples, 64);
  const cSamples = Math.min(u.coverageSamples, 200);
  await klUnderAttack(est, objective, test.x, adv, createRng(6), { samples: 4 }); // warm-up
  let t0 = performance.now();
  await klUnderAttack(est, objective, test.x, adv, createRng(6), { samples: kSamples });
  const kl = seconds(t0) / (test.n * kSamples);
  t0 = performance.now();
  await expectedCoverage(est, adv, test.theta, createRng(8), { samples: cSamples });
  const coverage = seconds(t0) / (test.n * cSamples);
  return { kl, coverage };
}

export interface MeasureProgress {
  (what: string, seconds: number): void;
}

/** Measures every rate in `missing` into a copy of `rates`; `say` hears each one as it is done. */
export async function measureMissing(
  missing: MissingRates,
  rates: Rates,
  say: MeasureProgress = () => {},
): Promise<Rates> {
  const out: Rates = {
    simulate: { ...rates.simulate },
    train: { ...rates.train },
    attack: { ...rates.attack },
    metric: { ...rates.metric },
  };
  for (const task of missing.simulate) {
    const t0 = performance.now();
    out.simulate[task] = measureSimulate(task);
    say(`simulate ${task}`, seconds(t0));
  }
  for (const u of missing.train) {
    const t0 = performance.now();
    out.train[trainRateKey(u)] = await measureTrain(u);
    say(
      `train ${u.task} ${u.kind} ${u.defense.name} batch ${u.batchSize}${Object.keys(u.architecture).length ? ` ${JSON.stringify(u.architecture)}` : ''}`,
      seconds(t0),
    );
  }
  // One briefly trained model per (task, estimator) serves all its attack and metric measurements.
  const models = new Map<string, Promise<{ task: Task; model: DensityEstimator }>>();
  const modelOf = (u: EvaluateUnit) => {
    const k = metricRateKey(u, 'rkl');
    let m = models.get(k);
    if (!m) models.set(k, (m = modelFor(u)));
    return m;
  };
  try {
    for (const { unit, objective } of missing.attack) {
      const t0 = performance.now();
      const { task, model } = await modelOf(unit);
      out.attack[attackRateKey(unit, objective)] = await measureAttack(
        model,
        task,
        unit,
        objective,
      );
      say(`attack ${unit.task} ${unit.kind} ${unit.attack} ${objective}`, seconds(t0));
    }
    for (const { unit, objective } of missing.metric) {
      const t0 = performance.now();
      const { task, model } = await modelOf(unit);
      out.metric[metricRateKey(unit, objective)] = await measureMetrics(
        model,
        task,
        unit,
        objective,
      );
      say(`metrics ${unit.task} ${unit.kind} ${objective}`, seconds(t0));
    }
  } finally {
    for (const m of models.values()) (await m).model.dispose();
  }
  return out;
}
