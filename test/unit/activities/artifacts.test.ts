// The activities' artifact encodings and failure classification (pure: no servers).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import {
  artifactNames,
  decodeCheckpoint,
  decodeDataset,
  encodeCheckpoint,
  encodeDataset,
} from '../../../activities/artifacts.js';
import { FAILURE_TYPES, classify } from '../../../activities/failures.js';
import { checkArtifactName } from '../../../results/artifacts.js';
import { DivergedError } from '../../../sbi/errors.js';
import type { TrainingState } from '../../../sbi/npe-checkpoint.js';

describe('dataset artifacts', () => {
  test('round-trip theta and x bit for bit, including non-finite values', () => {
    const theta = new Float32Array([1.5, -2, 3.25, Math.PI, 0, -0]);
    const x = new Float32Array([NaN, Infinity, 1e-30, -1e30, 7, 8, 9, 10, 11]);
    const d = {
      task: 'gaussian_linear',
      seed: 3,
      n: 3,
      dropped: 2,
      thetaDim: 2,
      xDim: 3,
      theta,
      x,
    };
    const back = decodeDataset(encodeDataset(d), 'sims/x');
    assert.deepEqual(
      { ...back, theta: [...back.theta], x: [...back.x] },
      {
        ...d,
        theta: [...theta],
        x: [...x],
      },
    );
    assert.ok(Object.is(back.theta[5], -0));
  });

  test('refuse mismatched sizes and truncated or foreign bytes', () => {
    const d = {
      task: 't',
      seed: 0,
      n: 2,
      dropped: 0,
      thetaDim: 1,
      xDim: 1,
      theta: new Float32Array(2),
      x: new Float32Array(2),
    };
    assert.throws(() => encodeDataset({ ...d, x: new Float32Array(3) }), RangeError);
    const bytes = encodeDataset(d);
    assert.throws(
      () => decodeDataset(bytes.subarray(0, bytes.length - 4), 'a'),
      /does not hold the rows/,
    );
    assert.throws(
      () => decodeDataset(new TextEncoder().encode('\u0002\u0000\u0000\u0000{}'), 'b'),
      /artifact b/,
    );
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
    check(new Error('Unknown task "x"; known tasks: a, b'), FAILURE_TYPES.invalidConfig);
    check(new Error('Unknown maf setting "bins"; known: hidden'), FAILURE_TYPES.invalidConfig);
    check(
      new Error('maf hidden sizes must be a non-empty list of positive integers, got []'),
      FAILURE_TYPES.invalidConfig,
    );
    check(new Error('connection 3 to 127.0.0.1:27017 closed'), undefined);
    check(new TypeError('fetch failed'), undefined);
  });
});
