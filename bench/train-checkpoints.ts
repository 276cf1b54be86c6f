// What the train activity's checkpoints cost: the real activity (Temporal's MockActivityEnvironment)
// against a private embedded FerretDB, one paper trial (gaussian_linear, MAF, RABI's preset) trained
// for a fixed number of epochs with a checkpoint after every epoch (`worker --checkpoint-every 0`,
// the behaviour before the throttle) and with the default (one per DEFAULT_CHECKPOINT_SECONDS),
// alternating in one process. The simulations are stored once before the timed runs.
//
//   node dist/bench/train-checkpoints.js [--budgets 1000,10000] [--epochs 40] [--reps 2]
//                                        [--task gaussian_linear] [--json]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DEFAULT_CHECKPOINT_SECONDS, type ActivityDeps } from '../activities/deps.js';
import { loadDataset } from '../activities/simulate.js';
import { train, type TrainResult } from '../activities/train.js';
import { projectRoot, type Config } from '../infra/config.js';
import { mongoClient } from '../infra/connections.js';
import { createLogger } from '../infra/logger.js';
import { ArtifactStore } from '../results/artifacts.js';
import { ResultStore } from '../results/store.js';
import { initBackend } from '../sbi/backend.js';
import { expandSweep } from '../sweeps/expand.js';
import type { TrialConfig } from '../sweeps/types.js';
import { validateSweepSpec } from '../sweeps/validate.js';
import { simulateInput, trainInput } from '../workflows/trial-steps.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { serverCpuSeconds, withPrivateStack } from './private-stack.js';

export interface CheckpointRun {
  budget: number;
  /** Seconds between checkpoints (0: every epoch). */
  checkpointSeconds: number;
  epochs: number;
  wallS: number;
  cpuS: number;
  ferretCpuS: number;
  checkpoints: number;
  checkpointBytes: number;
}

/** The paper spec's trial at `budget`, run for exactly `epochs` epochs. */
function paperTrial(task: string, budget: number, epochs: number): TrialConfig {
  const path = join(projectRoot(), 'sweeps', `paper-${task}.json`);
  const paper = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const spec = validateSweepSpec({
    ...paper,
    name: `bench-checkpoints-${task}`,
    estimators: ['maf'],
    defenses: [{ name: 'none' }],
    budgets: [budget],
    seeds: [0],
    training: {
      ...(paper.training as object),
      maxEpochs: epochs,
      minEpochs: epochs,
      patience: epochs,
    },
  });
  return expandSweep(spec)[0]!;
}

async function runOn(
  config: Config,
  o: { task: string; budgets: number[]; epochs: number; reps: number },
): Promise<CheckpointRun[]> {
  const backend = await initBackend(process.env.ROBUSTSBI_BACKEND ?? 'wasm');
  const client = mongoClient(config);
  await client.connect();
  try {
    const db = client.db(config.mongo.db);
    const store = new ResultStore(db);
    await store.ensureIndexes();
    const artifacts = new ArtifactStore(db);
    let checkpoints = 0;
    let checkpointBytes = 0;
    const put = artifacts.put.bind(artifacts);
    artifacts.put = (name, data, metadata = {}) => {
      if (metadata.kind === 'checkpoint') {
        checkpoints++;
        checkpointBytes = data.length;
      }
      return put(name, data, metadata);
    };
    const base: ActivityDeps = {
      store,
      artifacts,
      logger: createLogger({ level: 'warn', console: false }),
      codeVersion: 'bench',
      backend: backend.name,
    };
    const out: CheckpointRun[] = [];
    for (const budget of o.budgets) {
      const trial = paperTrial(o.task, budget, o.epochs);
      const input = trainInput(trial);
      await new MockActivityEnvironment().run(loadDataset, base, simulateInput(trial, 'train'));
      for (let rep = 0; rep < o.reps; rep++) {
        for (const seconds of [0, DEFAULT_CHECKPOINT_SECONDS]) {
          checkpoints = 0;
          const ferret0 = serverCpuSeconds(config).mongodb ?? 0;
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          const r: TrainResult = await new MockActivityEnvironment().run(
            train,
            { ...base, checkpointSeconds: seconds },
            { ...input, modelId: `${input.modelId}-${seconds}-${rep}` },
          );
          const c = process.cpuUsage(c0);
          const run: CheckpointRun = {
            budget,
            checkpointSeconds: seconds,
            epochs: r.epochs,
            wallS: (performance.now() - t0) / 1000,
            cpuS: (c.user + c.system) / 1e6,
            ferretCpuS: (serverCpuSeconds(config).mongodb ?? 0) - ferret0,
            checkpoints,
            checkpointBytes,
          };
          console.error(JSON.stringify(run));
          out.push(run);
        }
      }
    }
    return out;
  } finally {
    await client.close();
  }
}

export function checkpointTable(runs: readonly CheckpointRun[]): string {
  const rows = runs.map(
    (r) =>
      `| ${r.budget} | ${r.checkpointSeconds === 0 ? 'every epoch' : `${r.checkpointSeconds} s`} | ${r.epochs} | ${r.wallS.toFixed(2)} | ${((1000 * r.wallS) / r.epochs).toFixed(1)} | ${r.cpuS.toFixed(2)} / ${r.ferretCpuS.toFixed(2)} | ${r.checkpoints} | ${(r.checkpointBytes / 1e6).toFixed(2)} |`,
  );
  return [
    '| N | checkpoints | epochs | wall s | ms per epoch | CPU s: bench / ferretdb | checkpoints stored | MB each |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const budgets = (a.get('budgets') ?? '1000,10000').split(',').map(Number);
  if (budgets.some((b) => !Number.isInteger(b) || b < 10))
    throw new Error(`--budgets must be integers >= 10, got ${a.get('budgets')}`);
  const o = {
    task: a.get('task') ?? 'gaussian_linear',
    budgets,
    epochs: numberArg(a, 'epochs', 40),
    reps: numberArg(a, 'reps', 2),
  };
  const runs = await withPrivateStack('train-checkpoints', (config) => runOn(config, o));
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  if (a.has('json')) console.log(JSON.stringify({ runs, peakRssMiB: peakMiB }));
  else
    console.log(
      `${checkpointTable(runs)}\n\nPeak RSS of the bench process: ${peakMiB.toFixed(0)} MiB.`,
    );
}

if (isMain(import.meta.url)) await runMain(cli);
