// The parts of the accuracy bench (bench/accuracy.ts) that another bench scoring other samples on
// the same footing reuses (bench/sbi-parity.ts): the tasks, the seeded observations and reference
// samples, the training run and KL(p || q) against an analytic posterior.
import { tf, tidyData } from '../sbi/backend.js';
import { createEstimator } from '../sbi/estimators/index.js';
import { trainNPE, type TrainNPEResult } from '../sbi/npe.js';
import type { NPEHyperparameters } from '../sbi/npe-hyperparameters.js';
import type { TrainingState } from '../sbi/npe-checkpoint.js';
import { createRng } from '../sbi/rng.js';
import { simulateDataset, type SimulatedDataset } from '../sbi/simulate.js';
import { cholesky, spdInverse } from '../sbi/tasks/linalg.js';
import { getTask } from '../sbi/tasks/index.js';
import type { DensityEstimator, RandomStream, Task } from '../sbi/types.js';
import type { XTransformSpec } from '../sbi/x-transform.js';
import { chooseXTransform, type XTransformChoice } from '../sbi/x-transform-choice.js';
import { SbibmGaussianLinearTask } from './sbibm-gaussian-linear.js';

/** Bench-only tasks: sbibm's gaussian_linear, on which the 0.55 bar was measured. */
export function benchTask(name: string): Task {
  return name === 'sbibm_gaussian_linear' ? new SbibmGaussianLinearTask() : getTask(name);
}

/** Observation k: theta_k from the prior and x_k from the simulator, both seeded by k. */
export function observation(task: Task, k: number): { theta: Float32Array; x: Float32Array } {
  const rng = createRng(k).fork('observation');
  const theta = task.prior.sample(1, rng.fork('prior'));
  const x = task.simulate(theta, 1, rng.fork('simulator'));
  return { theta, x };
}

/** n reference posterior samples at observation k's x, seeded by k and the task. */
export function referenceSamples(task: Task, k: number, xo: Float32Array, n: number): Float32Array {
  const rng = createRng(k).fork(`reference/${task.name}`);
  if (task.referencePosterior) return task.referencePosterior(xo, n, rng);
  if (task.analyticPosterior) throw new Error(`${task.name}: analytic posterior without a sampler`);
  throw new Error(`${task.name} has no reference posterior`);
}

/**
 * Held-out rows from the joint, the same for every seed and budget (so tools and seeds are compared
 * on one set): mean -log q(theta | x) over them estimates E_x KL(p(theta | x) || q) up to the
 * task's constant, with far less noise than a C2ST at three observations.
 */
export function heldoutDataset(task: Task, rows: number): SimulatedDataset {
  return simulateDataset(task, rows, createRng(0).fork(`heldout/${task.name}`));
}

/** Mean -log q(theta_i | x_i) over the rows of `data`, in chunks that bound the tensors. */
export function heldoutNll(model: DensityEstimator, task: Task, data: SimulatedDataset): number {
  return meanNll(heldoutLogQ(model, task, data));
}

/** log q(theta_i | x_i) of every held-out row, in chunks of 2,000 rows to bound memory. */
export function heldoutLogQ(
  model: DensityEstimator,
  task: Task,
  data: SimulatedDataset,
): Float32Array {
  const chunk = 2000;
  const out = new Float32Array(data.n);
  for (let i = 0; i < data.n; i += chunk) {
    const m = Math.min(chunk, data.n - i);
    const lq = tidyData(
      () =>
        model
          .logProb(
            tf.tensor2d(data.theta.subarray(i * task.thetaDim, (i + m) * task.thetaDim), [
              m,
              task.thetaDim,
            ]),
            tf.tensor2d(data.x.subarray(i * task.xDim, (i + m) * task.xDim), [m, task.xDim]),
          )
          .dataSync() as Float32Array,
    );
    out.set(lq, i);
  }
  return out;
}

/** Mean -log q over a vector of log q values (sbi's side of heldoutNll). */
export function meanNll(logQ: Float32Array): number {
  let sum = 0;
  for (const v of logQ) sum -= v;
  return sum / logQ.length;
}

/** The stream of one (task, budget) cell: its training set, training and posterior draws. */
export function cellRng(seed: number, taskName: string, n: number): RandomStream {
  return createRng(seed).fork(`accuracy/${taskName}/${n}`);
}

/** The training set of one cell: a function of (task, n, seed) alone. */
export function cellDataset(task: Task, n: number, cell: RandomStream): SimulatedDataset {
  return simulateDataset(task, n, cell.fork('data'));
}

/** The x-transform robustsbi train's --x-transform auto takes on a cell's training set. */
export function cellXTransform(
  task: Task,
  data: SimulatedDataset,
  cell: RandomStream,
): XTransformChoice {
  return chooseXTransform(
    data.theta,
    data.x,
    data.n,
    task.thetaDim,
    task.xDim,
    cell.fork('x-transform'),
  );
}

/** Trains one model on `data` as the accuracy bench does, with training CPU s (all threads). */
export async function trainCell(opts: {
  task: Task;
  data: SimulatedDataset;
  cell: RandomStream;
  estimator: string;
  config: Record<string, unknown>;
  hyperparameters: Partial<NPEHyperparameters>;
  /** false: tfjs ops train even where the fused wasm step could. */
  fused?: boolean;
  /** Train on transformed x (robustsbi train's --x-transform). */
  xTransform?: XTransformSpec;
  /** Go on from this state (trainNPE's resumeFrom). */
  resumeFrom?: TrainingState;
  /** Hand back the last state in trained.finalState (trainNPE's keepFinalState). */
  keepFinalState?: boolean;
  /** Member k > 0 of a deep ensemble: its own initialization and shuffles, member 0's split. */
  member?: number;
  /** Another validation split of the same rows, named; initialization and shuffles unchanged. */
  split?: string;
}): Promise<{ trained: TrainNPEResult; trainS: number; trainCpuS: number }> {
  const { task, data, estimator, config } = opts;
  const cell = opts.member ? opts.cell.fork(`member/${opts.member}`) : opts.cell;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const trained = await trainNPE({
    data,
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    rng: cell.fork('train'),
    ...(opts.member ? { splitRng: opts.cell.fork('train') } : {}),
    ...(opts.split ? { splitRng: opts.cell.fork(`split/${opts.split}`) } : {}),
    createModel: (zscore) =>
      createEstimator(estimator, {
        thetaDim: task.thetaDim,
        xDim: task.xDim,
        zscore,
        rng: cell.fork('model'),
        config,
      }),
    hyperparameters: opts.hyperparameters,
    ...(opts.fused === false ? { fused: false } : {}),
    ...(opts.xTransform ? { xTransform: opts.xTransform } : {}),
    ...(opts.resumeFrom ? { resumeFrom: opts.resumeFrom } : {}),
    ...(opts.keepFinalState ? { keepFinalState: true } : {}),
    onEpoch: (p) => {
      if (p.epoch % 10 === 0)
        console.error(
          `  ${task.name} epoch ${p.epoch}: train ${p.trainLoss.toFixed(3)} val ${p.valLoss.toFixed(3)} (${(p.elapsedMs / 1000).toFixed(0)} s)`,
        );
    },
  });
  const cpu = process.cpuUsage(cpu0);
  return {
    trained,
    trainS: (performance.now() - t0) / 1000,
    trainCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

/**
 * Monte Carlo KL(p || q) = E_p[log p - log q] over samples `ref` of the task's analytic Gaussian
 * posterior p, given log q at each of them (from any estimator); null without an analytic posterior.
 */
export function analyticKLFromLogQ(
  task: Task,
  xo: Float32Array,
  ref: Float32Array,
  logQ: ArrayLike<number>,
): number | null {
  if (!task.analyticPosterior) return null;
  const { mean, cov } = task.analyticPosterior(xo);
  const d = task.thetaDim;
  const n = ref.length / d;
  if (logQ.length !== n) throw new Error(`KL: ${logQ.length} log densities for ${n} samples`);
  const prec = spdInverse(cov);
  const l = cholesky(cov);
  let logDet = 0;
  for (let i = 0; i < d; i++) logDet += 2 * Math.log(l[i]![i]!);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    let quad = 0;
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++)
        quad += (ref[r * d + i]! - mean[i]!) * prec[i]![j]! * (ref[r * d + j]! - mean[j]!);
    const plp = -0.5 * (quad + logDet + d * Math.log(2 * Math.PI));
    sum += plp - logQ[r]!;
  }
  return sum / n;
}

/** KL(p || q) for a robustsbi model q (its log density at the reference samples). */
export function analyticKL(
  model: DensityEstimator,
  task: Task,
  xo: Float32Array,
  ref: Float32Array,
): number | null {
  if (!task.analyticPosterior) return null;
  const d = task.thetaDim;
  const n = ref.length / d;
  const qlp = tidyData(() => {
    const x = tf.tile(tf.tensor2d(xo, [1, task.xDim]), [n, 1]) as tf.Tensor2D;
    return model.logProb(tf.tensor2d(ref, [n, d]), x).dataSync() as Float32Array;
  });
  return analyticKLFromLogQ(task, xo, ref, qlp);
}

/** Mean and sample sd of a list of scores. */
export function meanSd(v: readonly number[]): { mean: number; sd: number } {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, v.length - 1));
  return { mean, sd };
}
