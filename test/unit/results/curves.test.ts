import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  computeCurves,
  coverageCurve,
  klVsEpsCurve,
  paretoFront,
  tradeoffCurve,
  tradeoffGap,
  tradeoffOptionsOfSpec,
  trainingCostOf,
  type CurveTrial,
} from '../../../results/curves.js';
import type { EvaluationDoc } from '../../../results/documents.js';
import { evaluation, lcg, syntheticSweep } from './fixtures.js';

/** Brute force: i is on the front when no j is <= in both and < in one. */
function bruteFront(points: { x: number; y: number }[]): number[] {
  const ok = (p: { x: number; y: number }) => Number.isFinite(p.x) && Number.isFinite(p.y);
  return points
    .map((p, i) => ({ p, i }))
    .filter(
      ({ p, i }) =>
        ok(p) &&
        !points.some(
          (q, j) => j !== i && ok(q) && q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y),
        ),
    )
    .map(({ i }) => i);
}

function completedTrials(s: ReturnType<typeof syntheticSweep>): CurveTrial[] {
  return s.trials.map((t) => ({ ...t, status: 'completed', summary: s.summaries.get(t._id)! }));
}

describe('paretoFront', () => {
  test('equals brute force on random sets with ties, duplicates and non-finite points', () => {
    const rand = lcg(11);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rand() * 25);
      // A coarse grid makes equal coordinates and exact duplicates common.
      const pts = Array.from({ length: n }, () => ({
        x: rand() < 0.05 ? NaN : Math.floor(rand() * 6),
        y: rand() < 0.05 ? Infinity : Math.floor(rand() * 6),
      }));
      const front = paretoFront(pts);
      assert.deepEqual(
        [...front].sort((a, b) => a - b),
        bruteFront(pts),
        JSON.stringify(pts),
      );
      // Ordered by increasing x, and y strictly falls except across exact duplicates.
      for (let k = 1; k < front.length; k++) {
        const a = pts[front[k - 1]!]!;
        const b = pts[front[k]!]!;
        assert.ok(b.x > a.x || (b.x === a.x && b.y === a.y));
        assert.ok(b.y < a.y || (b.x === a.x && b.y === a.y));
      }
    }
  });

  test('a small hand-checked case', () => {
    const pts = [
      { x: 1, y: 5 },
      { x: 2, y: 3 },
      { x: 2, y: 4 }, // dominated by (2, 3)
      { x: 3, y: 3 }, // dominated by (2, 3): equal y, larger x
      { x: 4, y: 1 },
      { x: 2, y: 3 }, // duplicate of a front point
    ];
    assert.deepEqual(paretoFront(pts), [0, 1, 5, 4]);
    assert.deepEqual(paretoFront([]), []);
  });
});

describe('trade-off points', () => {
  test('training cost: finite seconds and epochs only, absent in older summaries', () => {
    assert.deepEqual(trainingCostOf({ trainSeconds: 12.5, epochs: 20 }), {
      trainSeconds: 12.5,
      epochs: 20,
    });
    assert.deepEqual(trainingCostOf({ trainSeconds: NaN, epochs: 7 }), { epochs: 7 });
    assert.deepEqual(trainingCostOf({ trainSeconds: Infinity }), {});
    assert.deepEqual(trainingCostOf({}), {});
  });

  test('one point per completed trial: x = mean KL under l2pgd/rkl at eps 2, y = test NLL', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s);
    const c = tradeoffCurve('sw', 'gaussian_linear', trials, s.evaluations);
    assert.equal(c._id, 'sw|gaussian_linear|tradeoff');
    assert.deepEqual([c.attack, c.objective, c.eps], ['l2pgd', 'rkl', 2]);
    const own = trials.filter((t) => t.config.task === 'gaussian_linear');
    assert.equal(c.points.length, own.length);
    for (const p of c.points) {
      const t = own.find((u) => u._id === p.trialId)!;
      const e = s.evaluations.find(
        (v) =>
          v.trialId === p.trialId && v.attack === 'l2pgd' && v.objective === 'rkl' && v.eps === 2,
      )!;
      assert.equal(p.x, e.kl.mean);
      assert.equal(p.y, t.summary!.testNll);
      // The ground-truth metrics of the trial's evaluation (gaussian_linear).
      const g = e.groundTruth!;
      assert.deepEqual(p.groundTruth, { c2st: g.c2st, klQP: g.klQP, klPQ: g.klPQ });
      assert.equal(p.defense, t.config.defense);
      assert.equal(p.beta, t.config.beta);
      // The trial's training cost rides along (the appendix compares estimators by it).
      assert.equal(p.trainSeconds, t.summary!.trainSeconds);
      assert.equal(p.epochs, t.summary!.epochs);
    }
    const front = paretoFront(c.points);
    assert.deepEqual(
      c.front,
      front.map((i) => c.points[i]!.trialId),
    );
    assert.deepEqual(
      c.points
        .filter((p) => p.pareto)
        .map((p) => p.trialId)
        .sort(),
      [...c.front].sort(),
    );
    assert.ok(c.front.length >= 1);
    assert.deepEqual(c.missing, []);
    // A task without an analytic posterior has none.
    const moons = tradeoffCurve('sw', 'two_moons', trials, s.evaluations);
    assert.ok(moons.points.length > 0);
    assert.ok(moons.points.every((p) => !('groundTruth' in p)));
  });

  test('another eps and attack can be chosen; eps equal up to float noise matches', () => {
    const s = syntheticSweep('sw');
    const c = tradeoffCurve('sw', 'two_moons', completedTrials(s), s.evaluations, {
      attack: 'linfpgd',
      objective: 'fkl',
      eps: 0.1 + 0.4, // 0.5
    });
    assert.equal(c.points.length, 6);
    const e = s.evaluations.find(
      (v) => v.trialId === c.points[0]!.trialId && v.attack === 'linfpgd' && v.eps === 0.5,
    )!;
    assert.equal(c.points[0]!.x, e.kl.mean);
  });

  test('unfinished trials are left out; completed ones without the evaluation are listed as missing', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s).filter((t) => t.config.task === 'gaussian_linear');
    trials[0] = { ...trials[0]!, status: 'running' };
    trials[1] = { ...trials[1]!, status: 'failed' };
    const dropped = trials[2]!._id;
    const evals = s.evaluations.filter((e) => !(e.trialId === dropped && e.eps === 2));
    const c = tradeoffCurve('sw', 'gaussian_linear', trials, evals);
    assert.equal(c.points.length, trials.length - 3);
    assert.deepEqual(c.missing, [dropped]);
    assert.ok(!c.points.some((p) => p.trialId === trials[0]!._id || p.trialId === trials[1]!._id));
  });

  test('a diverged trial (NaN NLL) is a point but never on the front', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s);
    const bad = trials[0]!;
    trials[0] = { ...bad, summary: { ...bad.summary!, testNll: NaN } };
    const c = tradeoffCurve('sw', bad.config.task, trials, s.evaluations);
    const p = c.points.find((q) => q.trialId === bad._id)!;
    assert.ok(Number.isNaN(p.y));
    assert.equal(p.pareto, false);
    assert.ok(!c.front.includes(bad._id));
  });
});

describe('KL against eps', () => {
  test('median and the 15 % / 85 % bands averaged over seeds, per defense and beta', () => {
    const rand = lcg(3);
    const trials: CurveTrial[] = [0, 1].map((seed) => ({
      _id: `t${seed}`,
      status: 'completed',
      config: { task: 'gl', estimator: 'maf', defense: 'fim', beta: 0.5, budget: 100, seed },
      summary: { testNll: 1, valLoss: 1, epochs: 1, trainSeconds: 1, droppedSims: 0 },
    }));
    const evals: EvaluationDoc[] = [];
    for (const t of trials) {
      for (const eps of [2, 0.5, 1]) {
        const e = evaluation(t._id, 'l2pgd', 'rkl', eps, rand) as EvaluationDoc;
        evals.push(e);
      }
    }
    const c = klVsEpsCurve('sw', 'gl', trials, evals);
    assert.equal(c.series.length, 1);
    const s = c.series[0]!;
    assert.deepEqual(
      [s.attack, s.objective, s.defense, s.beta, s.estimator, s.budget],
      ['l2pgd', 'rkl', 'fim', 0.5, 'maf', 100],
    );
    assert.deepEqual(s.eps, [0.5, 1, 2]);
    assert.deepEqual(s.trials, [2, 2, 2]);
    s.eps.forEach((eps, k) => {
      const at = evals.filter((e) => e.eps === eps);
      assert.equal(s.median[k], (at[0]!.kl.median + at[1]!.kl.median) / 2);
      assert.equal(s.q15[k], (at[0]!.kl.q15 + at[1]!.kl.q15) / 2);
      assert.equal(s.q85[k], (at[0]!.kl.q85 + at[1]!.kl.q85) / 2);
      assert.equal(s.mean[k], (at[0]!.kl.mean + at[1]!.kl.mean) / 2);
      assert.ok(s.q15[k]! <= s.median[k]! && s.median[k]! <= s.q85[k]!);
    });
  });

  test('one series per (attack, objective, defense, beta), in a fixed order', () => {
    const s = syntheticSweep('sw');
    const c = klVsEpsCurve('sw', 'two_moons', completedTrials(s), s.evaluations);
    assert.deepEqual(
      c.series.map((x) => `${x.attack}/${x.objective}/${x.defense}/${x.beta}`),
      [
        'l2pgd/rkl/fim/0.1',
        'l2pgd/rkl/fim/1',
        'l2pgd/rkl/none/0',
        'linfpgd/fkl/fim/0.1',
        'linfpgd/fkl/fim/1',
        'linfpgd/fkl/none/0',
      ],
    );
    for (const x of c.series) assert.deepEqual(x.trials, [2, 2, 2]);
  });
});

describe('defenses with a training eps', () => {
  test('trainEps separates series and labels trade-off points', () => {
    const rand = lcg(5);
    const trials: CurveTrial[] = [0.1, 0.5].map((trainEps, i) => ({
      _id: `adv${i}`,
      status: 'completed',
      config: {
        task: 'gl',
        estimator: 'maf',
        defense: 'adversarial',
        beta: 0,
        trainEps,
        budget: 100,
        seed: 0,
      },
      summary: { testNll: 1 + i, valLoss: 1, epochs: 1, trainSeconds: 1, droppedSims: 0 },
    }));
    const evals = trials.flatMap((t) =>
      [1, 2].map((eps) => evaluation(t._id, 'l2pgd', 'rkl', eps, rand) as EvaluationDoc),
    );
    const kl = klVsEpsCurve('sw', 'gl', trials, evals);
    assert.deepEqual(
      kl.series.map((x) => [x.trainEps, x.trials]),
      [
        [0.1, [1, 1]],
        [0.5, [1, 1]],
      ],
    );
    const cov = coverageCurve('sw', 'gl', trials, evals);
    assert.deepEqual(
      cov.series.map((x) => x.trainEps),
      [0.1, 0.5],
    );
    const tr = tradeoffCurve('sw', 'gl', trials, evals);
    assert.deepEqual(
      tr.points.map((p) => p.trainEps),
      [0.1, 0.5],
    );
  });
});

describe('expected coverage curves', () => {
  test('per eps the pointwise mean over trials, with the clean curve', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s);
    const c = coverageCurve('sw', 'gaussian_linear', trials, s.evaluations);
    assert.equal(c.series.length, 6);
    const ser = c.series.find((x) => x.attack === 'l2pgd' && x.defense === 'none')!;
    const ids = trials
      .filter((t) => t.config.task === 'gaussian_linear' && t.config.defense === 'none')
      .map((t) => t._id)
      .sort();
    assert.equal(ser.trials, 2);
    const of = (id: string, eps: number) =>
      s.evaluations.find((e) => e.trialId === id && e.attack === 'l2pgd' && e.eps === eps)!;
    assert.deepEqual(ser.levels, of(ids[0]!, 0.5).coverage.levels);
    ser.levels.forEach((_, k) => {
      assert.equal(
        ser.clean[k],
        (of(ids[0]!, 0.5).coverage.clean[k]! + of(ids[1]!, 0.5).coverage.clean[k]!) / 2,
      );
    });
    assert.deepEqual(
      ser.curves.map((x) => x.eps),
      [0.5, 1, 2],
    );
    for (const cur of ser.curves) {
      assert.equal(cur.trials, 2);
      cur.observed.forEach((v, k) => {
        assert.equal(
          v,
          (of(ids[0]!, cur.eps).coverage.attacked[k]! +
            of(ids[1]!, cur.eps).coverage.attacked[k]!) /
            2,
        );
      });
      assert.equal(
        cur.absArea,
        (of(ids[0]!, cur.eps).coverageAbsArea.attacked +
          of(ids[1]!, cur.eps).coverageAbsArea.attacked) /
          2,
      );
    }
  });
});

describe('computeCurves', () => {
  test('three curves per task, and the same inputs in any order give identical documents', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s);
    const a = computeCurves('sw', trials, s.evaluations);
    const b = computeCurves('sw', [...trials].reverse(), [...s.evaluations].reverse());
    assert.deepEqual(
      a.map((c) => c._id),
      [
        'sw|gaussian_linear|tradeoff',
        'sw|gaussian_linear|kl_vs_eps',
        'sw|gaussian_linear|coverage',
        'sw|two_moons|tradeoff',
        'sw|two_moons|kl_vs_eps',
        'sw|two_moons|coverage',
      ],
    );
    assert.deepEqual(b, a);
  });

  test('a task with no completed trial still has its (empty) curves', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s).map((t) =>
      t.config.task === 'two_moons' ? { ...t, status: 'queued' as const } : t,
    );
    const c = computeCurves('sw', trials, s.evaluations);
    const tm = c.filter((x) => x.task === 'two_moons');
    assert.equal(tm.length, 3);
    for (const x of tm) {
      if (x.kind === 'tradeoff') assert.deepEqual([x.points, x.front], [[], []]);
      else assert.deepEqual(x.series, []);
    }
  });
});

describe("the trade-off's attack and objective come from the spec", () => {
  test('named in the spec, or the first attack and objective it evaluates', () => {
    const ev = { attacks: ['noise', 'l2pgd'], objectives: ['fkl'], eps: [0.5, 1], tradeoffEps: 1 };
    assert.deepEqual(tradeoffOptionsOfSpec({ evaluation: ev }), {
      attack: 'noise',
      objective: 'fkl',
      eps: 1,
    });
    assert.deepEqual(
      tradeoffOptionsOfSpec({ evaluation: { ...ev, tradeoffAttack: 'l2pgd' } }).attack,
      'l2pgd',
    );
    // Older stored specs and no spec at all fall back to the curve defaults.
    assert.deepEqual(tradeoffOptionsOfSpec(undefined), {});
    assert.deepEqual(tradeoffOptionsOfSpec({ evaluation: { tradeoffEps: 2 } }), { eps: 2 });
  });

  test('a noise-only sweep reads its front under noise; asking for l2pgd says what to set', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s).filter((t) => t.config.task === 'gaussian_linear');
    // The fixture's linfpgd evaluations stand in for a spec that attacks with noise only.
    const noiseOnly = s.evaluations
      .filter((e) => e.attack === 'linfpgd')
      .map((e) => ({ ...e, attack: 'noise', objective: 'rkl' as const }));
    assert.ok(noiseOnly.length > 0);
    const spec = { evaluation: { attacks: ['noise'], objectives: ['rkl'], tradeoffEps: 2 } };
    const c = tradeoffCurve(
      'sw',
      'gaussian_linear',
      trials,
      noiseOnly,
      tradeoffOptionsOfSpec(spec),
    );
    assert.equal(c.attack, 'noise');
    assert.equal(c.points.length, trials.length);
    assert.equal(tradeoffGap(c), undefined);

    const old = tradeoffCurve('sw', 'gaussian_linear', trials, noiseOnly, { eps: 2 });
    assert.equal(old.points.length, 0);
    const gap = tradeoffGap(old)!;
    assert.match(
      gap,
      /^No completed trial of gaussian_linear evaluated attack l2pgd with objective rkl at eps 2/,
    );
    assert.match(gap, /attacks noise; objectives rkl;/);
    assert.match(gap, /set evaluation\.tradeoffAttack in the spec/);
    assert.doesNotMatch(gap, /tradeoffObjective|tradeoffEps/);
  });

  test('an fkl-only sweep names the objective; a trial still evaluating is told apart', () => {
    const s = syntheticSweep('sw');
    const trials = completedTrials(s).filter((t) => t.config.task === 'two_moons');
    const fklOnly = s.evaluations.filter((e) => e.objective === 'fkl');
    const c = tradeoffCurve('sw', 'two_moons', trials, fklOnly, {
      attack: 'linfpgd',
      objective: 'rkl',
      eps: 2,
    });
    assert.match(tradeoffGap(c)!, /set evaluation\.tradeoffObjective in the spec/);
    const fine = tradeoffCurve('sw', 'two_moons', trials, fklOnly, {
      attack: 'linfpgd',
      objective: 'fkl',
      eps: 2,
    });
    assert.equal(fine.missing.length, 0);
    const lacking = fklOnly.filter((e) => !(e.trialId === trials[0]!._id && e.eps === 2));
    const partial = tradeoffCurve('sw', 'two_moons', trials, lacking, {
      attack: 'linfpgd',
      objective: 'fkl',
      eps: 2,
    });
    assert.match(
      tradeoffGap(partial)!,
      new RegExp(`^1 of ${trials.length} completed trials .*not finished evaluating`),
    );
  });
});
