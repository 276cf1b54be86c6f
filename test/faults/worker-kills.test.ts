// Worker processes SIGKILLed during training, three times in one sweep, each replaced by a new one:
// the train activities time out on their heartbeat, are retried on a live worker and resume from
// their checkpoints, and the sweep completes with every result stored exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { submitSweep } from '../../cli/sweep-client.js';
import { expandSweep } from '../../sweeps/expand.js';
import {
  assertSweepIntact,
  checkpointEpochs,
  faultSpec,
  FaultStack,
  retriedActivities,
  trainingWorkerPid,
  waitFor,
  waitForSweepCompleted,
} from './fault-harness.js';

const KILLS = 3;
let stack: FaultStack | undefined;

before(async () => {
  stack = await FaultStack.start('worker-kills');
});

after(async () => {
  await stack?.close();
});

test('three worker SIGKILLs during training lose and duplicate nothing', async () => {
  const s = stack!;
  const prefix = 'faults-kills-';
  const epochs = 12;
  const spec = faultSpec(4, epochs);
  const trials = expandSweep(spec);
  // One activity per worker, so each training in flight runs in its own process.
  s.spawnWorker(prefix);
  s.spawnWorker(prefix);
  await submitSweep(await s.client(), spec, { queuePrefix: prefix, heartbeatTimeout: '4s' });

  const kills: { trialId: string; epoch: number; pid: number }[] = [];
  while (kills.length < KILLS) {
    // A training that has stored a checkpoint and has epochs left, held by one of our live workers.
    const target = await waitFor(
      `training to kill (kill ${kills.length + 1})`,
      180_000,
      async () => {
        s.assertWorkersAlive();
        const epochsNow = await checkpointEpochs(s, trials);
        for (const t of trials) {
          const epoch = epochsNow.get(t.trialId);
          if (epoch === undefined || epoch < 1 || epoch > epochs - 3) continue;
          const pid = await trainingWorkerPid(s, t);
          const w = s.workers.find((x) => x.pid === pid && x.alive());
          if (w) return { trial: t, epoch, worker: w };
        }
        return undefined;
      },
    );
    await s.killWorker(target.worker);
    kills.push({ trialId: target.trial.trialId, epoch: target.epoch, pid: target.worker.pid });
    s.spawnWorker(prefix);
  }

  await waitForSweepCompleted(s, spec, 240_000);
  const docs = await assertSweepIntact(s, spec);
  const retries = await retriedActivities(s, trials);
  assert.ok((retries.trainMany ?? 0) >= KILLS, `train retries ${JSON.stringify(retries)}`);
  // Resumed: trained only the epochs its checkpoint lacked (a cached model would report 0).
  const resumed = docs.filter(
    (d) =>
      (d.summary?.resumedFromEpoch ?? 0) > 0 &&
      d.summary!.epochsLastAttempt === epochs - d.summary!.resumedFromEpoch!,
  );
  assert.ok(
    resumed.length >= 1,
    `no trial resumed from a checkpoint after the kills ${JSON.stringify(kills)}: ${JSON.stringify(docs.map((d) => d.summary))}`,
  );
  console.log(
    `worker-kills: ${kills.length} SIGKILLs at checkpoint epochs ${kills.map((k) => k.epoch).join(', ')}; ${resumed.length} of ${docs.length} trials resumed from a checkpoint; activity retries ${JSON.stringify(retries)}`,
  );
});
