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
  assert.match(lines[6]!, /1 completed trials have no evaluation/);
  assert.match(tradeoffTables([]), /No trade-off curve/);
});
