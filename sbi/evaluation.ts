// Robustness evaluation of one trained model: attack a test set at every (attack, divergence, eps)
// and score the result (KL under attack, expected coverage on attacked x against the clean theta,
// NLL), plus the clean coverage and NLL once. The CLI's `evaluate` and the evaluate activity call
// this.
//
// The test points are taken in chunks of attackBatchSize rows (RABI attacks 1,000 at once), each
// with random streams of its own: chunk 0 those of the whole evaluation, as every evaluation of one
// chunk always had, chunk c > 0 their forks `chunk/c`. Each chunk yields per-point values (the KL,
// the attacked NLL and the coverage rank of every x), and a record summarizes the points of all
// chunks. So chunks can be evaluated apart (one activity each, on any worker) and pooled into the
// records one call computes.
import { attackInBatches, type AttackName } from './attacks/index.js';
import { absoluteEps, clipBoxOf, meanPerSampleStd } from './attacks/eps.js';
import type { Discrepancy } from './attacks/objectives.js';
import {
  COVERAGE_LEVELS,
  COVERAGE_SAMPLES,
  coverageFromRanks,
  coverageRanks,
} from './metrics/coverage.js';
import { groundTruthMetrics, GROUND_TRUTH_SAMPLES } from './metrics/ground-truth.js';
import { nllPerPair } from './metrics/nll.js';
import {
  EVAL_MC_SAMPLES,
  discrepancyUnderAttack,
  summarizeKl,
  type KlSummary,
} from './metrics/robustness.js';
import { summarize, type Summary } from './metrics/summary.js';
import type { DensityEstimator, GaussianPosterior, RandomStream } from './types.js';

export interface TestSet {
  theta: Float32Array;
  x: Float32Array;
  n: number;
  /**
   * The task's analytic posterior (gaussian_linear), when it has one: then every chunk also scores
   * q against it (sbi/metrics/ground-truth.ts) and the records carry `groundTruth`.
   */
  analyticPosterior?: (x: Float32Array) => GaussianPosterior;
}

/**
 * The ground-truth metrics of the paper over the clean test x (means over all points): RABI's
 * Bayes-optimal C2ST and KL(q||p), KL(p||q) against the analytic posterior, `samples` draws per x.
 */
export interface GroundTruthSummary {
  c2st: number;
  klQP: number;
  klPQ: number;
  samples: number;
}

/** The per-point ground-truth values of one chunk. */
export interface GroundTruthPoints {
  c2st: Float64Array;
  klQP: Float64Array;
  klPQ: Float64Array;
  samples: number;
}

export interface EvaluationSpec {
  attacks: AttackName[];
  /** KL directions and/or 'mmd' (MMD^2 with RABI's RBF kernel): maximized and scored. */
  divergences: Discrepancy[];
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
  /**
   * The discrepancy scored (and maximized, except by nll and noise): rkl = KL(q~ || q),
   * fkl = KL(q || q~), mmd = MMD^2(q~, q).
   */
  objective: Discrepancy;
  eps: number;
  epsAbs: number;
  /** mean_n std_d(x_n) of the test xs: epsAbs = eps * epsScale. */
  epsScale: number;
  nTest: number;
  /** The per-x values of the objective summarized: KL, or MMD^2 for 'mmd' (the field keeps its name). */
  kl: KlSummary;
  /** Expected coverage on the attacked x against the clean theta. */
  coverageAbsArea: number;
  coverage: number[];
  cleanCoverageAbsArea: number;
  cleanCoverage: number[];
  alphas: number[];
  /** Mean test NLL, -log q(theta_true | x), on the clean and on the attacked x. */
  nll: { clean: number; attacked: number };
  /** Against the analytic posterior, on the clean x (tasks that have one). */
  groundTruth?: GroundTruthSummary;
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

/** Rows attacked at once and evaluated as one chunk. */
export const DEFAULT_ATTACK_BATCH = 1000;

/** How many chunks the evaluation of n test points has. */
export function evaluationChunkCount(
  n: number,
  spec: Pick<EvaluationSpec, 'attackBatchSize'>,
): number {
  return Math.max(1, Math.ceil(n / (spec.attackBatchSize ?? DEFAULT_ATTACK_BATCH)));
}

/** The stream of one chunk: chunk 0 the evaluation's own, later ones its forks. */
const chunkStream = (r: RandomStream, chunk: number): RandomStream =>
  chunk === 0 ? r : r.fork(`chunk/${chunk}`);

/** The per-point values of one record over one chunk. */
export interface RecordPoints {
  attack: AttackName;
  objective: Discrepancy;
  eps: number;
  /** KL (or MMD^2) between q(.|x) and q(.|x~) per point (unguarded). */
  kl: Float64Array;
  /** -log q(theta_true | x~) per point. */
  nllAttacked: Float64Array;
  /** coverageRanks of q(.|x~) against the clean theta per point. */
  coverageRank: Int32Array;
  seconds: number;
}

/** What one chunk of the test points yields. */
export interface ChunkPoints {
  chunk: number;
  /** The chunk's first test point and the one past its last. */
  from: number;
  to: number;
  /** -log q(theta_true | x) per point. */
  nllClean: Float64Array;
  cleanCoverageRank: Int32Array;
  /** Against the analytic posterior per point (test sets that have one). */
  groundTruth?: GroundTruthPoints;
  records: RecordPoints[];
}

/** The test set's scale and clip box: every chunk attacks within those of the whole set. */
function scaleOf(est: DensityEstimator, test: TestSet) {
  return { epsScale: meanPerSampleStd(test.x, test.n, est.xDim), box: clipBoxOf(test.x) };
}

function coverageOptions(spec: EvaluationSpec) {
  return {
    samples: spec.coverageSamples ?? COVERAGE_SAMPLES,
    levels: spec.coverageLevels ?? COVERAGE_LEVELS,
  };
}

/**
 * What a chunk computes on the clean x whatever the attack: one evaluation of the chunk (any attack
 * and eps of the same trial) can hand it to the others. Its streams depend on the chunk alone.
 */
export type CleanPoints = Pick<
  ChunkPoints,
  'from' | 'to' | 'nllClean' | 'cleanCoverageRank' | 'groundTruth'
>;

/**
 * Evaluates the test points of chunk `chunk` at every (attack, divergence, eps) of the spec. `clean`,
 * the same chunk's clean values from another evaluation of the same model, test set and coverage
 * settings, is taken instead of computed (the values are those computing would give).
 */
export async function evaluateChunk(
  est: DensityEstimator,
  test: TestSet,
  spec: EvaluationSpec,
  rng: RandomStream,
  chunk: number,
  onRecord?: (r: RecordPoints) => void,
  clean?: CleanPoints,
): Promise<ChunkPoints> {
  if (test.n < 1) throw new Error('The test set is empty.');
  const count = evaluationChunkCount(test.n, spec);
  if (!Number.isInteger(chunk) || chunk < 0 || chunk >= count)
    throw new RangeError(
      `An evaluation of ${test.n} test points has chunks 0 to ${count - 1}, not ${chunk}.`,
    );
  const size = spec.attackBatchSize ?? DEFAULT_ATTACK_BATCH;
  const from = chunk * size;
  const to = Math.min(test.n, from + size);
  const x = test.x.subarray(from * est.xDim, to * est.xDim);
  const theta = test.theta.subarray(from * est.thetaDim, to * est.thetaDim);
  const { epsScale, box } = scaleOf(est, test);
  const cov = coverageOptions(spec);
  const reuse = clean !== undefined && clean.from === from && clean.to === to;
  const cleanCoverageRank = reuse
    ? clean.cleanCoverageRank
    : await coverageRanks(est, x, theta, chunkStream(rng.fork('clean-coverage'), chunk), cov);
  const nllClean = reuse ? clean.nllClean : await nllPerPair(est, x, theta);
  let groundTruth: GroundTruthPoints | undefined = reuse ? clean.groundTruth : undefined;
  if (test.analyticPosterior && !groundTruth) {
    // A stream of its own: the other values of the chunk stay what they were without it.
    const g = await groundTruthMetrics(
      est,
      test.analyticPosterior,
      x,
      to - from,
      chunkStream(rng.fork('ground-truth'), chunk),
    );
    groundTruth = { ...g.perX, samples: GROUND_TRUTH_SAMPLES };
  }

  const records: RecordPoints[] = [];
  for (const attack of spec.attacks) {
    for (const divergence of spec.divergences) {
      for (const eps of spec.eps) {
        const t0 = performance.now();
        const r = chunkStream(rng.fork(recordKey(attack, divergence, eps)), chunk);
        const xAdv = await attackInBatches(
          attack,
          { estimator: est, epsAbs: absoluteEps(eps, epsScale), box, rng: r.fork('attack') },
          x,
          theta,
          {
            divergence,
            ...(spec.steps !== undefined ? { steps: spec.steps } : {}),
            ...(spec.mcSamples !== undefined ? { mcSamples: spec.mcSamples } : {}),
          },
          size,
        );
        const kl = await discrepancyUnderAttack(est, divergence, x, xAdv, r.fork('kl'), {
          samples: spec.evalSamples ?? EVAL_MC_SAMPLES,
        });
        const coverageRank = await coverageRanks(est, xAdv, theta, r.fork('coverage'), cov);
        const nllAttacked = await nllPerPair(est, xAdv, theta);
        const rec: RecordPoints = {
          attack,
          objective: divergence,
          eps,
          kl,
          nllAttacked,
          coverageRank,
          seconds: (performance.now() - t0) / 1000,
        };
        records.push(rec);
        onRecord?.(rec);
      }
    }
  }
  return {
    chunk,
    from,
    to,
    nllClean,
    cleanCoverageRank,
    ...(groundTruth ? { groundTruth } : {}),
    records,
  };
}

function concat<A extends Float64Array | Int32Array>(parts: A[], make: (n: number) => A): A {
  const out = make(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function mean(values: Float64Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/**
 * The ground-truth metrics over the points of all chunks (each chunk once): means over all points,
 * so a chunk weighs by its size. Undefined unless every chunk has them (a chunk kept before they
 * were computed has none).
 */
export function poolGroundTruth(
  chunks: readonly Pick<ChunkPoints, 'chunk' | 'groundTruth'>[],
): GroundTruthSummary | undefined {
  if (chunks.length === 0 || chunks.some((c) => !c.groundTruth)) return undefined;
  const ordered = [...chunks].sort((a, b) => a.chunk - b.chunk).map((c) => c.groundTruth!);
  const samples = ordered[0]!.samples;
  if (ordered.some((g) => g.samples !== samples))
    throw new Error('The chunks scored the ground truth with different numbers of samples.');
  const pooled = (key: 'c2st' | 'klQP' | 'klPQ') =>
    mean(
      concat(
        ordered.map((g) => g[key]),
        (n) => new Float64Array(n),
      ),
    );
  return { c2st: pooled('c2st'), klQP: pooled('klQP'), klPQ: pooled('klPQ'), samples };
}

/**
 * The records of the whole test set from the values of every chunk (in any order; each chunk once):
 * summaries and quantiles over all points, never averages of per-chunk figures.
 */
export function summarizeChunks(
  est: DensityEstimator,
  test: TestSet,
  spec: EvaluationSpec,
  chunks: readonly ChunkPoints[],
): EvaluationRecord[] {
  const count = evaluationChunkCount(test.n, spec);
  const ordered = [...chunks].sort((a, b) => a.chunk - b.chunk);
  if (ordered.length !== count || ordered.some((c, i) => c.chunk !== i))
    throw new Error(
      `The evaluation needs chunks 0 to ${count - 1}; got ${ordered.map((c) => c.chunk).join(', ')}.`,
    );
  const { epsScale } = scaleOf(est, test);
  const { samples, levels } = coverageOptions(spec);
  const clean = coverageFromRanks(
    concat(
      ordered.map((c) => c.cleanCoverageRank),
      (n) => new Int32Array(n),
    ),
    samples,
    levels,
  );
  const cleanNll = mean(
    concat(
      ordered.map((c) => c.nllClean),
      (n) => new Float64Array(n),
    ),
  );
  const groundTruth = poolGroundTruth(ordered);
  return ordered[0]!.records.map((first, k) => {
    const parts = ordered.map((c) => {
      const r = c.records[k]!;
      if (r.attack !== first.attack || r.objective !== first.objective || r.eps !== first.eps)
        throw new Error(`Chunk ${c.chunk} holds other records than chunk 0.`);
      return r;
    });
    const kl = concat(
      parts.map((p) => p.kl),
      (n) => new Float64Array(n),
    );
    const nllAdv = summarize(
      concat(
        parts.map((p) => p.nllAttacked),
        (n) => new Float64Array(n),
      ),
    );
    const cov = coverageFromRanks(
      concat(
        parts.map((p) => p.coverageRank),
        (n) => new Int32Array(n),
      ),
      samples,
      levels,
    );
    return {
      attack: first.attack,
      objective: first.objective,
      eps: first.eps,
      epsAbs: absoluteEps(first.eps, epsScale),
      epsScale,
      nTest: test.n,
      kl: summarizeKl(kl),
      coverageAbsArea: cov.absArea,
      coverage: cov.coverage,
      cleanCoverageAbsArea: clean.absArea,
      cleanCoverage: clean.coverage,
      alphas: clean.alphas,
      nll: { clean: cleanNll, attacked: nllAdv.mean },
      ...(groundTruth ? { groundTruth: { ...groundTruth } } : {}),
      nllAttacked: nllAdv,
      seconds: parts.reduce((s, p) => s + p.seconds, 0),
    };
  });
}

export interface EvaluationHooks {
  /** After each record of each chunk: progress (and a heartbeat) while a long evaluation runs. */
  onChunkRecord?: (chunk: number, chunks: number, r: RecordPoints) => void;
  /** After each final record. */
  onRecord?: (r: EvaluationRecord) => void;
}

/** Every chunk in this process, then the records: what the chunks evaluated apart pool into. */
export async function evaluateRobustness(
  est: DensityEstimator,
  test: TestSet,
  spec: EvaluationSpec,
  rng: RandomStream,
  hooks: EvaluationHooks = {},
): Promise<EvaluationRecord[]> {
  if (test.n < 1) throw new Error('The test set is empty.');
  const count = evaluationChunkCount(test.n, spec);
  const chunks: ChunkPoints[] = [];
  for (let c = 0; c < count; c++)
    chunks.push(
      await evaluateChunk(est, test, spec, rng, c, (r) => hooks.onChunkRecord?.(c, count, r)),
    );
  const records = summarizeChunks(est, test, spec, chunks);
  if (hooks.onRecord) records.forEach(hooks.onRecord);
  return records;
}
