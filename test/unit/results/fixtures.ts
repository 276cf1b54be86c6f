// A synthetic sweep's results (trials, summaries, evaluations) with deterministic made-up numbers,
// shared by the results unit tests and the store integration test.
import { evaluationId, type TrialSummary } from '../../../results/documents.js';
import type { EvaluationInput, TrialInput } from '../../../results/store.js';
import { SUMMARY_QUANTILES } from '../../../sbi/metrics/summary.js';

/** Park-Miller: enough randomness for made-up numbers, reproducible everywhere. */
export function lcg(seed: number): () => number {
  let s = seed % 2147483647 || 1;
  return () => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
}

export const LEVELS = [0, 0.25, 0.5, 0.75, 1];

export function klSummaryFrom(values: number[]): EvaluationInput['kl'] {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const q = (p: number) => {
    const pos = p * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
  };
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(sorted.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  return {
    n,
    mean,
    median: q(0.5),
    std,
    min: sorted[0]!,
    max: sorted[n - 1]!,
    guarded: 0,
    ...(Object.fromEntries(SUMMARY_QUANTILES.map(([p, k]) => [k, q(p)])) as Record<
      (typeof SUMMARY_QUANTILES)[number][1],
      number
    >),
  };
}

export function evaluation(
  trialId: string,
  attack: string,
  objective: 'rkl' | 'fkl',
  eps: number,
  rand: () => number,
): EvaluationInput {
  const kls = Array.from({ length: 20 }, () => eps * (0.2 + rand()) * (1 + rand()));
  const clean = LEVELS.map((a, i) =>
    i === 0 ? 0 : i === LEVELS.length - 1 ? 1 : a + 0.1 * (rand() - 0.5),
  );
  const attacked = LEVELS.map((a, i) =>
    i === 0 ? 0 : i === LEVELS.length - 1 ? 1 : a * (1 - 0.2 * rand()),
  );
  return {
    _id: evaluationId(trialId, attack, objective, eps),
    trialId,
    attack,
    objective,
    eps,
    epsAbs: eps * 0.7,
    epsScale: 0.7,
    nTest: kls.length,
    kl: klSummaryFrom(kls),
    nllClean: 1 + rand(),
    nllAttacked: 2 + eps * rand(),
    coverage: { levels: [...LEVELS], clean, attacked },
    coverageAbsArea: { clean: 0.05 * rand(), attacked: 0.1 + 0.1 * rand() },
    seconds: 1 + rand(),
  };
}

/** Made-up ground-truth metrics of a gaussian_linear trial of the synthetic sweep. */
export function syntheticGroundTruth(beta: number, seed: number) {
  return {
    c2st: 0.6 + 0.1 * beta + 0.01 * seed,
    klQP: 0.2 + beta + 0.05 * seed,
    klPQ: 0.3 + 2 * beta + 0.05 * seed,
    samples: 100,
  };
}

export interface SyntheticSweep {
  sweepId: string;
  trials: TrialInput[];
  summaries: Map<string, TrialSummary>;
  evaluations: EvaluationInput[];
}

export const SWEEP_EPS = [0.5, 1, 2];
export const SWEEP_ATTACKS: [string, 'rkl' | 'fkl'][] = [
  ['l2pgd', 'rkl'],
  ['linfpgd', 'fkl'],
];

/** Two tasks x (none | fim at two betas) x two seeds, every trial evaluated at every attack x eps. */
export function syntheticSweep(sweepId: string, seed = 7): SyntheticSweep {
  const rand = lcg(seed);
  const trials: TrialInput[] = [];
  const summaries = new Map<string, TrialSummary>();
  const evaluations: EvaluationInput[] = [];
  let index = 0;
  for (const task of ['gaussian_linear', 'two_moons']) {
    for (const [defense, beta] of [
      ['none', 0],
      ['fim', 0.1],
      ['fim', 1],
    ] as const) {
      for (const s of [0, 1]) {
        const id = `${sweepId}:${task}:${defense}:${beta}:${s}`;
        trials.push({
          _id: id,
          sweepId,
          index: index++,
          config: { task, estimator: 'maf', defense, beta, budget: 1000, seed: s },
          codeVersion: 'test',
        });
        summaries.set(id, {
          testNll: 1 + beta + rand(),
          valLoss: 1 + rand(),
          epochs: 3,
          trainSeconds: 2 * rand(),
          droppedSims: 0,
        });
        // gaussian_linear has an analytic posterior: every evaluation of a trial carries the same
        // ground-truth metrics (made up without drawing, so the other numbers stay as they were).
        const groundTruth = task === 'gaussian_linear' ? syntheticGroundTruth(beta, s) : undefined;
        for (const [attack, objective] of SWEEP_ATTACKS) {
          for (const eps of SWEEP_EPS) {
            const e = evaluation(id, attack, objective, eps, rand);
            evaluations.push(groundTruth ? { ...e, groundTruth: { ...groundTruth } } : e);
          }
        }
      }
    }
  }
  return { sweepId, trials, summaries, evaluations };
}
