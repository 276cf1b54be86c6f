import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { computeZScore } from '../../../sbi/estimators/zscore.js';
import { hiddenDegrees } from '../../../sbi/estimators/made.js';
import { fitModel, type FitConfig } from '../../../sbi/fit.js';
import { DivergedError } from '../../../sbi/errors.js';
import { PRESET_SETTINGS, presetSettings } from '../../../sbi/presets.js';
import { createRng } from '../../../sbi/rng.js';
import { simulateDataset } from '../../../sbi/simulate.js';
import { getTask } from '../../../sbi/tasks/index.js';

before(async () => {
  await initBackend('cpu');
});

const provenance = {
  code: { version: 'test', commit: null, dirty: false },
  backend: 'cpu',
} as never;

describe('presets', () => {
  test("pyro's hidden degrees: round(linspace(1, D, h)) - 1, the ends half as often", () => {
    const [deg] = hiddenDegrees({ thetaDim: 10, hidden: [100], degrees: 'linspace' });
    const counts = Array.from({ length: 10 }, (_, d) => deg!.filter((g) => g === d).length);
    assert.deepEqual(counts, [6, 11, 11, 11, 11, 11, 11, 11, 11, 6]);
    assert.deepEqual(deg!.slice(0, 8), [0, 0, 0, 0, 0, 0, 1, 1]);
    const [cycle] = hiddenDegrees({ thetaDim: 10, hidden: [100] });
    assert.deepEqual(
      Array.from({ length: 10 }, (_, d) => cycle!.filter((g) => g === d).length),
      Array(10).fill(10),
    );
  });

  test("torch's bias initialization and the MAF's named choices", () => {
    const make = (config: Record<string, unknown>) =>
      createEstimator('maf', {
        thetaDim: 3,
        xDim: 2,
        zscore: computeZScore(new Float32Array(6).fill(1), new Float32Array(4), 2, 3, 2),
        rng: createRng(1),
        config: { hidden: [16, 16], ...config },
      });
    const biases = (m: ReturnType<typeof make>) =>
      m.getWeights().filter((w) => w.name.endsWith('bias'));
    const torch = make({ biasInit: 'torch' });
    for (const b of biases(torch)) {
      assert.ok(
        b.values.some((v) => v !== 0),
        `${b.name} drawn`,
      );
      // fan-in 5 (theta 3 + x 2) or 16: the bound 1/sqrt(fan-in) holds.
      assert.ok(b.values.every((v) => Math.abs(v) <= 1 / Math.sqrt(5)));
    }
    assert.ok(biases(make({})).every((b) => b.values.every((v) => v === 0)));
    // nflows' first layer: theta weights and bias over fan-in 3, the context's over 2 (joint: 5).
    const bound = (m: ReturnType<typeof make>, suffix: string) =>
      Math.max(
        ...m
          .getWeights()
          .filter((w) => w.name.endsWith(suffix))
          .flatMap((w) => Array.from(w.values, Math.abs)),
      );
    const joint = make({ biasInit: 'torch' });
    const separate = make({ biasInit: 'torch', inputFanIn: 'separate' });
    for (const [suffix, fanIn] of [
      ['in.theta', 3],
      ['in.ctx', 2],
      ['in.bias', 3],
    ] as const) {
      assert.ok(bound(joint, suffix) <= 1 / Math.sqrt(5), `joint ${suffix}`);
      assert.ok(bound(separate, suffix) <= 1 / Math.sqrt(fanIn), `separate ${suffix}`);
      assert.ok(bound(separate, suffix) > 1 / Math.sqrt(5), `separate ${suffix} drawn wider`);
    }
    joint.dispose();
    separate.dispose();
    assert.throws(
      () => make({ inputFanIn: 'split' }),
      /maf setting "inputFanIn" must be one of joint, separate, got "split"/,
    );
    assert.throws(
      () => make({ affine: 'sideways' }),
      /maf setting "affine" must be one of robustsbi, pyro, nflows, got "sideways"/,
    );
    assert.throws(() => presetSettings('paper'), /Unknown preset "paper"; known: robustsbi, rabi/);
    // Every MAF-based kind gets the paper's MAF under rabi.
    const rabi = presetSettings('rabi').architecture;
    assert.deepEqual(rabi.maf_ensemble, rabi.maf);
    torch.dispose();
  });

  test("fitModel under the rabi preset: raw theta, the last rows validate, the paper's MAF", async () => {
    const task = getTask('gaussian_linear');
    const extra = PRESET_SETTINGS.rabi.extraValidationRows;
    const data = simulateDataset(task, 300 + extra, createRng(4));
    const config: FitConfig = {
      task: 'gaussian_linear',
      estimator: 'maf',
      architecture: { hidden: [16, 16], numTransforms: 2 },
      defense: 'none',
      hyperparameters: { maxEpochs: 2, minEpochs: 1 },
      seed: 3,
      preset: 'rabi',
    };
    const rabi = await fitModel(config, { ...data, dropped: 0 }, {}, provenance);
    const ownPreset = await fitModel(
      { ...config, preset: undefined },
      { ...data, dropped: 0 },
      {},
      provenance,
    );
    assert.equal(rabi.result.nTrain, 300);
    assert.equal(rabi.result.nVal, extra);
    assert.deepEqual(rabi.saved.estimator.zscore.thetaMean, Array(10).fill(0));
    assert.deepEqual(rabi.saved.estimator.zscore.thetaStd, Array(10).fill(1));
    assert.equal(rabi.saved.training.preset, 'rabi');
    const cfg = rabi.saved.estimator.config;
    assert.deepEqual(
      [cfg.affine, cfg.clampGradient, cfg.degrees, cfg.biasInit],
      ['pyro', 'pass', 'linspace', 'torch'],
    );
    // robustsbi's own: theta z-scored, 10 % of the rows validate at random.
    assert.notDeepEqual(ownPreset.saved.estimator.zscore.thetaStd, Array(10).fill(1));
    assert.equal(ownPreset.result.nVal, Math.floor((300 + extra) / 10));
    assert.equal(ownPreset.saved.estimator.config.affine, undefined);
    // A simulator that dropped rows (pyloric keeps ~1 in 10): the validation simulations' share of
    // the kept rows validates; valSize stays the simulations asked for.
    const kept = { ...data, dropped: 9 * data.n };
    const sparse = await fitModel(config, kept, {}, provenance);
    assert.equal(sparse.result.nVal, Math.round(extra / 10));
    assert.equal(sparse.result.nTrain, data.n - Math.round(extra / 10));
    assert.equal(sparse.saved.training.valSize, extra);
    rabi.saved.estimator.dispose();
    ownPreset.saved.estimator.dispose();
    sparse.saved.estimator.dispose();
  });

  test('a diverged run restarts with the learning rate x 0.1 under rabi, fails at once otherwise', async () => {
    const task = getTask('gaussian_linear');
    const data = simulateDataset(task, 200 + 512, createRng(5));
    const config: FitConfig = {
      task: 'gaussian_linear',
      estimator: 'maf',
      architecture: { hidden: [8, 8], numTransforms: 1 },
      defense: 'none',
      // A learning rate no restart rescues: every run diverges.
      hyperparameters: {
        maxEpochs: 20,
        minEpochs: 1,
        learningRate: 1e12,
        maxNanResets: 0,
        clipNorm: Infinity,
      },
      seed: 3,
    };
    await assert.rejects(
      fitModel(config, { ...data, dropped: 0 }, {}, provenance),
      (e: unknown) => e instanceof DivergedError && e.restarts === 0,
    );
    await assert.rejects(
      fitModel({ ...config, preset: 'rabi' }, { ...data, dropped: 0 }, {}, provenance),
      (e: unknown) =>
        e instanceof DivergedError && e.restarts === 3 && /the last of 4 runs/.test(e.message),
    );
  });
});
