// Search attributes on the real stack (issue 23): the embedded dev server registers them at start,
// a sweep's workflows carry them, and a sweep's failed trials are found by a visibility query, both
// through the client and through `robustsbi sweep list`. The failure is a training that diverges
// (the OVERFLOWING_MAF of sweep-divergence.test.ts).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  listWorkflows,
  searchAttributesRegistered,
  submitSweep,
  waitForSweep,
  type ListedWorkflow,
} from '../../cli/sweep-client.js';
import { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { SEARCH_ATTRIBUTES } from '../../sweeps/search-attributes.js';
import { sweepWorkflowId, trialWorkflowId } from '../../workflows/messages.js';
import { robustsbi, sharedStackEnv } from './harness.js';
import {
  HEALTHY_MAF,
  NOISE_EVALUATION,
  OVERFLOWING_MAF,
  openSweepTestContext,
  startWorker,
  tinySpec,
  until,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

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

/** Visibility is eventually consistent: waits until the query finds `n` workflows. */
async function findN(query: string, n: number): Promise<ListedWorkflow[]> {
  let found: ListedWorkflow[] = [];
  await until(
    `${n} workflows match ${query}`,
    async () => (found = await listWorkflows(ctx.client, query)).length === n,
    30_000,
  );
  return found;
}

test('a namespace without them is told apart, so sweeps there start without them', async () => {
  const namespace = `nosa-${ctx.queuePrefix.replace(/-$/, '')}`;
  await ctx.client.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  const other = new Client({ connection: ctx.client.connection, namespace });
  let got: Awaited<ReturnType<typeof searchAttributesRegistered>> | undefined;
  await until(
    'the new namespace answers',
    async () => (got = await searchAttributesRegistered(other)).missing.length > 0,
    20_000,
  );
  assert.deepEqual(got, { ok: false, missing: Object.keys(SEARCH_ATTRIBUTES) });
});

test("a sweep's failed trials are found by their search attributes", async () => {
  assert.deepEqual(await searchAttributesRegistered(ctx.client), { ok: true, missing: [] });

  const spec = tinySpec({
    name: 'search attributes',
    estimators: [HEALTHY_MAF, OVERFLOWING_MAF],
    defenses: [{ name: 'none' }],
    training: { maxEpochs: 3, minEpochs: 1, batchSize: 100, patience: 5, maxNanResets: 1 },
    evaluation: NOISE_EVALUATION,
  });
  const sweepId = sweepIdOf(spec);
  const [healthy, diverging] = expandSweep(spec);
  await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
  const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
  assert.equal(final.state, 'failed');
  assert.equal(final.failed, 1);

  const failed = await findN(`SweepId = '${sweepId}' AND TrialStatus = 'failed'`, 1);
  assert.equal(failed[0]!.workflowId, trialWorkflowId(diverging!.trialId));
  assert.deepEqual(failed[0]!.searchAttributes, {
    SweepId: sweepId,
    Task: ['gaussian_linear'],
    Defense: ['none'],
    Beta: 0,
    TrialStatus: ['failed'],
  });
  const completed = await findN(`SweepId = '${sweepId}' AND TrialStatus = 'completed'`, 1);
  assert.equal(completed[0]!.workflowId, trialWorkflowId(healthy!.trialId));
  // The sweep workflow and both trials carry the sweep's ID.
  const all = await findN(`SweepId = '${sweepId}'`, 3);
  assert.ok(all.some((w) => w.workflowId === sweepWorkflowId(sweepId)));

  // The same through the CLI's flags.
  const r = robustsbi(
    ['sweep', 'list', '--sweep-id', sweepId, '--trial-status', 'failed', '--json'],
    sharedStackEnv(),
  );
  assert.equal(r.code, 0, r.stderr);
  const listed = JSON.parse(r.stdout) as ListedWorkflow[];
  assert.deepEqual(
    listed.map((w) => w.workflowId),
    [trialWorkflowId(diverging!.trialId)],
  );
});
