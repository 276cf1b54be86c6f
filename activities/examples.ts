// The examples activity: for each completed trial of a batch, its most damaging test point at the
// spec's (attack, objective, eps) (sbi/adversarial-example.ts) with clean and attacked posteriors
// and predictives, stored in results/examples.ts' collection and its raw samples as an artifact.
// The point is the one with the largest KL in the trial's own evaluation (read from its chunk
// artifacts), so only that point is attacked again; a trial whose chunks are gone attacks them all.
// A trial whose example is stored is skipped, so a retried or resubmitted batch redoes nothing.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { exampleDoc, exampleId, ExampleStore } from '../results/examples.js';
import { adversarialExample, mostDamaged } from '../sbi/adversarial-example.js';
import type { AttackName } from '../sbi/attacks/index.js';
import { evaluationChunkCount } from '../sbi/evaluation.js';
import { toJsonText } from '../sbi/json-numbers.js';
import { createRng } from '../sbi/rng.js';
import { getTask } from '../sbi/tasks/index.js';
import type { Objective } from '../sweeps/names.js';
import type { TrialEvaluation } from '../sweeps/types.js';
import { artifactNames, decodeChunkPoints } from './artifacts.js';
import type { ActivityDeps } from './deps.js';
import { classify } from './failures.js';
import { keepAlive } from './keep-alive.js';
import { loadDataset } from './simulate.js';
import { loadModelArtifact } from './train.js';

export interface ExamplesSettings {
  attack: AttackName;
  objective: Objective;
  eps: number;
  samples: number;
  predictive: number;
}

export interface ExamplesInput {
  trialIds: string[];
  examples: ExamplesSettings;
}

export interface ExamplesResult {
  computed: number;
  /** Stored already. */
  cached: number;
  /** Not completed (failed, cancelled) or without a model: nothing to show. */
  skipped: number;
  /** Failed for good (a non-finite posterior, say): logged, and the other trials go on. */
  failed: number;
}

/** Predictive simulations kept in the document per posterior; the artifact keeps all. */
const PREDICTIVE_IN_DOCUMENT = 5;

export const exampleArtifact = (trialId: string, s: ExamplesSettings) =>
  `examples/${trialId}/${s.attack}/${s.objective}/${s.eps}`;

/** The evaluation's KL per test point at (attack, objective, eps), or undefined if a chunk is gone. */
/** What the examples read of a stored trial's configuration (results/documents.ts writes it). */
interface StoredConfig {
  task: string;
  seed: number;
  testSetId: string;
  evaluation: TrialEvaluation;
}

async function evaluationKl(
  deps: ActivityDeps,
  trialId: string,
  cfg: StoredConfig,
  n: number,
  s: ExamplesSettings,
): Promise<number[] | undefined> {
  const kl = new Array<number>(n).fill(NaN);
  const count = evaluationChunkCount(n, { attackBatchSize: cfg.evaluation.attackBatchSize });
  for (let c = 0; c < count; c++) {
    const name = artifactNames.evaluationChunk(trialId, s.attack, s.eps, c);
    const bytes = await deps.artifacts.get(name);
    if (!bytes) return undefined;
    const points = decodeChunkPoints(bytes, name);
    const r = points.records.find(
      (x) => x.attack === s.attack && x.objective === s.objective && x.eps === s.eps,
    );
    if (!r) return undefined;
    r.kl.forEach((v, i) => (kl[points.from + i] = v));
  }
  return kl;
}

async function oneTrial(
  deps: ActivityDeps,
  trialId: string,
  s: ExamplesSettings,
  store: ExampleStore,
): Promise<'computed' | 'cached' | 'skipped'> {
  if (await store.has(exampleId(trialId, s.attack, s.objective, s.eps))) return 'cached';
  const trial = await deps.store.getTrial(trialId);
  if (!trial || trial.status !== 'completed' || !trial.modelArtifact) return 'skipped';
  const cfg = trial.config as unknown as StoredConfig;
  const test = await loadDataset(deps, {
    purpose: 'test',
    task: cfg.task,
    n: cfg.evaluation.nTest,
    seed: cfg.seed,
    id: cfg.testSetId,
  });
  if (test.n < 1) return 'skipped';
  const klAll = await evaluationKl(deps, trialId, cfg, test.n, s);
  const finite = (klAll ?? []).filter(Number.isFinite);
  const saved = await loadModelArtifact(deps, trial.modelArtifact);
  try {
    const task = (deps.getTask ?? getTask)(cfg.task);
    const ev = cfg.evaluation;
    const ex = await adversarialExample(
      saved.estimator,
      task,
      test,
      {
        attack: s.attack,
        objective: s.objective,
        eps: s.eps,
        ...(ev.steps !== undefined ? { steps: ev.steps } : {}),
        mcSamples: ev.mcSamples,
        klSamples: ev.evalSamples,
        samples: s.samples,
        predictive: s.predictive,
        ...(klAll && finite.length > 0 ? { chosen: { index: mostDamaged(klAll), klAll } } : {}),
      },
      createRng(cfg.seed).fork(`examples/${s.attack}/${s.objective}/${s.eps}`),
    );
    const artifact = exampleArtifact(trialId, s);
    await deps.artifacts.put(artifact, new TextEncoder().encode(toJsonText(ex)), {
      kind: 'adversarial-example',
      trialId,
      attack: s.attack,
      eps: s.eps,
    });
    const mean = finite.length > 0 ? finite.reduce((a, b) => a + b, 0) / finite.length : NaN;
    await store.put(
      exampleDoc(
        ex,
        {
          trialId,
          task: cfg.task,
          paramNames: task.paramNames,
          ...(task.xTraces ? { xTraces: task.xTraces } : {}),
          attack: s.attack,
          objective: s.objective,
          nTest: test.n,
          klMeanEvaluation: mean,
          predictiveKept: PREDICTIVE_IN_DOCUMENT,
          artifact,
        },
        new Date(),
      ),
    );
    deps.logger.info(
      `adversarial example of ${trialId}: test point ${ex.index} of ${test.n}, KL ${ex.kl.toPrecision(4)} at ${s.attack} eps ${s.eps}`,
      { trialId },
    );
    return 'computed';
  } finally {
    saved.estimator.dispose();
  }
}

export async function adversarialExamples(
  deps: ActivityDeps,
  input: ExamplesInput,
): Promise<ExamplesResult> {
  const ctx = Context.current();
  const out: ExamplesResult = { computed: 0, cached: 0, skipped: 0, failed: 0 };
  const store = new ExampleStore(deps.store.db);
  let current = '';
  const stop = keepAlive(ctx, () => ({ trialId: current }));
  try {
    for (const trialId of input.trialIds) {
      current = trialId;
      ctx.heartbeat({ trialId });
      try {
        out[await oneTrial(deps, trialId, input.examples, store)]++;
      } catch (err) {
        const c = classify(err);
        // A figure is not worth failing the sweep over; a transient error is retried.
        if (!(c instanceof ApplicationFailure && c.nonRetryable)) throw c;
        out.failed++;
        deps.logger.warn(`no adversarial example for ${trialId}: ${c.message}`, { trialId });
      }
    }
    return out;
  } finally {
    stop();
  }
}
