// The printed plan: its steps and breakdown from given rates, the warnings where one activity would
// outrun its timeout or a rate could not be measured, and the line `sweep status` prints.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareLine, durationSeconds, human, reportPlan } from '../../../cli/sweep-plan.js';
import { parseSweepSpec } from '../../../sweeps/validate.js';
import { exampleSpecs, flatRates } from '../sweeps/fixtures.js';

test('durations and human figures', () => {
  assert.equal(durationSeconds('10 minutes'), 600);
  assert.equal(durationSeconds('24 hours'), 86400);
  assert.equal(durationSeconds('4s'), 4);
  assert.ok(Number.isNaN(durationSeconds('soon')));
  assert.equal(human(12), '12 s');
  assert.equal(human(90), '1.5 min');
  assert.equal(human(NaN), '?');
});

test('the demo plan: four steps, a breakdown, the totals, no warning at small rates', () => {
  const spec = parseSweepSpec(exampleSpecs().get('demo.json')!);
  const r = reportPlan(spec, flatRates(spec, 1e-5), { processes: 2 });
  const text = r.lines.join('\n');
  assert.match(text, /^sweep plan "demo": 4 trials in 4 workflows \(pack 1\)/);
  for (const step of ['simulate-train', 'train', 'simulate-test', 'evaluate'])
    assert.match(text, new RegExp(`^${step}\\s+4\\s`, 'm'));
  assert.match(text, /train gaussian_linear maf fim N=2000 <=20 ep b=128\s+3 x /);
  assert.match(text, /^total: .* \(0\.\d\d CPU-hours\); an upper bound for training/m);
  assert.match(text, /^wall: about .* on 2 worker processes .*, .* on 1;/m);
  assert.deepEqual(r.warnings, []);
});

test('work beyond its timeout and rates that could not be measured are warned about', () => {
  const spec = parseSweepSpec(exampleSpecs().get('demo.json')!);
  const r = reportPlan(spec, flatRates(spec, 3), {
    processes: 1,
    failed: [{ what: 'train gaussian_linear nsf fim batch 512', error: 'out of memory' }],
  });
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[0]!, /^could not measure train gaussian_linear nsf fim batch 512/);
  assert.match(
    r.warnings[1]!,
    /pieces of work would outrun their activity's timeout .*training maf fim on 2000 gaussian_linear simulations at maxEpochs 20: about .*, beyond the 24\.0 h start-to-close timeout of its train activity/,
  );
  assert.match(
    r.warnings[1]!,
    /evaluating one gaussian_linear maf trial: about .* beyond the 12\.0 h/,
  );
});

test('sweep status: the estimate for the completed trials against their stored timings', () => {
  const spec = parseSweepSpec(exampleSpecs().get('demo.json')!);
  const r = reportPlan(spec, flatRates(spec, 1e-5), { processes: 2 });
  const line = compareLine(r, {
    trials: 4,
    completed: 2,
    trainSeconds: 30,
    evaluationSeconds: 60,
    evaluationRecords: 12,
  });
  assert.match(
    line,
    /^estimate vs ran \(2 of 4 trials completed\): training .* at maxEpochs vs 30 s ran .*; evaluation .* vs 1\.0 min in the 12 records' own timings$/,
  );
  // Trials an earlier sweep ran: no negative wall time.
  const ranBefore = compareLine(r, {
    trials: 4,
    completed: 4,
    trainSeconds: 30,
    evaluationSeconds: 60,
    evaluationRecords: 24,
    ranBefore: true,
  });
  assert.match(ranBefore, /wall: every trial had finished before this sweep was submitted/);
  const none = {
    trials: 4,
    completed: 0,
    trainSeconds: 0,
    evaluationSeconds: 0,
    evaluationRecords: 0,
  };
  assert.match(
    compareLine(r, none),
    /^estimate vs ran: no trial has completed yet; the plan estimates .* for the 4 trials$/,
  );
});
