import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { decodeFloat32 } from '../../../sbi/float32-base64.js';
import { Adam, clipByGlobalNorm, type AdamSnapshot } from '../../../sbi/adam.js';
import {
  earlyStoppingStep,
  initialEarlyStopping,
  type EarlyStoppingState,
  type StopDecision,
} from '../../../sbi/early-stopping.js';
import { DivergedError } from '../../../sbi/errors.js';
import type { TrainingState } from '../../../sbi/npe-checkpoint.js';
import { trainNPE, type TrainNPEOptions, type TrainingDefense } from '../../../sbi/npe.js';
import { resolveHyperparameters } from '../../../sbi/npe-hyperparameters.js';
import { defaultValSize, dropNonFinite } from '../../../sbi/training-data.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { createRng } from '../../../sbi/rng.js';
import { LinearGaussian, linearData } from './npe-fixtures.js';

before(async () => {
  await initBackend('cpu');
});

function options(over: Partial<TrainNPEOptions> = {}, n = 400, seed = 7): TrainNPEOptions {
  const data = linearData(n, createRng(1000 + seed));
  return {
    data,
    thetaDim: 2,
    xDim: 3,
    createModel: (z) => new LinearGaussian(2, 3, z, createRng(seed).fork('init')),
    rng: createRng(seed),
    hyperparameters: { batchSize: 64, maxEpochs: 8, learningRate: 1e-2 },
    ...over,
  };
}

describe('early stopping rule (RABI semantics)', () => {
  const rule: {
    patience: number;
    minEpochs: number;
    maxNanResets: number;
    stopRule?: 'rabi' | 'sbi';
  } = {
    patience: 2,
    minEpochs: 3,
    maxNanResets: 1,
  };

  function run(losses: number[]): {
    decisions: StopDecision[];
    counters: number[];
    last: EarlyStoppingState;
  } {
    let s = initialEarlyStopping();
    const decisions: StopDecision[] = [];
    const counters: number[] = [];
    losses.forEach((l, i) => {
      const r = earlyStoppingStep(s, i, l, rule);
      s = r.state;
      decisions.push(r.decision);
      counters.push(s.counter);
    });
    return { decisions, counters, last: s };
  }

  test('an improvement lowers the counter by one, floored at 0, and stops once counter > patience', () => {
    // 5 4 | 6 7 (counter 2) | 3 (improves: counter 1, not reset) | 8 9 -> counter 3 > 2: stop.
    const { decisions, counters, last } = run([5, 4, 6, 7, 3, 8, 9]);
    assert.deepEqual(counters, [0, 0, 1, 2, 1, 2, 3]);
    assert.deepEqual(decisions, [
      'continue',
      'continue',
      'continue',
      'continue',
      'continue',
      'continue',
      'stop',
    ]);
    assert.equal(last.bestValLoss, 3);
    assert.equal(last.bestEpoch, 5);
  });

  test("stopRule sbi resets the counter on an improvement (sbi's stop_after_epochs)", () => {
    // Same losses as above: under 'sbi' the improvement at 3 resets the counter, so 8 9 leave it at
    // 2 = patience and the run goes on where RABI's rule stops.
    let s = initialEarlyStopping();
    const counters: number[] = [];
    const decisions = [5, 4, 6, 7, 3, 8, 9, 10].map((l, i) => {
      const r = earlyStoppingStep(s, i, l, { ...rule, stopRule: 'sbi' });
      s = r.state;
      counters.push(s.counter);
      return r.decision;
    });
    assert.deepEqual(counters, [0, 0, 1, 2, 0, 1, 2, 3]);
    assert.deepEqual(decisions.slice(-2), ['continue', 'stop']);
    assert.equal(s.bestEpoch, 5);
  });

  /** The decisions of a run of validation losses under an annealing rule, and its end state. */
  function decide(
    losses: number[],
    annealing: Parameters<typeof earlyStoppingStep>[3],
  ): { decisions: StopDecision[]; last: EarlyStoppingState } {
    let last = initialEarlyStopping();
    const decisions = losses.map((l, i) => {
      const r = earlyStoppingStep(last, i, l, annealing);
      last = r.state;
      return r.decision;
    });
    return { decisions, last };
  }

  test('with anneals left, a stop becomes an anneal that starts the counter again', () => {
    const { decisions, last: s } = decide([5, 4, 6, 7, 8, 9, 10, 11, 12, 13], {
      ...rule,
      stopRule: 'sbi',
      anneals: 2,
    });
    // Counter 3 > patience 2 at index 4: anneal (counter 0), again at index 7, then stop at 10's turn.
    assert.deepEqual(decisions, [
      'continue',
      'continue',
      'continue',
      'continue',
      'anneal',
      'continue',
      'continue',
      'anneal',
      'continue',
      'continue',
    ]);
    assert.equal(s.anneals, 2);
    const r = earlyStoppingStep(s, 10, 14, { ...rule, stopRule: 'sbi', anneals: 2 });
    assert.equal(r.decision, 'stop');
    assert.equal(r.state.anneals, 2);
  });

  test('after an anneal the counter is held to annealPatience, before it to patience', () => {
    // patience 2, annealPatience 0: the first stop waits 3 epochs without improvement, the ones
    // after an anneal stop at the first epoch without improvement.
    const same = { ...rule, stopRule: 'sbi' as const, anneals: 2 };
    const { decisions } = decide([5, 4, 6, 7, 8, 3, 9, 2, 10], { ...same, annealPatience: 0 });
    // Anneal at index 4 (counter 3 > 2), at 6 (1 > 0 after the improvement at 5), stop at 8.
    assert.equal(
      decisions.join(' '),
      'continue continue continue continue anneal continue anneal continue stop',
    );
    // Unset, the anneals wait as long as the first stop did.
    assert.equal(decide([5, 4, 6, 7, 8, 3, 9], same).decisions[6], 'continue');
  });

  test('anneals and annealFactor out of range are refused', () => {
    assert.throws(() => resolveHyperparameters({ anneals: -1 }), /anneals must be an integer >= 0/);
    assert.throws(() => resolveHyperparameters({ annealFactor: 1 }), /annealFactor must lie in/);
    assert.throws(
      () => resolveHyperparameters({ annealPatience: 1.5 }),
      /annealPatience must be an integer >= 0/,
    );
  });

  test('an unknown stopRule is refused', () => {
    assert.throws(
      () => resolveHyperparameters({ stopRule: 'keras' as 'sbi' }),
      /stopRule must be rabi or sbi, got keras/,
    );
  });

  test('a dropLast that is not a boolean is refused', () => {
    assert.throws(
      () => resolveHyperparameters({ dropLast: 'yes' as unknown as boolean }),
      /dropLast must be true or false, got yes/,
    );
  });

  test('never stops while the epoch index is below minEpochs', () => {
    // patience 0: the counter exceeds it from index 1 on, but indices 0..2 (< minEpochs) continue.
    let s = initialEarlyStopping();
    const decisions = [1, 2, 2, 2].map((l, i) => {
      const r = earlyStoppingStep(s, i, l, { ...rule, patience: 0 });
      s = r.state;
      return r.decision;
    });
    assert.deepEqual(decisions, ['continue', 'continue', 'continue', 'stop']);
    assert.equal(s.counter, 3);
  });

  test('a NaN loss reloads (and counts as no improvement) until more than maxNanResets', () => {
    const { decisions, counters, last } = run([2, NaN, 1.5, NaN]);
    assert.deepEqual(decisions, ['continue', 'reload', 'continue', 'diverged']);
    assert.deepEqual(counters, [0, 1, 0, 1]);
    assert.equal(last.nanResets, 2);
    assert.equal(last.bestValLoss, 1.5);
  });

  test('the default validation size is min(512, 10% of n), at least 1', () => {
    assert.equal(defaultValSize(100_000), 512);
    assert.equal(defaultValSize(1000), 100);
    assert.equal(defaultValSize(5), 1);
  });
});

describe('gradient clipping and Adam', () => {
  test('global-norm clip matches a hand computation', () => {
    const a = tf.tensor1d([3, 4]);
    const b = tf.tensor2d([[12]]);
    const { grads, norm } = clipByGlobalNorm([a, null, b], 6.5);
    assert.ok(Math.abs(norm.dataSync()[0]! - 13) < 1e-5);
    const coef = 6.5 / (13 + 1e-6);
    assert.equal(grads[1], null);
    const ga = grads[0]!.dataSync();
    assert.ok(Math.abs(ga[0]! - 3 * coef) < 1e-6 && Math.abs(ga[1]! - 4 * coef) < 1e-6);
    assert.ok(Math.abs(grads[2]!.dataSync()[0]! - 12 * coef) < 1e-5);
    // Under the limit nothing changes.
    const loose = clipByGlobalNorm([a, b], 100);
    assert.deepEqual(Array.from(loose.grads[0]!.dataSync()), [3, 4]);
    tf.dispose([
      a,
      b,
      norm,
      loose.norm,
      ...grads.filter((g) => g !== null),
      ...loose.grads.filter((g) => g !== null),
    ]);
  });

  test('two Adam steps match torch.optim.Adam computed by hand', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const adam = new Adam([w], { learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    const g1 = tf.tensor1d([0.5, -4]);
    const g2 = tf.tensor1d([1, 2]);
    adam.apply([g1]);
    adam.apply([g2]);
    const expected = [1, -2].map((w0, i) => {
      const gs = [
        [0.5, -4],
        [1, 2],
      ].map((g) => g[i]!);
      let m = 0;
      let v = 0;
      let p = w0;
      gs.forEach((g, t) => {
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        const step = t + 1;
        p -= (0.1 / (1 - 0.9 ** step)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** step) + 1e-8));
      });
      return p;
    });
    const got = w.dataSync();
    assert.ok(Math.abs(got[0]! - expected[0]!) < 1e-6, `${got[0]} vs ${expected[0]}`);
    assert.ok(Math.abs(got[1]! - expected[1]!) < 1e-6, `${got[1]} vs ${expected[1]}`);
    assert.equal(adam.snapshot().step, 2);
    adam.dispose();
    tf.dispose([w, g1, g2]);
  });

  test('Adam on host arrays and on tensors agree, with and without clipping, and snapshot the same state', () => {
    const shapes = [[3, 4], [4], [2, 2]];
    const init = shapes.map((sh, k) =>
      Float32Array.from({ length: sh.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + 3 * k)),
    );
    const gradAt = (t: number): Float32Array[] =>
      init.map((a, k) => a.map((_, i) => 5 * Math.cos(t * 7 + i + k)));
    const hp = { learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
    const run = (
      mode: 'host' | 'tensor',
      clip: number,
    ): { w: number[][]; s: AdamSnapshot; norms: number[] } => {
      const vars = init.map((a, k) => tf.variable(tf.tensor(a, shapes[k]!)));
      const adam = new Adam(vars, hp, mode);
      const norms: number[] = [];
      for (let t = 0; t < 4; t++) {
        const g = gradAt(t).map((a, k) => tf.tensor(a, shapes[k]!));
        // The middle variable has no gradient at step 2: it must stay put.
        if (t === 2) g[1]!.dispose();
        norms.push(adam.applyClipped(t === 2 ? [g[0]!, null, g[2]!] : g, clip));
        tf.dispose(g);
      }
      const w = vars.map((v) => Array.from(v.dataSync()));
      const s = adam.snapshot();
      adam.dispose();
      tf.dispose(vars);
      return { w, s, norms };
    };
    for (const clip of [Infinity, 3]) {
      const host = run('host', clip);
      const dev = run('tensor', clip);
      assert.equal(host.s.step, 4);
      host.norms.forEach((n, i) => assert.ok(Math.abs(n - dev.norms[i]!) < 1e-4 * n, `norm ${i}`));
      const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string): void => {
        for (let i = 0; i < a.length; i++)
          assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
      };
      host.w.forEach((w, k) => close(w, dev.w[k]!, `clip ${clip} weight ${k}`));
      host.s.m.forEach((m, k) => close(m, dev.s.m[k]!, `clip ${clip} m ${k}`));
      host.s.v.forEach((v, k) => close(v, dev.s.v[k]!, `clip ${clip} v ${k}`));
      // Clipping at 3 (every norm here is larger) changes the trajectory.
      if (clip === 3) assert.ok(host.norms.every((n) => n > 3));
    }
    const free = run('host', Infinity);
    const clipped = run('host', 3);
    assert.ok(Math.abs(free.w[0]![0]! - clipped.w[0]![0]!) > 1e-6, 'clipping changed nothing');
  });

  test('host Adam restores a snapshot exactly and rejects one of another model', () => {
    const w = tf.variable(tf.tensor1d([1, -2, 0.5]));
    const hp = { learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
    const a = new Adam([w], hp, 'host');
    const g = tf.tensor1d([0.3, -1, 2]);
    a.apply([g]);
    const snap = a.snapshot();
    a.apply([g]);
    a.restore(snap);
    assert.deepEqual(a.snapshot(), snap);
    assert.throws(
      () => a.restore({ step: 1, m: [new Float32Array(2)], v: [new Float32Array(3)] }),
      {
        name: 'RangeError',
      },
    );
    tf.dispose([w, g]);
  });
});

describe('dropping non-finite simulations', () => {
  test('rows with NaN or Infinity in theta or x are removed and counted', () => {
    const theta = Float32Array.from([1, 2, NaN, 4, 5, 6, 7, 8]);
    const x = Float32Array.from([1, 2, 3, Infinity]);
    const r = dropNonFinite(theta, x, 4, 2, 1);
    assert.equal(r.dropped, 2);
    assert.equal(r.n, 2);
    // row 1 has a NaN theta, row 3 an infinite x
    assert.deepEqual(Array.from(r.theta), [1, 2, 5, 6]);
    assert.deepEqual(Array.from(r.x), [1, 3]);
  });

  test('trainNPE never trains on them and reports the count', async () => {
    const o = options({ hyperparameters: { batchSize: 64, maxEpochs: 2, learningRate: 1e-2 } });
    o.data.theta[0] = NaN;
    o.data.x[3 * 5 + 1] = -Infinity;
    o.data.x[3 * 9] = NaN;
    const r = await trainNPE(o);
    assert.equal(r.dropped, 3);
    assert.equal(r.nTrain + r.nVal, 397);
    assert.ok(r.trainLosses.every(Number.isFinite) && r.valLosses.every(Number.isFinite));
    r.model.dispose();
  });
});

describe('trainNPE', () => {
  test('learns, reports NLL per epoch, and returns the best-validation weights', async () => {
    const seen: number[] = [];
    let last: TrainingState | undefined;
    const r = await trainNPE(
      options({
        hyperparameters: { batchSize: 64, maxEpochs: 12, learningRate: 2e-2 },
        onEpoch: (p) => {
          seen.push(p.epoch);
          assert.equal(p.maxEpochs, 12);
        },
        checkpoint: (s) => {
          last = s;
        },
      }),
    );
    assert.deepEqual(
      seen,
      Array.from({ length: r.epochs }, (_, i) => i + 1),
    );
    assert.equal(r.nVal, 40);
    assert.ok(
      r.valLosses.at(-1)! < r.valLosses[0]! - 0.5,
      `val loss ${r.valLosses[0]} -> ${r.valLosses.at(-1)}`,
    );
    assert.equal(r.bestValLoss, Math.min(...r.valLosses));
    assert.equal(r.valLosses[r.bestEpoch - 1], r.bestValLoss);
    assert.ok(last?.finished);
    assert.deepEqual(
      r.model.getWeights().map((w) => Float32Array.from(w.values)),
      last!.best.weights.map((w) => decodeFloat32(w.data)),
    );
    r.model.dispose();
  });

  test('stops early when the validation loss stalls', async () => {
    // lr 0 makes every epoch identical: no improvement after the first, so stop at index minEpochs.
    const r = await trainNPE(
      options({
        hyperparameters: {
          batchSize: 128,
          maxEpochs: 50,
          learningRate: 1e-12,
          patience: 1,
          minEpochs: 3,
        },
      }),
    );
    assert.equal(r.stoppedBy, 'early-stopping');
    assert.equal(r.epochs, 4);
    r.model.dispose();
  });

  test('a NaN validation loss reloads the best state and training goes on', async () => {
    let poisoned = false;
    const poison: TrainingDefense = {
      name: 'poison-once',
      extraGrads: (_t, _x, ctx) => {
        if (ctx.epoch !== 2 || poisoned) return {};
        poisoned = true;
        const v = ctx.model.trainableVariables()[0]!;
        return { [v.name]: tf.fill(v.shape, NaN) };
      },
    };
    const r = await trainNPE(
      options({
        defense: poison,
        hyperparameters: { batchSize: 64, maxEpochs: 6, learningRate: 1e-2, clipNorm: Infinity },
      }),
    );
    assert.equal(r.nanResets, 1);
    assert.ok(Number.isNaN(r.valLosses[2]!));
    assert.ok(Number.isFinite(r.valLosses[3]!) && Number.isFinite(r.bestValLoss));
    assert.ok(r.model.getWeights().every((w) => w.values.every(Number.isFinite)));
    r.model.dispose();
  });

  test('a loss that stays NaN throws DivergedError (non-retryable)', async () => {
    const always: TrainingDefense = {
      name: 'poison-always',
      extraGrads: (_t, _x, ctx) => {
        const v = ctx.model.trainableVariables()[1]!;
        return { [v.name]: tf.fill(v.shape, NaN) };
      },
    };
    const before = tf.memory().numTensors;
    await assert.rejects(
      trainNPE(
        options({
          defense: always,
          hyperparameters: { batchSize: 64, maxEpochs: 20, maxNanResets: 2 },
        }),
      ),
      (e: unknown) =>
        e instanceof DivergedError &&
        e.retryable === false &&
        e.epoch === 3 &&
        /diverged/.test(e.message),
    );
    assert.equal(tf.memory().numTensors, before, 'a failed run frees its tensors and model');
  });

  test('a defense extraLoss moves gradients but not the reported loss', async () => {
    const plain = await trainNPE(options({ hyperparameters: { batchSize: 64, maxEpochs: 2 } }));
    // A constant has zero gradient: identical weights, and the train loss must not include the 1e6.
    const constant: TrainingDefense = { name: 'const', extraLoss: () => tf.scalar(1e6) };
    const withConst = await trainNPE(
      options({ defense: constant, hyperparameters: { batchSize: 64, maxEpochs: 2 } }),
    );
    assert.deepEqual(withConst.trainLosses, plain.trainLosses);
    assert.deepEqual(withConst.model.getWeights(), plain.model.getWeights());
    plain.model.dispose();
    withConst.model.dispose();
  });

  test('a resumed run ends with exactly the weights of an uninterrupted one', async () => {
    const hp = { batchSize: 50, maxEpochs: 7, learningRate: 1e-2, patience: 100 };
    const states: string[] = [];
    const full = await trainNPE(
      options({ hyperparameters: hp, checkpoint: (s) => void states.push(JSON.stringify(s)) }),
    );
    assert.equal(states.length, 7);
    const at3 = JSON.parse(states[2]!) as TrainingState;
    assert.equal(at3.epoch, 3);
    const epochsSeen: number[] = [];
    const resumed = await trainNPE(
      options({
        hyperparameters: hp,
        resumeFrom: at3,
        onEpoch: (p) => void epochsSeen.push(p.epoch),
      }),
    );
    assert.deepEqual(epochsSeen, [4, 5, 6, 7]);
    assert.deepEqual(resumed.valLosses, full.valLosses);
    assert.deepEqual(resumed.model.getWeights(), full.model.getWeights());
    full.model.dispose();
    resumed.model.dispose();
  });

  test('checkpointEveryMs: the last epoch is always checkpointed, and an abort first stores the epochs since the last', async () => {
    const hp = { batchSize: 50, maxEpochs: 7, learningRate: 1e-2, patience: 100 };
    const hour = 3_600_000;
    // Throttled to one an hour: only the epoch that ends the run.
    const kept: TrainingState[] = [];
    const full = await trainNPE(
      options({
        hyperparameters: hp,
        checkpointEveryMs: hour,
        checkpoint: (s) => void kept.push(s),
      }),
    );
    assert.deepEqual(
      kept.map((s) => [s.epoch, s.finished]),
      [[7, true]],
    );
    // Aborted after epoch 3: epoch 3 is stored before the abort is thrown, and resumes exactly.
    const ac = new AbortController();
    const stored: TrainingState[] = [];
    await assert.rejects(
      trainNPE(
        options({
          hyperparameters: hp,
          checkpointEveryMs: hour,
          checkpoint: (s) => void stored.push(s),
          signal: ac.signal,
          onEpoch: (p) => {
            if (p.epoch === 3) ac.abort(new Error('worker draining'));
          },
        }),
      ),
      /worker draining/,
    );
    assert.deepEqual(
      stored.map((s) => [s.epoch, s.finished]),
      [[3, false]],
    );
    const resumed = await trainNPE(options({ hyperparameters: hp, resumeFrom: stored[0]! }));
    assert.deepEqual(resumed.model.getWeights(), full.model.getWeights());
    // A checkpoint that fails during the abort leaves the abort as the error.
    const ac2 = new AbortController();
    await assert.rejects(
      trainNPE(
        options({
          hyperparameters: hp,
          checkpointEveryMs: hour,
          checkpoint: () => Promise.reject(new Error('store down')),
          signal: ac2.signal,
          onEpoch: (p) => {
            if (p.epoch === 2) ac2.abort(new Error('cancelled'));
          },
        }),
      ),
      /cancelled/,
    );
    full.model.dispose();
    resumed.model.dispose();
  });

  // patience 0 under sbi's rule at a high rate: the first epoch without improvement anneals.
  const annealing = {
    batchSize: 50,
    maxEpochs: 40,
    learningRate: 5e-2,
    patience: 0,
    minEpochs: 0,
    stopRule: 'sbi' as const,
  };

  test('an anneal reloads the best state and steps at the cut rate; a resume keeps the cut', async () => {
    const hp = { ...annealing, anneals: 1, annealFactor: 0.01 };
    const states: TrainingState[] = [];
    const full = await trainNPE(
      options({ hyperparameters: hp, checkpoint: (s) => void states.push(s) }),
    );
    assert.equal(full.anneals, 1);
    const k = states.findIndex((s) => s.earlyStopping.anneals === 1);
    assert.ok(k > 0, 'the run annealed');
    const weights = (s: TrainingState): Float32Array[] =>
      s.weights.map((w) => decodeFloat32(w.data));
    const moved = (a: Float32Array[], b: Float32Array[]): number =>
      Math.max(...a.map((w, i) => Math.max(...w.map((v, j) => Math.abs(v - b[i]![j]!)))));
    // The anneal reloaded the best epoch's weights...
    const bestEpoch = states[k]!.earlyStopping.bestEpoch;
    assert.ok(bestEpoch <= k, `best epoch ${bestEpoch}, anneal after epoch ${k + 1}`);
    assert.deepEqual(weights(states[k]!), weights(states[bestEpoch - 1]!));
    // ...and the next epoch moved them by about a hundredth of an epoch before it.
    assert.ok(states.length > k + 1, 'the run went on after the anneal');
    const before = moved(weights(states[1]!), weights(states[0]!));
    const after = moved(weights(states[k + 1]!), weights(states[k]!));
    assert.ok(after < 0.05 * before, `an epoch moved the weights ${before} before, ${after} after`);
    // A run resumed after the anneal steps at the cut rate too.
    const resumed = await trainNPE(options({ hyperparameters: hp, resumeFrom: states[k]! }));
    assert.deepEqual(resumed.valLosses, full.valLosses);
    assert.deepEqual(resumed.model.getWeights(), full.model.getWeights());
    full.model.dispose();
    resumed.model.dispose();
  });

  test('a run early stopping ended, resumed with anneals, ends as one run with them would', async () => {
    const hp = { ...annealing, anneals: 2, annealFactor: 0.1 };
    const full = await trainNPE(options({ hyperparameters: hp }));
    assert.equal(full.anneals, 2);
    let last: TrainingState | undefined;
    const plain = await trainNPE(
      options({
        hyperparameters: { ...hp, anneals: 0 },
        checkpoint: (s) => void (last = s),
        keepFinalState: true,
      }),
    );
    assert.equal(plain.stoppedBy, 'early-stopping');
    assert.ok(plain.epochs < full.epochs, 'the anneals went on where the plain run stopped');
    // keepFinalState hands back the last epoch's checkpoint without one at every epoch.
    assert.deepEqual(plain.finalState, last);
    assert.equal(full.finalState, undefined);
    plain.model.dispose();
    const resumed = await trainNPE(options({ hyperparameters: hp, resumeFrom: plain.finalState! }));
    assert.equal(resumed.anneals, 2);
    assert.equal(resumed.stoppedBy, full.stoppedBy);
    assert.deepEqual(resumed.valLosses, full.valLosses);
    assert.deepEqual(resumed.model.getWeights(), full.model.getWeights());
    resumed.model.dispose();
    // Fewer anneals than the checkpoint took, or another factor after one was taken, are refused.
    const states: TrainingState[] = [];
    const once = await trainNPE(
      options({ hyperparameters: hp, checkpoint: (s) => void states.push(s) }),
    );
    once.model.dispose();
    const annealed = states.find((s) => s.earlyStopping.anneals === 2)!;
    await assert.rejects(
      trainNPE(options({ hyperparameters: { ...hp, anneals: 1 }, resumeFrom: annealed })),
      /other hyperparameters \(anneals 2 -> 1\)/,
    );
    await assert.rejects(
      trainNPE(options({ hyperparameters: { ...hp, annealFactor: 0.5 }, resumeFrom: annealed })),
      /other hyperparameters \(annealFactor 0.1 -> 0.5\)/,
    );
    await assert.rejects(
      trainNPE(options({ hyperparameters: { ...hp, annealPatience: 3 }, resumeFrom: annealed })),
      /other hyperparameters \(annealPatience undefined -> 3\)/,
    );
    // Before its first anneal a run may take another anneal patience, as the kept candidate does.
    const other = await trainNPE(
      options({ hyperparameters: { ...hp, annealPatience: 3 }, resumeFrom: plain.finalState! }),
    );
    assert.equal(other.anneals, 2);
    other.model.dispose();
    full.model.dispose();
  });

  test('a checkpoint from other data is refused', async () => {
    const states: TrainingState[] = [];
    const r = await trainNPE(
      options({
        hyperparameters: { batchSize: 64, maxEpochs: 1 },
        checkpoint: (s) => void states.push(s),
      }),
    );
    r.model.dispose();
    await assert.rejects(trainNPE(options({ resumeFrom: states[0]! }, 300)), /nTrain/);
  });

  test('a checkpoint from another seed or other hyperparameters is refused', async () => {
    const states: TrainingState[] = [];
    const r = await trainNPE(
      options({
        hyperparameters: { batchSize: 64, maxEpochs: 1 },
        checkpoint: (s) => void states.push(s),
      }),
    );
    r.model.dispose();
    const hp = { batchSize: 64, maxEpochs: 1 };
    await assert.rejects(
      trainNPE({ ...options({ resumeFrom: states[0]!, hyperparameters: hp }), rng: createRng(8) }),
      /random stream/,
    );
    await assert.rejects(
      trainNPE(options({ resumeFrom: states[0]!, hyperparameters: { ...hp, batchSize: 32 } })),
      /other hyperparameters \(batchSize 64 -> 32\)/,
    );
  });

  test('an aborted signal stops training between epochs and frees everything', async () => {
    const start = tf.memory().numTensors;
    const ac = new AbortController();
    const seen: number[] = [];
    await assert.rejects(
      trainNPE(
        options({
          signal: ac.signal,
          onEpoch: (p) => {
            seen.push(p.epoch);
            if (p.epoch === 2) ac.abort(new Error('cancelled by the workflow'));
          },
        }),
      ),
      /cancelled by the workflow/,
    );
    assert.deepEqual(seen, [1, 2]);
    assert.equal(tf.memory().numTensors, start);
  });

  test('a real MAF trains with a flat tensor count across epochs', async () => {
    const start = tf.memory().numTensors;
    const counts: number[] = [];
    const r = await trainNPE(
      options({
        createModel: (zscore) =>
          createEstimator('maf', {
            thetaDim: 2,
            xDim: 3,
            zscore,
            config: { hidden: [16], numTransforms: 2 },
            rng: createRng(1),
          }),
        hyperparameters: { batchSize: 64, maxEpochs: 4, patience: 100 },
        onEpoch: () => void counts.push(tf.memory().numTensors),
      }),
    );
    assert.equal(new Set(counts).size, 1, `tensor counts per epoch: ${counts.join(', ')}`);
    assert.ok(r.valLosses.at(-1)! < r.valLosses[0]!, `MAF val loss ${r.valLosses.join(', ')}`);
    r.model.dispose();
    assert.equal(tf.memory().numTensors, start);
  });

  test('tensor count stays flat across epochs and returns to its start', async () => {
    const start = tf.memory().numTensors;
    const counts: number[] = [];
    const r = await trainNPE(
      options({
        hyperparameters: { batchSize: 64, maxEpochs: 6, patience: 100 },
        onEpoch: () => void counts.push(tf.memory().numTensors),
        checkpoint: () => void counts.push(tf.memory().numTensors),
      }),
    );
    assert.equal(new Set(counts).size, 1, `tensor counts per epoch: ${counts.join(', ')}`);
    r.model.dispose();
    assert.equal(tf.memory().numTensors, start);
  });
});
