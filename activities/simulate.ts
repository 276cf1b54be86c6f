// The simulate activity: training simulations or a test set, drawn once per (task, n, seed) and kept
// as an artifact, so every trial, retry and later sweep that needs them reads the same rows.
//
// A dataset of several blocks (sbi/simulate.ts: large n of a costly task) is not drawn in one call:
// the call answers with its block count instead, the workflow draws each block as an activity of
// its own (`block`, on any worker, each kept as an artifact, so a block lost with its worker is
// redrawn alone; a set of very many blocks, a run of them per activity), and a last call joins them
// by reference: the dataset's artifact then lists its blocks. Reading it back gives the bytes one call over every block would have drawn.
import { createRng, type Rng } from '../sbi/rng.js';
import { joinBlocks, simulateBlock, simulationBlockCount } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';
import {
  decodeSimulations,
  encodeSimulations,
  type SimulationSet,
} from '../sbi/simulation-file.js';
import type { Task } from '../sbi/types.js';
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
  /** Draw this block of the dataset only (when the dataset answered with `blocks`). */
  block?: number;
  /** With `block`: draw the blocks from `block` to this one, in turn (each kept as it is drawn). */
  lastBlock?: number;
}

export interface SimulateResult {
  artifact: string;
  /** Rows kept (of the block, for a block). */
  n: number;
  dropped: number;
  /** true when the artifact existed and nothing was simulated. */
  cached: boolean;
  /**
   * Set when the dataset has this many blocks and some are not drawn yet: nothing was stored. Draw
   * each with `block`, then call again without it to join them.
   */
  blocks?: number;
}

export function datasetArtifact(input: Pick<SimulateInput, 'purpose' | 'id'>): string {
  return input.purpose === 'train'
    ? artifactNames.simulations(input.id)
    : artifactNames.testSet(input.id);
}

function taskOf(deps: Pick<ActivityDeps, 'getTask'>, input: SimulateInput): Task {
  try {
    return (deps.getTask ?? getTask)(input.task);
  } catch (err) {
    throw classify(err);
  }
}

/** The stream of the dataset: a test set forks its own, so it differs from a training set of the same seed. */
function datasetStream(input: SimulateInput): Rng {
  const rng = createRng(input.seed);
  return input.purpose === 'train' ? rng : rng.fork('evaluate/test-set');
}

function asSet(
  input: SimulateInput,
  task: Task,
  d: { theta: Float32Array; x: Float32Array; n: number; dropped: number },
): SimulationSet {
  return {
    task: input.task,
    seed: input.seed,
    n: d.n,
    dropped: d.dropped,
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    theta: d.theta,
    x: d.x,
  };
}

function checkRows(input: SimulateInput, n: number): void {
  if (n < 2)
    throw classify(
      new RangeError(`Only ${n} of ${input.n} ${input.task} simulations were finite.`),
    );
}

/** Draws the whole dataset in this process, as `robustsbi train` / `robustsbi evaluate` do. */
export function drawDataset(
  input: SimulateInput,
  deps: Pick<ActivityDeps, 'getTask'> = {},
): SimulationSet {
  const task = taskOf(deps, input);
  const rng = datasetStream(input);
  const count = simulationBlockCount(task, input.n);
  const blocks = Array.from({ length: count }, (_, b) => simulateBlock(task, input.n, rng, b));
  const d = asSet(input, task, joinBlocks(blocks, task.thetaDim, task.xDim));
  checkRows(input, d.n);
  return d;
}

const blockName = (artifact: string, block: number) => `${artifact}/block-${block}`;

/** A dataset artifact that lists its blocks instead of holding rows. */
const BLOCK_LIST_FORMAT = 'robustsbi-dataset-blocks/1';

/** The result of a dataset or block already stored, from its metadata; undefined when absent. */
async function storedResult(
  deps: ActivityDeps,
  artifact: string,
): Promise<SimulateResult | undefined> {
  const info = await deps.artifacts.info(artifact);
  if (!info) return undefined;
  return {
    artifact,
    n: Number(info.metadata.n),
    dropped: Number(info.metadata.dropped),
    cached: true,
  };
}

async function simulateOneBlock(
  deps: ActivityDeps,
  input: SimulateInput,
  block: number,
): Promise<SimulateResult> {
  const artifact = blockName(datasetArtifact(input), block);
  const stored = await storedResult(deps, artifact);
  if (stored) return stored;
  const task = taskOf(deps, input);
  let b;
  try {
    b = simulateBlock(task, input.n, datasetStream(input), block);
  } catch (err) {
    throw classify(err);
  }
  await deps.artifacts.put(artifact, encodeSimulations(asSet(input, task, b)), {
    kind: 'dataset-block',
    purpose: input.purpose,
    task: input.task,
    seed: input.seed,
    block,
    n: b.n,
    dropped: b.dropped,
  });
  deps.logger.info(
    `simulated block ${block} of ${input.task} (${b.n} rows, ${b.dropped} dropped) -> ${artifact}`,
    { component: 'activity' },
  );
  return { artifact, n: b.n, dropped: b.dropped, cached: false };
}

/** The blocks `block`..`lastBlock`; their rows and drops summed, cached when all were stored. */
async function simulateBlocks(
  deps: ActivityDeps,
  input: SimulateInput,
  block: number,
  lastBlock: number,
): Promise<SimulateResult> {
  const out = { ...(await simulateOneBlock(deps, input, block)) };
  for (let b = block + 1; b <= lastBlock; b++) {
    const r = await simulateOneBlock(deps, input, b);
    out.n += r.n;
    out.dropped += r.dropped;
    out.cached &&= r.cached;
  }
  return out;
}

export async function simulate(deps: ActivityDeps, input: SimulateInput): Promise<SimulateResult> {
  if (input.block !== undefined)
    return simulateBlocks(deps, input, input.block, input.lastBlock ?? input.block);
  const artifact = datasetArtifact(input);
  const stored = await storedResult(deps, artifact);
  if (stored) return stored;
  const task = taskOf(deps, input);
  const count = simulationBlockCount(task, input.n);
  if (count === 1) {
    const d = drawDataset(input, deps);
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
  const names = Array.from({ length: count }, (_, b) => blockName(artifact, b));
  const infos = await Promise.all(names.map((name) => deps.artifacts.info(name)));
  if (infos.some((i) => i === null))
    return { artifact, n: 0, dropped: 0, cached: false, blocks: count };
  const n = infos.reduce((s, i) => s + Number(i!.metadata.n), 0);
  const dropped = infos.reduce((s, i) => s + Number(i!.metadata.dropped), 0);
  checkRows(input, n);
  await deps.artifacts.put(
    artifact,
    new TextEncoder().encode(JSON.stringify({ format: BLOCK_LIST_FORMAT, blocks: names })),
    {
      kind: 'dataset',
      purpose: input.purpose,
      task: input.task,
      seed: input.seed,
      n,
      dropped,
      blocks: count,
    },
  );
  deps.logger.info(
    `joined ${count} blocks of ${input.task} (${n} rows, ${dropped} dropped) -> ${artifact}`,
    { component: 'activity' },
  );
  return { artifact, n, dropped, cached: false };
}

async function readSet(deps: ActivityDeps, name: string): Promise<SimulationSet | undefined> {
  const bytes = await deps.artifacts.get(name);
  if (!bytes) return undefined;
  if (bytes[0] === 0x7b) {
    // A block list: binary datasets start with their padded header's length, a multiple of 4,
    // so never with "{" (123).
    const list = JSON.parse(new TextDecoder().decode(bytes)) as {
      format?: string;
      blocks?: string[];
    };
    if (list.format === BLOCK_LIST_FORMAT && Array.isArray(list.blocks)) {
      const parts: SimulationSet[] = [];
      for (const b of list.blocks) {
        const part = await readSet(deps, b);
        if (!part)
          throw new Error(
            `The dataset ${name} lists the block ${b}, which the artifact store does not hold.`,
          );
        parts.push(part);
      }
      const first = parts[0]!;
      return { ...first, ...joinBlocks(parts, first.thetaDim, first.xDim) };
    }
  }
  return decodeSimulations(bytes, `artifact ${name}`);
}

/** The dataset of `input`, read from the store, or drawn (block by block) and stored when missing. */
export async function loadDataset(
  deps: ActivityDeps,
  input: SimulateInput,
): Promise<SimulationSet> {
  const artifact = datasetArtifact(input);
  const stored = await readSet(deps, artifact);
  if (stored) return stored;
  const r = await simulate(deps, input);
  if (r.blocks !== undefined) {
    for (let b = 0; b < r.blocks; b++) await simulate(deps, { ...input, block: b });
    await simulate(deps, input);
  }
  const again = await readSet(deps, artifact);
  if (!again) throw new Error(`The artifact ${artifact} was written but cannot be read back.`);
  return again;
}
