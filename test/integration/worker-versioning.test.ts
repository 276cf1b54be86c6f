// Upgrading the workers of a running sweep (issue 23): a sweep starts on workers of build A in a
// versioned Worker Deployment, workers of build B join, B becomes the deployment's current version,
// A is stopped mid-sweep, and the sweep finishes on B (its workflows are AUTO_UPGRADE) with every
// trial and evaluation stored exactly once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { controlSweep, submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { loadConfig } from '../../infra/config.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { sweepWorkflowId } from '../../workflows/messages.js';
import { createSweepWorker } from '../../workers/sweep-worker.js';
import { sharedStackEnv } from './harness.js';
import {
  HEALTHY_MAF,
  NOISE_EVALUATION,
  openSweepTestContext,
  tinySpec,
  until,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

let ctx: SweepTestContext;
const workers: RunningWorker[] = [];
const deploymentName = `test-${randomBytes(4).toString('hex')}`;

before(async () => {
  ctx = await openSweepTestContext();
});

after(async () => {
  for (const w of workers) await w.stop().catch(() => {});
  await ctx?.close();
});

/** A versioned cpu worker of `build`, configured as `robustsbi worker` is: from the environment. */
async function startBuild(build: string): Promise<RunningWorker> {
  const config = loadConfig({
    ...sharedStackEnv(),
    ROBUSTSBI_WORKER_DEPLOYMENT: deploymentName,
    ROBUSTSBI_BUILD_ID: build,
    ROBUSTSBI_WORKER_VERSIONING: 'on',
  });
  const worker = await createSweepWorker(config, ctx.logger, {
    queue: 'cpu',
    concurrency: 2,
    queuePrefix: ctx.queuePrefix,
    codeVersion: `test-${build}`,
    deployment: {
      deploymentName: config.worker.deploymentName,
      buildId: config.worker.buildId!,
      versioning: config.worker.versioning,
    },
  });
  const running = worker.worker.run();
  const w: RunningWorker = {
    worker,
    stop: async () => {
      if (worker.worker.getState() === 'RUNNING') worker.worker.shutdown();
      await running;
      await worker.close();
    },
  };
  workers.push(w);
  return w;
}

/** What `temporal worker deployment set-current-version` does; retried until the version has polled. */
async function setCurrent(buildId: string): Promise<void> {
  let last: unknown;
  await until(
    `build ${buildId} can become current`,
    async () => {
      try {
        await ctx.client.workflowService.setWorkerDeploymentCurrentVersion({
          namespace: ctx.config.temporal.namespace,
          deploymentName,
          buildId,
          identity: 'worker-versioning test',
        });
        return true;
      } catch (err) {
        last = err;
        return false;
      }
    },
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message} Last error: ${(last as Error)?.message}`);
  });
}

/** The build IDs that completed the sweep workflow's tasks, in history order (duplicates dropped). */
async function buildsOfSweep(sweepId: string): Promise<string[]> {
  const h = await ctx.client.workflow.getHandle(sweepWorkflowId(sweepId)).fetchHistory();
  const out: string[] = [];
  for (const e of h.events ?? []) {
    const a = e.workflowTaskCompletedEventAttributes;
    if (!a) continue;
    const b = a.deploymentVersion?.buildId ?? a.workerVersion?.buildId ?? '?';
    if (out[out.length - 1] !== b) out.push(b);
  }
  return out;
}

describe('a sweep whose workers are upgraded mid-sweep', () => {
  test(
    'finishes on the new build with every result stored once',
    { timeout: 180_000 },
    async () => {
      const a = await startBuild('A');
      await setCurrent('A');
      // Four one-trial packs, one at a time: the upgrade lands between trials.
      const spec = tinySpec({
        name: 'worker upgrade',
        estimators: [HEALTHY_MAF],
        defenses: [{ name: 'none' }, { name: 'fim', betas: [0.01] }],
        seeds: [1 + (Date.now() % 100_000), 2 + (Date.now() % 100_000)],
        evaluation: NOISE_EVALUATION,
        concurrency: 1,
      });
      const sweepId = sweepIdOf(spec);
      const trials = expandSweep(spec);
      assert.equal(trials.length, 4);
      await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });

      await until(
        'a trial completed on build A',
        async () => (await ctx.store.listTrials(sweepId, 'completed')).length >= 1,
      );
      // Held (running trials go on, no new ones start) so that the upgrade lands mid-sweep
      // however fast this machine is; resumed once B is current and A is gone.
      assert.ok(await controlSweep(ctx.client, sweepId, 'pause'));
      await startBuild('B');
      await setCurrent('B');
      await a.stop();
      const doneOnA = (await ctx.store.listTrials(sweepId, 'completed')).length;
      assert.ok(doneOnA < trials.length, `the upgrade happened mid-sweep (${doneOnA} done on A)`);
      assert.ok(await controlSweep(ctx.client, sweepId, 'resume'));

      const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(final.state, 'completed');
      assert.equal(final.completed, trials.length);
      assert.equal(final.failed, 0);

      // Every trial once, completed on its first attempt; every evaluation once.
      const docs = await ctx.store.listTrials(sweepId);
      assert.deepEqual(docs.map((d) => d._id).sort(), trials.map((t) => t.trialId).sort());
      for (const d of docs) {
        assert.equal(d.status, 'completed');
        assert.equal(d.attempt, 1, `trial ${d._id} ran once`);
      }
      for (const t of trials) {
        const evals = await ctx.store.listEvaluations({ trialId: t.trialId });
        assert.deepEqual(
          evals.map((e) => e._id).sort(),
          evaluationPlan(t)
            .map((p) => p.evalId)
            .sort(),
        );
      }
      // The sweep workflow itself moved from A's workers to B's.
      const builds = await buildsOfSweep(sweepId);
      assert.equal(builds[0], 'A');
      assert.equal(builds[builds.length - 1], 'B');
    },
  );
});
