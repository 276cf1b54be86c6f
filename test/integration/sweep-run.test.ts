// A demo-sized sweep on the real stack: every expected trial and evaluation lands in MongoDB exactly
// once, the sweep ends completed with its curves, resubmitting it starts no trial, and a malformed
// spec is refused before anything starts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { submitSweep, sweepStatus, waitForSweep } from '../../cli/sweep-client.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { sweepWorkflowId } from '../../workflows/messages.js';
import {
  openSweepTestContext,
  startWorker,
  tinySpec,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';
import { robustsbi, sharedStackEnv } from './harness.js';

let ctx: SweepTestContext;

const cliMain = (() => {
  const js = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
})();

/** The CLI in a child process without blocking this one (whose worker must keep running). */
function robustsbiAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...process.execArgv.filter((a) => !a.startsWith('--test')), cliMain, ...args],
      { env: sharedStackEnv(), timeout: 240_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
let worker: RunningWorker;

before(async () => {
  ctx = await openSweepTestContext();
  worker = await startWorker(ctx);
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
});

describe('a sweep on the real stack', () => {
  const spec = tinySpec();
  const sweepId = sweepIdOf(spec);
  const trials = expandSweep(spec);
  const plan = trials.flatMap((t) => evaluationPlan(t));

  test('completes with every trial and evaluation stored exactly once', async () => {
    const sub = await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
    assert.equal(sub.sweepId, sweepId);
    assert.equal(sub.attached, false);
    const seen: number[] = [];
    const final = await waitForSweep(ctx.client, sweepId, (p) => seen.push(p.completed), 500);
    assert.equal(final.state, 'completed');
    assert.equal(final.trials, trials.length);
    assert.equal(final.completed, trials.length);
    assert.equal(final.failed, 0);
    assert.equal(final.started, trials.length);
    assert.equal(final.skipped, 0);

    const docs = await ctx.store.trials.find({ sweepIds: sweepId }).toArray();
    assert.deepEqual(docs.map((d) => d._id).sort(), trials.map((t) => t.trialId).sort());
    for (const d of docs) {
      assert.equal(d.status, 'completed');
      assert.equal(d.attempt, 1);
      assert.equal(d.summary.epochs, 3);
      assert.equal(typeof d.summary.testNll, 'number');
      assert.equal(d.modelArtifact, `models/${trials.find((t) => t.trialId === d._id)!.modelId}`);
    }
    const evals = await ctx.store.evaluations
      .find({ trialId: { $in: trials.map((t) => t.trialId) } })
      .toArray();
    assert.equal(evals.length, plan.length);
    assert.deepEqual(evals.map((e) => e._id).sort(), plan.map((p) => p.evalId).sort());
    for (const p of plan) {
      assert.equal(
        await ctx.store.evaluations.countDocuments({
          trialId: p.trialId,
          attack: p.attack,
          objective: p.objective,
          eps: p.eps,
        }),
        1,
      );
    }
    const sweep = await ctx.store.getSweep(sweepId);
    assert.equal(sweep?.status, 'completed');
    assert.equal(sweep?.counts.completed, trials.length);
    const curves = await ctx.store.listCurves(sweepId);
    assert.ok(
      curves.some((c) => c.kind === 'tradeoff'),
      'a trade-off curve was aggregated',
    );
    // Checkpoints are removed once the model is stored; models and simulations stay.
    for (const t of trials) {
      assert.equal(await ctx.artifacts.exists(`checkpoints/${t.modelId}/latest`), false);
      assert.equal(await ctx.artifacts.exists(`models/${t.modelId}`), true);
    }
    assert.equal(await ctx.artifacts.exists(`sims/${trials[0]!.simulationId}`), true);

    const status = await sweepStatus(ctx.client, ctx.store, sweepId);
    assert.equal(status.state, 'completed');
    assert.equal(status.trials, trials.length);
    assert.equal(status.completed, trials.length);
    assert.equal(status.failed, 0);
    assert.equal(status.running, 0);
  });

  test('resubmitting the finished sweep starts no trial and changes no result', async () => {
    const before = await ctx.store.evaluations
      .find({ trialId: { $in: trials.map((t) => t.trialId) } })
      .toArray();
    const sub = await submitSweep(
      ctx.client,
      { ...spec, name: 'renamed', concurrency: 1 },
      { queuePrefix: ctx.queuePrefix },
    );
    assert.equal(sub.sweepId, sweepId);
    const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
    assert.equal(final.state, 'completed');
    assert.equal(final.started, 0);
    assert.equal(final.skipped, trials.length);
    assert.equal(final.completed, trials.length);
    const desc = await ctx.client.workflow.getHandle(sweepWorkflowId(sweepId)).describe();
    assert.equal(desc.status.name, 'COMPLETED');
    for (const t of trials) {
      const d = await ctx.store.getTrial(t.trialId);
      assert.equal(d?.attempt, 1, 'no trial was claimed again');
    }
    const afterDocs = await ctx.store.evaluations
      .find({ trialId: { $in: trials.map((t) => t.trialId) } })
      .toArray();
    assert.equal(afterDocs.length, before.length);
    for (const a of afterDocs) {
      const b = before.find((x) => x._id === a._id)!;
      assert.equal(a.updatedAt.getTime(), b.updatedAt.getTime(), 'no evaluation was rewritten');
    }
  });

  test('the command line reports, lists and reruns the finished sweep', async () => {
    const env = sharedStackEnv();
    const status = robustsbi(['sweep', 'status', sweepId, '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const json = JSON.parse(status.stdout) as Record<string, unknown>;
    assert.equal(json.state, 'completed');
    assert.equal(json.trials, trials.length);
    assert.equal(json.completed, trials.length);
    assert.equal(json.failed, 0);
    assert.equal(json.running, 0);
    const list = robustsbi(['sweep', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${sweepId} +completed`, 'm'));
    const pause = robustsbi(['sweep', 'pause', sweepId], env);
    assert.equal(pause.code, 1);
    assert.match(pause.stderr, /is not running, so it cannot be paused/);
    const rerun = await robustsbiAsync([
      'sweep',
      'rerun-failed',
      sweepId,
      '--wait',
      '--queue-prefix',
      ctx.queuePrefix,
    ]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(rerun.stdout.split('\n')[0], sweepId);
    assert.match(
      rerun.stdout,
      /completed: \d+\/\d+ trials completed \(\d+ already done\), 0 failed/,
    );
    assert.match(
      rerun.stdout,
      new RegExp(
        `${trials.length}/${trials.length} trials completed \\(${trials.length} already done\\)`,
      ),
    );
  });
});

describe('a malformed spec', () => {
  test('is refused with the JSON path of the problem before anything starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'robustsbi-spec-'));
    try {
      const file = join(dir, 'bad.json');
      const bad = {
        ...tinySpec(),
        defenses: [{ name: 'none' }, { name: 'fim', betas: [0.1, -1] }],
      };
      writeFileSync(file, JSON.stringify(bad));
      const query = 'WorkflowType = "sweepWorkflow"';
      const workflowsBefore = (await ctx.client.workflow.count(query)).count;
      const sweepsBefore = await ctx.store.sweeps.countDocuments({});
      const r = robustsbi(['sweep', 'run', file, '--wait'], sharedStackEnv());
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /spec\/defenses\/1\/betas\/1: must be >= 0/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one sentence');
      assert.equal((await ctx.client.workflow.count(query)).count, workflowsBefore);
      assert.equal(await ctx.store.sweeps.countDocuments({}), sweepsBefore);
      writeFileSync(file, '{"name": "x", "tasks": ["gaussian_linear",]}');
      const syntax = robustsbi(['sweep', 'run', file], sharedStackEnv());
      assert.equal(syntax.code, 2);
      assert.match(syntax.stderr, /is invalid: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
