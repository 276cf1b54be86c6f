// The trade-off table printed after a sweep: one row per point, sorted by defense and strength,
// Pareto points starred, non-finite numbers shown as "-".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tradeoffTables } from '../../../cli/tradeoff-table.js';
import type { TradeoffCurveDoc } from '../../../results/documents.js';

const point = (defense: string, beta: number, x: number, y: number, pareto: boolean) => ({
  trialId: `${defense}-${beta}`,
  defense,
  beta,
  estimator: 'maf',
  budget: 1000,
  seed: 0,
  x,
  y,
  pareto,
});

test('rows are sorted by defense then beta, with the Pareto front starred', () => {
  const curve: TradeoffCurveDoc = {
    _id: 's|gaussian_linear|tradeoff',
    sweepId: 's',
    task: 'gaussian_linear',
    kind: 'tradeoff',
    attack: 'l2pgd',
    objective: 'rkl',
    eps: 2,
    points: [
      point('none', 0, 1.5, 2.0, true),
      point('fim', 0.1, 0.2, 2.5, true),
      point('fim', 0.01, 0.9, NaN, false),
    ],
    front: ['fim-0.1', 'none-0'],
    missing: ['x'],
  };
  const lines = tradeoffTables([curve]).split('\n');
  assert.match(lines[0]!, /^gaussian_linear: .*rkl KL under l2pgd at eps 2/);
  assert.deepEqual(
    lines.slice(3, 6).map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ['fim 0.01', 'fim 0.1', 'none 0'],
  );
  assert.match(lines[3]!, /0\.900\s+-$/);
  assert.match(lines[4]!, /0\.200\s+2\.500\s+\*$/);
  assert.match(
    lines[6]!,
    /^1 of 4 completed trials of gaussian_linear have no evaluation of attack l2pgd with objective rkl at eps 2\.$/,
  );
  assert.match(tradeoffTables([]), /No trade-off curve/);
});

test('gaussian_linear trials show their C2ST and KLs against the analytic posterior', () => {
  const curve: TradeoffCurveDoc = {
    _id: 's|gaussian_linear|tradeoff',
    sweepId: 's',
    task: 'gaussian_linear',
    kind: 'tradeoff',
    attack: 'l2pgd',
    objective: 'rkl',
    eps: 2,
    points: [
      { ...point('none', 0, 1.5, 2.0, true), groundTruth: { c2st: 0.61, klQP: 0.25, klPQ: NaN } },
      point('fim', 0.1, 0.2, 2.5, true),
    ],
    front: ['fim-0.1', 'none-0'],
    missing: [],
  };
  const lines = tradeoffTables([curve]).split('\n');
  assert.match(lines[1]!, /analytic one/);
  assert.match(lines[2]!, /NLL\s+C2ST\s+KL\(q\|\|p\)\s+KL\(p\|\|q\)$/);
  // Sorted: fim (no figures: "-") before none.
  assert.match(lines[4]!, /^fim .*2\.500\s+-\s+-\s+-\s+\*$/);
  assert.match(lines[5]!, /^none .*2\.000\s+0\.610\s+0\.250\s+-\s+\*$/);
});
