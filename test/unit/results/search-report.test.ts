import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CurveEvaluation } from '../../../results/curves.js';
import { searchFigures, searchReport, searchTables } from '../../../results/search-report.js';
import { validateSweepSpec } from '../../../sweeps/validate.js';

const spec = validateSweepSpec({
  name: 's',
  tasks: ['gaussian_linear'],
  estimators: ['maf'],
  seeds: [0],
  budgets: [1000],
  evaluation: { attacks: ['l2pgd'], objectives: ['rkl'], eps: [2], tradeoffEps: 2 },
  search: {
    space: [{ defense: 'fim', beta: { min: 1e-3, max: 1, scale: 'log' } }],
    objectives: [
      { metric: 'testNll' },
      { metric: 'kl', attack: 'l2pgd', objective: 'rkl', eps: 2, scale: 'linear' },
    ],
    budget: 4,
    batch: 2,
  },
});

const trial = (id: string, round: number, beta: number, nll: number, status = 'completed') => ({
  _id: id,
  status: status as 'completed',
  positions: [{ sweepId: 'S', index: 0, round }],
  config: { defense: 'fim', beta } as never,
  summary: { testNll: nll, valLoss: 0, epochs: 1, trainSeconds: 0, droppedSims: 0 },
});
const ev = (trialId: string, kl: number) =>
  ({ trialId, attack: 'l2pgd', objective: 'rkl', eps: 2, kl: { mean: kl } }) as CurveEvaluation;

describe('search report', () => {
  const trials = [
    trial('a', 1, 1e-3, 0),
    trial('b', 1, 1, 1),
    trial('c', 2, 0.03, 0.5),
    trial('d', 2, 0.1, 9, 'failed'),
  ];
  const evals = [ev('a', 1), ev('b', 0), ev('c', 0.5)];
  const r = searchReport('S', spec, trials, evals)!;

  test('points by round with the front marked; unmeasured points kept, off the front', () => {
    assert.deepEqual(
      r.points.map((p) => [p.trialId, p.round, p.kl, p.testNll, p.pareto]),
      [
        ['a', 1, 1, 0, true],
        ['b', 1, 0, 1, true],
        ['c', 2, 0.5, 0.5, true],
        ['d', 2, null, null, false],
      ],
    );
  });

  test('hypervolume per round: normalized by round 1, its staircase then the added point', () => {
    // Round 1: (0,1) and (1,0) -> 0.21; round 2 adds (0.5, 0.5): + 0.25.
    assert.equal(r.hypervolume.length, 3);
    assert.equal(r.hypervolume[0], 0);
    assert.ok(Math.abs(r.hypervolume[1]! - 0.21) < 1e-12);
    assert.ok(Math.abs(r.hypervolume[2]! - 0.46) < 1e-12);
  });

  test('tables and figures: rounds with their sizes, one front line per round', () => {
    const [points, rounds] = searchTables(r);
    assert.equal(points!.rows.length, 4);
    assert.deepEqual(
      rounds!.rows.map((row) => row.slice(0, 3)),
      [
        [0, 0, 0],
        [1, 2, 2],
        [2, 2, 1],
      ],
    );
    const [front, hv] = searchFigures(r);
    assert.equal(front!.points, 3);
    assert.deepEqual(
      front!.data.filter((t) => t.meta === 'front').map((t) => t.name),
      ['front after round 1', 'front after round 2'],
    );
    assert.deepEqual(hv!.data[0]!.y, r.hypervolume);
  });

  test('a grid sweep has no search report', () => {
    assert.equal(searchReport('S', { ...spec, search: undefined }, trials, evals), undefined);
  });
});
