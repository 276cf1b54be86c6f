import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { attackObjectivePerRow, type AttackObjective } from '../../../sbi/attacks/objectives.js';
import { l2Pgd, linfPgd } from '../../../sbi/attacks/pgd.js';
import { klUnderAttack } from '../../../sbi/metrics/robustness.js';
import { coverageRanks } from '../../../sbi/metrics/coverage.js';
import { groundTruthMetrics } from '../../../sbi/metrics/ground-truth.js';
import { nllPerPair } from '../../../sbi/metrics/nll.js';
import { evaluateRobustness } from '../../../sbi/evaluation.js';
import { createRng } from '../../../sbi/rng.js';
import { relGap, toyData, toyMaf } from './maf-toy.js';
import type { DensityEstimator } from '../../../sbi/types.js';

before(async () => {
  await initBackend('cpu');
});

/** The same model seen without its fused inference: every call runs the tfjs ops. */
function tfjsOnly(est: DensityEstimator): DensityEstimator {
  return new Proxy(est, {
    get: (t, p) => (p === 'fusedInference' ? undefined : Reflect.get(t, p)),
  });
}

const cases = [
  { name: "RABI's MAF, 10 -> 10", D: 10, C: 10, config: {} },
  {
    name: 'odd sizes, an active log-scale clip',
    D: 3,
    C: 5,
    config: { hidden: [7, 9], numTransforms: 2, logScaleMin: -0.05, logScaleMax: 0.05 },
  },
  {
    name: "RABI's parameterization, 10 -> 10",
    D: 10,
    C: 10,
    config: { affine: 'pyro', clampGradient: 'pass', degrees: 'linspace', biasInit: 'torch' },
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
  },
];

for (const c of cases) {
  describe(`fused MAF inference follows tfjs: ${c.name}`, () => {
    const n = 300;
    const { theta, x } = toyData(n, c.D, c.C, 11);
    let model: DensityEstimator;
    let plain: DensityEstimator;
    const B = 7;
    const xb = x.subarray(0, B * c.C);
    const tb = theta.subarray(0, B * c.D);

    before(() => {
      model = toyMaf(c.D, c.C, c.config, theta, x, n);
      const vars = model.trainableVariables();
      tf.tidy(() =>
        vars.forEach((v, i) =>
          v.assign(tf.add(v, tf.mul(createRng(50 + i).normalTensor(v.shape), 0.05))),
        ),
      );
      plain = tfjsOnly(model);
      assert.ok(model.fusedInference?.(), 'the MAF has fused inference here');
    });

    test('samples and log-densities', () => {
      const fused = model.fusedInference!()!;
      const s = fused.sample(xb, B, 6, createRng(5));
      const ref = tf.tidy(() =>
        plain.sample(tf.tensor2d(xb, [B, c.C]), 6, createRng(5)).dataSync(),
      );
      assert.ok(relGap(s, ref) < 1e-4, `samples differ by ${relGap(s, ref)}`);
      const lp = fused.logProb(tb, xb, B);
      const refLp = tf.tidy(() =>
        plain.logProb(tf.tensor2d(tb, [B, c.D]), tf.tensor2d(xb, [B, c.C])).dataSync(),
      );
      assert.ok(relGap(lp, refLp) < 1e-5, `log-densities differ by ${relGap(lp, refLp)}`);
    });

    for (const objective of ['rkl', 'fkl', 'nll'] as Exclude<AttackObjective, 'mmd'>[]) {
      test(`the ${objective} objective's gradient in x~`, () => {
        const fused = model.fusedInference!()!;
        // x~ a little away from x, so the divergences have a gradient.
        const xAdv = Float32Array.from(xb, (v, i) => v + 0.3 * Math.sin(i));
        const g = fused.objectiveGradient(objective, xAdv, xb, tb, B, createRng(8), 4);
        const ref = tf.tidy(() => {
          const xc = tf.tensor2d(xb, [B, c.C]);
          const th = tf.tensor2d(tb, [B, c.D]);
          const rng = createRng(8);
          return tf
            .grad((xa: tf.Tensor) =>
              tf.sum(
                attackObjectivePerRow(
                  plain,
                  objective,
                  xa as tf.Tensor2D,
                  { xClean: xc, theta: th },
                  rng,
                  4,
                ),
              ),
            )(tf.tensor2d(xAdv, [B, c.C]))
            .dataSync();
        });
        const gap = relGap(g, ref);
        assert.ok(gap < 1e-3, `gradients differ by ${gap}`);
        assert.ok(
          ref.some((v) => Math.abs(v) > 1e-3),
          'the gradient carries signal',
        );
      });
    }

    for (const [name, attack] of [
      ['L2', l2Pgd],
      ['Linf', linfPgd],
    ] as const) {
      test(`${name} PGD (rkl) ends where the tfjs loop ends`, () => {
        const run = (est: DensityEstimator) =>
          tf.tidy(() =>
            attack(
              {
                estimator: est,
                x: tf.tensor2d(xb, [B, c.C]),
                epsAbs: 0.5,
                box: { min: -50, max: 50 },
                rng: createRng(21),
              },
              { objective: 'rkl', steps: 5, mcSamples: 3 },
            ).dataSync(),
          );
        const a = run(model);
        const b = run(plain);
        const gap = relGap(a, b);
        assert.ok(gap < 1e-4, `x~ differs by ${gap}`);
        assert.ok(relGap(a, xb) > 1e-3, 'the attack moved x');
      });
    }

    test('groundTruthMetrics gives the same figures', async () => {
      // Any Gaussian serves as the "true" posterior here: mean from x, a fixed covariance.
      const truth = (xo: Float32Array) => ({
        mean: Array.from({ length: c.D }, (_, i) => 0.3 * (xo[i % c.C] ?? 0)),
        cov: Array.from({ length: c.D }, (_, i) =>
          Array.from({ length: c.D }, (_, j) => (i === j ? 0.8 : 0.1)),
        ),
      });
      const opts = { samples: 40, batch: 4 };
      const a = await groundTruthMetrics(model, truth, xb, B, createRng(21), opts);
      const b = await groundTruthMetrics(plain, truth, xb, B, createRng(21), opts);
      assert.ok(relGap(a.perX.klQP, b.perX.klQP) < 1e-3, `KL(q||p) ${a.klQP} vs ${b.klQP}`);
      assert.ok(relGap(a.perX.klPQ, b.perX.klPQ) < 1e-3, `KL(p||q) ${a.klPQ} vs ${b.klPQ}`);
      // A draw near log q = log p may land on the other side after float rounding.
      assert.ok(Math.abs(a.c2st - b.c2st) <= 0.01, `C2ST ${a.c2st} vs ${b.c2st}`);
    });

    test('evaluateRobustness gives the same records', async () => {
      const test = { theta: theta.subarray(0, 12 * c.D), x: x.subarray(0, 12 * c.C), n: 12 };
      const spec = {
        attacks: ['l2pgd', 'linfpgd'] as ('l2pgd' | 'linfpgd')[],
        divergences: ['rkl', 'fkl'] as ('rkl' | 'fkl')[],
        eps: [0.5],
        steps: 4,
        evalSamples: 64,
        coverageSamples: 100,
        attackBatchSize: 5,
      };
      const a = await evaluateRobustness(model, test, spec, createRng(13));
      const b = await evaluateRobustness(plain, test, spec, createRng(13));
      assert.equal(a.length, 4);
      a.forEach((r, i) => {
        const o = b[i]!;
        assert.deepEqual([r.attack, r.objective, r.eps], [o.attack, o.objective, o.eps]);
        assert.ok(
          relGap([r.kl.mean, r.kl.median], [o.kl.mean, o.kl.median]) < 1e-3,
          `kl ${r.kl.mean} vs ${o.kl.mean}`,
        );
        assert.ok(
          Math.abs(r.nll.attacked - o.nll.attacked) < 1e-3 * Math.max(1, Math.abs(o.nll.attacked)),
        );
        assert.ok(
          Math.abs(r.coverageAbsArea - o.coverageAbsArea) <= 0.02,
          `coverage ${r.coverageAbsArea} vs ${o.coverageAbsArea}`,
        );
      });
    });

    test('KL under attack, coverage ranks and NLL', async () => {
      const xAdv = Float32Array.from(xb, (v, i) => v + 0.3 * Math.cos(i));
      for (const div of ['rkl', 'fkl'] as const) {
        const a = await klUnderAttack(model, div, xb, xAdv, createRng(4), { samples: 64 });
        const b = await klUnderAttack(plain, div, xb, xAdv, createRng(4), { samples: 64 });
        assert.ok(relGap(a, b) < 1e-3, `${div}: ${a} vs ${b}`);
      }
      const ra = await coverageRanks(model, xb, tb, createRng(6), { samples: 200 });
      const rb = await coverageRanks(plain, xb, tb, createRng(6), { samples: 200 });
      // Ties between a sample's and theta_true's log-density can fall either way in float32.
      ra.forEach((r, i) => assert.ok(Math.abs(r - rb[i]!) <= 1, `rank ${r} vs ${rb[i]}`));
      const na = await nllPerPair(model, xb, tb);
      const nb = await nllPerPair(plain, xb, tb);
      assert.ok(relGap(na, nb) < 1e-5);
    });
  });
}
