// The adversarial examples' documents and plots: histograms and moments against hand counts, the
// document a sweep stores, and the figures and table the report and dashboard draw from it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  exampleFigures,
  examplesTable,
  meanShift,
  widthRatio,
} from '../../../results/example-figures.js';
import { exampleDoc, exampleId, histogram, marginalsOf } from '../../../results/examples.js';
import type { AdversarialExample } from '../../../sbi/adversarial-example.js';

describe('histogram', () => {
  test('counts equal bins, the upper edge in the last, values outside dropped', () => {
    assert.deepEqual(
      histogram([0, 0.24, 0.25, 0.5, 0.99, 1, -0.1, 1.1, NaN], 0, 1, 4),
      [2, 1, 1, 2],
    );
  });
});

describe('marginalsOf', () => {
  test('bins both posteriors over a range holding them and the true value', () => {
    const clean = [
      [0, 10],
      [1, 10],
      [2, 10],
      [3, 10],
    ];
    const attacked = [
      [4, 10],
      [5, 10],
      [6, 10],
      [7, 10],
    ];
    const [a, b] = marginalsOf(clean, attacked, [-1, 10], 8);
    assert.equal(a!.lo, -1);
    assert.equal(a!.hi, 7);
    assert.deepEqual(a!.clean, [0, 1, 1, 1, 1, 0, 0, 0]);
    assert.deepEqual(a!.attacked, [0, 0, 0, 0, 0, 1, 1, 2]);
    assert.equal(a!.cleanMean, 1.5);
    assert.equal(a!.attackedMean, 5.5);
    // Sample std of 0..3: sqrt(5/3).
    assert.ok(Math.abs(a!.cleanStd - Math.sqrt(5 / 3)) < 1e-5);
    // A constant dimension gets a unit-wide range around its value.
    assert.equal(b!.lo, 9.5);
    assert.equal(b!.hi, 10.5);
    assert.equal(
      b!.clean.reduce((s, c) => s + c, 0),
      4,
    );
    assert.equal(b!.cleanStd, 0);
  });
});

function example(dims: number, xDim: number): AdversarialExample {
  const rows = (n: number, shift: number) =>
    Array.from({ length: n }, (_, r) => Array.from({ length: dims }, (_, d) => d + shift + r / n));
  const trace = (v: number) => Array.from({ length: xDim }, () => v);
  return {
    index: 3,
    theta: Array.from({ length: dims }, (_, d) => d + 0.5),
    x: trace(0),
    xAdv: trace(0.1),
    eps: 2,
    epsAbs: 0.3,
    kl: 1.5,
    klAll: [0.1, 0.2, 0.3, 2.5],
    posterior: { clean: rows(100, 0), attacked: rows(100, 1) },
    predictive: {
      clean: [trace(1), trace(2), [NaN, ...trace(3).slice(1)]],
      attacked: [trace(4), trace(5), trace(6)],
    },
  };
}

const context = (xTraces?: string[]) => ({
  trialId: 't1',
  task: 'task',
  paramNames: ['a', 'b', 'c'],
  ...(xTraces ? { xTraces } : {}),
  attack: 'l2pgd',
  objective: 'rkl',
  nTest: 4,
  klMeanEvaluation: 0.775,
  predictiveKept: 2,
  artifact: 'examples/t1',
});

describe('exampleDoc', () => {
  test('keeps the point, its KL in the evaluation and a few predictives, nulls for failed values', () => {
    const d = exampleDoc(example(3, 6), context(), new Date(0));
    assert.equal(d._id, exampleId('t1', 'l2pgd', 'rkl', 2));
    assert.equal(d.klEvaluation, 2.5);
    assert.equal(d.kl, 1.5);
    assert.equal(d.marginals.length, 3);
    assert.equal(d.samples, 100);
    // Two of three kept per posterior; the third clean one (with a NaN) counted as not finite.
    assert.deepEqual(
      d.predictive.map((p) => [p.from, p.x[0]]),
      [
        ['clean', 1],
        ['clean', 2],
        ['attacked', 4],
        ['attacked', 5],
      ],
    );
    assert.deepEqual(d.predictiveFinite, { clean: 2, attacked: 3, drawn: 3 });
  });

  test('mean shift and width ratio read the marginals', () => {
    const d = exampleDoc(example(3, 6), context(), new Date(0));
    // Every dimension moved by exactly 1 with the same spread.
    const std = d.marginals[0]!.cleanStd;
    assert.ok(Math.abs(meanShift(d) - 1 / std) < 1e-4);
    assert.ok(Math.abs(widthRatio(d) - 1) < 1e-9);
  });
});

describe('exampleFigures', () => {
  test('draws one panel per parameter and one per named trace of x', () => {
    const d = exampleDoc(example(3, 6), context(['A', 'B', 'C']), new Date(0));
    const [marginals, predictive] = exampleFigures([d], [{ trialId: 't1', label: 'fim β=100' }]);
    assert.equal(marginals!.kind, 'example_marginals');
    // Clean and attacked per parameter, and the legend entry of the true value.
    assert.equal(marginals!.data.length, 3 * 2 + 1);
    assert.deepEqual(
      marginals!.data.slice(0, 6).map((t) => t.xaxis),
      ['x', 'x', 'x2', 'x2', 'x3', 'x3'],
    );
    assert.equal((marginals!.layout.shapes as unknown[]).length, 3);
    assert.deepEqual((marginals!.layout.xaxis3 as { title: { text: string } }).title.text, 'c');
    assert.match(JSON.stringify(marginals!.layout.title), /fim β=100/);
    // Densities integrate to one over the bins.
    const clean = marginals!.data[0]!;
    const xs = clean.x as number[];
    const width = xs[1]! - xs[0]!;
    const mass = (clean.y as number[]).reduce((s, v) => s + v * width, 0);
    assert.ok(Math.abs(mass - 1) < 1e-9, String(mass));

    assert.equal(predictive!.kind, 'example_predictive');
    // Per segment: 2 + 2 predictives, x and x~.
    assert.equal(predictive!.data.length, 3 * 6);
    assert.ok('yaxis3' in predictive!.layout && !('yaxis4' in predictive!.layout));
    assert.deepEqual((predictive!.data[0]!.y as unknown[]).length, 2);
  });

  test('the table lists each example and names the completed trials without one', () => {
    const d = exampleDoc(example(3, 6), context(), new Date(0));
    const t = examplesTable(
      [d],
      [
        { trialId: 't1', label: 'none' },
        { trialId: 't2', label: 'fim β=1' },
      ],
    );
    assert.equal(t.name, 'examples');
    assert.equal(t.rows.length, 1);
    const col = (c: string) => t.columns.indexOf(c);
    assert.equal(t.rows[0]![col('KL at point (evaluation)')], 2.5);
    assert.equal(t.rows[0]![col('finite predictives, clean')], '2/3');
    assert.match(t.notes![0]!, /1 completed trial\(s\) have no example yet.*t2/);
  });
});
