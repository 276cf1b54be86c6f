// A worker SIGKILLed in the middle of a search sweep (while a trial of its second round trains, and
// with it the worker that ran the SweepWorkflow): the training is retried on a new worker, and the
// sweep ends with exactly the proposals of the same sweep run uninterrupted (on a database of its
// own): the history the proposer reads, and so what it proposes, does not depend on the kill.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, test } from 'node:test';
import { submitSweep } from '../../cli/sweep-client.js';
import { ResultStore } from '../../results/store.js';
import { sweepIdOf } from '../../sweeps/expand.js';
import type { SweepSpec, TrialConfig } from '../../sweeps/types.js';
import { validateSweepSpec } from '../../sweeps/validate.js';
import { sweepWorkflowId } from '../../workflows/messages.js';
import { FaultStack, trainingWorkerPid, waitFor, waitForSweepCompleted } from './fault-harness.js';

let stack: FaultStack | undefined;

before(async () => {
  stack = await FaultStack.start('search-worker-kill');
});

after(async () => {
  await stack?.close();
});

function searchSpec(): SweepSpec {
  return validateSweepSpec({
    name: 'faults-search',
    tasks: ['gaussian_linear'],
    estimators: [{ kind: 'maf', architecture: { hidden: [16, 16], numTransforms: 2 } }],
    seeds: [randomInt(1, 1_000_000)],
    budgets: [1000],
    training: { maxEpochs: 15, minEpochs: 1, batchSize: 50, patience: 1000 },
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
    search: {
      space: [{ defense: 'fim-fast', beta: { min: 1e-3, max: 1, scale: 'log' } }],
      objectives: [
        { metric: 'testNll' },
        { metric: 'kl', attack: 'noise', objective: 'rkl', eps: 1 },
      ],
      budget: 5,
      batch: 2,
    },
    concurrency: 2,
  });
}

/** The sweep's trials as (round, beta) in sweep order. */
async function proposals(store: ResultStore, sweepId: string): Promise<[number, number][]> {
  return (await store.listTrials(sweepId)).map((t) => [
    t.positions!.find((p) => p.sweepId === sweepId)!.round!,
    t.config.beta,
  ]);
}

test('a worker killed mid-search: the same proposals as an uninterrupted run', async () => {
  const s = stack!;
  const spec = searchSpec();
  const sweepId = sweepIdOf(spec);
  const client = await s.client();

  // The reference: the same sweep uninterrupted, its results in a database of its own.
  const refDb = `${s.config.mongo.db}_reference`;
  const ref = s.spawnWorker('search-ref-', 2, { MONGODB_DB: refDb });
  await submitSweep(client, spec, { queuePrefix: 'search-ref-' });
  await client.workflow.getHandle(sweepWorkflowId(sweepId)).result();
  const reference = await proposals(new ResultStore((await s.mongo()).db(refDb)), sweepId);
  assert.deepEqual(
    reference.map(([round]) => round),
    [1, 1, 2, 2, 3],
  );
  await s.killWorker(ref);

  // Again on the stack's own database, killing the worker while a round-2 trial trains.
  const prefix = 'search-kill-';
  s.spawnWorker(prefix, 2);
  await submitSweep(client, spec, { queuePrefix: prefix, heartbeatTimeout: '4s' });
  const store = await s.store();
  const victim = await waitFor('a round-2 trial in training', 180_000, async () => {
    s.assertWorkersAlive();
    for (const t of await store.listTrials(sweepId)) {
      if (t.positions!.find((p) => p.sweepId === sweepId)?.round !== 2) continue;
      const pid = await trainingWorkerPid(s, { trialId: t._id } as TrialConfig);
      const w = s.workers.find((x) => x.pid === pid && x.alive());
      if (w) return w;
    }
    return undefined;
  });
  await s.killWorker(victim);
  s.spawnWorker(prefix, 2);
  await waitForSweepCompleted(s, spec, 240_000);

  const got = await proposals(store, sweepId);
  assert.deepEqual(got, reference);
  for (const t of await store.listTrials(sweepId)) assert.equal(t.status, 'completed');
  console.log(
    `search-worker-kill: killed worker ${victim.pid} in round 2; proposals ${JSON.stringify(got)} equal the uninterrupted run's`,
  );
});
