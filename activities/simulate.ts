// The simulate activity: training simulations or a test set, drawn once per (task, n, seed) and kept
// as an artifact, so every trial, retry and later sweep that needs them reads the same rows.
import { createRng } from '../sbi/rng.js';
import { simulateDataset } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';
import {
  decodeSimulations,
  encodeSimulations,
  type SimulationSet,
} from '../sbi/simulation-file.js';
import { artifactNames } from './artifacts.js';
import type { ActivityDeps } from './deps.js';
import { classify } from './failures.js';

export interface SimulateInput {
  purpose: 'train' | 'test';
  task: string;
  n: number;
  seed: number;
  /** simulationId (train) or testSetId (test) from sweeps/. */
  id: string;
}

export interface SimulateResult {
  artifact: string;
  n: number;
  dropped: number;
  /** true when the artifact existed and nothing was simulated. */
  cached: boolean;
}

export function datasetArtifact(input: Pick<SimulateInput, 'purpose' | 'id'>): string {
  return input.purpose === 'train'
    ? artifactNames.simulations(input.id)
    : artifactNames.testSet(input.id);
}

/** Draws the dataset as `robustsbi train` / `robustsbi evaluate` do for the same task, n and seed. */
export function drawDataset(input: SimulateInput): SimulationSet {
  let task;
  try {
    task = getTask(input.task);
  } catch (err) {
    throw classify(err);
  }
  const rng = createRng(input.seed);
  // The test set comes from a fork of its own, so it differs from a training set of the same seed.
  const data = simulateDataset(
    task,
    input.n,
    input.purpose === 'train' ? rng : rng.fork('evaluate/test-set'),
  );
  if (data.n < 2)
    throw classify(
      new RangeError(`Only ${data.n} of ${input.n} ${input.task} simulations were finite.`),
    );
  return {
    task: input.task,
    seed: input.seed,
    n: data.n,
    dropped: data.dropped,
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    theta: data.theta,
    x: data.x,
  };
}

export async function simulate(deps: ActivityDeps, input: SimulateInput): Promise<SimulateResult> {
  const artifact = datasetArtifact(input);
  const info = await deps.artifacts.info(artifact);
  if (info) {
    return {
      artifact,
      n: Number(info.metadata.n),
      dropped: Number(info.metadata.dropped),
      cached: true,
    };
  }
  const d = drawDataset(input);
  await deps.artifacts.put(artifact, encodeSimulations(d), {
    kind: 'dataset',
    purpose: input.purpose,
    task: d.task,
    seed: d.seed,
    n: d.n,
    dropped: d.dropped,
  });
  deps.logger.info(`simulated ${d.n} ${d.task} rows (${d.dropped} dropped) -> ${artifact}`, {
    component: 'activity',
  });
  return { artifact, n: d.n, dropped: d.dropped, cached: false };
}

/** The dataset of `input`, read from the store, or drawn and stored when missing. */
export async function loadDataset(
  deps: ActivityDeps,
  input: SimulateInput,
): Promise<SimulationSet> {
  const artifact = datasetArtifact(input);
  const bytes = await deps.artifacts.get(artifact);
  if (bytes) return decodeSimulations(bytes, `artifact ${artifact}`);
  await simulate(deps, input);
  const again = await deps.artifacts.get(artifact);
  if (!again) throw new Error(`The artifact ${artifact} was written but cannot be read back.`);
  return decodeSimulations(again, `artifact ${artifact}`);
}
