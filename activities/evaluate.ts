// The evaluate activity: one attack at one epsilon (every objective of the trial) against the
// trained model on the trial's test set. Its records go straight to the evaluations collection
// (idempotent upserts keyed by evalId); the workflow gets a few numbers back.
//
// A test set of several chunks of points (sbi/evaluation.ts) can be evaluated in shards: with
// `shard` the activity evaluates that chunk alone and keeps its per-point values as an artifact
// (so a shard lost with its worker is redone alone); without it, it pools the chunks kept, computes
// any missing ones itself, and stores the records over all points.
import { Context } from '@temporalio/activity';
import { evaluationFromRecord } from '../results/documents.js';
import type { AttackName } from '../sbi/attacks/index.js';
import { computeDiagnostics, type Diagnostics } from '../sbi/diagnostics.js';
import {
  evaluateChunk,
  evaluationChunkCount,
  summarizeChunks,
  type ChunkPoints,
  type CleanPoints,
  type EvaluationRecord,
  type EvaluationSpec,
  type TestSet,
} from '../sbi/evaluation.js';
import { finiteOrNull } from '../sbi/json-numbers.js';
import { createRng } from '../sbi/rng.js';
import { getTask } from '../sbi/tasks/index.js';
import type { DensityEstimator } from '../sbi/types.js';
import type { Objective } from '../sweeps/names.js';
import type { TrialConfig } from '../sweeps/types.js';
import { artifactNames, decodeChunkPoints, encodeChunkPoints } from './artifacts.js';
import type { ActivityDeps } from './deps.js';
import { classify } from './failures.js';
import { keepAlive } from './keep-alive.js';
import { loadDataset } from './simulate.js';
import { loadModelArtifact } from './train.js';

export interface EvaluateInput {
  trial: Pick<TrialConfig, 'trialId' | 'testSetId' | 'task' | 'seed' | 'evaluation'>;
  modelArtifact: string;
  attack: AttackName;
  eps: number;
  /** Evaluate this chunk of the test points only and keep its per-point values. */
  shard?: number;
}

export interface EvaluateRecordSummary {
  objective: Objective;
  eps: number;
  klMean: number | null;
  nllClean: number | null;
  nllAttacked: number | null;
}

export interface EvaluateResult {
  /** The records (none for a shard). */
  records: EvaluateRecordSummary[];
  /** true when everything asked was already stored (an earlier attempt finished) and nothing was computed. */
  cached: boolean;
}

function specOf(input: EvaluateInput): EvaluationSpec {
  const ev = input.trial.evaluation;
  return {
    attacks: [input.attack],
    divergences: ev.objectives,
    eps: [input.eps],
    ...(ev.steps !== undefined ? { steps: ev.steps } : {}),
    mcSamples: ev.mcSamples,
    evalSamples: ev.evalSamples,
    coverageSamples: ev.coverageSamples,
    coverageLevels: ev.coverageLevels,
    attackBatchSize: ev.attackBatchSize,
  };
}

/**
 * The spec's accuracy diagnostics (evaluation.metrics), once per trial: computed by the evaluation
 * of its first (attack, eps) and stored on those records; undefined for the others.
 */
function diagnosticsOf(
  input: EvaluateInput,
  est: DensityEstimator,
  test: TestSet,
  records: readonly EvaluationRecord[],
): Diagnostics | undefined {
  const ev = input.trial.evaluation;
  const metrics = ev.metrics ?? [];
  if (metrics.length === 0 || input.attack !== ev.attacks[0] || input.eps !== ev.eps[0])
    return undefined;
  // Where the test set has an analytic posterior, the Bayes-optimal C2ST is computed already.
  const g = records.find((r) => r.groundTruth)?.groundTruth;
  try {
    return computeDiagnostics(
      est,
      getTask(input.trial.task),
      test,
      {
        metrics,
        ...(ev.sbc ? { sbc: ev.sbc } : {}),
        ...(ev.c2st ? { c2st: ev.c2st } : {}),
      },
      createRng(input.trial.seed).fork('evaluate/diagnostics'),
      g ? { value: g.c2st, observations: test.n, samples: g.samples } : undefined,
    );
  } catch (err) {
    throw classify(err);
  }
}

/**
 * Chunk c's clean values from an evaluation of the same trial at another (attack, eps), if one kept
 * that chunk: the clean coverage, NLL and ground truth cost as much as a record's attacked ones and
 * do not depend on the attack, so each chunk computes them once instead of once per (attack, eps).
 */
async function cleanPartOf(
  deps: ActivityDeps,
  input: EvaluateInput,
  c: number,
): Promise<CleanPoints | undefined> {
  const ev = input.trial.evaluation;
  for (const attack of ev.attacks)
    for (const eps of ev.eps) {
      if (attack === input.attack && eps === input.eps) continue;
      const name = artifactNames.evaluationChunk(input.trial.trialId, attack, eps, c);
      const bytes = await deps.artifacts.get(name);
      if (bytes) return decodeChunkPoints(bytes, name);
    }
  return undefined;
}

export async function evaluate(deps: ActivityDeps, input: EvaluateInput): Promise<EvaluateResult> {
  const { trial, attack, eps } = input;
  const objectives = trial.evaluation.objectives;
  const stored = (await deps.store.listEvaluations({ trialId: trial.trialId })).filter(
    (e) => e.attack === attack && e.eps === eps && (objectives as string[]).includes(e.objective),
  );
  if (stored.length === objectives.length) {
    return {
      cached: true,
      records:
        input.shard !== undefined
          ? []
          : stored.map((e) => ({
              objective: e.objective as Objective,
              eps: e.eps,
              klMean: finiteOrNull(e.kl.mean),
              nllClean: finiteOrNull(e.nllClean),
              nllAttacked: finiteOrNull(e.nllAttacked),
            })),
    };
  }
  const chunkName = (c: number) => artifactNames.evaluationChunk(trial.trialId, attack, eps, c);
  if (input.shard !== undefined && (await deps.artifacts.info(chunkName(input.shard))))
    return { records: [], cached: true };

  const loaded = await loadDataset(deps, {
    purpose: 'test',
    task: trial.task,
    n: trial.evaluation.nTest,
    seed: trial.seed,
    id: trial.testSetId,
  });
  // A task with an analytic posterior (gaussian_linear) is also scored against it.
  const task = getTask(trial.task);
  const test = task.analyticPosterior
    ? { ...loaded, analyticPosterior: (x: Float32Array) => task.analyticPosterior!(x) }
    : loaded;
  const spec = specOf(input);
  const count = evaluationChunkCount(test.n, spec);
  // A test set that lost rows to failed simulations may have fewer chunks than nTest promised.
  if (input.shard !== undefined && input.shard >= count) return { records: [], cached: true };
  const saved = await loadModelArtifact(deps, input.modelArtifact);
  const ctx = Context.current();
  // The same streams as `robustsbi evaluate --seed`: each record forks its own key, so one
  // (attack, eps) at a time gives the records one call over the whole grid would.
  const rng = createRng(trial.seed).fork('evaluate/attacks');
  const stopKeepAlive = keepAlive(ctx, () => ({ attack, eps, shard: input.shard }));
  try {
    ctx.heartbeat({ attack, eps, shard: input.shard });
    /**
     * Chunk c: kept by a shard activity or an earlier attempt, or computed here and kept (a test set
     * of one chunk too, so `robustsbi export --what points` finds every evaluation's points).
     */
    const chunk = async (c: number): Promise<ChunkPoints> => {
      const name = chunkName(c);
      const bytes = await deps.artifacts.get(name);
      if (bytes) return decodeChunkPoints(bytes, name);
      let points;
      try {
        points = await evaluateChunk(
          saved.estimator,
          test,
          spec,
          rng,
          c,
          (r) => ctx.heartbeat({ attack, eps, objective: r.objective, chunk: c }),
          await cleanPartOf(deps, input, c),
        );
      } catch (err) {
        throw classify(err);
      }
      await deps.artifacts.put(name, encodeChunkPoints(points), {
        kind: 'evaluation-chunk',
        trialId: trial.trialId,
        attack,
        eps,
        chunk: c,
      });
      return points;
    };
    if (input.shard !== undefined) {
      await chunk(input.shard);
      return { records: [], cached: false };
    }
    const chunks: ChunkPoints[] = [];
    for (let c = 0; c < count; c++) chunks.push(await chunk(c));
    const records = summarizeChunks(saved.estimator, test, spec, chunks);
    const diagnostics = diagnosticsOf(input, saved.estimator, test, records);
    await deps.store.putEvaluations(
      records.map((r) => evaluationFromRecord(trial.trialId, r, diagnostics)),
    );
    return {
      cached: false,
      records: records.map((r) => ({
        objective: r.objective,
        eps: r.eps,
        klMean: finiteOrNull(r.kl.mean),
        nllClean: finiteOrNull(r.nll.clean),
        nllAttacked: finiteOrNull(r.nll.attacked),
      })),
    };
  } finally {
    stopKeepAlive();
    saved.estimator.dispose();
  }
}
