// Robustness evaluation of one trained model: attack a test set at every (attack, divergence, eps)
// and score the result (KL under attack, expected coverage on attacked x against the clean theta,
// NLL), plus the clean coverage and NLL once. The CLI's `evaluate` and the score activity call this.
import { attackInBatches, type AttackName } from './attacks/index.js';
import { absoluteEps, clipBoxOf, meanPerSampleStd } from './attacks/eps.js';
import type { Divergence } from './attacks/objectives.js';
import { COVERAGE_LEVELS, COVERAGE_SAMPLES, expectedCoverage } from './metrics/coverage.js';
import { meanNll, nllPerPair } from './metrics/nll.js';
import {
  EVAL_MC_SAMPLES,
  klUnderAttack,
  summarizeKl,
  type KlSummary,
} from './metrics/robustness.js';
import { summarize, type Summary } from './metrics/summary.js';
import type { DensityEstimator, RandomStream } from './types.js';

export interface TestSet {
  theta: Float32Array;
  x: Float32Array;
  n: number;
}

export interface EvaluationSpec {
  attacks: AttackName[];
  divergences: Divergence[];
  /** Budgets relative to the test set's mean per-sample std (paper.md 3.2). */
  eps: number[];
  /** PGD iterations; default per attack (200 L2, 120 Linf). */
  steps?: number;
  /** Monte Carlo samples per PGD step; default 5. */
  mcSamples?: number;
  /** Samples per x for the reported KL; default 256. */
  evalSamples?: number;
  /** Samples per x for expected coverage; default 2000. */
  coverageSamples?: number;
  coverageLevels?: number;
  /** Rows attacked at once; default 1000 as in RABI. */
  attackBatchSize?: number;
}

export interface EvaluationRecord {
  attack: AttackName;
  /** The KL direction scored (and maximized, except by nll and noise): rkl = KL(q~ || q), fkl = KL(q || q~). */
  objective: Divergence;
  eps: number;
  epsAbs: number;
  /** mean_n std_d(x_n) of the test xs: epsAbs = eps * epsScale. */
  epsScale: number;
  nTest: number;
  kl: KlSummary;
  /** Expected coverage on the attacked x against the clean theta. */
  coverageAbsArea: number;
  coverage: number[];
  cleanCoverageAbsArea: number;
  cleanCoverage: number[];
  alphas: number[];
  /** Mean test NLL, -log q(theta_true | x), on the clean and on the attacked x. */
  nll: { clean: number; attacked: number };
  /**
   * The per-x NLL on attacked x summarized like the KL: the metric of the targeted nll attack
   * (RABI NLLRobMetric), whose mean a few exploded x dominate.
   */
  nllAttacked: Summary;
  seconds: number;
}

/** Stable fork key for one record, so a record does not depend on which others were requested. */
function recordKey(attack: string, divergence: string, eps: number): string {
  return `${attack}/${divergence}/${eps}`;
}

export async function evaluateRobustness(
  est: DensityEstimator,
  test: TestSet,
  spec: EvaluationSpec,
  rng: RandomStream,
  onRecord?: (r: EvaluationRecord) => void,
): Promise<EvaluationRecord[]> {
  if (test.n < 1) throw new Error('The test set is empty.');
  const epsScale = meanPerSampleStd(test.x, test.n, est.xDim);
  const box = clipBoxOf(test.x);
  const coverageOpts = {
    samples: spec.coverageSamples ?? COVERAGE_SAMPLES,
    levels: spec.coverageLevels ?? COVERAGE_LEVELS,
  };
  const clean = await expectedCoverage(
    est,
    test.x,
    test.theta,
    rng.fork('clean-coverage'),
    coverageOpts,
  );
  const cleanNll = await meanNll(est, test.x, test.theta);

  const records: EvaluationRecord[] = [];
  for (const attack of spec.attacks) {
    for (const divergence of spec.divergences) {
      for (const eps of spec.eps) {
        const t0 = performance.now();
        const r = rng.fork(recordKey(attack, divergence, eps));
        const epsAbs = absoluteEps(eps, epsScale);
        const xAdv = await attackInBatches(
          attack,
          { estimator: est, epsAbs, box, rng: r.fork('attack') },
          test.x,
          test.theta,
          {
            divergence,
            ...(spec.steps !== undefined ? { steps: spec.steps } : {}),
            ...(spec.mcSamples !== undefined ? { mcSamples: spec.mcSamples } : {}),
          },
          spec.attackBatchSize ?? 1000,
        );
        const kl = await klUnderAttack(est, divergence, test.x, xAdv, r.fork('kl'), {
          samples: spec.evalSamples ?? EVAL_MC_SAMPLES,
        });
        const cov = await expectedCoverage(est, xAdv, test.theta, r.fork('coverage'), coverageOpts);
        const nllAdv = summarize(await nllPerPair(est, xAdv, test.theta));
        const record: EvaluationRecord = {
          attack,
          objective: divergence,
          eps,
          epsAbs,
          epsScale,
          nTest: test.n,
          kl: summarizeKl(kl),
          coverageAbsArea: cov.absArea,
          coverage: cov.coverage,
          cleanCoverageAbsArea: clean.absArea,
          cleanCoverage: clean.coverage,
          alphas: clean.alphas,
          nll: { clean: cleanNll, attacked: nllAdv.mean },
          nllAttacked: nllAdv,
          seconds: (performance.now() - t0) / 1000,
        };
        records.push(record);
        onRecord?.(record);
      }
    }
  }
  return records;
}
