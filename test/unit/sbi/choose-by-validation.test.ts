// The rule `robustsbi train` and the parity bench share for picking among candidate architectures.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  candidateSchedule,
  chooseByValidation,
  describeChoice,
  describeMade,
} from '../../../sbi/choose-by-validation.js';
import { hiddenDegrees, madeMasks } from '../../../sbi/estimators/made.js';

interface Run {
  name: string;
  loss: number;
}

function harness(losses: Record<string, number | Error>) {
  const disposed: string[] = [];
  const train = async (arch: Record<string, unknown>): Promise<Run> => {
    const name = arch.name as string;
    const v = losses[name]!;
    if (v instanceof Error) throw v;
    return { name, loss: v };
  };
  const opts = {
    bestValLoss: (r: Run) => r.loss,
    dispose: (r: Run) => void disposed.push(r.name),
    passOver: (e: unknown) => e instanceof RangeError,
  };
  return { disposed, train, opts };
}

describe('chooseByValidation', () => {
  test('keeps the lowest best validation NLL and disposes every other run', async () => {
    const h = harness({ a: 1.5, b: 0.7, c: 0.9 });
    const archs = [{ name: 'a' }, { name: 'b' }, { name: 'c' }];
    const choice = (await chooseByValidation(archs, h.train, h.opts))!;
    assert.equal(choice.chosen.name, 'b');
    assert.deepEqual(choice.architecture, { name: 'b' });
    assert.deepEqual(
      choice.scores.map((s) => s.bestValLoss),
      [1.5, 0.7, 0.9],
    );
    assert.deepEqual(h.disposed.sort(), ['a', 'c']);
  });

  test('the first candidate wins a tie', async () => {
    const h = harness({ a: 0.5, b: 0.5 });
    const choice = (await chooseByValidation([{ name: 'a' }, { name: 'b' }], h.train, h.opts))!;
    assert.equal(choice.chosen.name, 'a');
    assert.deepEqual(h.disposed, ['b']);
  });

  test('passes over a candidate whose error passOver accepts, and says so', async () => {
    const h = harness({ a: new RangeError('diverged'), b: 2 });
    const choice = (await chooseByValidation([{ name: 'a' }, { name: 'b' }], h.train, h.opts))!;
    assert.equal(choice.chosen.name, 'b');
    assert.deepEqual(choice.passedOver, [{ name: 'a' }]);
    const all = await chooseByValidation(
      [{ name: 'a' }, { name: 'a' }],
      harness({ a: new RangeError('diverged') }).train,
      h.opts,
    );
    assert.equal(all, undefined);
  });

  test('a single candidate is never passed over: its error reaches the caller', async () => {
    const h = harness({ a: new RangeError('diverged') });
    await assert.rejects(chooseByValidation([{ name: 'a' }], h.train, h.opts), /diverged/);
  });

  test('any other error disposes the run kept so far and propagates', async () => {
    const h = harness({ a: 1, b: new TypeError('broken') });
    await assert.rejects(
      chooseByValidation([{ name: 'a' }, { name: 'b' }], h.train, h.opts),
      /broken/,
    );
    assert.deepEqual(h.disposed, ['a']);
  });

  test('finish goes on with the kept run only; the replaced run is disposed, the scores kept', async () => {
    const h = harness({ a: 1.5, b: 0.7 });
    const finished: string[] = [];
    const choice = (await chooseByValidation([{ name: 'a' }, { name: 'b' }], h.train, {
      ...h.opts,
      finish: async (r) => {
        finished.push(r.name);
        return { name: `${r.name}+`, loss: r.loss - 0.1 };
      },
    }))!;
    assert.deepEqual(finished, ['b']);
    assert.equal(choice.chosen.name, 'b+');
    assert.deepEqual(
      choice.scores.map((s) => s.bestValLoss),
      [1.5, 0.7],
    );
    assert.deepEqual(h.disposed.sort(), ['a', 'b']);
    // A finish that fails disposes the kept run and propagates.
    const g = harness({ a: 1 });
    await assert.rejects(
      chooseByValidation([{ name: 'a' }, { name: 'a' }], g.train, {
        ...g.opts,
        finish: () => Promise.reject(new TypeError('broken')),
      }),
      /broken/,
    );
    assert.deepEqual(g.disposed, ['a', 'a']);
  });

  test('candidates leave the anneals to the kept one; a single run keeps its schedule', () => {
    const hp = { learningRate: 5e-4, anneals: 2 };
    assert.deepEqual(candidateSchedule(hp, 2), { learningRate: 5e-4, anneals: 0 });
    assert.equal(candidateSchedule(hp, 1), hp);
    const plain: { learningRate: number; anneals?: number } = { learningRate: 5e-4 };
    assert.equal(candidateSchedule(plain, 2), plain);
  });

  test('describes the choice in the words train prints', () => {
    assert.equal(describeMade({ hidden: [50, 50] }), '[50, 50]');
    assert.equal(
      describeMade({ hidden: [50, 50, 50], affine: 'nflows' }),
      "[50, 50, 50] with nflows' scale",
    );
    assert.equal(
      describeMade({ hidden: [50, 50, 50], affine: 'nflows', biasInit: 'torch' }),
      "[50, 50, 50] with nflows' scale and torch's biases",
    );
    assert.equal(
      describeMade({
        hidden: [50, 50, 50],
        affine: 'nflows',
        biasInit: 'torch',
        inputFanIn: 'separate',
      }),
      "[50, 50, 50] with nflows' scale and nflows' initialization",
    );
    assert.equal(
      describeMade({ hidden: [50], contextLayer: 'tanh', inputFanIn: 'separate' }),
      "[50] with nflows' context layer and nflows' first-layer fan-in",
    );
    assert.equal(
      describeMade({ hidden: [50, 50, 50], contextLayer: 'tanh', degrees: 'nflows' }),
      "[50, 50, 50] with nflows' context layer and nflows' degrees",
    );
    const line = describeChoice({
      chosen: null,
      architecture: { hidden: [50, 50] },
      scores: [
        { architecture: { hidden: [50, 50] }, bestValLoss: 1.23456 },
        { architecture: { hidden: [50, 50, 50], affine: 'nflows' }, bestValLoss: 1.5 },
      ],
      passedOver: [],
    });
    assert.equal(
      line,
      "chose [50, 50] by validation NLL [50, 50] 1.2346, [50, 50, 50] with nflows' scale 1.5000",
    );
  });
});

describe("nflows' MADE degrees", () => {
  test('hidden degrees cycle through 1..D-1, so no unit sees the context alone', () => {
    assert.deepEqual(hiddenDegrees({ thetaDim: 2, hidden: [4] }), [[0, 1, 0, 1]]);
    assert.deepEqual(hiddenDegrees({ thetaDim: 2, hidden: [4], degrees: 'nflows' }), [
      [1, 1, 1, 1],
    ]);
    assert.deepEqual(hiddenDegrees({ thetaDim: 4, hidden: [5], degrees: 'nflows' }), [
      [1, 2, 3, 1, 2],
    ]);
    assert.deepEqual(hiddenDegrees({ thetaDim: 1, hidden: [3], degrees: 'nflows' }), [[0, 0, 0]]);
  });

  test("the first dimension of the order gets no hidden unit, as in nflows' MADE", () => {
    const m = madeMasks({
      thetaDim: 3,
      ctxDim: 2,
      hidden: [6, 6],
      paramsPerDim: 2,
      order: [2, 0, 1],
      layout: 'dimMajor',
      degrees: 'nflows',
    });
    // Output columns i * 2 + p (dimMajor); dimension 2 is first in the order.
    const column = (c: number): number[] =>
      Array.from({ length: 6 }, (_, r) => m.output[r * 6 + c]!);
    assert.deepEqual(column(4), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(column(5), [0, 0, 0, 0, 0, 0]);
    // Dimension 0 (second) sees the degree-1 units, dimension 1 (third) every unit.
    assert.deepEqual(column(0), [1, 0, 1, 0, 1, 0]);
    assert.deepEqual(column(2), [1, 1, 1, 1, 1, 1]);
  });
});
