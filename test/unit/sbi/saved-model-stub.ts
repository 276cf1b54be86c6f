// A model file's bookkeeping around an estimator, for tests that round-trip only the estimator.
import type { SavedModel } from '../../../sbi/model-file.js';
import type { DensityEstimator } from '../../../sbi/types.js';

export function savedModelStub(
  estimator: DensityEstimator,
  training: Record<string, unknown> = {},
): SavedModel {
  return {
    estimator,
    task: 'toy',
    paramNames: ['a', 'b'],
    seed: 1,
    n: 10,
    training,
    summary: {
      epochs: 1,
      bestEpoch: 1,
      bestValLoss: 0,
      stoppedBy: 'max-epochs',
      dropped: 0,
      nTrain: 9,
      nVal: 1,
    },
    code: { version: 'test' },
    backend: 'cpu',
    createdAt: '2026-12-03T00:00:00.000Z',
  };
}
