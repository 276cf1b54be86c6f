import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { proposedTrial, sweepIdOf, trialIndexer } from '../../../sweeps/expand.js';
import { planActivities } from '../../../sweeps/plan.js';
import { SpecError, validateSweepSpec } from '../../../sweeps/validate.js';

const searchSpec = () => ({
  name: 'search',
  tasks: ['gaussian_linear'],
  estimators: ['maf'],
  seeds: [0],
  budgets: [2000],
  evaluation: { attacks: ['l2pgd'], eps: [1, 2], tradeoffEps: 2 },
  search: {
    space: [{ defense: 'none' }, { defense: 'fim', beta: { min: 1e-3, max: 1, scale: 'log' } }],
    objectives: [
      { metric: 'testNll' },
      { metric: 'kl', attack: 'l2pgd', objective: 'rkl', eps: 2 },
    ],
    budget: 8,
    batch: 3,
  } as Record<string, unknown>,
});
type Spec = ReturnType<typeof searchSpec>;

function rejects(edit: (s: Spec) => void, path: string, re: RegExp): void {
  const s = searchSpec();
  edit(s);
  assert.throws(
    () => validateSweepSpec(s),
    (e: unknown) => e instanceof SpecError && e.path === path && re.test(e.problem),
  );
}

const space = (s: Spec) => s.search.space as Record<string, unknown>[];
const objectives = (s: Spec) => s.search.objectives as Record<string, unknown>[];

describe('search block', () => {
  test('a valid block gets its defaults; the defenses grid may be left out', () => {
    const spec = validateSweepSpec(searchSpec());
    assert.deepEqual(spec.defenses, []);
    assert.equal(spec.search!.method, 'gaps');
    assert.equal(spec.search!.seed, 0);
    assert.equal(trialIndexer(spec).count, 0);
  });

  test('a defense default fills a fixed parameter (trades beta 0.1)', () => {
    const s = searchSpec();
    s.search.space = [{ defense: 'trades', trainEps: { min: 0.1, max: 1 } }];
    const spec = validateSweepSpec(s);
    assert.deepEqual(spec.search!.space[0], {
      defense: 'trades',
      beta: 0.1,
      trainEps: { min: 0.1, max: 1, scale: 'linear' },
    });
  });

  test('the search is part of the sweep ID; a grid spec keeps its ID', () => {
    const a = validateSweepSpec(searchSpec());
    const s = searchSpec();
    s.search.budget = 9;
    assert.notEqual(sweepIdOf(a), sweepIdOf(validateSweepSpec(s)));
  });

  test('a proposed trial has the IDs the same grid point gets', () => {
    const s = searchSpec();
    const grid = validateSweepSpec({
      ...s,
      search: undefined,
      defenses: [{ name: 'fim', betas: [0.01] }],
    });
    const spec = validateSweepSpec(s);
    const p = proposedTrial(spec, { name: 'fim', beta: 0.01 }, 5);
    const g = trialIndexer(grid).at(0);
    assert.equal(p.trialId, g.trialId);
    assert.equal(p.modelId, g.modelId);
    assert.equal(p.simulationId, g.simulationId);
    assert.equal(p.index, 5);
  });

  test('the plan of a search counts its whole budget', () => {
    const spec = validateSweepSpec(searchSpec());
    assert.equal(planActivities(spec).trials, 8);
  });

  test('bad blocks are refused with one sentence naming the field', () => {
    rejects(
      (s) => (space(s)[1]!.beta = { min: 1, max: 1 }),
      'spec/search/space/1/beta',
      /empty range/,
    );
    rejects(
      (s) => (space(s)[1]!.beta = { min: 2, max: 1, scale: 'log' }),
      'spec/search/space/1/beta/min',
      /must be below max/,
    );
    rejects(
      (s) => (space(s)[1]!.beta = { min: 0, max: 1, scale: 'log' }),
      'spec/search/space/1/beta/min',
      /above 0 on a log scale/,
    );
    rejects(
      (s) => (objectives(s)[0]!.metric = 'accuracy'),
      'spec/search/objectives/0/metric',
      /unknown search objective "accuracy"/,
    );
    rejects((s) => (s.search.budget = 0), 'spec/search/budget', />= 1/);
    rejects((s) => (s.search.batch = 9), 'spec/search/batch', /at most the search budget/);
    rejects((s) => delete space(s)[1]!.beta, 'spec/search/space/1', /needs property "beta"/);
    rejects((s) => (space(s)[0]!.beta = 1), 'spec/search/space/0/beta', /not allowed/);
    rejects(
      (s) => space(s).push({ defense: 'fim', beta: 0.5 }),
      'spec/search/space/2/defense',
      /listed twice/,
    );
    rejects(
      (s) => (objectives(s)[1]!.eps = 0.5),
      'spec/search/objectives/1/eps',
      /one of evaluation\/eps/,
    );
    rejects((s) => (objectives(s)[1] = { metric: 'testNll' }), 'spec/search/objectives', /one kl/);
    rejects((s) => (s.seeds = [0, 1]), 'spec/seeds', /exactly one seed/);
    rejects(
      (s) => Object.assign(s, { defenses: [{ name: 'fim', betas: [1, 2, 3, 4, 5, 6, 7, 8, 9] }] }),
      'spec/search/budget',
      /cover the 9 trials/,
    );
    rejects(
      (s) => delete (s as Partial<Spec>).search,
      'spec',
      /missing required property "defenses"/,
    );
  });
});
