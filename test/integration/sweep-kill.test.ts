// SIGKILL of a worker process in the middle of a training: a new worker takes the retried train
// activity over and resumes from the checkpoint in the artifact store (it trains only the epochs
// left), and the sweep completes with every result stored once. SIGTERM in the middle of a training
// whose checkpoints are throttled (none due for an hour): the drained attempt stores the epochs it
// trained before it gives up, and the retry resumes from them, so stopping a worker loses nothing.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { decodeCheckpoint } from '../../activities/artifacts.js';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { LearningCurveStore } from '../../results/learning-curves.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { sharedStackEnv, spawnRobustsbi } from './harness.js';
import {
  NOISE_EVALUATION,
  openSweepTestContext,
  startWorker,
  tinySpec,
  sleep,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

let ctx: SweepTestContext;
const children: ChildProcess[] = [];
/** The in-process worker that finishes a test's sweep; a test stops the one before its own. */
let replacement: RunningWorker | undefined;

async function stopReplacement(): Promise<void> {
  await replacement?.stop();
  replacement = undefined;
}

before(async () => {
  ctx = await openSweepTestContext();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopReplacement();
  await ctx?.close();
});

/** A `robustsbi worker` child on this file's queues, its stderr collected. */
function spawnWorker(extra: string[]): { child: ChildProcess; stderr: () => string } {
  let stderr = '';
  const child = spawnRobustsbi(
    ['worker', '--queue', 'cpu', '--queue-prefix', ctx.queuePrefix, ...extra],
    sharedStackEnv(),
  );
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  children.push(child);
  return { child, stderr: () => stderr };
}

test('a worker killed during training is replaced and the trial resumes from its checkpoint', async () => {
  const spec = tinySpec({
    defenses: [{ name: 'none' }],
    budgets: [1500],
    training: { maxEpochs: 10, minEpochs: 1, batchSize: 50, patience: 100 },
    evaluation: NOISE_EVALUATION,
  });
  const [trial] = expandSweep(spec);
  const checkpoint = `checkpoints/${trial!.modelId}/latest`;

  // A checkpoint per epoch: the kill comes at the second of a training that lasts seconds.
  const { child, stderr } = spawnWorker(['--checkpoint-every', '0']);
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child!.once('exit', (_code, signal) => resolve(signal)),
  );

  await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix, heartbeatTimeout: '4s' });
  // Kill once two epochs are checkpointed.
  const deadline = Date.now() + 180_000;
  for (;;) {
    const bytes = await ctx.artifacts.get(checkpoint);
    if (bytes && decodeCheckpoint(bytes).epoch >= 2) break;
    assert.ok(Date.now() < deadline, `no checkpoint reached epoch 2; worker said: ${stderr()}`);
    assert.equal(child.exitCode, null, `the worker exited early: ${stderr()}`);
    await sleep(50);
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const atKill = decodeCheckpoint((await ctx.artifacts.get(checkpoint))!).epoch;
  assert.ok(atKill >= 2 && atKill < 10, `checkpoint at epoch ${atKill}`);
  assert.match(stderr(), /tensor backend/, 'the worker logged its backend');

  replacement = await startWorker(ctx);
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

test('a worker stopped during training stores its epochs first; the retry resumes from them', async () => {
  // Long enough to outlast the worker's 2 s shutdown grace, so the activity is cancelled mid-run:
  // on an idle machine 150 epochs of these (13 ms each) ended inside the grace.
  const maxEpochs = 1000;
  const spec = tinySpec({
    estimators: [{ kind: 'maf', architecture: { hidden: [64, 64], numTransforms: 5 } }],
    defenses: [{ name: 'none' }],
    budgets: [3000],
    training: { maxEpochs, minEpochs: 1, batchSize: 50, patience: 1000 },
    evaluation: NOISE_EVALUATION,
  });
  const [trial] = expandSweep(spec);
  const checkpoint = `checkpoints/${trial!.modelId}/latest`;
  const curves = new LearningCurveStore(ctx.store.db);

  // The first test's replacement must not take this trial.
  await stopReplacement();
  const { child, stderr } = spawnWorker(['--checkpoint-every', '3600']);
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
    assert.ok(Date.now() < deadline, `no third epoch; worker said: ${stderr()}`);
    assert.equal(child.exitCode, null, `the worker exited early: ${stderr()}`);
    await sleep(50);
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, `the worker stops cleanly: ${stderr()}`);
  const bytes = await ctx.artifacts.get(checkpoint);
  assert.ok(bytes, `the drained attempt stored a checkpoint; worker said: ${stderr()}`);
  const atStop = decodeCheckpoint(bytes).epoch;
  assert.ok(
    atStop >= trained && atStop < maxEpochs,
    `checkpoint at epoch ${atStop} (${trained} trained at SIGTERM)`,
  );

  replacement = await startWorker(ctx);
  const final = await waitForSweep(ctx.client, sweepIdOf(spec), () => {}, 500);
  assert.equal(final.state, 'completed');
  assert.equal(final.completed, 1);
  const doc = await ctx.store.getTrial(trial!.trialId);
  assert.equal(doc?.summary?.epochs, maxEpochs);
  assert.equal(doc?.summary?.resumedFromEpoch, atStop, 'resumed from the drained checkpoint');
  assert.equal(doc?.summary?.epochsLastAttempt, maxEpochs - atStop, 'trained only the epochs left');
  assert.equal(await ctx.artifacts.exists(checkpoint), false);
});
