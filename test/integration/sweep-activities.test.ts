// The train and evaluate activities against the real MongoDB-protocol server, driven by Temporal's
// MockActivityEnvironment: a cancelled attempt leaves its last epoch's checkpoint (stored as it
// stops: at the default of one per 10 s, none of these short epochs had one); the next attempt
// resumes from the stored checkpoint even when the heartbeat hint says otherwise, and ends with the
// same model as an uninterrupted run; a trained model and stored evaluations are reused.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Db, MongoClient } from 'mongodb';
import { decodeCheckpoint } from '../../activities/artifacts.js';
import type { ActivityDeps } from '../../activities/deps.js';
import { evaluate, type EvaluateResult } from '../../activities/evaluate.js';
import {
  train,
  type TrainHeartbeat,
  type TrainInput,
  type TrainResult,
} from '../../activities/train.js';
import { loadConfig } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import { createLogger } from '../../infra/logger.js';
import { ArtifactStore } from '../../results/artifacts.js';
import { LearningCurveStore } from '../../results/learning-curves.js';
import { ResultStore } from '../../results/store.js';
import { initBackend, tf } from '../../sbi/backend.js';
import { expandSweep } from '../../sweeps/expand.js';
import { tinySpec } from './sweep-harness.js';

let client: MongoClient;
let db: Db;
let deps: ActivityDeps;

before(async () => {
  if (!process.env.MONGODB_URI)
    throw new Error('This test needs MONGODB_URI of a running server; run it with "npm test".');
  const backend = await initBackend();
  client = mongoClient(loadConfig(process.env));
  await client.connect();
  db = client.db(`activities_test_${process.pid}_${randomBytes(3).toString('hex')}`);
  const store = new ResultStore(db);
  await store.ensureIndexes();
  deps = {
    store,
    artifacts: new ArtifactStore(db),
    logger: createLogger({ level: 'warn', console: false }),
    codeVersion: 'test',
    backend: backend.name,
  };
});

after(async () => {
  await db?.dropDatabase();
  await client?.close();
});

/** The epochs in order of first appearance, without the start's epoch 0. */
function distinctEpochs(epochs: number[]): number[] {
  return [...new Set(epochs)].filter((e) => e > 0);
}

describe('train and evaluate activities', () => {
  const spec = tinySpec({
    defenses: [{ name: 'none' }],
    training: { maxEpochs: 6, minEpochs: 1, batchSize: 100, patience: 50 },
  });
  const trial = expandSweep(spec)[0]!;
  const input: TrainInput = {
    trialId: trial.trialId,
    modelId: trial.modelId,
    simulationId: trial.simulationId,
    task: trial.task,
    estimator: trial.estimator,
    defense: trial.defense,
    budget: trial.budget,
    seed: trial.seed,
    training: trial.training,
  };

  test('a cancelled attempt stops after a stored checkpoint; the retry resumes from the store', async () => {
    const tensors = tf.memory().numTensors;
    const first = new MockActivityEnvironment();
    const beats: TrainHeartbeat[] = [];
    first.on('heartbeat', (d: TrainHeartbeat) => {
      beats.push(d);
      if (d.epoch === 2) first.cancel();
    });
    await assert.rejects(first.run(train, deps, input));
    // Keep-alive beats between epochs repeat the last epoch's details (or the start's epoch 0).
    assert.deepEqual(distinctEpochs(beats.map((b) => b.epoch)), [1, 2]);
    assert.ok(
      beats
        .filter((b) => b.epoch > 0)
        .every((b) => Number.isFinite(b.valLoss) && b.maxEpochs === 6),
    );
    const stored = await deps.artifacts.get(`checkpoints/${trial.modelId}/latest`);
    assert.ok(stored, 'the checkpoint is in the artifact store');
    assert.equal(decodeCheckpoint(stored).epoch, 2);
    assert.equal(await deps.artifacts.exists(`models/${trial.modelId}`), false);

    // The hint claims epoch 5; the store (epoch 2) wins.
    const second = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { epoch: 5 } });
    const resumedBeats: number[] = [];
    second.on('heartbeat', (d: TrainHeartbeat) => resumedBeats.push(d.epoch));
    const r: TrainResult = await second.run(train, deps, input);
    assert.equal(r.resumedFromEpoch, 2);
    assert.equal(r.epochsThisAttempt, 4);
    assert.equal(r.epochs, 6);
    assert.deepEqual(
      distinctEpochs(resumedBeats).filter((e) => e > 2),
      [3, 4, 5, 6],
    );
    assert.ok(
      resumedBeats.every((e) => e >= 2),
      'no beat reports an epoch before the checkpoint',
    );
    assert.equal(r.cached, false);
    assert.equal(await deps.artifacts.exists(`checkpoints/${trial.modelId}/latest`), false);
    assert.equal(await deps.artifacts.exists(r.modelArtifact), true);
    // The learning curve: epochs 1-2 of the cancelled attempt, 3-6 of the resumed one.
    const curves = new LearningCurveStore(db);
    const resumed = (await curves.get(trial.trialId))!;
    assert.deepEqual(resumed.epochs, [1, 2, 3, 4, 5, 6]);
    assert.equal(resumed.attempt, 2);

    // The same configuration trained without interruption reaches the same weights' loss.
    const whole: TrainResult = await new MockActivityEnvironment().run(train, deps, {
      ...input,
      modelId: `${trial.modelId}-whole`,
    });
    assert.equal(whole.resumedFromEpoch, 0);
    assert.equal(whole.bestValLoss, r.bestValLoss);
    assert.equal(whole.bestEpoch, r.bestEpoch);
    // Its curve (written under the same trial, from epoch 1 afresh) equals the pieced-together one.
    const uninterrupted = (await curves.get(trial.trialId))!;
    assert.deepEqual(uninterrupted.epochs, resumed.epochs);
    assert.deepEqual(uninterrupted.trainLoss, resumed.trainLoss);
    assert.deepEqual(uninterrupted.valLoss, resumed.valLoss);

    // A model that exists is reused, not retrained.
    const again: TrainResult = await new MockActivityEnvironment().run(train, deps, input);
    assert.equal(again.cached, true);
    assert.equal(again.epochsThisAttempt, 0);
    assert.equal(again.bestValLoss, r.bestValLoss);
    assert.equal(tf.memory().numTensors, tensors, 'no tensor outlives the activities');
  });

  test('evaluate writes one record per objective and reuses stored ones', async () => {
    const ev = {
      trial: {
        trialId: trial.trialId,
        testSetId: trial.testSetId,
        task: trial.task,
        seed: trial.seed,
        evaluation: { ...trial.evaluation, objectives: ['rkl', 'fkl'] as ('rkl' | 'fkl')[] },
      },
      modelArtifact: `models/${trial.modelId}`,
      attack: 'l2pgd' as const,
      eps: 0.5,
    };
    const tensors = tf.memory().numTensors;
    const r: EvaluateResult = await new MockActivityEnvironment().run(evaluate, deps, ev);
    assert.equal(r.cached, false);
    assert.deepEqual(r.records.map((x) => x.objective).sort(), ['fkl', 'rkl']);
    // A Monte Carlo KL (16 samples here) of a near-zero divergence may come out slightly negative;
    // each run of this test draws a fresh seed. The bound still catches a sign error.
    assert.ok(
      r.records.every(
        (x) => typeof x.klMean === 'number' && Number.isFinite(x.klMean) && x.klMean > -0.5,
      ),
      JSON.stringify(r.records),
    );
    const docs = await deps.store.listEvaluations({ trialId: trial.trialId });
    assert.equal(docs.length, 2);
    assert.equal(await deps.artifacts.exists(`testsets/${trial.testSetId}`), true);
    const again: EvaluateResult = await new MockActivityEnvironment().run(evaluate, deps, ev);
    assert.equal(again.cached, true);
    assert.deepEqual(
      again.records.map((x) => x.klMean).sort(),
      r.records.map((x) => x.klMean).sort(),
    );
    assert.equal((await deps.store.listEvaluations({ trialId: trial.trialId })).length, 2);
    assert.equal(tf.memory().numTensors, tensors);
  });
});
