// Records the event histories that test/unit/workflows/replay.test.ts replays, with the workflow code
// of the checkout it runs in. Run it before a change to the workflows (on the commit before), against
// a running stack, and commit what it writes: the new code must replay histories the old code made,
// since sweeps and trials running at a deploy go on under the new code.
//
//   TEMPORAL_ADDRESS=127.0.0.1:7233 MONGODB_URI='mongodb://127.0.0.1:27017/?directConnection=true' \
//     node dist/test/replay/record-histories.js test/replay/histories/<version> [case ...]
//
// Each case is a tiny sweep run to its end by a worker in this process; every workflow it started
// (the sweep, its trials or packs) is written as <case>--<workflow kind>-<n>.pb, the
// History message in protobuf's binary form (the JSON codec of this SDK version cannot load it).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import {
  controlSweep,
  submitSweep,
  trainingProgress,
  waitForSweep,
} from '../../cli/sweep-client.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import type { SweepSpec } from '../../sweeps/types.js';
import { packWorkflowId, sweepWorkflowId, trialWorkflowId } from '../../workflows/messages.js';
import {
  HEALTHY_MAF,
  NOISE_EVALUATION,
  OVERFLOWING_MAF,
  openSweepTestContext,
  startWorker,
  tinySpec,
  until,
  type SweepTestContext,
} from '../integration/sweep-harness.js';

interface Case {
  name: string;
  spec: SweepSpec;
  /** Cancels the sweep once its first trial is training. */
  cancel?: boolean;
}

const cases = (): Case[] => [
  {
    // Workflow per trial: one completes, one diverges (a final failure, recorded on the trial).
    name: 'trials',
    spec: tinySpec({
      name: 'replay-trials',
      estimators: [HEALTHY_MAF, OVERFLOWING_MAF],
      defenses: [{ name: 'none' }],
      training: { maxEpochs: 3, minEpochs: 1, batchSize: 100, patience: 5, maxNanResets: 1 },
      evaluation: { ...NOISE_EVALUATION, eps: [0.5, 1] },
      concurrency: 2,
    }),
  },
  {
    // The same two trials packed into one workflow.
    name: 'pack',
    spec: tinySpec({
      name: 'replay-pack',
      estimators: [HEALTHY_MAF, OVERFLOWING_MAF],
      defenses: [{ name: 'none' }],
      training: { maxEpochs: 3, minEpochs: 1, batchSize: 100, patience: 5, maxNanResets: 1 },
      evaluation: { ...NOISE_EVALUATION, eps: [0.5, 1] },
      concurrency: 2,
      pack: 2,
    }),
  },
  {
    // A trial cancelled while it trains.
    name: 'cancelled',
    spec: tinySpec({
      name: 'replay-cancelled',
      estimators: [HEALTHY_MAF],
      defenses: [{ name: 'none' }],
      training: { maxEpochs: 400, minEpochs: 400, batchSize: 100, patience: 1000 },
      evaluation: NOISE_EVALUATION,
      concurrency: 1,
    }),
    cancel: true,
  },
  {
    // A search: a grid of one (round 0), then two proposed rounds until the budget.
    name: 'search',
    spec: tinySpec({
      name: 'replay-search',
      estimators: [HEALTHY_MAF],
      defenses: [{ name: 'none' }],
      training: { maxEpochs: 2, minEpochs: 1, batchSize: 100, patience: 5 },
      evaluation: NOISE_EVALUATION,
      search: {
        space: [{ defense: 'fim-fast', beta: { min: 1e-3, max: 1, scale: 'log' } }],
        objectives: [
          { metric: 'testNll' },
          { metric: 'kl', attack: 'noise', objective: 'rkl', eps: 1 },
        ],
        budget: 4,
        batch: 2,
      },
      concurrency: 2,
    }),
  },
  {
    // Its two trials, then their adversarial examples (one activity each) before the aggregation.
    name: 'examples',
    spec: tinySpec({
      name: 'replay-examples',
      estimators: [HEALTHY_MAF],
      training: { maxEpochs: 2, minEpochs: 1, batchSize: 100, patience: 5 },
      evaluation: { ...NOISE_EVALUATION, examples: { eps: 1, samples: 50, predictive: 2 } },
      concurrency: 2,
    }),
  },
];

async function record(ctx: SweepTestContext, c: Case, outDir: string): Promise<void> {
  const sweepId = sweepIdOf(c.spec);
  const trials = expandSweep(c.spec);
  await submitSweep(ctx.client, c.spec, { queuePrefix: ctx.queuePrefix });
  if (c.cancel) {
    await until(
      'the trial trains',
      async () => (await trainingProgress(ctx.client, trials[0]!.trialId)) !== undefined,
    );
    await controlSweep(ctx.client, sweepId, 'cancel');
  }
  const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
  console.log(`${c.name}: sweep ${sweepId} ended ${final.state}`);
  // The sweep and the children it started (IDs as the sweep names them).
  // A search's trials are known once it has proposed them: the store lists them in sweep order.
  const children = c.spec.search
    ? (await ctx.store.listTrials(sweepId)).map((t) => trialWorkflowId(t._id))
    : (c.spec.pack ?? 1) > 1
      ? [packWorkflowId(sweepId, 0, trials.length - 1)]
      : trials.map((t) => trialWorkflowId(t.trialId));
  const ids = [sweepWorkflowId(sweepId), ...children];
  for (const [n, workflowId] of ids.entries()) {
    const history = await ctx.client.workflow.getHandle(workflowId).fetchHistory();
    const kind = workflowId.split('/')[0];
    const file = join(outDir, `${c.name}--${kind}-${n}.pb`);
    writeFileSync(file, proto.temporal.api.history.v1.History.encode(history).finish());
    console.log(`  ${workflowId} -> ${file} (${history.events?.length ?? 0} events)`);
  }
}

async function main(): Promise<void> {
  const outDir = process.argv[2];
  if (!outDir) throw new Error('Name the folder to write the histories to.');
  mkdirSync(outDir, { recursive: true });
  const ctx = await openSweepTestContext();
  const worker = await startWorker(ctx);
  try {
    // Optional case names after the folder record those alone.
    const only = process.argv.slice(3);
    for (const c of cases())
      if (only.length === 0 || only.includes(c.name)) await record(ctx, c, outDir);
  } finally {
    await worker.stop();
    await ctx.close();
  }
}

await main();
