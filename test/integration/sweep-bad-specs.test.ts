// The bad-spec corpus of issue 9 through the real command line against the real stack: every spec is
// refused with one sentence naming the file and the JSON path, exit code 2, and nothing is started
// or written (no sweep workflow, no sweep or trial document). And the worker's side: a trial whose
// estimator settings cannot be built (a spec that skipped the client's validation) fails once,
// non-retryably, as InvalidConfig with sbi's reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitForSweep } from '../../cli/sweep-client.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { MAX_SPEC_BYTES } from '../../sweeps/schema.js';
import type { SweepSpec } from '../../sweeps/types.js';
import {
  SWEEP_WORKFLOW_TYPE,
  sweepWorkflowId,
  taskQueueName,
  trialWorkflowId,
  type SweepWorkflowInput,
} from '../../workflows/messages.js';
import { robustsbi, sharedStackEnv } from './harness.js';
import {
  openSweepTestContext,
  startWorker,
  tinySpec,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';
import { FAILURE_TYPES } from '../../sweeps/failures.js';

let ctx: SweepTestContext;
let worker: RunningWorker | undefined;
let dir: string;

before(async () => {
  ctx = await openSweepTestContext();
  dir = mkdtempSync(join(tmpdir(), 'robustsbi-bad-specs-'));
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A valid spec's JSON with `patch` applied, as text. */
const variant = (patch: Record<string, unknown>): string =>
  JSON.stringify({ ...tinySpec(), ...patch });
const good = JSON.stringify(tinySpec());

/**
 * [what, spec text, the problem the message must state]: one of each kind, since every case is a
 * process start (test/unit/sweeps/spec.test.ts holds the full corpus and its messages).
 */
const CORPUS: [string, () => string, RegExp][] = [
  [
    'malformed JSON',
    () => `${good.slice(0, -1)},}`,
    /spec: malformed JSON at line 1, column \d+: trailing comma/,
  ],
  ['a wrong type', () => variant({ seeds: '7' }), /spec\/seeds: must be a list \(got "7"\)/],
  ['an unknown estimator', () => variant({ estimators: ['flow'] }), /unknown estimator "flow"/],
  [
    'an enormous grid',
    () =>
      variant({
        seeds: Array.from({ length: 1000 }, (_, i) => i),
        budgets: Array.from({ length: 100 }, (_, i) => 100 + i),
        defenses: [{ name: 'none' }, { name: 'fim', betas: [0.01, 0.1] }],
      }),
    /spec: the grid expands to 300000 trials .*at most 100000/,
  ],
  [
    'a 10 MB spec',
    () => variant({ description: 'x'.repeat(10 * 1024 * 1024) }),
    new RegExp(`spec: the spec is larger than ${MAX_SPEC_BYTES} bytes; nothing was parsed`),
  ],
  [
    'a __proto__ key',
    () => `${good.slice(0, -1)},"__proto__":{"failFast":true}}`,
    /spec\/__proto__: refused key .*not allowed anywhere/,
  ],
  [
    'a nested constructor key',
    () => variant({ training: { constructor: { prototype: {} } } }),
    /spec\/training\/constructor: refused key/,
  ],
  [
    'estimator settings that contradict each other',
    () =>
      variant({ estimators: [{ kind: 'maf', architecture: { logScaleMin: 3, logScaleMax: 1 } }] }),
    /spec\/estimators\/0\/architecture: logScaleMin \(3\) must be below logScaleMax \(1\)/,
  ],
  [
    'a search range whose lower end is above its upper end',
    () =>
      variant({
        search: {
          space: [{ defense: 'fim', beta: { min: 1, max: 0.1, scale: 'log' } }],
          objectives: [
            { metric: 'testNll' },
            { metric: 'kl', attack: 'noise', objective: 'rkl', eps: 1 },
          ],
          budget: 4,
          batch: 2,
        },
      }),
    /spec\/search\/space\/0\/beta\/min: must be below max \(0\.1\)/,
  ],
];

describe('robustsbi sweep run with a bad spec', () => {
  test('refuses each with one sentence and exit 2, starting and writing nothing', async () => {
    const query = `WorkflowType = "${SWEEP_WORKFLOW_TYPE}"`;
    const state = async () => ({
      workflows: (await ctx.client.workflow.count(query)).count,
      sweeps: await ctx.store.sweeps.countDocuments({}),
      trials: await ctx.store.trials.countDocuments({}),
    });
    const before = await state();
    for (const [what, text, problem] of CORPUS) {
      const file = join(dir, 'bad.json');
      writeFileSync(file, text());
      const r = robustsbi(['sweep', 'run', file, '--wait'], sharedStackEnv());
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.equal(r.stdout, '', what);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${what}: one sentence, got ${r.stderr}`);
      assert.ok(
        lines[0]!.startsWith(`robustsbi: The sweep spec ${file} is invalid: `),
        `${what}: ${lines[0]}`,
      );
      assert.match(lines[0]!, problem, what);
      assert.ok(
        lines[0]!.length < 400,
        `${what}: a readable sentence, got ${lines[0]!.length} chars`,
      );
    }
    assert.deepEqual(await state(), before, 'no workflow started, no document written');
  });
});

describe('a trial whose estimator cannot be built', () => {
  test(
    'fails once as InvalidConfig with the reason, and the sweep goes on',
    { timeout: 180_000 },
    async () => {
      worker = await startWorker(ctx);
      const spec = tinySpec({
        estimators: [{ kind: 'gaussian', architecture: { hidden: [8] } }],
        defenses: [{ name: 'none' }],
        training: { maxEpochs: 2, minEpochs: 1, batchSize: 100, patience: 5 },
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
        concurrency: 1,
      });
      // Built past validation on purpose (validation refuses it, above): the worker must refuse it too.
      const bad = {
        ...spec,
        estimators: [
          spec.estimators[0],
          {
            kind: 'nsf',
            architecture: { hidden: [8], numTransforms: 1, bins: 4, minBinWidth: 0.3 },
          },
        ],
      } as unknown as SweepSpec;
      const sweepId = sweepIdOf(bad);
      const input: SweepWorkflowInput = {
        sweepId,
        spec: bad,
        options: { queuePrefix: ctx.queuePrefix },
      };
      await ctx.client.workflow.start(SWEEP_WORKFLOW_TYPE, {
        workflowId: sweepWorkflowId(sweepId),
        taskQueue: taskQueueName('cpu', ctx.queuePrefix),
        args: [input],
      });
      const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(final.state, 'failed');
      assert.equal(final.completed, 1);
      assert.equal(final.failed, 1);
      assert.equal(final.failures[0]?.type, FAILURE_TYPES.invalidConfig);
      const [, nsfTrial] = expandSweep(bad);
      const doc = await ctx.store.getTrial(nsfTrial!.trialId);
      assert.equal(doc?.status, 'failed');
      assert.equal(doc?.error?.type, FAILURE_TYPES.invalidConfig);
      assert.equal(doc?.error?.nonRetryable, true);
      assert.match(doc?.error?.message ?? '', /nsf" cannot be built: minBinWidth and minBinHeight/);
      const history = await ctx.client.workflow
        .getHandle(trialWorkflowId(nsfTrial!.trialId))
        .fetchHistory();
      const attempts = (history.events ?? [])
        .map((e) => e.activityTaskStartedEventAttributes?.attempt)
        .filter((a) => a !== undefined && a !== null);
      assert.ok(attempts.length > 0);
      assert.ok(
        attempts.every((a) => a === 1),
        `no activity retried: ${JSON.stringify(attempts)}`,
      );
    },
  );
});
