// SIGKILL of a worker process in the middle of a training: a new worker takes the retried train
// activity over and resumes from the checkpoint in the artifact store (it trains only the epochs
// left), and the sweep completes with every result stored once.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { decodeCheckpoint } from '../../activities/artifacts.js';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
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

test('a worker killed during training is replaced and the trial resumes from its checkpoint', async () => {
  const spec = tinySpec({
    defenses: [{ name: 'none' }],
    budgets: [1500],
    training: { maxEpochs: 10, minEpochs: 1, batchSize: 50, patience: 100 },
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

  let stderr = '';
  child = spawnRobustsbi(
    // A checkpoint per epoch: the kill comes at the second of a training that lasts seconds.
    ['worker', '--queue', 'cpu', '--queue-prefix', ctx.queuePrefix, '--checkpoint-every', '0'],
    sharedStackEnv(),
  );
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child!.once('exit', (_code, signal) => resolve(signal)),
  );

  await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix, heartbeatTimeout: '4s' });
  // Kill once two epochs are checkpointed.
  const deadline = Date.now() + 180_000;
  for (;;) {
    const bytes = await ctx.artifacts.get(checkpoint);
    if (bytes && decodeCheckpoint(bytes).epoch >= 2) break;
    assert.ok(Date.now() < deadline, `no checkpoint reached epoch 2; worker said: ${stderr}`);
    assert.equal(child.exitCode, null, `the worker exited early: ${stderr}`);
    await sleep(50);
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const atKill = decodeCheckpoint((await ctx.artifacts.get(checkpoint))!).epoch;
  assert.ok(atKill >= 2 && atKill < 10, `checkpoint at epoch ${atKill}`);
  assert.match(stderr, /tensor backend/, 'the worker logged its backend');

  second = await startWorker(ctx);
  const final = await waitForSweep(ctx.client, sweepIdOf(spec), () => {}, 500);
  assert.equal(final.state, 'completed');
  assert.equal(final.completed, 1);
  assert.equal(final.failed, 0);

  const doc = await ctx.store.getTrial(trial!.trialId);
  assert.equal(doc?.status, 'completed');
  assert.equal(doc?.attempt, 1, 'the trial workflow was not restarted, only its activity retried');
  assert.equal(doc?.summary?.epochs, 10);
  assert.equal(doc?.summary?.resumedFromEpoch, atKill, 'resumed from the stored checkpoint');
  assert.equal(doc?.summary?.epochsLastAttempt, 10 - atKill, 'retrained only the epochs left');
  const plan = evaluationPlan(trial!);
  const evals = await ctx.store.evaluations.find({ trialId: trial!.trialId }).toArray();
  assert.deepEqual(evals.map((e) => e._id).sort(), plan.map((p) => p.evalId).sort());
  assert.equal(await ctx.artifacts.exists(checkpoint), false);
});
