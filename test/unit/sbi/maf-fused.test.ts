import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { FusedMafTrainer } from '../../../sbi/estimators/maf-fused.js';
import { MafKernels } from '../../../sbi/wasm/maf-kernels.js';
import { blockTables } from '../../../sbi/estimators/maf-fused-layout.js';
import { hiddenDegrees } from '../../../sbi/estimators/made.js';
import { Adam } from '../../../sbi/adam.js';
import { trainNPE, type TrainNPEOptions, type TrainingDefense } from '../../../sbi/npe.js';
import type { NPEHyperparameters } from '../../../sbi/npe-hyperparameters.js';
import { FimFastDefense } from '../../../sbi/defenses/fim-fast.js';
import { NoiseAugmentation } from '../../../sbi/defenses/noise.js';
import { AdversarialTraining } from '../../../sbi/defenses/adversarial.js';
import { createRng } from '../../../sbi/rng.js';
import { ADAM, toyData, toyMaf } from './maf-toy.js';
import type { DensityEstimator } from '../../../sbi/types.js';
import type { TrainingState } from '../../../sbi/npe-checkpoint.js';
import { repoRoot } from '../../../bench/train-throughput.js';
import { TRAIN_ALTERNATIVES } from '../../../sbi/train-defaults.js';

before(async () => {
  await initBackend('cpu');
});

function rows(theta: Float32Array, dim: number, idx: number[]): tf.Tensor2D {
  return tf.tensor2d(
    idx.flatMap((r) => Array.from(theta.subarray(r * dim, (r + 1) * dim))),
    [idx.length, dim],
  );
}

/** Largest |a - b| over the largest |b|, per variable, worst over all. */
function worstRelative(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((ai, i) => {
    const bi = b[i]!;
    let num = 0;
    let den = 0;
    for (let k = 0; k < ai.length; k++) {
      num = Math.max(num, Math.abs(ai[k]! - bi[k]!));
      den = Math.max(den, Math.abs(bi[k]!));
    }
    worst = Math.max(worst, num / (den || 1));
  });
  return worst;
}

/** trainNPE of a MAF on toy rows, the model and run seeded by seeds = [run, model]. */
function trainToyMaf(o: {
  data: { theta: Float32Array; x: Float32Array; n: number };
  D: number;
  C: number;
  seeds: [number, number];
  hidden: number[];
  /** Estimator settings beside the hidden layers. */
  config?: Record<string, unknown>;
  batchSize: number;
  maxEpochs: number;
  defense?: TrainingDefense;
  fused?: boolean;
  /** Settings over the batch, epochs and patience 100 the toy runs take. */
  hyperparameters?: Partial<NPEHyperparameters>;
  /** Checkpoint, resume and final-state options. */
  state?: Pick<TrainNPEOptions, 'checkpoint' | 'resumeFrom' | 'keepFinalState'>;
}) {
  return trainNPE({
    data: o.data,
    thetaDim: o.D,
    xDim: o.C,
    rng: createRng(o.seeds[0]),
    createModel: (zscore) =>
      createEstimator('maf', {
        thetaDim: o.D,
        xDim: o.C,
        zscore,
        rng: createRng(o.seeds[1]),
        config: { ...o.config, hidden: o.hidden },
      }),
    hyperparameters: {
      batchSize: o.batchSize,
      maxEpochs: o.maxEpochs,
      patience: 100,
      ...o.hyperparameters,
    },
    ...(o.defense ? { defense: o.defense } : {}),
    ...(o.fused !== undefined ? { fused: o.fused } : {}),
    ...o.state,
  });
}

/** Largest absolute difference between two models' weights. */
function weightGap(a: DensityEstimator, b: DensityEstimator): number {
  const wb = b.getWeights();
  let worst = 0;
  a.getWeights().forEach((w, i) =>
    w.values.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - wb[i]!.values[k]!)))),
  );
  return worst;
}

describe('fused MAF training step', () => {
  const cases = [
    { name: "RABI's MAF on a 10 -> 10 problem", D: 10, C: 10, config: {}, batch: 301 },
    {
      name: 'odd sizes, three hidden layers, an active log-scale clip',
      D: 3,
      C: 5,
      config: { hidden: [7, 9, 5], numTransforms: 2, logScaleMin: -0.05, logScaleMax: 0.05 },
      batch: 13,
    },
    {
      name: "RABI's parameterization on a 10 -> 10 problem",
      D: 10,
      C: 10,
      config: { affine: 'pyro', clampGradient: 'pass', degrees: 'linspace', biasInit: 'torch' },
      batch: 301,
    },
    {
      name: "RABI's parameterization, three hidden layers, an active clamp",
      D: 3,
      C: 5,
      config: {
        hidden: [7, 9, 5],
        numTransforms: 2,
        logScaleMin: -0.05,
        logScaleMax: 0.05,
        affine: 'pyro',
        clampGradient: 'pass',
        degrees: 'linspace',
        biasInit: 'torch',
      },
      batch: 13,
    },
    {
      name: "nflows' scale (sbi's MAF) on a 10 -> 10 problem",
      D: 10,
      C: 10,
      config: { affine: 'nflows', hidden: [50, 50], numTransforms: 5 },
      batch: 301,
    },
    {
      name: "nflows' scale, three hidden layers, odd sizes",
      D: 3,
      C: 5,
      config: { hidden: [7, 9, 5], numTransforms: 2, affine: 'nflows', biasInit: 'torch' },
      batch: 13,
    },
    {
      name: "tanh MADEs (sbi's) on a 10 -> 10 problem",
      D: 10,
      C: 10,
      config: { activation: 'tanh', hidden: [50, 50], numTransforms: 5 },
      batch: 301,
    },
    {
      name: "tanh MADEs with nflows' scale, three hidden layers, odd sizes",
      D: 3,
      C: 5,
      config: { hidden: [7, 9, 5], numTransforms: 2, activation: 'tanh', affine: 'nflows' },
      batch: 13,
    },
    {
      name: "nflows' degrees (no context-only units), tanh, three hidden layers",
      D: 4,
      C: 3,
      config: {
        hidden: [7, 9, 5],
        numTransforms: 2,
        activation: 'tanh',
        affine: 'nflows',
        degrees: 'nflows',
      },
      batch: 13,
    },
    {
      // The default's second candidate with nflows' degrees and context layer: sbi's MADE exactly.
      name: "sbi's MADE exactly: nflows' context layer, degrees, scale and tanh, 10 -> 10",
      D: 10,
      C: 10,
      config: { ...TRAIN_ALTERNATIVES.maf![0], degrees: 'nflows', contextLayer: 'tanh' },
      batch: 301,
    },
    {
      name: "nflows' context layer on ReLU MADEs, one hidden layer, odd sizes",
      D: 3,
      C: 5,
      config: { hidden: [7], numTransforms: 2, contextLayer: 'tanh', biasInit: 'torch' },
      batch: 13,
    },
    {
      name: 'one dimension, one hidden layer',
      D: 1,
      C: 2,
      config: { hidden: [6], numTransforms: 4 },
      batch: 6,
    },
  ];
  for (const c of cases) {
    test(`loss and gradients equal tfjs's: ${c.name}`, () => {
      const n = 400;
      const { theta, x } = toyData(n, c.D, c.C, 11);
      const model = toyMaf(c.D, c.C, c.config, theta, x, n);
      const vars = model.trainableVariables();
      // Move the weights off their initialization so every path carries signal.
      tf.tidy(() =>
        vars.forEach((v, i) =>
          v.assign(tf.add(v, tf.mul(createRng(50 + i).normalTensor(v.shape), 0.05))),
        ),
      );
      const trainer = model.fusedTrainer!(theta, x, n, 512) as FusedMafTrainer;
      assert.ok(trainer instanceof FusedMafTrainer);
      const adam = new Adam(vars, ADAM, 'host');
      trainer.load(adam.hostState()!, vars);
      const idx = Array.from({ length: c.batch }, (_, i) => (i * 37 + 5) % n);
      const fused = trainer.gradients(idx, vars);
      const th = rows(theta, c.D, idx);
      const xx = rows(x, c.C, idx);
      const { value, grads } = tf.variableGrads(
        () => tf.neg(tf.mean(model.logProb(th, xx))) as tf.Scalar,
        vars,
      );
      const expected = vars.map((v) => grads[v.name]!.dataSync() as Float32Array);
      assert.ok(
        Math.abs(fused.loss - value.dataSync()[0]!) < 1e-4 * Math.max(1, Math.abs(fused.loss)),
        `loss ${fused.loss} vs ${value.dataSync()[0]}`,
      );
      const rel = worstRelative(fused.grads, expected);
      assert.ok(rel < 1e-4, `gradients differ by ${rel} relative`);
      // Not a comparison of zeros: the gradient carries signal.
      assert.ok(expected.some((g) => g.some((v) => Math.abs(v) > 1e-3)));
      tf.dispose([th, xx, value, ...Object.values(grads)]);
      model.dispose();
    });
  }

  test('the tanh kernel is tanh to float32 precision, and its backward is 1 - tanh^2', () => {
    const k = new MafKernels();
    // Not a multiple of the kernel's 16-float turn, so its 4-float tail runs too; d lies right
    // after h, so a write past n would break d's check below.
    const n = 4108;
    const base = k.heapBase();
    const need = base + 2 * n * 4 - k.memory.buffer.byteLength;
    if (need > 0) k.memory.grow(Math.ceil(need / 65536));
    const h = new Float32Array(k.memory.buffer, base, n);
    const d = new Float32Array(k.memory.buffer, base + n * 4, n);
    // Both signs, the range 1e-8 .. 20 on a log grid (tiny arguments keep their relative
    // precision), exact zero and the cap at 9.
    const xs = Array.from({ length: n }, (_, i) =>
      i === 0 ? 0 : (i % 2 ? -1 : 1) * 10 ** (-8 + (9.3 * i) / n),
    );
    h.set(xs);
    d.fill(0.5);
    k.tanh(base, n);
    let worst = 0;
    xs.forEach((x, i) => {
      const want = Math.fround(Math.tanh(x));
      worst = Math.max(worst, Math.abs(h[i]! - want) / Math.max(Math.abs(want), 1e-30));
    });
    assert.ok(worst < 4e-7, `tanh kernel relative error ${worst}`);
    assert.equal(Object.is(h[0], 0), true);
    k.tanhBackward(base + n * 4, base, n);
    d.forEach((v, i) => {
      const t = h[i]!;
      assert.ok(Math.abs(v - 0.5 * (1 - t * t)) < 1e-7, `backward at ${xs[i]}: ${v}`);
    });
  });

  test('trainNPE with the fused step follows the tfjs step, leaves masked weights alone and leaks no tensors', async () => {
    const n = 600;
    const D = 4;
    const C = 3;
    const { theta, x } = toyData(n, D, C, 21);
    const opts = (fused: boolean): TrainNPEOptions => ({
      data: { theta, x, n },
      thetaDim: D,
      xDim: C,
      rng: createRng(8),
      createModel: (zscore) =>
        createEstimator('maf', {
          thetaDim: D,
          xDim: C,
          zscore,
          rng: createRng(9),
          config: { hidden: [16, 16] },
        }),
      hyperparameters: { batchSize: 100, maxEpochs: 4, patience: 100 },
      fused,
    });
    const before = tf.memory().numTensors;
    let tensorsAfterFirst = 0;
    const a = await trainNPE({
      ...opts(true),
      onEpoch: (p) => {
        // Flat across epochs: nothing the fused path creates outlives its epoch.
        if (p.epoch > 1) assert.equal(tf.memory().numTensors, tensorsAfterFirst);
        else tensorsAfterFirst = tf.memory().numTensors;
      },
    });
    const b = await trainNPE(opts(false));
    assert.equal(a.fused, true);
    assert.equal(b.fused, false);
    a.trainLosses.forEach((l, i) =>
      assert.ok(Math.abs(l - b.trainLosses[i]!) < 1e-4, `epoch ${i}: ${l} vs ${b.trainLosses[i]}`),
    );
    a.valLosses.forEach((l, i) =>
      assert.ok(Math.abs(l - b.valLosses[i]!) < 1e-3, `epoch ${i}: ${l} vs ${b.valLosses[i]}`),
    );
    const wa = a.model.getWeights();
    const wb = b.model.getWeights();
    const initial = opts(true).createModel(a.zscore);
    const fresh = initial.getWeights();
    initial.dispose();
    wa.forEach((w, i) => {
      let diff = 0;
      w.values.forEach((v, k) => (diff = Math.max(diff, Math.abs(v - wb[i]!.values[k]!))));
      assert.ok(diff < 1e-3, `${w.name} differs by ${diff}`);
    });
    // Masked entries (zero gradient in tfjs) keep their initial values in both.
    const inTheta = wa.findIndex((w) => w.name === 't0.in.theta');
    let unchanged = 0;
    wa[inTheta]!.values.forEach((v, k) => {
      if (v === fresh[inTheta]!.values[k]) unchanged++;
    });
    assert.ok(unchanged > 0, 'some masked input weights keep their initial value');
    a.model.dispose();
    b.model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test("an annealed run's fused steps take the cut learning rate, as the tfjs steps do", async () => {
    const n = 400;
    const D = 2;
    const C = 3;
    const { theta, x } = toyData(n, D, C, 23);
    // patience 0 under sbi's rule: the first epoch without improvement anneals.
    const run = (fused: boolean) =>
      trainToyMaf({
        data: { theta, x, n },
        D,
        C,
        seeds: [4, 5],
        hidden: [8],
        batchSize: 50,
        maxEpochs: 30,
        fused,
        hyperparameters: {
          learningRate: 5e-2,
          patience: 0,
          minEpochs: 0,
          stopRule: 'sbi',
          anneals: 2,
          annealFactor: 0.1,
        },
      });
    const a = await run(true);
    const b = await run(false);
    assert.equal(a.fused, true);
    assert.equal(a.anneals, 2);
    assert.equal(b.anneals, 2);
    assert.equal(a.epochs, b.epochs);
    a.valLosses.forEach((l, i) =>
      assert.ok(Math.abs(l - b.valLosses[i]!) < 1e-3, `epoch ${i}: ${l} vs ${b.valLosses[i]}`),
    );
    a.model.dispose();
    b.model.dispose();
  });

  test("nflows' context layer trains in the fused step as on tfjs ops", async () => {
    const n = 400;
    const D = 3;
    const C = 4;
    const { theta, x } = toyData(n, D, C, 31);
    const run = (fused: boolean) =>
      trainToyMaf({
        data: { theta, x, n },
        D,
        C,
        seeds: [8, 9],
        hidden: [16, 16],
        config: { activation: 'tanh', affine: 'nflows', biasInit: 'torch', contextLayer: 'tanh' },
        batchSize: 64,
        maxEpochs: 4,
        fused,
        hyperparameters: { learningRate: 1e-2 },
      });
    const before = tf.memory().numTensors;
    const a = await run(true);
    const b = await run(false);
    assert.equal(a.fused, true);
    assert.equal(b.fused, false);
    a.valLosses.forEach((l, i) =>
      assert.ok(Math.abs(l - b.valLosses[i]!) < 1e-3, `epoch ${i}: ${l} vs ${b.valLosses[i]}`),
    );
    // The context layer's bias included: a fused run that did not store it back would differ here.
    assert.ok(weightGap(a.model, b.model) < 1e-3, `fused vs tfjs ${weightGap(a.model, b.model)}`);
    a.model.dispose();
    b.model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test("dropLast leaves out each epoch's last partial batch, in the fused step as in the tfjs step", async () => {
    const n = 400;
    const D = 2;
    const C = 3;
    const { theta, x } = toyData(n, D, C, 29);
    // 360 training rows in batches of 50: seven full ones and one of 10, dropped.
    const steps: number[] = [];
    const toy = { data: { theta, x, n }, D, C, seeds: [6, 7] as [number, number], hidden: [8] };
    const checkpoint = (s: TrainingState): void => void steps.push(s.adam.step);
    const run = (fused: boolean, dropLast: boolean) =>
      trainToyMaf({
        ...toy,
        batchSize: 50,
        maxEpochs: 3,
        fused,
        hyperparameters: { learningRate: 2e-2, dropLast },
        state: { checkpoint },
      });
    const a = await run(true, true);
    const aSteps = steps.splice(0);
    const b = await run(false, true);
    const bSteps = steps.splice(0);
    const c = await run(true, false);
    const cSteps = steps.splice(0);
    assert.equal(a.fused, true);
    assert.deepEqual(aSteps, [7, 14, 21]);
    assert.deepEqual(bSteps, [7, 14, 21]);
    assert.deepEqual(cSteps, [8, 16, 24]);
    assert.ok(weightGap(a.model, b.model) < 1e-3, `fused vs tfjs ${weightGap(a.model, b.model)}`);
    assert.ok(weightGap(a.model, c.model) > 1e-3, 'dropping the partial batch changes the run');
    a.model.dispose();
    b.model.dispose();
    c.model.dispose();
  });

  test("the fused step's checkpoints and final state carry its weights: resuming from either ends on the uninterrupted run's", async () => {
    // The fused step keeps the weights in its own memory between epochs; a checkpoint or final state
    // taken from the tf.Variables alone would be epochs old.
    const n = 400;
    const { theta, x } = toyData(n, 2, 3, 25);
    const run = (anneals: number, state?: Parameters<typeof trainToyMaf>[0]['state']) =>
      trainToyMaf({
        data: { theta, x, n },
        D: 2,
        C: 3,
        seeds: [6, 7],
        hidden: [8],
        batchSize: 50,
        maxEpochs: 30,
        hyperparameters: {
          learningRate: 5e-2,
          patience: 3,
          minEpochs: 0,
          stopRule: 'sbi',
          anneals,
        },
        ...(state ? { state } : {}),
      });
    const whole = await run(1);
    assert.equal(whole.fused, true);
    assert.equal(whole.anneals, 1);

    const states: TrainingState[] = [];
    const first = await run(1, { checkpoint: (st) => void states.push(st) });
    // An epoch without improvement and without a restore: there the variables lag the step's memory.
    const mid = states.find((st, i) => i > 0 && st.earlyStopping.counter > 0 && !st.finished);
    assert.ok(mid, 'a checkpoint after an epoch without improvement');
    const fromCheckpoint = await run(1, { resumeFrom: mid });

    // The final state of a run without checkpoints is the last checkpoint of one with them.
    const lastOf: TrainingState[] = [];
    const checkpointed = await run(0, { checkpoint: (st) => void lastOf.splice(0, 1, st) });
    checkpointed.model.dispose();
    const unannealed = await run(0, { keepFinalState: true });
    assert.ok(unannealed.finalState, 'the final state is kept');
    assert.deepEqual(unannealed.finalState.weights, lastOf[0]!.weights);
    assert.deepEqual(unannealed.finalState.adam, lastOf[0]!.adam);
    const fromFinal = await run(1, { resumeFrom: unannealed.finalState! });

    for (const [name, r] of [
      ['with a checkpoint per epoch', first],
      ['resumed from a checkpoint', fromCheckpoint],
      ['resumed from the unannealed final state', fromFinal],
    ] as const) {
      assert.equal(r.epochs, whole.epochs, name);
      assert.equal(weightGap(r.model, whole.model), 0, name);
      r.model.dispose();
    }
    whole.model.dispose();
    unannealed.model.dispose();
  });

  for (const probe of ['rademacher', 'gaussian'] as const) {
    test(`fim-fast (${probe} probes) in the fused step follows FimFastDefense's tfjs step`, async () => {
      const n = 500;
      const D = 3;
      const C = 4;
      const { theta, x } = toyData(n, D, C, 31);
      const data = { theta, x, n };
      const toy = { data, D, C, seeds: [4, 5] as [number, number], hidden: [24, 24] };
      const run = async (fused: boolean) => {
        const defense = new FimFastDefense({ beta: 0.3, probe, probes: 2 });
        const r = await trainToyMaf({ ...toy, batchSize: 90, maxEpochs: 3, defense, fused });
        const ema = defense.getState().ema;
        defense.dispose();
        return { r, ema };
      };
      const a = await run(true);
      const b = await run(false);
      assert.equal(a.r.fused, true);
      assert.equal(b.r.fused, false);
      a.r.valLosses.forEach((l, i) =>
        assert.ok(
          Math.abs(l - b.r.valLosses[i]!) < 2e-3,
          `epoch ${i}: ${l} vs ${b.r.valLosses[i]}`,
        ),
      );
      const worst = weightGap(a.r.model, b.r.model);
      assert.ok(worst < 1e-4, `weights differ by ${worst}`);
      // The regularizer moved the weights: the same run without it ends elsewhere.
      const plain = await trainToyMaf({ ...toy, batchSize: 90, maxEpochs: 3 });
      const moved = weightGap(plain.model, a.r.model);
      assert.ok(moved > 50 * worst, `the regularizer moved the weights by ${moved} only`);
      // The EMA the defense keeps for checkpoints is the one the tfjs step would have left.
      assert.equal(a.ema.t, b.ema.t);
      assert.equal(a.ema.moments.length, b.ema.moments.length);
      a.r.model.dispose();
      b.r.model.dispose();
      plain.model.dispose();
    });
  }

  test('noise augmentation in the fused step follows NoiseAugmentation on tfjs', async () => {
    const n = 400;
    const { theta, x } = toyData(n, 2, 5, 41);
    const run = (fused: boolean) =>
      trainToyMaf({
        data: { theta, x, n },
        D: 2,
        C: 5,
        seeds: [6, 7],
        hidden: [16, 16],
        batchSize: 64,
        maxEpochs: 3,
        defense: new NoiseAugmentation(0.5),
        fused,
      });
    const a = await run(true);
    const b = await run(false);
    assert.equal(a.fused, true);
    assert.equal(b.fused, false);
    a.trainLosses.forEach((l, i) =>
      assert.ok(Math.abs(l - b.trainLosses[i]!) < 1e-4, `epoch ${i}: ${l} vs ${b.trainLosses[i]}`),
    );
    const worst = weightGap(a.model, b.model);
    assert.ok(worst < 1e-4, `weights differ by ${worst}`);
    a.model.dispose();
    b.model.dispose();
  });

  test('adversarial training (targeted L2-PGD) in the fused step follows AdversarialTraining on tfjs', async () => {
    const n = 300;
    const { theta, x } = toyData(n, 2, 3, 51);
    const toy = { data: { theta, x, n }, D: 2, C: 3, seeds: [8, 9] as [number, number] };
    const run = (fused: boolean) =>
      trainToyMaf({
        ...toy,
        hidden: [16, 16],
        batchSize: 64,
        maxEpochs: 2,
        defense: new AdversarialTraining(0.5, 5),
        fused,
      });
    const a = await run(true);
    const b = await run(false);
    assert.equal(a.fused, true);
    assert.equal(b.fused, false);
    a.trainLosses.forEach((l, i) =>
      assert.ok(Math.abs(l - b.trainLosses[i]!) < 1e-4, `epoch ${i}: ${l} vs ${b.trainLosses[i]}`),
    );
    const worst = weightGap(a.model, b.model);
    assert.ok(worst < 1e-4, `weights differ by ${worst}`);
    // The attack mattered: clean training ends elsewhere.
    const clean = await trainToyMaf({ ...toy, hidden: [16, 16], batchSize: 64, maxEpochs: 2 });
    assert.ok(
      clean.trainLosses[1]! < a.trainLosses[1]! - 0.05,
      `clean ${clean.trainLosses} vs attacked ${a.trainLosses}`,
    );
    a.model.dispose();
    b.model.dispose();
    clean.model.dispose();
  });

  test('estimators without the fused step, an embedding net or a defense train with tfjs ops', async () => {
    const n = 300;
    const { theta, x } = toyData(n, 2, 3, 5);
    const withEmbedding = toyMaf(2, 3, { embedding: 'mlp' }, theta, x, n);
    assert.equal(withEmbedding.fusedTrainer!(theta, x, n, 64), null);
    withEmbedding.dispose();
    const r = await trainNPE({
      data: { theta, x, n },
      thetaDim: 2,
      xDim: 3,
      rng: createRng(1),
      createModel: (zscore) =>
        createEstimator('maf', {
          thetaDim: 2,
          xDim: 3,
          zscore,
          rng: createRng(2),
          config: { hidden: [8] },
        }),
      hyperparameters: { batchSize: 64, maxEpochs: 1 },
      defense: { name: 'test', extraLoss: () => tf.scalar(0) },
    });
    assert.equal(r.fused, false);
    r.model.dispose();
  });

  test('the block tables skip only weights that MADE masks to zero', () => {
    for (const [D, hidden] of [
      [10, [100, 100]],
      [3, [7, 9]],
      [5, [12, 4]],
    ] as [number, number[]][]) {
      const [prev, cur] = hiddenDegrees({ thetaDim: D, hidden }).map((d) =>
        [...d].sort((a, b) => a - b),
      );
      const pad8 = (n: number): number => Math.ceil(n / 8) * 8;
      const t = blockTables(prev!, cur!, pad8(hidden[0]!), pad8(hidden[1]!));
      let work = 0;
      for (let r = 0; r < prev!.length; r++) {
        for (let c = 0; c < cur!.length; c++) {
          const kept = prev![r]! <= cur![c]!;
          if (!kept) continue;
          assert.ok(r < t.fwdKTo[Math.floor(c / 8)]!, `forward drops r ${r} -> c ${c} (D ${D})`);
          assert.ok(
            c >= t.bwdKFrom[Math.floor(r / 8)]!,
            `backward drops c ${c} -> r ${r} (D ${D})`,
          );
          assert.ok(c >= t.gradJFrom[Math.floor(r / 4)]!, `gradient drops (${r}, ${c}) (D ${D})`);
        }
      }
      if (D === 10) {
        // RABI's MADE: the forward product runs over about 60 % of the dense one.
        t.fwdKTo.forEach((k) => (work += k * 8));
        const share = work / (pad8(hidden[1]!) * hidden[0]!);
        assert.ok(share > 0.5 && share < 0.65, `forward share ${share}`);
      }
    }
  });

  test('the committed wasm module is the build of its AssemblyScript source', () => {
    const r = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], {
      cwd: repoRoot(),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
  });
});
