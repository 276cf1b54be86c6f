// The benches' pure helpers: argument parsing, the trivial sweep's size, and that the synthetic
// evaluation documents the orchestration and Mongo benches write pass the store's own schema.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { heldoutNll, meanNll } from '../../../bench/accuracy-core.js';
import { numberArg, numberListArg, parseArgs } from '../../../bench/args.js';
import { parseVariants } from '../../../bench/heldout-screen.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import type { DensityEstimator, Task } from '../../../sbi/types.js';
import { syntheticEvaluation, trivialSpec } from '../../../bench/synthetic-results.js';
import { medianRow, type Row } from '../../../bench/train-throughput.js';
import { evaluationId } from '../../../results/documents.js';
import { encodeDocument } from '../../../results/nonfinite.js';
import { validateDocument } from '../../../results/validate.js';
import { countTrials, expandSweep } from '../../../sweeps/expand.js';

before(async () => {
  await initBackend('cpu');
});

describe('bench helpers', () => {
  test('parseVariants reads label={json} pairs in order and refuses anything else', () => {
    assert.deepEqual(parseVariants([]), [['default', {}]]);
    assert.deepEqual(parseVariants(['T3={"hidden":[50,50,50]}', 'N={"affine":"nflows"}']), [
      ['T3', { hidden: [50, 50, 50] }],
      ['N', { affine: 'nflows' }],
    ]);
    assert.throws(() => parseVariants(['{"hidden":[5]}']), /--variant must be label=\{json\}/);
    assert.throws(
      () => parseVariants(['A=[1]']),
      /--variant A: its settings must be a JSON object/,
    );
    assert.throws(() => parseVariants(['A={']), SyntaxError);
  });

  test('heldoutNll averages -log q over every row, chunk by chunk, rows kept paired', () => {
    // log q(theta | x) = theta_1 - 2 x_0: a density whose value names the row it was given.
    const model = {
      logProb: (theta: tf.Tensor2D, x: tf.Tensor2D) =>
        tf
          .sub(tf.slice(theta, [0, 1], [-1, 1]), tf.mul(2, tf.slice(x, [0, 0], [-1, 1])))
          .reshape([-1]),
    } as unknown as DensityEstimator;
    const task = { thetaDim: 2, xDim: 3 } as Task;
    const n = 4500; // three chunks, the last one short
    const theta = Float32Array.from({ length: 2 * n }, (_, i) => (i % 2 === 1 ? (i % 7) / 7 : 9));
    const x = Float32Array.from({ length: 3 * n }, (_, i) => (i % 3 === 0 ? (i % 11) / 11 : -9));
    let expected = 0;
    for (let r = 0; r < n; r++) expected -= theta[2 * r + 1]! - 2 * x[3 * r]!;
    expected /= n;
    const before = tf.memory().numTensors;
    const got = heldoutNll(model, task, { theta, x, n, dropped: 0 });
    assert.ok(Math.abs(got - expected) < 1e-5, `${got} vs ${expected}`);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(meanNll(Float32Array.of(-1, -2, -6)), 3);
  });

  test('parseArgs takes --key value pairs and bare flags, and refuses stray words', () => {
    const a = parseArgs(['--n', '10', '--quick', '--tasks', 'a,b', '--json']);
    assert.equal(a.get('n'), '10');
    assert.equal(a.get('quick'), 'true');
    assert.equal(a.get('tasks'), 'a,b');
    assert.equal(a.get('json'), 'true');
    assert.equal(numberArg(a, 'n', 5), 10);
    assert.equal(numberArg(a, 'missing', 5), 5);
    assert.throws(() => numberArg(parseArgs(['--n', 'ten']), 'n', 1), /--n must be a number/);
    assert.throws(() => parseArgs(['stray']), /unexpected argument stray/);
  });

  test('numberListArg reads comma lists, checks each entry and says what the list must hold', () => {
    const a = parseArgs(['--n', '1000,10000', '--eps', '0.5,,2', '--seeds', '0,-1']);
    assert.deepEqual(numberListArg(a, 'n', '1'), [1000, 10000]);
    assert.deepEqual(numberListArg(a, 'missing', '3,4'), [3, 4]);
    assert.throws(() => numberListArg(a, 'eps', '1'), /--eps must list numbers, not $/);
    assert.throws(
      () => numberListArg(a, 'seeds', '0', (k) => k >= 0, 'non-negative integers'),
      /--seeds must list non-negative integers, not -1/,
    );
  });

  test('trivialSpec expands to at least the trials asked for, one evaluation each', () => {
    for (const n of [1, 100, 1000, 2500]) {
      const spec = trivialSpec(n, 7);
      const trials = expandSweep(spec);
      assert.equal(trials.length, countTrials(spec));
      assert.ok(trials.length >= n && trials.length < n + 3, `${n} -> ${trials.length}`);
      assert.equal(spec.concurrency, 7);
      assert.equal(
        spec.evaluation.attacks.length *
          spec.evaluation.objectives.length *
          spec.evaluation.eps.length,
        1,
      );
    }
  });

  test('trivialSpec packs as told', () => {
    assert.equal(trivialSpec(100, 50).pack, 1);
    assert.equal(trivialSpec(100, 50, 25).pack, 25);
  });

  test('medianRow keeps the median repetition by CPU throughput, and every repetition', () => {
    const run = (wall: number, cpu: number, trainS: number): Row => ({
      impl: 'tfjs-wasm',
      ok: true,
      simulationsPerSecond: wall,
      simulationsPerCpuSecond: cpu,
      trainS,
    });
    const odd = medianRow([run(10, 30, 1), run(20, 10, 2), run(30, 20, 3)]);
    assert.equal(odd.trainS, 3, 'the repetition of CPU throughput 20');
    assert.deepEqual(
      odd.reps?.map((r) => r.simulationsPerCpuSecond),
      [30, 10, 20],
    );
    assert.equal(medianRow([run(1, 4, 1), run(1, 2, 2)]).trainS, 2, 'the lower middle of two');
    const failed = medianRow([run(1, 1, 1), { impl: 'tfjs-wasm', ok: false, reason: 'crashed' }]);
    assert.deepEqual(failed, { impl: 'tfjs-wasm', ok: false, reason: 'crashed' });
  });

  test('a synthetic evaluation is a valid evaluations document with the composed _id', () => {
    const e = syntheticEvaluation('trial-abc', 'l2pgd', 'rkl', 0.5, 20);
    assert.equal(e._id, evaluationId('trial-abc', 'l2pgd', 'rkl', 0.5));
    const now = new Date();
    assert.doesNotThrow(() =>
      validateDocument('evaluations', encodeDocument({ ...e, createdAt: now, updatedAt: now })),
    );
    // The schema check is real: a missing measurement is refused.
    const broken: Record<string, unknown> = { ...e };
    delete broken.nllClean;
    assert.throws(() =>
      validateDocument(
        'evaluations',
        encodeDocument({ ...broken, createdAt: now, updatedAt: now }),
      ),
    );
  });
});
