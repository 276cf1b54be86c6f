// SIGTERM to a worker in the middle of a training whose checkpoints are throttled (none is due for
// an hour): the drained attempt stores the epochs it trained before it gives up, and the retry on a
// new worker resumes from there, so stopping a worker loses no training.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { decodeCheckpoint } from '../../activities/artifacts.js';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { LearningCurveStore } from '../../results/learning-curves.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { sharedStackEnv, spawnRobustsbi } from './harness.js';
import {
  openSweepTestContext,
  startWorker,
  tinySpec,
  sleep,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

let ctx: SweepTestContext;
let child: ChildProcess | undefined;
let second: RunningWorker | undefined;

before(async () => {
  ctx = await openSweepTestContext();
});

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await second?.stop();
  await ctx?.close();
});

test('a worker stopped during training stores its epochs first; the retry resumes from them', async () => {
  // Long enough to outlast the worker's 2 s shutdown grace: the activity is cancelled mid-run.
  const maxEpochs = 150;
  const spec = tinySpec({
    estimators: [{ kind: 'maf', architecture: { hidden: [64, 64], numTransforms: 5 } }],
    defenses: [{ name: 'none' }],
    budgets: [3000],
    training: { maxEpochs, minEpochs: 1, batchSize: 50, patience: 1000 },
    evaluation: {
      attacks: ['noise'],
      objectives: ['rkl'],
      eps: [1],
      nTest: 20,
      evalSamples: 16,
      coverageSamples: 50,
      coverageLevels: 10,
      tradeoffEps: 1,
    },
  });
  const [trial] = expandSweep(spec);
  const checkpoint = `checkpoints/${trial!.modelId}/latest`;
  const curves = new LearningCurveStore(ctx.store.db);

  let stderr = '';
  child = spawnRobustsbi(
    ['worker', '--queue', 'cpu', '--queue-prefix', ctx.queuePrefix, '--checkpoint-every', '3600'],
    sharedStackEnv(),
  );
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child!.once('exit', (code) => resolve(code)),
  );

  await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix, heartbeatTimeout: '4s' });
  // Stop the worker once three epochs are trained (their losses are in the learning curve).
  const deadline = Date.now() + 180_000;
  let trained: number;
  for (;;) {
    trained = (await curves.get(trial!.trialId))?.epochs.length ?? 0;
    if (trained >= 3) break;
    assert.ok(Date.now() < deadline, `no third epoch; worker said: ${stderr}`);
    assert.equal(child.exitCode, null, `the worker exited early: ${stderr}`);
    await sleep(50);
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, `the worker stops cleanly: ${stderr}`);
  const bytes = await ctx.artifacts.get(checkpoint);
  assert.ok(bytes, `the drained attempt stored a checkpoint; worker said: ${stderr}`);
  const atStop = decodeCheckpoint(bytes).epoch;
  assert.ok(
    atStop >= trained && atStop < maxEpochs,
    `checkpoint at epoch ${atStop} (${trained} trained at SIGTERM)`,
  );

  second = await startWorker(ctx);
  const final = await waitForSweep(ctx.client, sweepIdOf(spec), () => {}, 500);
  assert.equal(final.state, 'completed');
  assert.equal(final.completed, 1);
  const doc = await ctx.store.getTrial(trial!.trialId);
  assert.equal(doc?.summary?.epochs, maxEpochs);
  assert.equal(doc?.summary?.resumedFromEpoch, atStop, 'resumed from the drained checkpoint');
  assert.equal(doc?.summary?.epochsLastAttempt, maxEpochs - atStop, 'trained only the epochs left');
  assert.equal(await ctx.artifacts.exists(checkpoint), false);
});
