// The defense registry and the data-perturbing defenses (noise, adversarial training, TRADES): budgets
// relative to the training x scale, what each does to a batch, TRADES' one-sample KL against the
// closed form, and flat tensor counts while training with each.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import { trainNPE, type DefenseContext } from '../../../sbi/npe.js';
import { DEFENSE_NAMES, createDefense, defenseDefaults } from '../../../sbi/defenses/index.js';
import { NoiseAugmentation } from '../../../sbi/defenses/noise.js';
import { AdversarialTraining } from '../../../sbi/defenses/adversarial.js';
import { Trades } from '../../../sbi/defenses/trades.js';
import { FimTraceDefense } from '../../../sbi/defenses/fim-trace.js';
import { FimFastDefense } from '../../../sbi/defenses/fim-fast.js';
import { LinearGaussian, linearData } from './npe-fixtures.js';
import type { ZScore } from '../../../sbi/types.js';

const ZS: ZScore = { thetaMean: [0, 0], thetaStd: [1, 1], xMean: [0, 0, 0], xStd: [1, 1, 1] };

function rowsOf(t: tf.Tensor2D): number[][] {
  return t.arraySync();
}

function norm(a: number[]): number {
  return Math.sqrt(a.reduce((s, v) => s + v * v, 0));
}

before(async () => {
  await initBackend();
});

describe('createDefense', () => {
  test('names, defaults and errors', () => {
    assert.deepEqual(
      [...DEFENSE_NAMES],
      ['none', 'fim', 'fim-fast', 'trades', 'adversarial', 'noise', 'fim-exact', 'fim-eigenvalue'],
    );
    assert.equal(createDefense('none'), undefined);
    const fim = createDefense('fim', { beta: 0.01 }) as FimTraceDefense;
    assert.ok(fim instanceof FimTraceDefense);
    assert.equal(fim.beta, 0.01);
    assert.equal(fim.mcSamples, 5);
    assert.equal((createDefense('fim') as FimTraceDefense).beta, 0.05);
    const fast = createDefense('fim-fast', { beta: 1e-3 }) as FimFastDefense;
    assert.ok(fast instanceof FimFastDefense);
    assert.equal(fast.samples, 'data');
    assert.equal(fast.mcSamples, 1);
    const model = createDefense('fim-fast', { fast: { samples: 'model' } }) as FimFastDefense;
    assert.equal(model.mcSamples, 5);
    assert.throws(() => createDefense('fim-fast', { mcSamples: 3 }), /one theta per x/);
    const trades = createDefense('trades') as Trades;
    assert.equal(trades.beta, 0.1);
    assert.equal(trades.trainEps, 0.5);
    assert.equal(
      (createDefense('adversarial', { trainEps: 0.1 }) as AdversarialTraining).trainEps,
      0.1,
    );
    assert.equal((createDefense('noise') as NoiseAugmentation).trainEps, 1);
    assert.deepEqual(defenseDefaults('fim'), { beta: 0.05 });
    assert.throws(
      () => createDefense('fisher'),
      /Unknown defense "fisher"; known: none, fim, fim-fast, trades, adversarial, noise/,
    );
    assert.throws(() => createDefense('noise', { beta: 1 }), /noise defense does not take beta/);
    assert.throws(
      () => createDefense('fim', { trainEps: 1 }),
      /fim defense does not take a training epsilon/,
    );
    assert.throws(() => createDefense('fim', { beta: -1 }), /beta must be/);
    assert.throws(
      () => createDefense('adversarial', { trainEps: 0 }),
      /training epsilon must be a positive/,
    );
    for (const d of [fim, fast, model]) d.dispose();
  });
});

describe('perturbing defenses', () => {
  const ctx = (model: LinearGaussian, seed: number, xScale: number): DefenseContext => ({
    model,
    rng: createRng(seed),
    epoch: 0,
    step: 1,
    xScale,
  });

  test('noise: x + a uniform point of the L2 ball of radius trainEps * xScale, theta untouched', () => {
    const model = new LinearGaussian(2, 3, ZS, createRng(1));
    const n = 2000;
    const x = tf.zeros([n, 3]) as tf.Tensor2D;
    const theta = tf.ones([n, 2]) as tf.Tensor2D;
    const out = tf.tidy(() => {
      const r = new NoiseAugmentation(0.5).prepareBatch(theta, x, ctx(model, 2, 2));
      assert.equal(r.theta, theta);
      return r.x;
    });
    const radii = rowsOf(out).map(norm);
    assert.ok(Math.max(...radii) <= 1 + 1e-5, 'inside the ball of radius 0.5 * 2');
    // Uniform in a 3-ball: P(r < R/2) = 1/8.
    const inner = radii.filter((r) => r < 0.5).length / n;
    assert.ok(Math.abs(inner - 0.125) < 0.03, `fraction inside half the radius ${inner}`);
    for (const t of [x, theta, out]) t.dispose();
    model.dispose();
  });

  test('adversarial: x replaced by a point of the ball with a higher NLL of the true theta', () => {
    const model = new LinearGaussian(2, 3, ZS, createRng(3));
    const data = linearData(64, createRng(4));
    const x = tf.tensor2d(data.x, [64, 3]);
    const theta = tf.tensor2d(data.theta, [64, 2]);
    const def = new AdversarialTraining(0.2);
    const { adv, nllClean, nllAdv } = tf.tidy(() => {
      const r = def.prepareBatch(theta, x, ctx(model, 5, 1.5));
      assert.equal(r.theta, theta);
      return {
        adv: r.x,
        nllClean: tf.neg(model.logProb(theta, x)).arraySync() as number[],
        nllAdv: tf.neg(model.logProb(theta, r.x)).arraySync() as number[],
      };
    });
    const xs = rowsOf(x);
    rowsOf(adv).forEach((row, i) => {
      assert.ok(norm(row.map((v, j) => v - xs[i]![j]!)) <= 0.3 + 1e-4, `row ${i} inside the ball`);
      assert.ok(nllAdv[i]! > nllClean[i]!, `row ${i}: NLL ${nllAdv[i]} > ${nllClean[i]}`);
    });
    for (const t of [x, theta, adv]) t.dispose();
    model.dispose();
  });

  test('trades: x kept, KL term = beta * KL(q(.|x) || q(.|x~)) (closed form for a Gaussian), x~ stronger than noise', () => {
    const model = new LinearGaussian(2, 3, ZS, createRng(6));
    // Move the weights away from 0.1-scale so the KL is visible.
    tf.tidy(() =>
      model.trainableVariables()[0]!.assign(tf.mul(model.trainableVariables()[0]!, 10)),
    );
    const n = 400;
    const data = linearData(n, createRng(7));
    const x = tf.tensor2d(data.x, [n, 3]);
    const theta = tf.tensor2d(data.theta, [n, 2]);
    const def = new Trades(0.5, 0.3);
    const c = ctx(model, 8, 1);
    const { kept, loss, closed, noiseKl } = tf.tidy(() => {
      const r = def.prepareBatch(theta, x, c);
      const xAdv = (def as unknown as { xAdv: tf.Tensor2D }).xAdv;
      const klOf = (xt: tf.Tensor2D): tf.Tensor => {
        // Equal scales: KL = 1/2 sum_j (mu_j(x) - mu_j(x~))^2 / sigma_j^2, mean over rows.
        const [w, b, logStd] = model.trainableVariables() as [
          tf.Variable,
          tf.Variable,
          tf.Variable,
        ];
        const mean = (xx: tf.Tensor2D) => tf.add(tf.matMul(xx, w as tf.Tensor2D), b); // identity z-score
        const std = tf.exp(logStd);
        return tf.mean(tf.mul(tf.sum(tf.square(tf.div(tf.sub(mean(x), mean(xt)), std)), 1), 0.5));
      };
      const closedKl = klOf(xAdv).dataSync()[0]!;
      const noise = new NoiseAugmentation(0.3).prepareBatch(theta, x, ctx(model, 9, 1)).x;
      return {
        kept: r.x === x,
        loss: def.extraLoss(theta, x, c).dataSync()[0]!,
        closed: closedKl,
        noiseKl: klOf(noise).dataSync()[0]!,
      };
    });
    assert.ok(kept, 'TRADES trains on the clean x');
    assert.ok(closed > 2 * noiseKl, `PGD KL ${closed} vs uniform-noise KL ${noiseKl}`);
    // One sample per row: the estimate's error is ~ sqrt(mean |mu - mu~|^2 / sigma^2 / n).
    assert.ok(
      Math.abs(loss - 0.5 * closed) < 0.5 * (0.1 * closed + 4 * Math.sqrt((2 * closed) / n)),
      `${loss} vs ${0.5 * closed}`,
    );
    assert.throws(() => tf.tidy(() => def.extraLoss(theta, x, c)), /without prepareBatch/);
    for (const t of [x, theta]) t.dispose();
    model.dispose();
  });
});

describe('training with each defense', () => {
  test('losses finite and tf.memory().numTensors flat across epochs', async () => {
    const data = linearData(200, createRng(10));
    for (const name of DEFENSE_NAMES) {
      const defense = createDefense(name, name === 'fim' ? { mcSamples: 2 } : {});
      const counts: number[] = [];
      const before = tf.memory().numTensors;
      const result = await trainNPE({
        data,
        thetaDim: 2,
        xDim: 3,
        rng: createRng(11),
        hyperparameters: { maxEpochs: 3, batchSize: 64, valSize: 20 },
        createModel: (zscore) => new LinearGaussian(2, 3, zscore, createRng(12)),
        ...(defense ? { defense } : {}),
        onEpoch: () => {
          counts.push(tf.memory().numTensors);
        },
      });
      assert.ok(result.trainLosses.every(Number.isFinite), `${name}: ${result.trainLosses}`);
      assert.ok(
        counts.every((k) => k === counts[0]),
        `${name}: numTensors per epoch ${counts}`,
      );
      result.model.dispose();
      defense?.dispose?.();
      assert.equal(tf.memory().numTensors, before, `${name}: everything released`);
    }
  });
});
