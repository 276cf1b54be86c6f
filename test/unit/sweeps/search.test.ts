import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  defenseKey,
  gridPoints,
  pointOf,
  proposeBatch,
  unitOf,
  type ProposeInput,
  type SearchObservation,
} from '../../../sweeps/search.js';
import type { SearchSpec, TrialDefense } from '../../../sweeps/types.js';

const fimOnly: SearchSpec = {
  space: [{ defense: 'fim', beta: { min: 1e-3, max: 1, scale: 'log' } }],
  objectives: [
    { metric: 'testNll', scale: 'linear' },
    { metric: 'kl', attack: 'l2pgd', objective: 'rkl', eps: 2, scale: 'linear' },
  ],
  budget: 12,
  batch: 4,
  seed: 0,
  method: 'gaps',
};

const fim = (beta: number): TrialDefense => ({ name: 'fim', beta });
const obs = (beta: number, kl: number, nll: number): SearchObservation => ({
  defense: fim(beta),
  kl,
  nll,
});

function input(over: Partial<ProposeInput>): ProposeInput {
  return { search: fimOnly, tried: [], observed: [], round: 1, count: 4, ...over };
}

describe('search coordinates', () => {
  test('a log range maps the unit interval geometrically, rounded to 4 digits', () => {
    const c = fimOnly.space[0]!;
    assert.deepEqual(pointOf(c, [0]), fim(1e-3));
    assert.deepEqual(pointOf(c, [1]), fim(1));
    assert.deepEqual(pointOf(c, [0.5]), fim(0.03162));
    assert.ok(Math.abs(unitOf(c, fim(0.03162))![0]! - 0.5) < 1e-4);
    assert.equal(unitOf(c, fim(2)), undefined);
    assert.equal(unitOf(c, { name: 'trades', beta: 0.1 }), undefined);
  });

  test('a linear range and a fixed value', () => {
    const c = {
      defense: 'trades' as const,
      beta: 0.1,
      trainEps: { min: 0.5, max: 1.5, scale: 'linear' as const },
    };
    assert.deepEqual(pointOf(c, [0.25]), { name: 'trades', beta: 0.1, trainEps: 0.75 });
    assert.deepEqual(unitOf(c, { name: 'trades', beta: 0.1, trainEps: 0.75 }), [0.25]);
    assert.equal(unitOf(c, { name: 'trades', beta: 0.2, trainEps: 0.75 }), undefined);
  });
});

describe('proposeBatch, gaps', () => {
  test('a fresh search starts with the range ends, then spreads log-evenly', () => {
    assert.deepEqual(proposeBatch(input({})), [fim(1e-3), fim(1), fim(0.01), fim(0.1)]);
  });

  test('the next beta bisects the widest gap in log beta', () => {
    // Normalized front: (0,1) (0.1,0.9) (0.9,0.1) (1,0): the gap from beta 0.01 to 0.1 is widest.
    const observed = [obs(1e-3, 1, 0), obs(0.01, 0.9, 0.1), obs(0.1, 0.1, 0.9), obs(1, 0, 1)];
    const tried = observed.map((o) => o.defense);
    assert.deepEqual(proposeBatch(input({ observed, tried, count: 1 })), [fim(0.03162)]);
    // A batch splits the widest gap, then its halves (half its length, still the widest).
    assert.deepEqual(proposeBatch(input({ observed, tried, count: 3 })), [
      fim(0.03162),
      fim(0.01778),
      fim(0.05623),
    ]);
  });

  test('a dominated or failed point inside a gap splits it where it lies', () => {
    const observed = [obs(1e-3, 1, 0), obs(0.01, 0.9, 0.1), obs(0.1, 0.1, 0.9), obs(1, 0, 1)];
    // 0.03162 was tried (it failed, or came out dominated): the wider stretch is bisected instead.
    const tried = [...observed.map((o) => o.defense), fim(0.03162), fim(0.05)];
    const [p] = proposeBatch(input({ observed, tried, count: 1 }));
    assert.deepEqual(p, fim(0.01778));
  });

  test('never proposes a tried point; deterministic for the same input', () => {
    const observed = [obs(1e-3, 1, 0), obs(1, 0, 1)];
    const tried = observed.map((o) => o.defense);
    const a = proposeBatch(input({ observed, tried, count: 6 }));
    const b = proposeBatch(input({ observed, tried, count: 6 }));
    assert.deepEqual(a, b);
    assert.equal(a.length, 6);
    const keys = new Set([...tried, ...a].map(defenseKey));
    assert.equal(keys.size, 8);
  });

  test('range ends never tried come first', () => {
    const observed = [obs(0.01, 1, 0), obs(0.1, 0, 1)];
    const tried = observed.map((o) => o.defense);
    assert.deepEqual(proposeBatch(input({ observed, tried, count: 2 })), [fim(1e-3), fim(1)]);
  });

  test('categorical choices: a fixed one is one point, a ranged one gets the rest', () => {
    const search: SearchSpec = { ...fimOnly, space: [{ defense: 'none' }, ...fimOnly.space] };
    assert.deepEqual(proposeBatch(input({ search, count: 4 })), [
      { name: 'none' },
      fim(1e-3),
      fim(1),
      fim(0.03162),
    ]);
  });

  test('a gap between two choices walks the ranged one toward the other', () => {
    const search: SearchSpec = { ...fimOnly, space: [{ defense: 'none' }, ...fimOnly.space] };
    // none is the accurate end; the fim points near it lie at small beta: step below 0.01.
    const observed = [
      { defense: { name: 'none' as const }, kl: 1, nll: 0 },
      obs(0.01, 0.3, 0.7),
      obs(0.1, 0.2, 0.8),
      obs(1, 0, 1),
    ];
    const tried = [...observed.map((o) => o.defense), fim(1e-3)];
    const [p] = proposeBatch(input({ search, observed, tried, count: 1 }));
    const u = unitOf(search.space[1]!, p!)![0]!;
    assert.ok(u > 0 && u < 1 / 3, `proposed ${JSON.stringify(p)}`);
    assert.deepEqual(p, fim(0.003162));
  });

  test('when every gap is too narrow to split the batch is filled at random', () => {
    const observed = [obs(1e-3, 1, 0), obs(1.00001e-3, 0, 1)];
    const search: SearchSpec = {
      ...fimOnly,
      space: [{ defense: 'fim', beta: { min: 1e-3, max: 1.00001e-3, scale: 'log' } }],
    };
    const tried = observed.map((o) => o.defense);
    const out = proposeBatch(input({ search, observed, tried, count: 2 }));
    for (const d of out) assert.ok(!tried.some((t) => defenseKey(t) === defenseKey(d)));
  });
});

describe('proposeBatch, baselines', () => {
  test('grid: the budget log-spaced over the range, in order, skipping tried points', () => {
    const search = { ...fimOnly, method: 'grid' as const };
    assert.deepEqual(gridPoints(search.space, 4), [fim(1e-3), fim(0.01), fim(0.1), fim(1)]);
    assert.deepEqual(proposeBatch(input({ search, gridSize: 4, tried: [fim(1e-3)], count: 4 })), [
      fim(0.01),
      fim(0.1),
      fim(1),
    ]);
  });

  test('random: seeded, inside the range, different per seed and round', () => {
    const search = { ...fimOnly, method: 'random' as const };
    const a = proposeBatch(input({ search }));
    assert.deepEqual(a, proposeBatch(input({ search })));
    assert.notDeepEqual(a, proposeBatch(input({ search: { ...search, seed: 1 } })));
    assert.notDeepEqual(a, proposeBatch(input({ search, round: 2 })));
    for (const d of a) assert.ok(d.beta! >= 1e-3 && d.beta! <= 1);
  });

  test('a space of fixed choices all tried proposes nothing', () => {
    const search: SearchSpec = { ...fimOnly, space: [{ defense: 'none' }] };
    assert.deepEqual(proposeBatch(input({ search, tried: [{ name: 'none' }] })), []);
  });
});
