// A deep ensemble (MAFs trained apart, kept as their mixture): the mixture's density against its
// members', uniform and weighted, its draws by the weights, log x members staying log x, the model
// file round trip, what mixMafs and a saved mixture refuse, the member weights EM fits (against
// closed forms and the optimum's own condition), and fitModel's members (one split and so one
// z-score, their own weights, their validation rows' log q).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { fitMixtureWeights, mixMafs } from '../../../sbi/estimators/deep-ensemble.js';
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

function expectedMixture(members: DensityEstimator[], weights?: number[]): number[] {
  const per = members.map(logProbs);
  const w = weights ?? members.map(() => 1 / members.length);
  return per[0]!.map((_, i) => {
    const v = per.map((p) => p[i]!);
    const top = Math.max(...v);
    return top + Math.log(v.reduce((s, u, k) => s + w[k]! * Math.exp(u - top), 0));
  });
}

/** The mean of n draws at x's first row, per dimension. */
function sampleMean(m: DensityEstimator, n: number, seed: number): number[] {
  const s = tf.tidy(() => m.sample(tf.slice(x, [0, 0], [1, -1]), n, createRng(seed)));
  const v = s.dataSync();
  s.dispose();
  return [0, 1].map((d) => {
    let total = 0;
    for (let i = 0; i < n; i++) total += v[i * 2 + d]!;
    return total / n;
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

  test('with weights, log q is the log of the weighted mean density, through a model file', () => {
    const members = [perturb(maf(1), 11), perturb(maf(2), 12)];
    const weights = [0.8, 0.2];
    const mix = mixMafs(members, weights);
    assert.deepEqual(mix.config.mixture, weights);
    const expected = expectedMixture(members, weights);
    // Far enough from the uniform mixture for the test to tell them apart.
    assert.ok(expectedMixture(members).some((v, i) => Math.abs(v - expected[i]!) > 0.05));
    assertClose(logProbs(mix), expected, 1e-4);
    const back = modelFromJson(modelToJson(savedModelStub(mix, { ensemble: 2 })), 'test');
    assert.deepEqual(back.estimator.config.mixture, weights);
    assertClose(logProbs(back.estimator), expected, 1e-4);
    for (const m of [...members, mix, back.estimator]) m.dispose();
  });

  test('draws each member in proportion to its weight', () => {
    const members = [perturb(maf(1), 11), perturb(maf(2), 12)];
    // theta_1's sd is 1.6 and 3.0 in the two members: 40,000 draws put a mean within 0.02.
    const n = 40000;
    const means = members.map((m, k) => sampleMean(m, n, 40 + k));
    // The members' means lie apart, so the mixture's mean tells the weights.
    assert.ok(Math.abs(means[0]![0]! - means[1]![0]!) > 0.35, `${means}`);
    for (const weights of [
      [0.9, 0.1],
      [0.1, 0.9],
    ]) {
      const mix = mixMafs(members, weights);
      const got = sampleMean(mix, n, 7);
      const expected = [0, 1].map((d) => weights[0]! * means[0]![d]! + weights[1]! * means[1]![d]!);
      const uniform = (means[0]![0]! + means[1]![0]!) / 2;
      assert.ok(Math.abs(expected[0]! - uniform) > 0.15);
      assertClose(got, expected, 0.07);
      mix.dispose();
    }
    for (const m of members) m.dispose();
  });

  test('a saved mixture holds one positive weight per member, summing to 1', () => {
    const mix = mixMafs([maf(1), maf(2)]);
    const rebuild = (mixture: unknown): DensityEstimator =>
      restoreEstimator(
        'maf_ensemble',
        2,
        3,
        { ...mix.config, mixture },
        mix.zscore,
        mix.getWeights(),
      );
    assert.throws(() => rebuild([1]), /one positive weight per member \(2\)/);
    assert.throws(() => rebuild([1.2, -0.2]), /one positive weight per member/);
    assert.throws(() => rebuild([0.5, 'x']), /one positive weight per member/);
    assert.throws(() => rebuild([0.6, 0.6]), /must sum to 1, got 1.2/);
    rebuild([0.3, 0.7]).dispose();
    mix.dispose();
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

describe('fitMixtureWeights', () => {
  // A row only one member explains counts for that member alone: the weights are the shares.
  const apart = (owners: number[], K: number): number[][] =>
    Array.from({ length: K }, (_, k) => owners.map((o) => (o === k ? 0 : -800)));

  test('rows each member alone explains give the members their shares of the rows', () => {
    const { weights, meanLogLik } = fitMixtureWeights(apart([0, 0, 1, 0, 2, 1], 3));
    assertClose(weights, [3 / 6, 2 / 6, 1 / 6], 1e-9);
    // log of the owner's weight, averaged over the rows.
    assertClose(
      [meanLogLik],
      [(3 * Math.log(0.5) + 2 * Math.log(1 / 3) + Math.log(1 / 6)) / 6],
      1e-9,
    );
  });

  test('two members: the root of the likelihood slope, in closed form', () => {
    // Rows (q_1, q_2) = (2, 1) and (1, 3): sum_i (a_i - b_i) / (w a_i + (1 - w) b_i) = 0 is
    // 1 / (1 + w) = 2 / (3 - 2w), whose root is w = 1/4.
    const { weights } = fitMixtureWeights([
      [Math.log(2), 0],
      [0, Math.log(3)],
    ]);
    assertClose(weights, [0.25, 0.75], 1e-8);
  });

  test('at the maximum every member explains its own share: mean_i q_k / q_mix = 1', () => {
    const rng = createRng(9);
    const logq = Array.from({ length: 3 }, (_, k) =>
      Array.from({ length: 400 }, () => 1.5 * rng.normal() - 0.3 * k),
    );
    const { weights, meanLogLik } = fitMixtureWeights(logq);
    assert.ok(Math.abs(weights.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.ok(
      weights.every((w) => w > 0.02),
      `${weights}`,
    );
    for (let k = 0; k < 3; k++) {
      let ratio = 0;
      for (let i = 0; i < 400; i++) {
        const mix = weights.reduce((s, w, j) => s + w * Math.exp(logq[j]![i]!), 0);
        ratio += Math.exp(logq[k]![i]!) / mix / 400;
      }
      assert.ok(Math.abs(ratio - 1) < 1e-6, `member ${k}: ${ratio}`);
    }
    // ... and no other weights on the simplex do better.
    const at = (w: number[]): number =>
      logq[0]!.reduce(
        (s, _, i) => s + Math.log(w.reduce((t, wk, k) => t + wk * Math.exp(logq[k]![i]!), 0)),
        0,
      ) / 400;
    assertClose([at(weights)], [meanLogLik], 1e-9);
    for (const w of [
      [1 / 3, 1 / 3, 1 / 3],
      [weights[0]! + 0.02, weights[1]! - 0.01, weights[2]! - 0.01],
    ])
      assert.ok(at(w) < meanLogLik, `${w}`);
  });

  test('a member worse on every row fades; rows with NaN or no finite member are left out', () => {
    const { weights } = fitMixtureWeights([
      [0, -1, 0.5, NaN, -Infinity],
      [-2, -3, -1.5, 0, -Infinity],
    ]);
    assert.ok(weights[1]! < 1e-6, `${weights}`);
    assert.deepEqual(fitMixtureWeights([[1, 2]]).weights, [1]);
    assert.deepEqual(fitMixtureWeights([[NaN], [0]]).weights, [0.5, 0.5]);
    assert.throws(() => fitMixtureWeights([[0], [0, 1]]), /the same rows/);
    assert.throws(() => fitMixtureWeights([]), /at least one member/);
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
    // Each member's log q of the validation rows they share, whose mean is its validation NLL.
    for (const f of [plain, one, two]) {
      assert.equal(f.result.valLogProbs.length, f.result.nVal);
      const mean = f.result.valLogProbs.reduce((a, b) => a + b, 0) / f.result.nVal;
      assertClose([-mean], [f.result.bestValLoss], 1e-4);
    }
    assert.deepEqual(zero.result.valLogProbs, plain.result.valLogProbs);
    assert.notDeepEqual(one.result.valLogProbs, plain.result.valLogProbs);
    for (const f of [plain, zero, one, two]) f.saved.estimator.dispose();
    mix.dispose();
  });
});
