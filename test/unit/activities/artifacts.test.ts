// The activities' artifact encodings and failure classification (pure: no servers).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import {
  artifactNames,
  decodeCheckpoint,
  decodeChunkPoints,
  decodeModel,
  encodeCheckpoint,
  encodeChunkPoints,
  encodeModel,
} from '../../../activities/artifacts.js';
import { classify } from '../../../activities/failures.js';
import { checkArtifactName } from '../../../results/artifacts.js';
import { initBackend } from '../../../sbi/backend.js';
import { createDefense } from '../../../sbi/defenses/index.js';
import { DivergedError, InvalidSettingError } from '../../../sbi/errors.js';
import { modelToJson, type SavedModel } from '../../../sbi/model-file.js';
import { createEstimator, identityZScore } from '../../../sbi/estimators/index.js';
import type { TrainingState } from '../../../sbi/npe-checkpoint.js';
import { createRng } from '../../../sbi/rng.js';
import { getTask } from '../../../sbi/tasks/index.js';
import { FAILURE_TYPES } from '../../../sweeps/failures.js';

before(async () => {
  await initBackend('cpu');
});

describe('evaluation-chunk artifacts', () => {
  const chunk = {
    chunk: 1,
    from: 2,
    to: 4,
    nllClean: Float64Array.from([1.5, NaN]),
    cleanCoverageRank: Int32Array.from([3, 7]),
    records: [],
  };

  test('keep the ground-truth metrics per point, exactly', () => {
    const groundTruth = {
      c2st: Float64Array.from([0.5, 0.73]),
      klQP: Float64Array.from([0.1 + 0.2, Infinity]),
      klPQ: Float64Array.from([1e-17, 2]),
      samples: 100,
    };
    const back = decodeChunkPoints(encodeChunkPoints({ ...chunk, groundTruth }), 'c');
    assert.deepEqual(back.groundTruth, groundTruth);
    assert.ok(Number.isNaN(back.nllClean[1]));
  });

  test('read a chunk kept before the ground-truth metrics existed as one without them', () => {
    const back = decodeChunkPoints(encodeChunkPoints(chunk), 'c');
    assert.equal('groundTruth' in back, false);
    assert.deepEqual([...back.cleanCoverageRank], [3, 7]);
  });
});

describe('checkpoint artifacts', () => {
  test('keep Infinity and NaN (clipNorm off, a NaN loss) through JSON', () => {
    const state = {
      format: 'robustsbi-npe-checkpoint',
      version: 1,
      epoch: 2,
      hyperparameters: { clipNorm: Infinity },
      trainLosses: [1, NaN],
    } as unknown as TrainingState;
    const back = decodeCheckpoint(encodeCheckpoint(state));
    assert.equal(back.hyperparameters.clipNorm, Infinity);
    assert.ok(Number.isNaN(back.trainLosses[1]));
    assert.equal(back.epoch, 2);
    assert.throws(
      () => decodeCheckpoint(new TextEncoder().encode('{"epoch":1}')),
      /not a robustsbi NPE checkpoint/,
    );
  });

  test('a model artifact is the model file JSON and reads back without a file', () => {
    const m = createEstimator('gaussian', {
      thetaDim: 2,
      xDim: 2,
      zscore: identityZScore(2, 2),
      config: { hidden: [4] },
      rng: createRng(2),
    });
    const model: SavedModel = {
      estimator: m,
      task: 'toy',
      paramNames: ['a', 'b'],
      seed: 1,
      n: 10,
      training: { clipNorm: Infinity },
      summary: {
        epochs: 1,
        bestEpoch: 1,
        bestValLoss: NaN,
        stoppedBy: 'max-epochs',
        dropped: 0,
        nTrain: 9,
        nVal: 1,
      },
      code: { version: '0' },
      backend: 'cpu',
      createdAt: '',
    };
    const bytes = encodeModel(model);
    assert.equal(new TextDecoder().decode(bytes), modelToJson(model));
    const back = decodeModel(bytes, 'models/m');
    assert.deepEqual(back.estimator.getWeights(), m.getWeights());
    assert.ok(Number.isNaN(back.summary.bestValLoss));
    assert.throws(
      () => decodeModel(new Uint8Array([1]), 'models/m'),
      /^FileFormatError: The model artifact models\/m /,
    );
    m.dispose();
    back.estimator.dispose();
  });

  test('artifact names are valid store names', () => {
    const id = '0123456789abcdef01234567';
    for (const name of [
      artifactNames.simulations(id),
      artifactNames.testSet(id),
      artifactNames.checkpoint(id),
      artifactNames.model(id),
    ])
      assert.doesNotThrow(() => checkArtifactName(name));
    assert.notEqual(artifactNames.simulations(id), artifactNames.testSet(id));
  });
});

describe('failure classification', () => {
  const check = (err: unknown, type: string | undefined) => {
    const out = classify(err);
    if (type === undefined) {
      assert.equal(out, err, 'left for retries');
      return;
    }
    assert.ok(out instanceof ApplicationFailure);
    assert.equal(out.type, type);
    assert.equal(out.nonRetryable, true);
  };

  test('diverged training and bad settings are non-retryable, everything else is retried', () => {
    check(new DivergedError(4, 11), FAILURE_TYPES.diverged);
    check(
      new RangeError('NPE hyperparameter batchSize must be an integer >= 1, got 0.'),
      FAILURE_TYPES.invalidConfig,
    );
    check(
      new InvalidSettingError('Unknown task "x"; known tasks: a, b'),
      FAILURE_TYPES.invalidConfig,
    );
    // By type, not by the words: the same sentence in a plain Error is left for retries.
    check(new Error('Unknown task "x"; known tasks: a, b'), undefined);
    check(new Error('connection 3 to 127.0.0.1:27017 closed'), undefined);
    check(new TypeError('fetch failed'), undefined);
  });

  test("sbi's registries throw InvalidSettingError for unknown names and bad settings", () => {
    const thrown = (f: () => unknown): unknown => {
      try {
        f();
      } catch (e) {
        return e;
      }
      assert.fail('did not throw');
    };
    const estimator = (kind: string, config: Record<string, unknown>) => () =>
      createEstimator(kind, {
        thetaDim: 2,
        xDim: 2,
        zscore: identityZScore(2, 2),
        config,
        rng: createRng(0),
      });
    for (const f of [
      () => getTask('nope'),
      () => createDefense('nope'),
      estimator('nope', {}),
      estimator('maf', { bins: 4 }),
      estimator('maf', { hidden: [] }),
      estimator('maf', { numTransforms: 'five' }),
    ]) {
      const err = thrown(f);
      assert.ok(err instanceof InvalidSettingError, String(err));
      check(err, FAILURE_TYPES.invalidConfig);
    }
  });
});
