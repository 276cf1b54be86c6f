// Divergence that a sweep spec can reach (issue 9): a MAF whose log-scale clamp lies past float32's
// exp range has a non-finite NLL from the first step, whatever its weights, so trainNPE must give up
// with DivergedError, both when the NaN resets run out and when training ends before they do
// (returning the untrained initialization as "the best state" would pass a diverged run as trained).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { DivergedError } from '../../../sbi/errors.js';
import { trainNPE, type TrainNPEOptions } from '../../../sbi/npe.js';
import { createRng } from '../../../sbi/rng.js';
import { linearData } from './npe-fixtures.js';

before(async () => {
  await initBackend('cpu');
});

/** s in [-100, -90] makes exp(-s) >= e^90 > float32's largest number (about e^88.7). */
const OVERFLOWING = { hidden: [8], numTransforms: 1, logScaleMin: -100, logScaleMax: -90 };
const HEALTHY = { hidden: [8], numTransforms: 1 };

function options(
  architecture: Record<string, unknown>,
  hyperparameters: TrainNPEOptions['hyperparameters'],
): TrainNPEOptions {
  return {
    data: linearData(200, createRng(11)),
    thetaDim: 2,
    xDim: 3,
    createModel: (zscore) =>
      createEstimator('maf', {
        thetaDim: 2,
        xDim: 3,
        zscore,
        config: architecture,
        rng: createRng(5).fork('init'),
      }),
    rng: createRng(5),
    hyperparameters: { batchSize: 50, minEpochs: 1, patience: 5, ...hyperparameters },
  };
}

describe('a spec-reachable divergence', () => {
  test('the same MAF with its default clamp trains to a finite loss', async () => {
    const r = await trainNPE(options(HEALTHY, { maxEpochs: 2, maxNanResets: 0 }));
    assert.equal(r.nanResets, 0);
    assert.ok(Number.isFinite(r.bestValLoss) && r.bestEpoch >= 1);
    r.model.dispose();
  });

  test('a log-scale clamp past exp overflow throws DivergedError once the NaN resets run out', async () => {
    const seen: number[] = [];
    const before = tf.memory().numTensors;
    await assert.rejects(
      trainNPE({
        ...options(OVERFLOWING, { maxEpochs: 20, maxNanResets: 1 }),
        onEpoch: (e) => void seen.push(e.valLoss),
      }),
      (e: unknown) =>
        e instanceof DivergedError &&
        e.epoch === 2 &&
        e.nanResets === 2 &&
        /the validation loss was NaN at epoch 2 after 1 reloads/.test(e.message),
    );
    assert.equal(seen.length, 1, 'epoch 1 reported (and reloaded), epoch 2 gave up');
    assert.ok(!Number.isFinite(seen[0]!));
    assert.equal(tf.memory().numTensors, before, 'the failed run freed its tensors and model');
  });

  test('a run that ends before the resets run out, with no finite validation loss, is diverged too', async () => {
    const before = tf.memory().numTensors;
    await assert.rejects(
      trainNPE(options(OVERFLOWING, { maxEpochs: 3, maxNanResets: 10 })),
      (e: unknown) => e instanceof DivergedError && e.epoch === 3 && e.nanResets === 3,
    );
    assert.equal(tf.memory().numTensors, before);
  });
});
