// The MADE's hidden nonlinearity (activation: 'relu' | 'tanh', sbi's MADE uses tanh) and nflows'
// bounded affine scale (affine: 'nflows'): gradients of a tanh MAF at first and second order against
// central finite differences, the autoregressive property of a tanh MADE, the nflows transform's
// inverse and log-determinant, where the fused kernels run them (both: the plain training step only,
// whose parity with tfjs is in maf-fused.test.ts), and model files: a config
// without the key is a ReLU model, one with it round-trips.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { Made, madeMasks } from '../../../sbi/estimators/made.js';
import { FusedMafTrainer } from '../../../sbi/estimators/maf-fused.js';
import { ParamStore } from '../../../sbi/estimators/params.js';
import { modelFromJson, modelToJson } from '../../../sbi/model-file.js';
import { createRng } from '../../../sbi/rng.js';
import type { DensityEstimator, FusedPlan, ZScore } from '../../../sbi/types.js';
import { savedModelStub } from './saved-model-stub.js';

const ZS: ZScore = {
  thetaMean: [0.5, -1],
  thetaStd: [2, 0.5],
  xMean: [0.3, -0.2, 1],
  xStd: [1.5, 0.7, 2],
};
const THETA = [
  [0.3, -1.2],
  [2.5, 0.1],
  [-0.4, -0.6],
];
const X = [
  [0.8, -0.5, 2.2],
  [-1, 0.5, 0],
  [0.2, 0.1, -0.3],
];

function maf(extra: Record<string, unknown>, seed = 1): DensityEstimator {
  return createEstimator('maf', {
    thetaDim: 2,
    xDim: 3,
    zscore: ZS,
    config: { hidden: [16, 16], numTransforms: 2, ...extra },
    rng: createRng(seed),
  });
}

function logProbs(est: DensityEstimator): number[] {
  return tf.tidy(() => Array.from(est.logProb(tf.tensor2d(THETA), tf.tensor2d(X)).dataSync()));
}

/**
 * For the first, a middle and the last-but-one variable (or `which`): the entry of largest |gradient| of h,
 * against central differences (tanh is smooth, so no kink can fall inside a step).
 */
function checkWeightGradient(
  est: DensityEstimator,
  h: () => tf.Scalar,
  what: string,
  which?: number[],
): void {
  const vars = est.trainableVariables();
  const { value, grads } = tf.variableGrads(h, vars);
  const scale = Math.max(1, Math.abs(value.dataSync()[0]!));
  value.dispose();
  for (const vi of which ?? [0, Math.floor(vars.length / 2), vars.length - 2]) {
    const v = vars[vi]!;
    const vals = v.dataSync().slice();
    const g = grads[v.name]!.dataSync();
    let k = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
    assert.ok(g[k] !== 0, `${what} var ${vi}: some entry has a nonzero gradient`);
    const at = (d: number): number => {
      const moved = vals.slice();
      moved[k] = vals[k]! + d;
      tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
      return tf.tidy(() => h().dataSync()[0]!);
    };
    const eps = 1e-3;
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
    assert.ok(
      Math.abs(g[k]! - fd) <= 3e-4 * scale + 1e-2 * Math.abs(fd),
      `${what} var ${vi} entry ${k}: analytic ${g[k]}, finite differences ${fd}`,
    );
  }
  tf.dispose(grads);
}

before(async () => {
  await initBackend();
});

describe('MADE activation', () => {
  test('tanh is a different model from ReLU on the same weights; relu is the absent key', () => {
    const relu = maf({});
    const explicit = maf({ activation: 'relu' });
    const tanh = maf({ activation: 'tanh' });
    assert.equal('activation' in relu.config, false, 'a default config gains no key');
    assert.deepEqual(logProbs(explicit), logProbs(relu));
    const lt = logProbs(tanh);
    assert.ok(lt.every(Number.isFinite));
    assert.notDeepEqual(lt, logProbs(relu));
    for (const m of [relu, explicit, tanh]) m.dispose();
    assert.throws(
      () => maf({ activation: 'gelu' }),
      /maf setting "activation" must be one of relu, tanh, got "gelu"/,
    );
  });

  test('the NSF and the MAF ensemble pass the activation to their MADEs', () => {
    for (const [kind, extra] of [
      ['nsf', { bins: 4 }],
      ['maf_ensemble', { members: 2 }],
    ] as const) {
      const build = (activation: string): DensityEstimator =>
        createEstimator(kind, {
          thetaDim: 2,
          xDim: 3,
          zscore: ZS,
          config: { hidden: [8], numTransforms: 2, ...extra, activation },
          rng: createRng(3),
        });
      const [relu, tanh] = [build('relu'), build('tanh')];
      const lt = logProbs(tanh);
      assert.ok(lt.every(Number.isFinite), kind);
      assert.notDeepEqual(lt, logProbs(relu), `${kind}: tanh must change the model`);
      // nflows' context layer reaches their MADEs too: its biases are among the weights.
      const withContext = createEstimator(kind, {
        thetaDim: 2,
        xDim: 3,
        zscore: ZS,
        config: { hidden: [8], numTransforms: 2, ...extra, contextLayer: 'tanh' },
        rng: createRng(3),
      });
      assert.ok(
        withContext.getWeights().some((w) => w.name.endsWith('in.ctxBias')),
        `${kind}: context layer`,
      );
      withContext.dispose();
      relu.dispose();
      tanh.dispose();
    }
  });

  test('tanh MAF: d logProb / d weight matches central finite differences', () => {
    const est = maf({ activation: 'tanh' });
    const theta = tf.tensor2d(THETA);
    const x = tf.tensor2d(X);
    checkWeightGradient(est, () => tf.sum(est.logProb(theta, x)), 'tanh logProb');
    tf.dispose([theta, x]);
    est.dispose();
  });

  test('tanh MAF, second order: d/dweight ||d logProb / dx||^2 matches finite differences', () => {
    // What the FIM trace regularizer differentiates: tf.tanh's own gradient would be wrong here.
    const est = maf({ activation: 'tanh' });
    const theta = tf.tensor2d(THETA);
    const x = tf.tensor2d(X);
    const h = (): tf.Scalar =>
      tf.sum(
        tf.square(tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(theta, xx as tf.Tensor2D)))(x)),
      );
    checkWeightGradient(est, h, 'tanh FIM');
    tf.dispose([theta, x]);
    est.dispose();
  });

  test('a tanh MADE is autoregressive: output of dimension i moves only with theta before i', () => {
    const D = 3;
    const order = [2, 0, 1];
    const store = new ParamStore();
    const made = new Made(
      store,
      't0',
      {
        thetaDim: D,
        ctxDim: 2,
        hidden: [7, 6],
        paramsPerDim: 2,
        order,
        layout: 'paramMajor',
        activation: 'tanh',
        biasInit: 'torch',
      },
      createRng(4),
    );
    const u0 = [0.3, -0.8, 1.1];
    const xz = [[0.5, -0.2]];
    const out = (u: number[]): Float32Array =>
      tf.tidy(() => {
        const state = made.prepare(tf.tensor2d(xz));
        return made.forward(tf.tensor2d([u]), state).dataSync() as Float32Array;
      });
    const base = out(u0);
    const pos = [1, 2, 0]; // position of each dimension in the order
    for (let j = 0; j < D; j++) {
      const moved = out(u0.map((v, i) => (i === j ? v + 0.7 : v)));
      for (let c = 0; c < 2 * D; c++) {
        const dim = c % D;
        if (pos[j]! >= pos[dim]!)
          assert.equal(moved[c], base[c], `output ${c} must not see theta ${j}`);
        else assert.notEqual(moved[c], base[c], `output ${c} should see theta ${j}`);
      }
    }
    made.dispose();
    store.dispose();
  });
});

describe("nflows' context layer", () => {
  test('the first layer is act(W theta + b + tanh(Wc x + bc)), with bc drawn as torch draws it', () => {
    const spec = {
      thetaDim: 2,
      ctxDim: 3,
      hidden: [5],
      paramsPerDim: 2,
      order: [0, 1],
      layout: 'paramMajor' as const,
      activation: 'tanh' as const,
      biasInit: 'torch' as const,
      inputFanIn: 'separate' as const,
      contextLayer: 'tanh' as const,
    };
    const store = new ParamStore();
    const made = new Made(store, 't0', spec, createRng(6));
    const w = new Map(store.get().map((v) => [v.name, v.values]));
    const bc = w.get('t0.in.ctxBias')!;
    assert.equal(bc.length, 5);
    assert.ok(bc.some((v) => v !== 0) && bc.every((v) => Math.abs(v) <= 1 / Math.sqrt(3)));
    const u = [0.4, -1.3];
    const x = [0.9, -0.2, 1.7];
    const got = tf.tidy(() =>
      Array.from(made.forward(tf.tensor2d([u]), made.prepare(tf.tensor2d([x]))).dataSync()),
    );
    // By hand in float64, with the masks as madeMasks draws them (the first dimension sees no theta).
    const masks = madeMasks(spec);
    const [thetaW, ctxW, inB, outW, outB] = [
      'in.theta',
      'in.ctx',
      'in.bias',
      'out.weight',
      'out.bias',
    ].map((k) => w.get(`t0.${k}`)!);
    const h = Array.from({ length: 5 }, (_, j) => {
      let ctx = bc[j]!;
      x.forEach((xi, i) => (ctx += xi * ctxW![i * 5 + j]!));
      let pre = inB![j]! + Math.tanh(ctx);
      u.forEach((ui, i) => (pre += ui * thetaW![i * 5 + j]! * masks.input[i * 5 + j]!));
      return Math.tanh(pre);
    });
    const want = Array.from({ length: 4 }, (_, c) => {
      let o = outB![c]!;
      h.forEach((hj, j) => (o += hj * outW![j * 4 + c]! * masks.output[j * 4 + c]!));
      return o;
    });
    got.forEach((g, c) =>
      assert.ok(Math.abs(g - want[c]!) < 1e-5, `output ${c}: ${g} vs ${want[c]}`),
    );
    // The linear context layer on the same draws differs: the tanh is there.
    const linearStore = new ParamStore();
    const linearMade = new Made(
      linearStore,
      't0',
      { ...spec, contextLayer: 'linear' },
      createRng(6),
    );
    assert.equal(linearStore.get().length, store.get().length - 1);
    made.dispose();
    linearMade.dispose();
    store.dispose();
    linearStore.dispose();
  });

  test("a MAF with it trains on the fused step, runs a defense's plan and inference on tfjs ops, and its gradients match finite differences", () => {
    const est = maf({ activation: 'tanh', affine: 'nflows', contextLayer: 'tanh', hidden: [8, 8] });
    const fusedTrainer = (plan?: FusedPlan): unknown =>
      (est as unknown as { fusedTrainer(...a: unknown[]): unknown }).fusedTrainer(
        new Float32Array(6),
        new Float32Array(9),
        3,
        3,
        plan,
      );
    assert.ok(fusedTrainer() instanceof FusedMafTrainer);
    // A defense's passes and the inference kernels take x into the first layer linearly.
    assert.equal(fusedTrainer({ usesInputGradient: true }), null);
    assert.ok(
      ['wasm', 'cpu'].includes(tf.getBackend()),
      'a host backend, where inference may fuse',
    );
    assert.equal(est.fusedInference?.(), null);
    // The context layer's weights and biases of both transforms, and a theta weight.
    const names = est.getWeights().map((w) => w.name);
    const which = names.flatMap((n, i) => (/in\.(ctx|ctxBias|theta)$/.test(n) ? [i] : []));
    assert.equal(which.length, 6);
    checkWeightGradient(
      est,
      () => tf.neg(tf.mean(est.logProb(tf.tensor2d(THETA), tf.tensor2d(X)))) as tf.Scalar,
      'contextLayer tanh',
      which,
    );
    assert.throws(
      () => maf({ contextLayer: 'relu' }),
      /maf setting "contextLayer" must be one of linear, tanh, got "relu"/,
    );
    est.dispose();
  });
});

describe("nflows' affine scale", () => {
  test('inverse undoes forward, and logProb is the log-det of the map to the base', () => {
    const est = maf({ affine: 'nflows', activation: 'tanh' }, 2);
    // Samples come from the inverse; their logProb must equal the base density minus the
    // numerical log|det d theta / d eps| (a 2-D Jacobian by central differences).
    const eps0 = [0.4, -0.9];
    const x = tf.tensor2d([X[0]!]);
    const draw = (e: number[]): number[] =>
      tf.tidy(() => {
        const rng = createRng(0);
        rng.normalTensor = () => tf.tensor2d([e]);
        return Array.from(est.sample(x, 1, rng).dataSync());
      });
    const t0 = draw(eps0);
    const h = 1e-3;
    const J = [0, 1].map((j) => {
      const p = draw(eps0.map((v, i) => (i === j ? v + h : v)));
      const m = draw(eps0.map((v, i) => (i === j ? v - h : v)));
      return [0, 1].map((i) => (p[i]! - m[i]!) / (2 * h));
    });
    const logDet = Math.log(Math.abs(J[0]![0]! * J[1]![1]! - J[0]![1]! * J[1]![0]!));
    const base = -Math.log(2 * Math.PI) - 0.5 * (eps0[0]! ** 2 + eps0[1]! ** 2);
    const lp = tf.tidy(() => est.logProb(tf.tensor2d([t0]), x).dataSync()[0]!);
    assert.ok(Math.abs(lp - (base - logDet)) < 5e-3, `logProb ${lp}, expected ${base - logDet}`);
    x.dispose();
    est.dispose();
  });

  test('its weight gradient matches central finite differences', () => {
    const est = maf({ affine: 'nflows' });
    const theta = tf.tensor2d(THETA);
    const x = tf.tensor2d(X);
    checkWeightGradient(est, () => tf.sum(est.logProb(theta, x)), 'nflows logProb');
    tf.dispose([theta, x]);
    est.dispose();
  });
});

describe('fused kernels and model files', () => {
  test('tanh and nflows run fused only in the plain training step (tfjs runs the rest)', () => {
    const theta = new Float32Array([0.1, 0.2, 0.3, 0.4]);
    const x = new Float32Array([1, 2, 3, 4, 5, 6]);
    const tanh = maf({ activation: 'tanh' });
    const tanhPlain = tanh.fusedTrainer!(theta, x, 2, 2);
    assert.notEqual(tanhPlain, null);
    tanhPlain!.dispose();
    assert.equal(
      tanh.fusedTrainer!(theta, x, 2, 2, { exactFim: true }),
      null,
      'no plan runs fused',
    );
    assert.equal(tanh.fusedInference!(), null);
    tanh.dispose();
    const nflows = maf({ affine: 'nflows' });
    const plain = nflows.fusedTrainer!(theta, x, 2, 2);
    assert.notEqual(plain, null);
    plain!.dispose();
    const plan: FusedPlan = { exactFim: true };
    assert.equal(nflows.fusedTrainer!(theta, x, 2, 2, plan), null, 'no plan runs fused');
    assert.equal(nflows.fusedInference!(), null);
    nflows.dispose();
    const relu = maf({});
    const trainer = relu.fusedTrainer!(theta, x, 2, 2);
    assert.notEqual(trainer, null);
    trainer!.dispose();
    assert.notEqual(relu.fusedInference!(), null);
    relu.dispose();
  });

  test('a tanh / nflows model round-trips; the same file without the keys is the ReLU model', () => {
    const tanh = maf({ activation: 'tanh', affine: 'nflows' }, 5);
    const text = modelToJson(savedModelStub(tanh));
    const back = modelFromJson(text);
    assert.deepEqual(logProbs(back.estimator), logProbs(tanh));
    assert.equal(back.estimator.config.activation, 'tanh');
    // A file written before the keys existed: the same weights, read as ReLU and exp scales.
    const doc = JSON.parse(text) as { estimator: { config: Record<string, unknown> } };
    delete doc.estimator.config.activation;
    delete doc.estimator.config.affine;
    const old = modelFromJson(JSON.stringify(doc));
    const relu = maf({}, 5);
    relu.setWeights(tanh.getWeights());
    assert.deepEqual(old.estimator.config, relu.config);
    assert.deepEqual(logProbs(old.estimator), logProbs(relu));
    assert.notDeepEqual(logProbs(old.estimator), logProbs(tanh));
    for (const m of [tanh, back.estimator, old.estimator, relu]) m.dispose();
  });

  test("a model with nflows' context layer round-trips with its context biases", () => {
    const est = maf({ activation: 'tanh', contextLayer: 'tanh', biasInit: 'torch' }, 8);
    const text = modelToJson(savedModelStub(est));
    const back = modelFromJson(text);
    assert.equal(back.estimator.config.contextLayer, 'tanh');
    assert.deepEqual(logProbs(back.estimator), logProbs(est));
    // Without the key the file names weights the linear context layer does not have.
    const doc = JSON.parse(text) as { estimator: { config: Record<string, unknown> } };
    delete doc.estimator.config.contextLayer;
    assert.throws(() => modelFromJson(JSON.stringify(doc)), /unexpected weight "t0\.in\.ctxBias"/);
    est.dispose();
    back.estimator.dispose();
  });
});
