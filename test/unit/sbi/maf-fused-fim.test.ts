import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { FusedMafTrainer } from '../../../sbi/estimators/maf-fused.js';
import { Adam } from '../../../sbi/adam.js';
import { FimTraceDefense, fimTraceRegularizer } from '../../../sbi/defenses/fim-trace.js';
import { createRng } from '../../../sbi/rng.js';
import { ADAM, toyData, toyMaf } from './maf-toy.js';
import { trainNPE } from '../../../sbi/npe.js';

before(async () => {
  await initBackend('cpu');
});

describe('exact FIM in the fused MAF kernels', () => {
  const cases = [
    { name: "RABI's MAF, 10 -> 10", D: 10, C: 10, config: {}, batch: 40, M: 5 },
    {
      name: 'odd sizes, an active log-scale clip',
      D: 3,
      C: 5,
      config: { hidden: [7, 9], numTransforms: 2, logScaleMin: -0.05, logScaleMax: 0.05 },
      batch: 13,
      M: 3,
    },
    {
      name: "RABI's parameterization (pyro's direction, clamp passing the gradient)",
      D: 10,
      C: 10,
      config: { affine: 'pyro', clampGradient: 'pass', degrees: 'linspace', biasInit: 'torch' },
      batch: 40,
      M: 5,
    },
    {
      name: "RABI's parameterization, odd sizes, an active clamp",
      D: 3,
      C: 5,
      config: {
        hidden: [7, 9],
        numTransforms: 2,
        logScaleMin: -0.05,
        logScaleMax: 0.05,
        affine: 'pyro',
        clampGradient: 'pass',
        degrees: 'linspace',
        biasInit: 'torch',
      },
      batch: 13,
      M: 3,
    },
  ];
  for (const c of cases) {
    test(`the regularizer's weight gradient equals tfjs' double backprop: ${c.name}`, () => {
      const n = 300;
      const { theta, x } = toyData(n, c.D, c.C, 11);
      const model = toyMaf(c.D, c.C, c.config, theta, x, n);
      const vars = model.trainableVariables();
      tf.tidy(() =>
        vars.forEach((v, i) =>
          v.assign(tf.add(v, tf.mul(createRng(50 + i).normalTensor(v.shape), 0.05))),
        ),
      );
      const beta = 0.7;
      const defense = new FimTraceDefense({ beta, mcSamples: c.M });
      const trainer = model.fusedTrainer!(theta, x, n, 64, defense.fusedPlan()!) as FusedMafTrainer;
      assert.ok(trainer instanceof FusedMafTrainer);
      const adam = new Adam(vars, ADAM, 'host');
      trainer.load(adam.hostState()!, vars);
      const idx = Array.from({ length: c.batch }, (_, i) => (i * 37 + 5) % n);
      const plain = trainer.gradients(idx, vars);
      // The first EMA step, bias-corrected, is the gradient itself.
      const withReg = trainer.gradients(idx, vars, { rng: createRng(9), xScale: 1 });
      const fused = withReg.grads.map((g, i) => g.map((v, k) => v - plain.grads[i]![k]!));
      const xx = tf.tensor2d(
        idx.flatMap((r) => Array.from(x.subarray(r * c.C, (r + 1) * c.C))),
        [c.batch, c.C],
      );
      const { value, grads } = tf.variableGrads(
        () => fimTraceRegularizer(model, xx, createRng(9), { beta, mcSamples: c.M }),
        vars,
      );
      let worst = 0;
      let signal = 0;
      vars.forEach((v, i) => {
        const e = grads[v.name]!.dataSync();
        let num = 0;
        let den = 0;
        e.forEach((ev, k) => {
          num = Math.max(num, Math.abs(fused[i]![k]! - ev));
          den = Math.max(den, Math.abs(ev));
        });
        signal = Math.max(signal, den);
        worst = Math.max(worst, num / (den || 1));
      });

      assert.ok(signal > 1e-3, 'the regularizer gradient carries signal');
      assert.ok(worst < 2e-3, `gradients differ by ${worst} relative`);
      tf.dispose([xx, value, ...Object.values(grads)]);
      defense.dispose();
      model.dispose();
    });
  }

  test('trainNPE with fim on the fused step follows the tfjs step and leaks no tensors', async () => {
    const n = 400;
    const [D, C] = [3, 4];
    const { theta, x } = toyData(n, D, C, 31);
    const run = async (fused: boolean) => {
      const defense = new FimTraceDefense({ beta: 0.5, mcSamples: 3 });
      const r = await trainNPE({
        data: { theta, x, n },
        thetaDim: D,
        xDim: C,
        rng: createRng(4),
        createModel: (zscore) =>
          createEstimator('maf', {
            thetaDim: D,
            xDim: C,
            zscore,
            rng: createRng(5),
            config: { hidden: [24, 24] },
          }),
        hyperparameters: { batchSize: 90, maxEpochs: 3, patience: 100 },
        defense,
        fused,
      });
      const ema = defense.getState().ema;
      defense.dispose();
      return { r, ema };
    };
    const before = tf.memory().numTensors;
    const a = await run(true);
    const b = await run(false);
    assert.equal(a.r.fused, true);
    assert.equal(b.r.fused, false);
    a.r.valLosses.forEach((l, i) =>
      assert.ok(Math.abs(l - b.r.valLosses[i]!) < 2e-3, `epoch ${i}: ${l} vs ${b.r.valLosses[i]}`),
    );
    const wb = b.r.model.getWeights();
    let worst = 0;
    a.r.model
      .getWeights()
      .forEach((w, i) =>
        w.values.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - wb[i]!.values[k]!)))),
      );
    assert.ok(worst < 2e-4, `weights differ by ${worst}`);
    assert.equal(a.ema.t, b.ema.t);
    a.r.model.dispose();
    b.r.model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
