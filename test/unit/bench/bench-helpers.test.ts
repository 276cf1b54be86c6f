// The benches' pure helpers: argument parsing, the trivial sweep's size, and that the synthetic
// evaluation documents the orchestration and Mongo benches write pass the store's own schema.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { numberArg, parseArgs } from '../../../bench/args.js';
import { syntheticEvaluation, trivialSpec } from '../../../bench/synthetic-results.js';
import { medianRow, type Row } from '../../../bench/train-throughput.js';
import { evaluationId } from '../../../results/documents.js';
import { encodeDocument } from '../../../results/nonfinite.js';
import { validateDocument } from '../../../results/validate.js';
import { countTrials, expandSweep } from '../../../sweeps/expand.js';

describe('bench helpers', () => {
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
