// `robustsbi sweep plan` and `sweep run --dry-run` against the real stack: the first plan measures
// the rates this host lacks and stores them in MongoDB, the second reuses them; a dry run starts no
// workflow; bad --processes values are one sentence each.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sweepIdOf } from '../../sweeps/expand.js';
import { robustsbi, sharedStackEnv } from './harness.js';
import { openSweepTestContext, tinySpec, type SweepTestContext } from './sweep-harness.js';

let ctx: SweepTestContext;
let dir: string;
let file: string;
// An architecture no other run has used (a log-scale clamp that changes no cost), so the rates of
// this spec are not stored yet on the shared test stack.
const spec = tinySpec({
  estimators: [
    {
      kind: 'maf',
      architecture: {
        hidden: [16, 16],
        numTransforms: 2,
        logScaleMax: 4 + randomInt(1, 1e9) / 1e9,
      },
    },
  ],
});

before(async () => {
  ctx = await openSweepTestContext();
  dir = mkdtempSync(join(tmpdir(), 'robustsbi-plan-'));
  file = join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await ctx?.close();
});

test('sweep plan measures what is missing once, stores it, and prints the steps with a breakdown', () => {
  const env = sharedStackEnv();
  const first = robustsbi(['sweep', 'plan', file, '--processes', '1'], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /calibrating: measuring \d+ rates/);
  assert.match(first.stderr, /measured train gaussian_linear maf fim batch/);
  const out = first.stdout;
  assert.match(out, /^sweep plan "integration": 2 trials in 2 workflows \(pack 1\)/m);
  for (const step of ['simulate-train', 'train', 'simulate-test', 'evaluate'])
    assert.match(out, new RegExp(`^${step}\\s+2\\s`, 'm'));
  assert.match(out, /train gaussian_linear maf fim N=300 <=3 ep/);
  assert.match(out, /^total: .* of CPU \(\d+\.\d+ CPU-hours\); an upper bound for training/m);
  assert.match(out, /^wall: about .* on 1 worker process/m);
  assert.doesNotMatch(out, /\?/, 'every rate is known');

  const again = robustsbi(['sweep', 'plan', file, '--processes', '1', '--json'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /calibrating/, 'the stored rates are reused');
  const j = JSON.parse(again.stdout) as { plan: { trials: number }; measuredNow: unknown[] };
  assert.equal(j.plan.trials, 2);
  assert.deepEqual(j.measuredNow, []);
});

test('sweep run --dry-run prints the plan and starts nothing', async () => {
  const r = robustsbi(['sweep', 'run', file, '--dry-run', '--processes', '1'], sharedStackEnv());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sweep plan "integration"/m);
  await assert.rejects(
    ctx.client.workflow.getHandle(`sweep/${sweepIdOf(spec)}`).describe(),
    /not found/i,
  );
});

test('bad --processes values are one sentence each', () => {
  const env = sharedStackEnv();
  const cases: [string[], RegExp][] = [
    [
      ['sweep', 'plan', file, '--processes', '0'],
      /^robustsbi: --processes must be at least 1 \(got 0\)/,
    ],
    [
      ['worker', '--queue', 'cpu', '--processes', 'many'],
      /^robustsbi: --processes must be a whole number/,
    ],
    [
      ['worker', '--queue', 'cpu', '--processes', '100000'],
      /is more than the \d+ cores? available here/,
    ],
  ];
  for (const [args, sentence] of cases) {
    const r = robustsbi(args, env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), sentence);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
