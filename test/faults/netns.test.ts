// Several hosts: the stack and two workers in separate network namespaces. Worker A trains alone;
// its link is cut mid-training; its train activity times out on the missing heartbeat and the
// retry runs on worker B (started after the cut), which resumes from the last stored checkpoint.
// When A's link comes back, its stale attempt must not add or duplicate any result.
// Skipped, with the reason printed, only where namespaces cannot be made (not root, no iproute2).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { Client } from '@temporalio/client';
import type { MongoClient } from 'mongodb';
import { artifactNames, decodeCheckpoint } from '../../activities/artifacts.js';
import { connectTemporal, submitSweep } from '../../cli/sweep-client.js';
import { mongoClient } from '../../infra/connections.js';
import { ArtifactStore } from '../../results/artifacts.js';
import { ResultStore } from '../../results/store.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { sweepWorkflowId, trialWorkflowId } from '../../workflows/messages.js';
import { tinySpec } from '../integration/sweep-harness.js';
import { NetnsLab, probeNetns, startStack, type Host, type HostProcess } from './netns-harness.js';

const cliMain = (() => {
  const js = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
})();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    assert.ok(Date.now() < deadline, `timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

/** `p`, or a failure after `ms` (the timer is cleared either way: no wait keeps the process up). */
async function within<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the server has seen `worker` poll the activity task queue since `sinceMs`. */
async function pollsSince(client: Client, taskQueue: string, worker: HostProcess, sinceMs: number) {
  const r = await client.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: taskQueue },
    taskQueueType: TASK_QUEUE_TYPE_ACTIVITY,
  });
  return (r.pollers ?? []).some((p) => {
    const t = p.lastAccessTime;
    const ms = t ? Number(String(t.seconds ?? 0)) * 1000 + (t.nanos ?? 0) / 1e6 : 0;
    return p.identity?.startsWith(`${worker.child.pid}@`) && ms > sinceMs;
  });
}

const netns = probeNetns();
if (!netns.ok) console.log(`skipping the multi-host fault test: ${netns.reason}`);

let lab: NetnsLab | undefined;
let client: { client: Client; close: () => Promise<void> } | undefined;
let mongo: MongoClient | undefined;

const t0 = Date.now();
const mark = (m: string) => {
  if (process.env.ROBUSTSBI_TEST_LOG)
    console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${m}`);
};

after(async () => {
  await client?.close().catch(() => {});
  mark('temporal client closed');
  await mongo?.close().catch(() => {});
  mark('mongo client closed');
  if (lab) {
    const problems = await lab.destroy();
    mark('lab destroyed');
    assert.deepEqual(problems, [], 'the test network was removed');
    assert.deepEqual(lab.leftovers(), [], 'no namespace or link of the test is left');
  }
});

const HEARTBEAT_TIMEOUT_S = 6;
// temporal.api.enums.v1 TimeoutType and TaskQueueType values (@temporalio/proto is CommonJS: its
// enums cannot be imported by name here).
const TIMEOUT_TYPE_HEARTBEAT = 4;
const TASK_QUEUE_TYPE_ACTIVITY = 2;
const MAX_EPOCHS = 12;

test(
  'a worker cut off the network mid-training: the retry resumes on another host, nothing is duplicated',
  { skip: netns.ok ? false : netns.reason, timeout: 240_000 },
  async () => {
    lab = new NetnsLab();
    const stackHost = lab.addHost('stack');
    const hostA = lab.addHost('wa');
    const hostB = lab.addHost('wb');
    const stack = await startStack(lab, stackHost);
    mark(`stack up on ${stackHost.address} (${stackHost.ns})`);

    client = await connectTemporal(stack.config);
    mongo = mongoClient(stack.config);
    await mongo.connect();
    const db = mongo.db(stack.config.mongo.db);
    const store = new ResultStore(db);
    const artifacts = new ArtifactStore(db);

    const queuePrefix = `netns-${lab.tag}-`;
    const startWorker = (host: Host): HostProcess =>
      lab!.spawn(
        host,
        process.execPath,
        [
          ...process.execArgv.filter((a) => !a.startsWith('--test')),
          cliMain,
          'worker',
          '--queue',
          'cpu',
          '--queue-prefix',
          queuePrefix,
          // The cut comes at a checkpoint epoch of a training that lasts seconds.
          '--checkpoint-every',
          '0',
        ],
        stack.env({
          ROBUSTSBI_LOG_LEVEL: 'info',
          ROBUSTSBI_LOG_FILE: join(lab!.dir, `worker-${host.name}.log`),
        }),
      );
    const polling = (w: HostProcess) => () => {
      assert.equal(w.child.exitCode, null, `a worker exited early: ${w.output()}`);
      return /polling task queue/.test(w.output());
    };

    // Epochs of about a second, so the cut lands mid-training with epochs left for B: an NSF on
    // tfjs ops (a MAF takes the fused wasm step, whose epochs here last a few milliseconds).
    const spec = tinySpec({
      estimators: [{ kind: 'nsf', architecture: { hidden: [16, 16], numTransforms: 2 } }],
      defenses: [{ name: 'none' }],
      budgets: [1500],
      training: { maxEpochs: MAX_EPOCHS, minEpochs: 1, batchSize: 50, patience: 100 },
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
    const checkpoint = artifactNames.checkpoint(trial!.modelId);
    const checkpointEpoch = async () => {
      const bytes = await artifacts.get(checkpoint);
      return bytes ? decodeCheckpoint(bytes).epoch : 0;
    };

    // Only A serves the queue until the cut, so A holds the train activity.
    const workerA = startWorker(hostA);
    await waitFor('worker A to poll', polling(workerA), 90_000);
    mark('worker A polling');
    await submitSweep(client.client, spec, {
      queuePrefix,
      heartbeatTimeout: `${HEARTBEAT_TIMEOUT_S}s`,
    });
    await waitFor('a checkpoint at epoch 3', async () => (await checkpointEpoch()) >= 3, 120_000);

    lab.cut(hostA);
    const cutAt = Date.now();
    const atCut = await checkpointEpoch();
    mark(`cut A's link at checkpoint epoch ${atCut}`);
    assert.ok(atCut < MAX_EPOCHS, `the cut came after training ended (epoch ${atCut})`);
    const workerB = startWorker(hostB);

    // For the log only: when B joined and when it took the training over.
    const seen = new Set<string>();
    const watch = setInterval(() => {
      for (const [key, re] of [
        ['B polling', /polling task queue/],
        ['B resuming the training', /resuming .* from its checkpoint/],
        ['B trained', /trained .* in this attempt/],
      ] as const) {
        if (!seen.has(key) && re.test(workerB.output())) {
          seen.add(key);
          mark(`${key}, ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut`);
        }
      }
    }, 200);
    const sweep = client.client.workflow.getHandle(sweepWorkflowId(sweepIdOf(spec)));
    const final = (await within(
      sweep.result(),
      150_000,
      () => `the sweep did not end within 150 s of the cut; B said: ${workerB.output()}`,
    )) as { state: string; completed: number; failed: number };
    clearInterval(watch);
    mark(`sweep ${final.state}, ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut`);
    assert.equal(final.state, 'completed');
    assert.equal(final.completed, 1);
    assert.equal(final.failed, 0);

    // The trainMany activity of the trial's pack of one: its last attempt ran on B after A's
    // attempt timed out on its heartbeat.
    const history = await client.client.workflow
      .getHandle(trialWorkflowId(trial!.trialId))
      .fetchHistory();
    const events = history.events ?? [];
    const scheduled = events.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'trainMany',
    );
    assert.ok(scheduled, 'the trial scheduled a trainMany activity');
    const started = events.find(
      (e) =>
        e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() ===
        scheduled.eventId?.toString(),
    )?.activityTaskStartedEventAttributes;
    const completed = events.find(
      (e) =>
        e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() ===
        scheduled.eventId?.toString(),
    )?.activityTaskCompletedEventAttributes;
    assert.ok(started && completed, 'the train activity started and completed');
    assert.equal(started.identity, `${workerB.child.pid}@${started.identity?.split('@')[1]}`);
    assert.equal(completed.identity, started.identity, 'B completed the attempt it started');
    mark(`train completed by ${completed.identity} in attempt ${started.attempt}`);
    assert.ok((started.attempt ?? 0) >= 2, `a retried attempt (attempt ${started.attempt})`);
    assert.equal(
      started.lastFailure?.timeoutFailureInfo?.timeoutType,
      TIMEOUT_TYPE_HEARTBEAT,
      `the previous attempt failed on its heartbeat: ${JSON.stringify(started.lastFailure)}`,
    );

    // B resumed from the checkpoint A had stored before the cut and trained only the epochs left.
    const doc = await store.getTrial(trial!.trialId);
    assert.equal(doc?.status, 'completed');
    assert.equal(
      doc?.attempt,
      1,
      'the trial workflow was not restarted, only its activity retried',
    );
    const resumed = doc?.summary?.resumedFromEpoch as number;
    assert.equal(doc?.summary?.epochs, MAX_EPOCHS);
    // A checkpoint write that reached the server just as the link went down may count too.
    assert.ok(
      resumed >= atCut && resumed <= atCut + 1,
      `resumed from epoch ${resumed}, cut at ${atCut}`,
    );
    assert.equal(doc?.summary?.epochsLastAttempt, MAX_EPOCHS - resumed);
    const resumes = workerB.output().match(/resuming \S+ from its checkpoint at epoch \d+/g) ?? [];
    assert.deepEqual(
      resumes,
      [`resuming ${trial!.modelId} from its checkpoint at epoch ${resumed}`],
      'B trained in one attempt, from the stored checkpoint',
    );

    // A comes back: once the server sees it poll again, its stale attempt can reach the server
    // and MongoDB. A graceful stop then ends that attempt for sure, so whatever it was going to
    // write is written before the checks below.
    lab.restore(hostA);
    const restoredAt = Date.now();
    mark("restored A's link");
    await waitFor(
      'A to poll the task queue again',
      () => pollsSince(client!.client, `${queuePrefix}cpu`, workerA, restoredAt),
      60_000,
    );
    mark('A polls again');
    workerA.child.kill('SIGTERM');
    const exitA = await within(workerA.exited, 60_000, () => `A did not stop: ${workerA.output()}`);
    mark(`A stopped (${JSON.stringify(exitA)}); it said:\n${workerA.output().slice(-3000)}`);
    assert.deepEqual(exitA, { code: 0, signal: null }, `A stopped gracefully: ${workerA.output()}`);

    const plan = evaluationPlan(trial!);
    assert.equal(await store.trials.countDocuments({}), 1, 'one trial document');
    const evals = await store.evaluations.find({ trialId: trial!.trialId }).toArray();
    assert.deepEqual(evals.map((e) => e._id).sort(), plan.map((p) => p.evalId).sort());
    assert.equal(await store.evaluations.countDocuments({}), plan.length);
    const later = await store.getTrial(trial!.trialId);
    assert.deepEqual(later, doc, 'the trial document did not change after A came back');
    const models = await artifacts.bucket
      .find({ filename: artifactNames.model(trial!.modelId) })
      .toArray();
    assert.equal(models.length, 1, 'one stored model');
    assert.equal(await artifacts.exists(checkpoint), false, 'no stale checkpoint left by A');
    assert.equal((await store.getSweep(sweepIdOf(spec)))?.status, 'completed');
  },
);
