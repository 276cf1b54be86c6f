// FerretDB SIGKILLed during training, kept down for 30 s, then restarted on the same port with the
// same SQLite data: the activities' MongoDB calls fail (server selection gives up after seconds),
// Temporal retries them, trainings resume from their checkpoints, and the sweep completes with
// every result stored once. The worker processes live through it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertSweepIntact,
  FaultStack,
  retriedActivities,
  sleep,
  startSweepInTraining,
  waitForSweepCompleted,
} from './fault-harness.js';

const OUTAGE_MS = 30_000;
let stack: FaultStack | undefined;

before(async () => {
  stack = await FaultStack.start('mongo-down');
});

after(async () => {
  await stack?.close();
});

test('FerretDB down for 30 s mid-sweep loses and duplicates nothing', async () => {
  const s = stack!;
  const prefix = 'faults-mongo-';
  const { spec, trials, workers, atEpoch } = await startSweepInTraining(s, prefix);
  const killed = await s.kill('mongodb');
  const downAt = Date.now();
  // The outage itself; the workers must stay up through it.
  while (Date.now() - downAt < OUTAGE_MS) {
    s.assertWorkersAlive();
    await sleep(1000);
  }
  await s.up();
  assert.notEqual(s.pidOf('mongodb'), killed, 'a new FerretDB runs');

  await waitForSweepCompleted(s, spec, 300_000);
  await assertSweepIntact(s, spec);
  const retries = await retriedActivities(s, trials);
  const total = Object.values(retries).reduce((a, b) => a + b, 0);
  assert.ok(total >= 1, 'the outage made at least one activity fail and be retried');
  for (const w of workers) assert.ok(w.alive(), `worker ${w.pid} survived the outage`);
  console.log(
    `mongo-down: FerretDB SIGKILLed at a checkpoint epoch ${atEpoch}, down ${OUTAGE_MS / 1000} s, restarted; activity retries ${JSON.stringify(retries)}`,
  );
});
