// A worker process SIGKILLed while it evaluates a shard of a large test set: only that shard is
// redone (on the other worker, after its heartbeat times out); the shards finished before the kill
// are kept, and the sweep completes with every evaluation record stored once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomInt } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { submitSweep } from '../../cli/sweep-client.js';
import { artifactNames } from '../../activities/artifacts.js';
import { expandSweep } from '../../sweeps/expand.js';
import { validateSweepSpec } from '../../sweeps/validate.js';
import { trialWorkflowId } from '../../workflows/messages.js';
import { assertSweepIntact, FaultStack, waitFor, waitForSweepCompleted } from './fault-harness.js';

const SHARDS = 8;
let stack: FaultStack | undefined;

before(async () => {
  stack = await FaultStack.start('shard-kills');
});

after(async () => {
  await stack?.close();
});

test('a worker SIGKILLed during a sharded evaluation loses one shard, and nothing is stored twice', async () => {
  const s = stack!;
  const prefix = 'faults-shards-';
  const spec = validateSweepSpec({
    name: 'faults-shards',
    tasks: ['gaussian_linear'],
    estimators: [{ kind: 'maf', architecture: { hidden: [16, 16], numTransforms: 2 } }],
    defenses: [{ name: 'none' }],
    seeds: [randomInt(1, 1_000_000)],
    budgets: [500],
    training: { maxEpochs: 3, minEpochs: 1, batchSize: 100, patience: 5 },
    // 2,000 points in shards of 250, each ~2 s of PGD on the fused kernels (160 steps took 0.5-0.8 s,
    // and a shard picked 0.9 s after its start could end before the kill landed): long enough that
    // the targeted shard cannot finish between the describe call and the kill.
    evaluation: {
      attacks: ['l2pgd'],
      objectives: ['rkl'],
      eps: [1],
      nTest: 2000,
      steps: 480,
      mcSamples: 2,
      evalSamples: 16,
      coverageSamples: 50,
      coverageLevels: 10,
      attackBatchSize: 2000 / SHARDS,
      tradeoffEps: 1,
    },
    concurrency: 1,
  });
  const [trial] = expandSweep(spec);
  const artifacts = await s.artifacts();
  const chunkName = (c: number) => artifactNames.evaluationChunk(trial!.trialId, 'l2pgd', 1, c);
  // One activity at a time per worker: a killed worker holds one shard.
  s.spawnWorker(prefix);
  s.spawnWorker(prefix);
  // A shard's PGD is one synchronous call that heartbeats when it ends: the timeout leaves it room
  // on a loaded machine, so only the kill makes a shard time out.
  await submitSweep(await s.client(), spec, { queuePrefix: prefix, heartbeatTimeout: '10s' });

  const client = await s.client();
  const target = await waitFor('a shard under way after two were kept', 240_000, async () => {
    s.assertWorkersAlive();
    let kept = 0;
    for (let c = 0; c < SHARDS; c++) if (await artifacts.info(chunkName(c))) kept++;
    if (kept < 2) return undefined;
    const d = await client.workflow.getHandle(trialWorkflowId(trial!.trialId)).describe();
    for (const a of d.raw.pendingActivities ?? []) {
      if (a.activityType?.name !== 'evaluateMany' || a.state !== 2) continue;
      // Only a shard that started moments ago (under a third of a shard's time): an older one may
      // end before the kill lands.
      const started =
        Number(a.lastStartedTime?.seconds ?? 0) * 1000 + (a.lastStartedTime?.nanos ?? 0) / 1e6;
      if (!(Date.now() - started < 600)) continue;
      const pid = Number(/^(\d+)@/.exec(a.lastWorkerIdentity ?? '')?.[1]);
      const w = s.workers.find((x) => x.pid === pid && x.alive());
      if (w) return { worker: w, kept };
    }
    return undefined;
  });
  const before = new Map<number, string>();
  for (let c = 0; c < SHARDS; c++) {
    const info = await artifacts.info(chunkName(c));
    if (info) before.set(c, info.id.toHexString());
  }
  const killedAt = Date.now();
  await s.killWorker(target.worker);
  s.spawnWorker(prefix);

  await waitForSweepCompleted(s, spec, 240_000);
  await assertSweepIntact(s, spec);

  // Each shard's activity ran once, but the one the killed worker held: it ran twice.
  const history = await client.workflow.getHandle(trialWorkflowId(trial!.trialId)).fetchHistory();
  const events = history.events ?? [];
  const shardIds = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'evaluateMany')
      .slice(0, SHARDS)
      .map((e) => String(e.eventId)),
  );
  assert.equal(shardIds.size, SHARDS);
  const attempts = events
    .map((e) => e.activityTaskStartedEventAttributes)
    .filter((st) => st && shardIds.has(String(st.scheduledEventId)))
    .map((st) => st!.attempt ?? 1);
  assert.equal(attempts.length, SHARDS);
  assert.equal(
    attempts.filter((a) => a > 1).length,
    1,
    `shard attempts ${attempts.join(', ')}; ${shardTimeline(events, shardIds, killedAt)}`,
  );
  // The shards kept before the kill were not computed again.
  for (const [c, id] of before) {
    const info = await artifacts.info(chunkName(c));
    assert.equal(info?.id.toHexString(), id, `shard ${c} was rewritten`);
  }
  for (let c = 0; c < SHARDS; c++) assert.ok(await artifacts.info(chunkName(c)), `shard ${c}`);
});

type HistoryEvent = NonNullable<
  Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']
>[number];

/** Each shard's start and end in ms from the kill, and its attempt and worker: why a check failed. */
function shardTimeline(events: HistoryEvent[], shardIds: Set<string>, killedAt: number): string {
  const ms = (e: HistoryEvent) =>
    Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6 - killedAt;
  const ended = new Map<string, number>();
  for (const e of events) {
    const c = e.activityTaskCompletedEventAttributes;
    if (c) ended.set(String(c.scheduledEventId), ms(e));
  }
  return events
    .filter((e) => shardIds.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
    .map((e) => {
      const st = e.activityTaskStartedEventAttributes!;
      const end = ended.get(String(st.scheduledEventId));
      return `[${Math.round(ms(e))}..${end === undefined ? '?' : Math.round(end)} ms, attempt ${st.attempt}, ${st.identity}]`;
    })
    .join(' ');
}
