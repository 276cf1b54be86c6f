// A training set of several blocks in a real sweep: the trial's pack asks for the set, gets its
// block count, draws every block as an activity of its own, joins them, and trains on the joined
// set, which is byte for byte the one drawn in a single process. The worker serves gaussian_linear
// with blocks of 100 rows (sbi's is 1,000,000), so a 300-row budget has three.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSweepActivities } from '../../activities/index.js';
import { drawDataset, loadDataset, type SimulateInput } from '../../activities/simulate.js';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { encodeSimulations } from '../../sbi/simulation-file.js';
import { getTask } from '../../sbi/tasks/index.js';
import type { Task } from '../../sbi/types.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { trialWorkflowId } from '../../workflows/messages.js';
import {
  HEALTHY_MAF,
  NOISE_EVALUATION,
  openSweepTestContext,
  scheduledItems,
  startWorker,
  tinySpec,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

const blocked = (name: string): Task =>
  Object.create(getTask(name), { simulationBlock: { value: 100 } }) as Task;

let ctx: SweepTestContext;
let worker: RunningWorker;

before(async () => {
  ctx = await openSweepTestContext();
  worker = await startWorker(ctx, 4, (deps) =>
    createSweepActivities({ ...deps, getTask: blocked }),
  );
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

describe('a sweep whose training set has blocks', () => {
  test(
    'draws each block as an activity, joins them, and trains on the one-process bytes',
    { timeout: 180_000 },
    async () => {
      const spec = tinySpec({
        name: 'blocks',
        estimators: [HEALTHY_MAF],
        defenses: [{ name: 'none' }],
        evaluation: NOISE_EVALUATION,
      });
      const [trial] = expandSweep(spec);
      await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
      const final = await waitForSweep(ctx.client, sweepIdOf(spec), () => {}, 500);
      assert.equal(final.state, 'completed');
      assert.equal(final.completed, 1);

      // simulateMany: the training set (3 blocks), each block, the join, then the test set (1 block).
      const history = await ctx.client.workflow
        .getHandle(trialWorkflowId(trial!.trialId))
        .fetchHistory();
      assert.deepEqual(
        scheduledItems<SimulateInput>(history.events ?? [], 'simulateMany').map((items) =>
          items.map((x) => `${x.purpose}${x.block === undefined ? '' : `/${x.block}`}`),
        ),
        [['train'], ['train/0'], ['train/1'], ['train/2'], ['train'], ['test']],
      );

      const input: SimulateInput = {
        purpose: 'train',
        task: trial!.task,
        n: trial!.budget,
        seed: trial!.seed,
        id: trial!.simulationId,
      };
      const deps = { artifacts: ctx.artifacts, getTask: blocked } as Parameters<
        typeof loadDataset
      >[0];
      const stored = await loadDataset(deps, input);
      assert.deepEqual(encodeSimulations(stored), encodeSimulations(drawDataset(input, deps)));
      for (const b of [0, 1, 2])
        assert.ok(await ctx.artifacts.info(`sims/${trial!.simulationId}/block-${b}`), `block ${b}`);
      const doc = await ctx.store.getTrial(trial!.trialId);
      assert.equal(doc?.status, 'completed');
    },
  );
});
