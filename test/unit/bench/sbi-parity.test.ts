// The parity bench's paired comparison over seeds: pairs by seed, leaves out what has no partner,
// and gives the paired t of the per-seed differences.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cellCandidates, pairedSummary } from '../../../bench/sbi-parity.js';
import { trainCandidates } from '../../../sbi/train-defaults.js';

type Tool = 'robustsbi' | 'sbi' | 'reference';
const cell = (tool: Tool, seed: number, mean: number, nll: number | null = 1, cpu = 1) => ({
  tool,
  task: 'slcp',
  n: 1000,
  seed,
  c2st: [mean],
  mean,
  heldoutNll: nll,
  trainCpuS: cpu,
});

describe('pairedSummary', () => {
  test('pairs by seed: mean difference, its sd and the paired t, NLL difference, CPU ratio', () => {
    const rows = pairedSummary([
      cell('robustsbi', 0, 0.95, 8.5, 3),
      cell('sbi', 0, 0.94, 8.7, 12),
      cell('robustsbi', 1, 0.96, 8.9, 3),
      cell('sbi', 1, 0.94, 8.8, 12),
      cell('robustsbi', 2, 0.94, 8.6, 2),
      cell('sbi', 2, 0.94, 8.6, 6),
    ]);
    assert.equal(rows.length, 1);
    const r = rows[0]!;
    assert.deepEqual(r.seeds, [0, 1, 2]);
    // Differences 0.01, 0.02, 0: mean 0.01, sd 0.01, t = 0.01 / (0.01 / sqrt 3) = sqrt 3.
    assert.ok(Math.abs(r.diff - 0.01) < 1e-12);
    assert.ok(Math.abs(r.diffSd - 0.01) < 1e-12);
    assert.ok(Math.abs(r.t - Math.sqrt(3)) < 1e-9);
    assert.ok(Math.abs(r.robustsbi - 0.95) < 1e-12);
    assert.ok(Math.abs(r.sbi - 0.94) < 1e-12);
    // NLL differences -0.2, +0.1, 0: mean -1/30.
    assert.ok(Math.abs(r.nllDiff! + 1 / 30) < 1e-9);
    assert.equal(r.cpuRatio, 8 / 30);
  });

  test('a seed with one tool, a reference row and a C2ST-less cell are left out', () => {
    const rows = pairedSummary([
      cell('robustsbi', 0, 0.9),
      cell('sbi', 0, 0.8, null),
      cell('robustsbi', 1, 0.5),
      cell('reference', 0, 0.5),
      { ...cell('sbi', 2, 0), c2st: [] },
      { ...cell('robustsbi', 2, 0), c2st: [] },
    ]);
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]!.seeds, [0]);
    assert.ok(Math.abs(rows[0]!.diff - 0.1) < 1e-12);
    // One seed: no spread, no t; a missing held-out NLL leaves the difference out.
    assert.ok(Number.isNaN(rows[0]!.diffSd) && Number.isNaN(rows[0]!.t));
    assert.equal(rows[0]!.nllDiff, null);
  });

  test('cells of different tasks or budgets are not paired with each other', () => {
    const rows = pairedSummary([cell('robustsbi', 0, 0.9), { ...cell('sbi', 0, 0.8), n: 10000 }]);
    assert.deepEqual(rows, []);
  });
});

describe('cellCandidates', () => {
  const base = { hidden: [50, 50], numTransforms: 5, activation: 'tanh' };
  const extra = { hidden: [50, 50, 50], contextLayer: 'tanh', degrees: 'nflows' };

  test("the default's candidates, as train's at the cell's budget, when nothing is asked", () => {
    for (const n of [1000, 10000])
      assert.deepEqual(
        cellCandidates(base, {}, null, n),
        trainCandidates('robustsbi', 'maf', { n }),
      );
    assert.notDeepEqual(
      cellCandidates(base, {}, null, 1000),
      cellCandidates(base, {}, null, 10000),
    );
    // An ensemble's members are MAFs: no closed-form candidate.
    assert.ok(cellCandidates(base, {}, null, 1000, 2).every((c) => c.estimator === undefined));
  });

  test('--config pins one architecture over the default one', () => {
    assert.deepEqual(cellCandidates(base, { hidden: [64] }, null, 1000), [
      { hidden: [64], numTransforms: 5, activation: 'tanh' },
    ]);
  });

  test("--add-candidate comes after the default's candidates, over the default architecture", () => {
    const candidates = cellCandidates(base, {}, extra, 10000);
    const defaults = trainCandidates('robustsbi', 'maf', { n: 10000 });
    assert.equal(candidates.length, defaults.length + 1);
    assert.deepEqual(candidates.slice(0, -1), defaults);
    assert.deepEqual(candidates.at(-1), { ...base, ...extra });
  });

  test('refuses --config and --add-candidate together', () => {
    assert.throws(() => cellCandidates(base, { hidden: [64] }, extra, 1000), /give one of them/);
  });
});
