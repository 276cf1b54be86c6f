// Sweep control on the real stack: a non-retryable trial failure recorded with its reason and rerun on
// resubmission (the completed trial untouched), pause / resume, and cancel.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { controlSweep, submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import type { SweepSpec } from '../../sweeps/types.js';
import {
  SWEEP_WORKFLOW_TYPE,
  progressQuery,
  sweepWorkflowId,
  taskQueueName,
  trialWorkflowId,
  type SweepProgress,
  type SweepWorkflowInput,
} from '../../workflows/messages.js';
import {
  openSweepTestContext,
  startWorker,
  NOISE_EVALUATION,
  tinySpec,
  sleep,
  until,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';
import { FAILURE_TYPES } from '../../sweeps/failures.js';

let ctx: SweepTestContext;
let worker: RunningWorker;

before(async () => {
  ctx = await openSweepTestContext();
  worker = await startWorker(ctx);
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

describe('sweep control', () => {
  const evaluation = NOISE_EVALUATION;

  test('an invalid trial fails once, non-retryably, with its reason stored; resubmission reruns only it', async () => {
    // Past the client's validation on purpose: the worker must still refuse it without retrying.
    const good = tinySpec({ defenses: [{ name: 'none' }], evaluation });
    const bad = { ...good, tasks: ['gaussian_linear', 'no_such_task'] } as unknown as SweepSpec;
    const badId = sweepIdOf(bad);
    const input: SweepWorkflowInput = {
      sweepId: badId,
      spec: bad,
      options: { queuePrefix: ctx.queuePrefix },
    };
    const start = () =>
      ctx.client.workflow.start(SWEEP_WORKFLOW_TYPE, {
        workflowId: sweepWorkflowId(badId),
        taskQueue: taskQueueName('cpu', ctx.queuePrefix),
        args: [input],
      });
    await start();
    const final = await waitForSweep(ctx.client, badId, () => {}, 500);
    assert.equal(final.state, 'failed');
    assert.equal(final.completed, 1);
    assert.equal(final.failed, 1);
    assert.equal(final.failures[0]?.type, FAILURE_TYPES.invalidConfig);
    const [okTrial, badTrial] = expandSweep(bad);
    const failed = await ctx.store.getTrial(badTrial!.trialId);
    assert.equal(failed?.status, 'failed');
    assert.equal(failed?.error?.type, FAILURE_TYPES.invalidConfig);
    assert.equal(failed?.error?.nonRetryable, true);
    assert.match(failed?.error?.message ?? '', /no_such_task/);
    const sweepDoc = await ctx.store.getSweep(badId);
    assert.equal(sweepDoc?.status, 'failed');
    // The simulate activity ran exactly once: no retry of a non-retryable failure.
    const history = await ctx.client.workflow
      .getHandle(trialWorkflowId(badTrial!.trialId))
      .fetchHistory();
    const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
    assert.equal(started.length, 1, 'simulate');
    // The claim and the failure record run as local activities: one marker each, no retry.
    const local = (history.events ?? []).filter(
      (e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
    );
    assert.equal(local.length, 2, 'claim and the failure record');
    assert.equal(
      started.find((e) => e.activityTaskStartedEventAttributes!.attempt !== 1),
      undefined,
    );

    await start();
    const again = await waitForSweep(ctx.client, badId, () => {}, 500);
    assert.equal(again.started, 1, 'only the failed trial runs again');
    assert.equal(again.skipped, 1);
    assert.equal((await ctx.store.getTrial(okTrial!.trialId))?.attempt, 1);
    assert.equal((await ctx.store.getTrial(badTrial!.trialId))?.attempt, 2);
  });

  test('pause holds new trials back, resume finishes the sweep, cancel ends one as cancelled', async () => {
    const paused = tinySpec({ concurrency: 1, evaluation });
    const pausedId = sweepIdOf(paused);
    const handle = (await submitSweep(ctx.client, paused, { queuePrefix: ctx.queuePrefix })).handle;
    assert.equal(await controlSweep(ctx.client, pausedId, 'pause'), true);
    let p: SweepProgress = await handle.query(progressQuery);
    await until('the sweep is paused', async () => {
      p = await handle.query(progressQuery);
      return p.state === 'paused';
    });
    await until(
      'the running trial is done',
      async () => (await handle.query(progressQuery)).running === 0,
    );
    await sleep(1500);
    p = await handle.query(progressQuery);
    assert.equal(p.state, 'paused');
    assert.ok(p.started <= 1, `started ${p.started} trials while paused`);
    assert.equal((await ctx.store.getSweep(pausedId))?.status, 'paused');
    assert.equal(await controlSweep(ctx.client, pausedId, 'resume'), true);
    const done = await waitForSweep(ctx.client, pausedId, () => {}, 500);
    assert.equal(done.state, 'completed');
    assert.equal(done.completed, 2);

    const cancelled = tinySpec({ concurrency: 1, evaluation });
    const cancelledId = sweepIdOf(cancelled);
    const h2 = (await submitSweep(ctx.client, cancelled, { queuePrefix: ctx.queuePrefix })).handle;
    await until('a trial is running', async () => (await h2.query(progressQuery)).running > 0);
    assert.equal(await controlSweep(ctx.client, cancelledId, 'cancel'), true);
    const end = await waitForSweep(ctx.client, cancelledId, () => {}, 500);
    assert.equal(end.state, 'cancelled');
    assert.ok(end.cancelled + end.completed >= 1);
    assert.equal((await ctx.store.getSweep(cancelledId))?.status, 'cancelled');
    assert.equal(
      await controlSweep(ctx.client, cancelledId, 'pause'),
      false,
      'an ended sweep takes no signal',
    );
  });
});
