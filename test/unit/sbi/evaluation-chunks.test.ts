// The evaluation in chunks (sbi/evaluation.ts): an evaluation of one chunk computes exactly what the
// metrics compose to over the whole test set, as before chunks existed; the chunks of a larger one,
// evaluated apart and in any order, pool into the records one call computes, to the bit.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { attackInBatches } from '../../../sbi/attacks/index.js';
import { absoluteEps, clipBoxOf, meanPerSampleStd } from '../../../sbi/attacks/eps.js';
import { initBackend } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { computeZScore } from '../../../sbi/estimators/zscore.js';
import {
  evaluateChunk,
  evaluateRobustness,
  evaluationChunkCount,
  poolGroundTruth,
  summarizeChunks,
  type EvaluationRecord,
  type EvaluationSpec,
} from '../../../sbi/evaluation.js';
import { expectedCoverage } from '../../../sbi/metrics/coverage.js';
import { GROUND_TRUTH_SAMPLES, groundTruthMetrics } from '../../../sbi/metrics/ground-truth.js';
import { meanNll, nllPerPair } from '../../../sbi/metrics/nll.js';
import { klUnderAttack, summarizeKl } from '../../../sbi/metrics/robustness.js';
import { summarize } from '../../../sbi/metrics/summary.js';
import { createRng } from '../../../sbi/rng.js';
import { simulateDataset } from '../../../sbi/simulate.js';
import { getTask } from '../../../sbi/tasks/index.js';
import type { DensityEstimator } from '../../../sbi/types.js';

const task = getTask('gaussian_linear');
let est: DensityEstimator;

before(async () => {
  await initBackend('cpu');
  const train = simulateDataset(task, 400, createRng(1));
  est = createEstimator('maf', {
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    zscore: computeZScore(train.theta, train.x, train.n, task.thetaDim, task.xDim),
    config: { hidden: [16], numTransforms: 2 },
    rng: createRng(2),
  });
});

const spec = (attackBatchSize: number): EvaluationSpec => ({
  attacks: ['l2pgd', 'noise'],
  divergences: ['rkl', 'fkl'],
  eps: [0.5],
  steps: 3,
  mcSamples: 2,
  evalSamples: 16,
  coverageSamples: 50,
  coverageLevels: 10,
  attackBatchSize,
});

/** The records with their timings set aside, as comparable text. */
const text = (rs: EvaluationRecord[]) => JSON.stringify(rs.map(({ seconds: _s, ...r }) => r));

describe('the evaluation in chunks', () => {
  test('of one chunk is the metrics composed over the whole test set', async () => {
    const test = simulateDataset(task, 30, createRng(3));
    const s = spec(1000);
    assert.equal(evaluationChunkCount(test.n, s), 1);
    const [got] = await evaluateRobustness(
      est,
      test,
      { ...s, attacks: ['l2pgd'], divergences: ['rkl'] },
      createRng(4),
    );
    // What the evaluation was before chunks, for one record.
    const rng = createRng(4);
    const epsScale = meanPerSampleStd(test.x, test.n, est.xDim);
    const cov = { samples: 50, levels: 10 };
    const clean = await expectedCoverage(est, test.x, test.theta, rng.fork('clean-coverage'), cov);
    const r = rng.fork('l2pgd/rkl/0.5');
    const xAdv = await attackInBatches(
      'l2pgd',
      {
        estimator: est,
        epsAbs: absoluteEps(0.5, epsScale),
        box: clipBoxOf(test.x),
        rng: r.fork('attack'),
      },
      test.x,
      test.theta,
      { divergence: 'rkl', steps: 3, mcSamples: 2 },
      1000,
    );
    const kl = await klUnderAttack(est, 'rkl', test.x, xAdv, r.fork('kl'), { samples: 16 });
    const attacked = await expectedCoverage(est, xAdv, test.theta, r.fork('coverage'), cov);
    const nllAdv = summarize(await nllPerPair(est, xAdv, test.theta));
    assert.deepEqual(got!.kl, summarizeKl(kl));
    assert.deepEqual(got!.coverage, attacked.coverage);
    assert.equal(got!.coverageAbsArea, attacked.absArea);
    assert.deepEqual(got!.cleanCoverage, clean.coverage);
    assert.deepEqual(got!.nll, {
      clean: await meanNll(est, test.x, test.theta),
      attacked: nllAdv.mean,
    });
    assert.deepEqual(got!.nllAttacked, nllAdv);
    assert.equal(got!.epsScale, epsScale);
  });

  test('of several chunks, evaluated apart in any order, pool into the records of one call', async () => {
    const test = simulateDataset(task, 50, createRng(5));
    const s = spec(20);
    assert.equal(evaluationChunkCount(test.n, s), 3);
    const whole = await evaluateRobustness(est, test, s, createRng(6));
    const chunks = [];
    for (const c of [2, 0, 1]) chunks.push(await evaluateChunk(est, test, s, createRng(6), c));
    assert.deepEqual(
      chunks.map((c) => [c.from, c.to]),
      [
        [40, 50],
        [0, 20],
        [20, 40],
      ],
    );
    const pooled = summarizeChunks(est, test, s, chunks);
    assert.equal(text(pooled), text(whole));
    assert.equal(whole[0]!.kl.n, 50, 'quantiles over every point');
    // Each chunk draws from streams of its own.
    assert.notDeepEqual([...chunks[2]!.records[0]!.kl], [...chunks[1]!.records[0]!.kl]);
  });

  test('take the clean values from an evaluation at another attack, to the bit', async () => {
    const test = {
      ...simulateDataset(task, 50, createRng(5)),
      analyticPosterior: (x: Float32Array) => task.analyticPosterior!(x),
    };
    const noise = { ...spec(20), attacks: ['noise' as const] };
    const pgd = { ...spec(20), attacks: ['l2pgd' as const] };
    const other = await evaluateChunk(est, test, noise, createRng(6), 1);
    const fresh = await evaluateChunk(est, test, pgd, createRng(6), 1);
    const reused = await evaluateChunk(est, test, pgd, createRng(6), 1, undefined, other);
    const comparable = (c: typeof fresh) =>
      JSON.stringify(
        { ...c, records: c.records.map(({ seconds: _s, ...r }) => r) },
        (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v),
      );
    assert.equal(comparable(reused), comparable(fresh));
    assert.ok(fresh.groundTruth, 'the ground truth is part of the clean values');
    assert.equal(reused.cleanCoverageRank, other.cleanCoverageRank, 'taken, not recomputed');
    // Another chunk's values are not taken.
    const mismatched = await evaluateChunk(est, test, pgd, createRng(6), 2, undefined, other);
    assert.notEqual(mismatched.cleanCoverageRank, other.cleanCoverageRank);
    assert.equal(mismatched.from, 40);
  });

  test('refuse a missing chunk and a chunk the test set does not have', async () => {
    const test = simulateDataset(task, 50, createRng(5));
    const s = spec(20);
    const c0 = await evaluateChunk(est, test, s, createRng(6), 0);
    assert.throws(() => summarizeChunks(est, test, s, [c0]), /needs chunks 0 to 2; got 0/);
    await assert.rejects(evaluateChunk(est, test, s, createRng(6), 3), /chunks 0 to 2, not 3/);
  });
});

describe('the ground-truth metrics of an evaluation', () => {
  const posterior = (x: Float32Array) => task.analyticPosterior!(x);

  test('pool over chunks as means over all points: chunk means weighted by chunk size', () => {
    const gt = (chunk: number, values: number[]) => ({
      chunk,
      groundTruth: {
        c2st: Float64Array.from(values),
        klQP: Float64Array.from(values, (v) => 2 * v),
        klPQ: Float64Array.from(values, (v) => v - 1),
        samples: 100,
      },
    });
    const chunks = [gt(1, [0.9]), gt(0, [0.5, 0.6, 0.7])];
    const got = poolGroundTruth(chunks)!;
    const all = [0.5, 0.6, 0.7, 0.9];
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    const weighted = (3 * ((0.5 + 0.6 + 0.7) / 3) + 1 * 0.9) / 4;
    assert.ok(Math.abs(got.c2st - mean) < 1e-15);
    assert.ok(Math.abs(got.c2st - weighted) < 1e-15);
    assert.notEqual(got.c2st, (0.6 + 0.9) / 2, 'not the plain mean of chunk means');
    assert.ok(Math.abs(got.klQP - 2 * mean) < 1e-15);
    assert.ok(Math.abs(got.klPQ - (mean - 1)) < 1e-15);
    assert.equal(got.samples, 100);
    // A chunk without them (kept before they existed): none for the whole set.
    assert.equal(poolGroundTruth([chunks[1]!, { chunk: 1 }]), undefined);
    assert.equal(poolGroundTruth([]), undefined);
    assert.throws(
      () =>
        poolGroundTruth([
          gt(0, [0.5]),
          { chunk: 1, groundTruth: { ...gt(1, [1]).groundTruth, samples: 5 } },
        ]),
      /different numbers of samples/,
    );
  });

  test('are scored per chunk on a stream of their own and pool into every record', async () => {
    const base = simulateDataset(task, 30, createRng(5));
    const test = { ...base, analyticPosterior: posterior };
    const s = { ...spec(12), attacks: ['noise' as const], divergences: ['rkl' as const] };
    const whole = await evaluateRobustness(est, test, s, createRng(6));
    const chunks = [];
    for (const c of [1, 2, 0]) chunks.push(await evaluateChunk(est, test, s, createRng(6), c));
    assert.equal(text(summarizeChunks(est, test, s, chunks)), text(whole));
    // Chunk 0 is groundTruthMetrics on its points with the fork 'ground-truth'.
    const c0 = chunks.find((c) => c.chunk === 0)!;
    const direct = await groundTruthMetrics(
      est,
      posterior,
      test.x.subarray(0, 12 * task.xDim),
      12,
      createRng(6).fork('ground-truth'),
    );
    assert.deepEqual([...c0.groundTruth!.c2st], [...direct.perX.c2st]);
    assert.deepEqual([...c0.groundTruth!.klQP], [...direct.perX.klQP]);
    const g = whole[0]!.groundTruth!;
    assert.equal(g.samples, GROUND_TRUTH_SAMPLES);
    assert.ok(g.c2st >= 0.5 && g.c2st <= 1, `c2st ${g.c2st}`);
    assert.ok(Number.isFinite(g.klQP) && Number.isFinite(g.klPQ));
    // The other values are those of an evaluation without them.
    const plain = await evaluateRobustness(est, base, s, createRng(6));
    assert.equal(plain[0]!.groundTruth, undefined);
    const rest: EvaluationRecord = { ...whole[0]! };
    delete rest.groundTruth;
    assert.equal(text([rest]), text(plain));
  });
});
