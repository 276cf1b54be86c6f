// A deep ensemble (MAFs trained apart, kept as their uniform mixture): the mixture's density
// against its members', log x members staying log x, the model file round trip, what mixMafs
// refuses, and fitModel's members (one split and so one z-score, their own weights).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { mixMafs } from '../../../sbi/estimators/deep-ensemble.js';
import { createEstimator, restoreEstimator } from '../../../sbi/estimators/index.js';
import { fitModel, type FitConfig } from '../../../sbi/fit.js';
import { modelFromJson, modelToJson } from '../../../sbi/model-file.js';
import { createRng } from '../../../sbi/rng.js';
import { simulateDataset } from '../../../sbi/simulate.js';
import { getTask } from '../../../sbi/tasks/index.js';
import type { DensityEstimator, ZScore } from '../../../sbi/types.js';
import { savedModelStub } from './saved-model-stub.js';

before(async () => {
  await initBackend('cpu');
});

const ZS: ZScore = {
  thetaMean: [0.5, -1],
  thetaStd: [2, 0.5],
  xMean: [0.3, 0.2, 1],
  xStd: [1.5, 0.7, 2],
};
const ARCH = { hidden: [12, 12], numTransforms: 2, activation: 'tanh' };

function maf(seed: number, config: Record<string, unknown> = ARCH, zscore = ZS): DensityEstimator {
  return createEstimator('maf', { thetaDim: 2, xDim: 3, zscore, config, rng: createRng(seed) });
}

/** Random weights so that the members differ in more than their (zero-bias) start. */
function perturb(m: DensityEstimator, seed: number): DensityEstimator {
  const rng = createRng(seed);
  m.setWeights(
    m.getWeights().map((w) => {
      const noise = new Float32Array(w.values.length);
      rng.fillNormal(noise);
      return { ...w, values: w.values.map((v, i) => v + 0.3 * noise[i]!) };
    }),
  );
  return m;
}

const theta = tf.tensor2d([0.1, -0.9, 2.2, -1.4, -1.5, 0.3, 0.7, -0.2], [4, 2]);
const x = tf.tensor2d([0.5, 0.1, 1.2, 2.5, 0.4, 0.9, 0.05, 0.3, 3.1, 1.1, 1.9, 0.6], [4, 3]);

function logProbs(m: DensityEstimator): number[] {
  return Array.from(tf.tidy(() => m.logProb(theta, x)).dataSync());
}

function expectedMixture(members: DensityEstimator[]): number[] {
  const per = members.map(logProbs);
  return per[0]!.map((_, i) => {
    const v = per.map((p) => p[i]!);
    const top = Math.max(...v);
    return top + Math.log(v.reduce((s, u) => s + Math.exp(u - top), 0) / v.length);
  });
}

function assertClose(actual: number[], expected: number[], tol: number): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) =>
    assert.ok(Math.abs(a - expected[i]!) < tol, `row ${i}: ${a} against ${expected[i]}`),
  );
}

describe('mixMafs', () => {
  test('log q is the log of the members mean density, and it is a maf_ensemble', () => {
    const members = [perturb(maf(1), 11), perturb(maf(2), 12), perturb(maf(3), 13)];
    const mix = mixMafs(members);
    assert.equal(mix.kind, 'maf_ensemble');
    assert.equal(mix.config.members, 3);
    const expected = expectedMixture(members);
    // Away from each member: the mixture is no one member's density.
    assert.ok(members.every((m) => logProbs(m).some((v, i) => Math.abs(v - expected[i]!) > 0.05)));
    assertClose(logProbs(mix), expected, 1e-4);
    // Its weights are copies: the members can go.
    for (const m of members) m.dispose();
    assertClose(logProbs(mix), expected, 1e-4);
    mix.dispose();
  });

  test('members that read log x make a mixture that reads log x, through a model file', () => {
    const xTransform = { kinds: ['log', 'identity', 'log'], floor: [0.01, 0, 0.02] };
    const wrapped = [1, 2].map((seed) => {
      const m = perturb(maf(seed), 20 + seed);
      const w = restoreEstimator(
        'maf',
        2,
        3,
        { ...m.config, xTransform },
        m.zscore,
        m.getWeights(),
      );
      m.dispose();
      return w;
    });
    const mix = mixMafs(wrapped);
    assert.deepEqual(mix.config.xTransform, xTransform);
    const expected = expectedMixture(wrapped);
    assertClose(logProbs(mix), expected, 1e-4);
    const back = modelFromJson(modelToJson(savedModelStub(mix, { ensemble: 2 })), 'test');
    assertClose(logProbs(back.estimator), expected, 1e-4);
    for (const m of [...wrapped, mix, back.estimator]) m.dispose();
  });

  test('refuses members of other architectures, other statistics or other kinds', () => {
    const a = maf(1);
    const wider = maf(2, { ...ARCH, hidden: [16, 12] });
    const moved = maf(3, ARCH, { ...ZS, xMean: [0.3, 0.2, 1.5] });
    const nsf = createEstimator('nsf', { thetaDim: 2, xDim: 3, zscore: ZS, rng: createRng(4) });
    assert.throws(() => mixMafs([a, wider]), /member 1's architecture differs from member 0's/);
    assert.throws(() => mixMafs([a, moved]), /member 1 was standardized on other rows/);
    assert.throws(() => mixMafs([a, nsf]), /member 1 is a nsf, not a maf/);
    assert.throws(() => mixMafs([]), /at least one member/);
    for (const m of [a, wider, moved, nsf]) m.dispose();
  });
});

describe('fitModel members', () => {
  const task = getTask('gaussian_linear');
  const data = { ...simulateDataset(task, 240, createRng(5)), dropped: 0 };
  const config: FitConfig = {
    task: task.name,
    estimator: 'maf',
    architecture: { hidden: [8], numTransforms: 1 },
    defense: 'none',
    hyperparameters: { maxEpochs: 2, batchSize: 60 },
    seed: 3,
  };
  const provenance = { code: { version: 'test' }, backend: 'cpu' };

  test('member k > 0 shares member 0s split and z-score and draws its own weights', async () => {
    const plain = await fitModel(config, data, {}, provenance);
    const zero = await fitModel({ ...config, member: 0 }, data, {}, provenance);
    const one = await fitModel({ ...config, member: 1 }, data, {}, provenance);
    const two = await fitModel({ ...config, member: 2 }, data, {}, provenance);
    const weights = (f: typeof plain): number[] =>
      f.saved.estimator.getWeights().flatMap((w) => Array.from(w.values));
    assert.deepEqual(weights(zero), weights(plain));
    assert.deepEqual(one.saved.estimator.zscore, plain.saved.estimator.zscore);
    assert.deepEqual(two.saved.estimator.zscore, plain.saved.estimator.zscore);
    assert.notDeepEqual(weights(one), weights(plain));
    assert.notDeepEqual(weights(two), weights(one));
    const mix = mixMafs([plain, one, two].map((f) => f.saved.estimator));
    assert.equal(mix.config.members, 3);
    for (const f of [plain, zero, one, two]) f.saved.estimator.dispose();
    mix.dispose();
  });
});
