// Result documents with made-up numbers, valid for the ResultStore's schemas: what the orchestration
// and Mongo-write benches persist in place of real evaluations.
import { randomBytes } from 'node:crypto';
import { evaluationId } from '../results/documents.js';
import type { EvaluationInput } from '../results/store.js';
import { summarize } from '../sbi/metrics/summary.js';
import type { SweepSpec } from '../sweeps/types.js';
import { validateSweepSpec } from '../sweeps/validate.js';

const KL = { ...summarize([0.1, 0.2, 0.3]), guarded: 0 };
const LEVELS = [0.1, 0.5, 0.9];

/** One evaluation document of (trial, attack, objective, eps), as the evaluate activity writes. */
export function syntheticEvaluation(
  trialId: string,
  attack: string,
  objective: string,
  eps: number,
  nTest = 10,
): EvaluationInput {
  return {
    _id: evaluationId(trialId, attack, objective, eps),
    trialId,
    attack,
    objective,
    eps,
    epsAbs: eps,
    epsScale: 1,
    nTest,
    kl: { ...KL },
    nllClean: 1,
    nllAttacked: 2,
    coverage: { levels: [...LEVELS], clean: [...LEVELS], attacked: [...LEVELS] },
    coverageAbsArea: { clean: 0, attacked: 0 },
    seconds: 0,
  };
}

/** A spec of about `trials` trials (seeds x budgets), each with one attack x objective x eps. */
export function trivialSpec(trials: number, window: number, pack = 1): SweepSpec {
  const nBudgets = Math.ceil(trials / 1000);
  const nSeeds = Math.ceil(trials / nBudgets);
  // A fresh seed offset per run keeps the IDs new even on a reused database.
  const base = Number.parseInt(randomBytes(2).toString('hex'), 16) * 1000;
  return validateSweepSpec({
    name: 'orchestration-bench',
    tasks: ['gaussian_linear'],
    estimators: [{ kind: 'maf' }],
    defenses: [{ name: 'none' }],
    seeds: Array.from({ length: nSeeds }, (_, i) => base + i),
    budgets: Array.from({ length: nBudgets }, (_, i) => 100 + i),
    training: { maxEpochs: 1, minEpochs: 1 },
    evaluation: {
      attacks: ['noise'],
      objectives: ['rkl'],
      eps: [1],
      tradeoffEps: 1,
      nTest: 10,
    },
    concurrency: window,
    pack,
  });
}
