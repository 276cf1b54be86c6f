// The plan of a spec: activity counts per step as workflows/pipeline.ts cuts them, the distinct work
// units, the rate keys a calibration fills, and the estimate's arithmetic on made-up rates.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { countTrials, expandSweep } from '../../../sweeps/expand.js';
import {
  estimatePlan,
  evaluateSeconds,
  missingRates,
  planActivities,
} from '../../../sweeps/plan.js';
import { parseSweepSpec, validateSweepSpec } from '../../../sweeps/validate.js';
import { exampleSpecs, flatRates } from './fixtures.js';

const demo = () => parseSweepSpec(exampleSpecs().get('demo.json')!);
const paper = () => parseSweepSpec(exampleSpecs().get('paper-gaussian_linear.json')!);

describe('planActivities', () => {
  test('the demo: 4 trials, one activity per step and trial, the work counted once per distinct set', () => {
    const spec = demo();
    const p = planActivities(spec);
    assert.equal(p.trials, 4);
    assert.equal(p.workflows, 4);
    for (const s of ['simulate-train', 'train', 'simulate-test', 'evaluate'] as const)
      assert.equal(p.steps[s].activities, 4);
    assert.deepEqual(p.steps['simulate-train'].units, [
      { unit: { task: 'gaussian_linear', n: 2000, blocks: 1 }, count: 1 },
    ]);
    // none and the three fim betas: two training costs (beta does not change the work).
    assert.deepEqual(
      p.steps.train.units.map((u) => [u.unit.defense.name, u.count]),
      [
        ['none', 1],
        ['fim', 3],
      ],
    );
    // 2 attacks x 3 eps per trial.
    assert.equal(
      p.steps.evaluate.units.reduce((a, u) => a + u.count, 0),
      4 * 2 * 3,
    );
    assert.deepEqual(
      p.steps.evaluate.units.map((u) => [u.unit.attack, u.unit.steps]),
      [
        ['l2pgd', 30],
        ['noise', 1],
      ],
    );
  });

  test('the trial count agrees with the expansion, and trainings sum to the trials', () => {
    for (const spec of [demo(), paper()]) {
      const p = planActivities(spec);
      assert.equal(p.trials, expandSweep(spec).length);
      assert.equal(
        p.steps.train.units.reduce((a, u) => a + u.count, 0),
        countTrials(spec),
      );
    }
  });

  test('a pack puts its trials in one activity per step', () => {
    const spec = validateSweepSpec({
      ...JSON.parse(exampleSpecs().get('demo.json')!),
      pack: 3,
      concurrency: 3,
    });
    const p = planActivities(spec);
    assert.equal(p.workflows, 2);
    assert.equal(p.steps.train.activities, 2);
    assert.equal(p.steps.train.itemsPerActivity, 3);
    assert.equal(p.steps.evaluate.itemsPerActivity, 3 * 6);
  });

  test('a set of several blocks and a test set of several chunks add an activity per block and shard', () => {
    const spec = validateSweepSpec({
      ...JSON.parse(exampleSpecs().get('demo.json')!),
      evaluation: {
        ...JSON.parse(exampleSpecs().get('demo.json')!).evaluation,
        nTest: 2000,
        attackBatchSize: 500,
      },
    });
    // Blocks of 700 rows: the 2,000-row training set has 3, the test set 3 as well.
    const p = planActivities(spec, () => 700);
    assert.deepEqual(p.steps['simulate-train'].units, [
      { unit: { task: 'gaussian_linear', n: 2000, blocks: 3 }, count: 1 },
    ]);
    // 4 pipelines ask; the one set's 3 blocks and its join.
    assert.equal(p.steps['simulate-train'].activities, 4 + 3 + 1);
    // 4 trials x 2 attacks x 3 eps x 4 shards, then each pipeline's pooling call.
    assert.equal(p.steps.evaluate.activities, 4 + 4 * 2 * 3 * 4);
    assert.ok(p.steps.evaluate.units.every((u) => u.unit.shards === 4));
    // One shard activity holds a quarter of one (attack, eps); a block a third of the set.
    const rates = flatRates(spec, 1e-3);
    const est = estimatePlan(p, rates, { processes: 1, concurrency: 2 });
    const ev = est.steps.find((s) => s.step === 'evaluate')!;
    const l2 = p.steps.evaluate.units.find((u) => u.unit.attack === 'l2pgd')!.unit;
    assert.ok(Math.abs(ev.longestActivitySeconds - evaluateSeconds(l2, rates) / 4) < 1e-9);
    const sim = est.steps.find((s) => s.step === 'simulate-train')!;
    assert.ok(Math.abs(sim.longestActivitySeconds - (2000 * 1e-3) / 3) < 1e-9);
  });

  test('a task that keeps a share of its simulations: simulations priced per simulation, training and evaluation per kept row', () => {
    const spec = validateSweepSpec(
      JSON.parse(
        readFileSync(new URL('../../../../sweeps/paper-pyloric.json', import.meta.url), 'utf8'),
      ),
    );
    const p = planActivities(
      spec,
      () => 1000,
      (task) => (task === 'pyloric' ? 0.1 : 1),
    );
    assert.deepEqual(
      p.steps['simulate-train'].units.map((u) => u.unit.n),
      [8_100_000],
    );
    assert.ok(p.steps.train.units.every((u) => u.unit.rows === 810_000));
    assert.ok(p.steps.evaluate.units.every((u) => u.unit.nTest === 10_750));
  });

  test('attacks without steps in the spec take sbi defaults (200 L2 PGD)', () => {
    const p = planActivities(paper());
    const l2 = p.steps.evaluate.units.find((u) => u.unit.attack === 'l2pgd')!;
    assert.equal(l2.unit.steps, 200);
    assert.deepEqual(l2.unit.objectives, ['rkl', 'fkl']);
  });
});

describe('estimatePlan', () => {
  test('multiplies sizes by rates: epochs x rows per training, points x steps / samples per evaluation', () => {
    const spec = demo();
    const rates = flatRates(spec, 1e-3);
    const p = planActivities(spec);
    const est = estimatePlan(p, rates, { processes: 1, concurrency: 2 });
    const train = est.steps.find((s) => s.step === 'train')!;
    // 4 trainings x 20 epochs x 2000 rows x 1 ms.
    assert.ok(Math.abs(train.cpuSeconds - 4 * 20 * 2000 * 1e-3) < 1e-9);
    const l2 = p.steps.evaluate.units[0]!.unit;
    // clean coverage + (attack steps + KL samples + coverage samples), 200 points.
    assert.ok(Math.abs(evaluateSeconds(l2, rates) - 200 * (300 + 30 + 128 + 300) * 1e-3) < 1e-9);
    // One trial's evaluate activity runs its 2 attacks x 3 eps.
    const ev = est.steps.find((s) => s.step === 'evaluate')!;
    const noise = evaluateSeconds(p.steps.evaluate.units[1]!.unit, rates);
    assert.ok(
      Math.abs(ev.longestActivitySeconds - 3 * (evaluateSeconds(l2, rates) + noise)) < 1e-9,
    );
    assert.ok(Math.abs(est.wallSeconds - est.cpuSeconds) < 1e-9, 'one process: wall = CPU');
  });

  test('more processes divide the wall time, never below one trial chain; early stopping scales training', () => {
    const spec = demo();
    const rates = flatRates(spec, 1e-3);
    const p = planActivities(spec);
    const one = estimatePlan(p, rates, { processes: 1, concurrency: 2 });
    const two = estimatePlan(p, rates, { processes: 2, concurrency: 2 });
    assert.ok(Math.abs(two.wallSeconds - one.cpuSeconds / 2) < 1e-9);
    // concurrency 2 caps the lanes.
    const many = estimatePlan(p, rates, { processes: 8, concurrency: 2 });
    assert.equal(many.wallSeconds, two.wallSeconds);
    const half = estimatePlan(p, rates, { processes: 1, concurrency: 2, epochsFraction: 0.5 });
    const t = (e: typeof one) => e.steps.find((s) => s.step === 'train')!.cpuSeconds;
    assert.ok(Math.abs(t(half) - t(one) / 2) < 1e-9);
  });

  test('missing rates are listed once each and make the estimate unknown, not zero', () => {
    const spec = paper();
    const p = planActivities(spec);
    const m = missingRates(p, { simulate: {}, train: {}, attack: {}, metric: {} });
    assert.deepEqual(m.simulate, ['gaussian_linear']);
    // maf, nsf x none, fim, adversarial, trades, noise.
    assert.equal(m.train.length, 10);
    // 2 estimators x 2 attacks x 2 objectives; metrics per estimator and objective.
    assert.equal(m.attack.length, 8);
    assert.equal(m.metric.length, 4);
    const est = estimatePlan(
      p,
      { simulate: {}, train: {}, attack: {}, metric: {} },
      {
        processes: 2,
        concurrency: 8,
      },
    );
    assert.ok(Number.isNaN(est.cpuSeconds));
    assert.equal(missingRates(p, flatRates(spec, 1e-3)).train.length, 0);
  });
});
