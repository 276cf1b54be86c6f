// The MLP embedding net option: architecture and weight names, per-task defaults, a normalized
// density, the second-order gradient the FIM regularizer takes through the embedding, and restore.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createRng } from '../../../sbi/rng.js';
import type { DensityEstimator, EstimatorKind, ZScore } from '../../../sbi/types.js';
import {
  ESTIMATOR_KINDS,
  MLP_EMBEDDING_SIZES,
  createEstimator,
  restoreEstimator,
  taskEstimatorDefaults,
} from '../../../sbi/estimators/index.js';

const ZS: ZScore = {
  thetaMean: [0.2],
  thetaStd: [1.5],
  xMean: [0.3, -0.2, 1, 0, 0.5],
  xStd: [1.5, 0.7, 2, 1, 0.3],
};
const X0 = [0.8, -0.5, 2.2, 0.1, 0.4];
const SMALL: Record<EstimatorKind, Record<string, unknown>> = {
  maf: { hidden: [16, 16] },
  nsf: { hidden: [16, 16], bins: 6, tailBound: 3 },
  gaussian: { hidden: [16, 16] },
  mdn: { hidden: [16, 16], components: 3 },
  multivariate_gaussian: { hidden: [16, 16] },
  maf_ensemble: { members: 2, hidden: [16, 16] },
  linear_gaussian: {},
};

/** An estimator's weights; of an ensemble, its first member's, without the member prefix. */
function ownWeights(e: DensityEstimator): { name: string; shape: number[] }[] {
  return e
    .getWeights()
    .filter((w) => !/^m[1-9]\d*\./.test(w.name))
    .map((w) => ({ name: w.name.replace(/^m0\./, ''), shape: w.shape }));
}

function make(kind: EstimatorKind, embedding?: string, seed = 1): DensityEstimator {
  return createEstimator(kind, {
    thetaDim: 1,
    xDim: 5,
    zscore: ZS,
    config: { ...SMALL[kind], ...(embedding ? { embedding } : {}) },
    rng: createRng(seed),
  });
}

function logProbs(est: DensityEstimator, theta: number[], x: number[]): Float32Array {
  return tf.tidy(
    () =>
      est
        .logProb(
          tf.tensor2d(theta, [theta.length, 1]),
          tf.tile(tf.tensor2d([x]), [theta.length, 1]) as tf.Tensor2D,
        )
        .dataSync() as Float32Array,
  );
}

before(async () => {
  await initBackend();
});

describe('MLP embedding net', () => {
  test('per-task defaults: mlp for hodgkin_huxley, spatial_sir and vae, nothing for the others', () => {
    for (const t of ['hodgkin_huxley', 'spatial_sir', 'vae'])
      assert.deepEqual(taskEstimatorDefaults(t), { embedding: 'mlp' });
    for (const t of ['gaussian_linear', 'sir', 'lotka_volterra'])
      assert.deepEqual(taskEstimatorDefaults(t), {});
  });

  test('an unknown embedding is one clear sentence', () => {
    assert.throws(
      () => make('maf', 'cnn'),
      /maf embedding must be one of identity, mlp, pyloric-cnn, got "cnn"/,
    );
  });

  // The closed-form linear-Gaussian fit has nothing to train an embedding with.
  for (const kind of ESTIMATOR_KINDS.filter((k) => k !== 'linear_gaussian')) {
    describe(kind, () => {
      test('mlp adds D_x -> 400 -> 200 -> 100 -> 50 layers; identity equals no embedding', () => {
        const plain = make(kind);
        const identity = make(kind, 'identity');
        const mlp = make(kind, 'mlp');
        const shapes = (e: DensityEstimator): Record<string, number[]> =>
          Object.fromEntries(ownWeights(e).map((w) => [w.name, w.shape]));
        const emb = Object.entries(shapes(mlp)).filter(([n]) => n.startsWith('embedding.'));
        const sizes = [5, ...MLP_EMBEDDING_SIZES];
        assert.deepEqual(
          emb.filter(([n]) => n.endsWith('weight')).map(([, s]) => s),
          sizes.slice(1).map((o, i) => [sizes[i], o]),
        );
        assert.ok(!Object.keys(shapes(plain)).some((n) => n.startsWith('embedding.')));
        // The conditioner's weights now read 50 features instead of 5.
        const inWidths = (e: DensityEstimator): number[] =>
          ownWeights(e)
            .filter((w) => !w.name.startsWith('embedding.') && w.shape.length === 2)
            .map((w) => w.shape[0]!);
        assert.ok(inWidths(mlp).includes(50) && !inWidths(plain).includes(50));
        const theta = [-1, 0.3, 2];
        assert.deepEqual(logProbs(plain, theta, X0), logProbs(identity, theta, X0));
        for (const e of [plain, identity, mlp]) e.dispose();
      });

      test('with the embedding the density still integrates to 1, and restore reproduces it', () => {
        const est = make(kind, 'mlp', 4);
        const h = 0.005;
        const grid = Array.from({ length: 4001 }, (_, i) => 0.2 + 1.5 * (-10 + i * h));
        const lp = logProbs(est, grid, X0);
        let mass = 0;
        for (const v of lp) mass += Math.exp(v) * 1.5 * h;
        assert.ok(Math.abs(mass - 1) < 1e-2, `mass ${mass}`);
        const back = restoreEstimator(kind, 1, 5, est.config, est.zscore, est.getWeights());
        assert.deepEqual(logProbs(back, [-1, 0.5], X0), logProbs(est, [-1, 0.5], X0));
        back.dispose();
        est.dispose();
      });
    });
  }

  test('second order through the embedding: d/dW ||d logProb / dx||^2 matches finite differences', () => {
    for (const kind of ['maf', 'gaussian'] as const) {
      const est = make(kind, 'mlp', 2);
      const theta = tf.tensor2d([[0.3], [-1.2]]);
      const x = tf.tensor2d([X0, [-1, 0.5, 0, 1, 0.2]]);
      const h = (): tf.Scalar =>
        tf.sum(
          tf.square(tf.grad((xx: tf.Tensor) => tf.sum(est.logProb(theta, xx as tf.Tensor2D)))(x)),
        );
      const vars = est.trainableVariables();
      const names = est.getWeights().map((w) => w.name);
      // The first embedding layer's weight: the far end of the chain the regularizer differentiates.
      const v = vars[names.indexOf('embedding.l1.weight')]!;
      const { value, grads } = tf.variableGrads(h, [v]);
      value.dispose();
      const g = grads[v.name]!.dataSync();
      let k = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
      assert.ok(g[k] !== 0);
      const vals = v.dataSync().slice();
      const at = (d: number): number => {
        const moved = vals.slice();
        moved[k] = vals[k]! + d;
        tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
        return tf.tidy(() => h().dataSync()[0]!);
      };
      const eps = 1e-3;
      const f0 = at(0);
      const c = [(at(eps) - at(-eps)) / (2 * eps), (at(eps) - f0) / eps, (f0 - at(-eps)) / eps];
      const scale = Math.max(1, Math.abs(f0));
      assert.ok(
        c.some((fd) => Math.abs(fd - g[k]!) <= 2e-4 * scale + 1e-2 * Math.abs(fd)),
        `${kind}: analytic ${g[k]}, finite differences ${c.join(' / ')}`,
      );
      tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
      tf.dispose(grads);
      tf.dispose([theta, x]);
      est.dispose();
    }
  });
});
