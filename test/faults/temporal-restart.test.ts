// The Temporal dev server SIGKILLed during training and restarted on the same port with the same
// SQLite database: the workflows carry on from the persisted history, the worker processes reconnect
// by themselves (none is restarted here), and the sweep completes with every result stored once.
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

let stack: FaultStack | undefined;

before(async () => {
  stack = await FaultStack.start('temporal-restart');
});

after(async () => {
  await stack?.close();
});

test('a kill -9 of the Temporal server mid-sweep loses and duplicates nothing', async () => {
  const s = stack!;
  const prefix = 'faults-temporal-';
  const { spec, trials, workers, atEpoch } = await startSweepInTraining(s, prefix);
  const killed = await s.kill('temporal');
  // Long enough for the workers' polls and heartbeats to fail, short of any timeout.
  await sleep(3000);
  await s.up();
  assert.notEqual(s.pidOf('temporal'), killed, 'a new Temporal server runs');

  await waitForSweepCompleted(s, spec, 240_000);
  await assertSweepIntact(s, spec);
  const retries = await retriedActivities(s, trials);
  for (const w of workers) assert.ok(w.alive(), `worker ${w.pid} survived the restart`);
  console.log(
    `temporal-restart: 1 kill -9 of the Temporal server at a checkpoint epoch ${atEpoch}, restarted after 3 s; activity retries ${JSON.stringify(retries)}`,
  );
});
