// Expansion of a validated spec into trials with deterministic, content-derived IDs. Pure (no ajv, no
// node built-ins): the SweepWorkflow can call trialIndexer(spec).at(i) to materialize one trial at a
// time instead of carrying the whole list through its history.
import { canonicalJson } from './canonical.js';
import { shortHash } from './hash.js';
import { RABI_VALIDATION_ROWS, type EstimatorKind, type PresetName } from './names.js';
import { MAX_TRIALS } from './schema.js';
import type {
  EvaluationItem,
  SweepSpec,
  TrainingOptions,
  TrialConfig,
  TrialDefense,
  TrialEvaluation,
} from './types.js';

/**
 * Domain tags hashed with every ID. Bump one when the meaning of a field changes so that old and new
 * results never share an ID.
 */
export const ID_VERSIONS = {
  sweep: 'robustsbi.sweep/1',
  trial: 'robustsbi.trial/1',
  model: 'robustsbi.model/1',
  simulation: 'robustsbi.simulation/1',
  testSet: 'robustsbi.testset/1',
  evaluation: 'robustsbi.evaluation/1',
} as const;

/** ID of any JSON value under a domain tag: the first 24 hex digits of SHA-256 of canonical {id, value}. */
export function contentId(tag: string, value: unknown): string {
  return shortHash(canonicalJson({ id: tag, value }));
}

/**
 * Revisions of what a preset means for one estimator kind, hashed into that kind's model IDs from
 * revision 2 on, so a model trained under an earlier meaning is never found under the new one
 * (other kinds' IDs stay as they were). rabi's NSF became pyro's linear-rational spline on [-30, 30]
 * of raw theta: revision 2 (before: robustsbi's rational-quadratic spline).
 */
export const PRESET_REVISIONS: Partial<Record<PresetName, Partial<Record<EstimatorKind, number>>>> =
  { rabi: { nsf: 2 } };

function presetRevisionOf(preset: PresetName | undefined, kind: EstimatorKind): number | undefined {
  return preset === undefined ? undefined : PRESET_REVISIONS[preset]?.[kind];
}

/** What a trial's modelId hashes (under ID_VERSIONS.model). */
export function modelContent(t: TrialConfig): unknown {
  const { task, estimator, defense, budget, seed, training } = t;
  const presetRevision = presetRevisionOf(training.preset, estimator.kind);
  return presetRevision === undefined
    ? { task, estimator, defense, budget, seed, training }
    : { task, estimator, defense, budget, seed, training, presetRevision };
}

/** What a trial's trialId hashes (under ID_VERSIONS.trial): the model's content and the evaluation settings. */
export function trialContent(t: TrialConfig): unknown {
  return { ...(modelContent(t) as object), evaluation: t.evaluation };
}

/** The points of every defense's grid, in spec order (betas outer, trainEps inner). */
export function defenseVariants(spec: Pick<SweepSpec, 'defenses'>): TrialDefense[] {
  const out: TrialDefense[] = [];
  for (const d of spec.defenses) {
    const betas: (number | undefined)[] = d.betas ?? [undefined];
    const epss: (number | undefined)[] = d.trainEps ?? [undefined];
    for (const beta of betas) {
      for (const eps of epss) {
        const v: TrialDefense = { name: d.name };
        if (beta !== undefined) v.beta = beta;
        if (eps !== undefined) v.trainEps = eps;
        if (d.mcSamples !== undefined) v.mcSamples = d.mcSamples;
        if (d.probes !== undefined) v.probes = d.probes;
        if (d.gradClamp !== undefined) v.gradClamp = d.gradClamp;
        out.push(v);
      }
    }
  }
  return out;
}

type GridShape = Pick<SweepSpec, 'tasks' | 'estimators' | 'defenses' | 'budgets' | 'seeds'>;

function gridSize(d: SweepSpec['defenses'][number]): number {
  return (d.betas?.length ?? 1) * (d.trainEps?.length ?? 1);
}

/** Trials the spec expands to, computed without building them (for the size cap). */
export function countTrials(spec: GridShape): number {
  const variants = spec.defenses.reduce((s, d) => s + gridSize(d), 0);
  return (
    spec.tasks.length * spec.estimators.length * variants * spec.budgets.length * spec.seeds.length
  );
}

/** Evaluation records the spec asks for: trials x attacks x objectives x eps. */
export function countEvaluations(spec: GridShape & Pick<SweepSpec, 'evaluation'>): number {
  const e = spec.evaluation;
  return countTrials(spec) * e.attacks.length * e.objectives.length * e.eps.length;
}

/** The part of a spec that determines its results: everything but name, description, concurrency, routing, failFast and queues. */
export function scientificContent(spec: SweepSpec): unknown {
  // A search's block joins the content only when present, so every grid sweep keeps its ID.
  return {
    ...(spec.search ? { search: spec.search } : {}),
    tasks: spec.tasks,
    estimators: spec.estimators.map((e) => ({ kind: e.kind, architecture: e.architecture })),
    defenses: spec.defenses,
    seeds: spec.seeds,
    budgets: spec.budgets,
    training: spec.training,
    evaluation: spec.evaluation,
  };
}

/**
 * The sweep's ID: a hash of its scientific content. Resubmitting the same spec (in any key order,
 * with "maf" or { "kind": "maf" }, renamed, or with other concurrency / routing / failFast) gives the
 * same ID, so it attaches to the running sweep instead of starting another. Reordering a grid
 * changes the trial order and therefore the ID, though the trial IDs stay the same.
 */
export function sweepIdOf(spec: SweepSpec): string {
  return contentId(ID_VERSIONS.sweep, scientificContent(spec));
}

/**
 * The simulations a trial's training reads: the budget, and under the rabi preset the validation
 * rows simulated beside it (RABI's N counts training rows only).
 */
export function trainingRows(budget: number, training: TrainingOptions): number {
  return training.preset === 'rabi' ? budget + (training.valSize ?? RABI_VALIDATION_ROWS) : budget;
}

/** The ID of (task, budget, seed)'s training simulations; `rows` beside the budget name a larger set. */
export function simulationIdOf(task: string, budget: number, seed: number, rows = budget): string {
  return contentId(
    ID_VERSIONS.simulation,
    rows === budget ? { task, budget, seed } : { task, budget, seed, rows },
  );
}

export function testSetIdOf(task: string, nTest: number, seed: number): string {
  return contentId(ID_VERSIONS.testSet, { task, nTest, seed });
}

export interface TrialIndexer {
  readonly sweepId: string;
  /** Number of trials. */
  readonly count: number;
  /** The trial at position `index` (0-based) of the sweep's order. */
  at(index: number): TrialConfig;
}

/**
 * Random access to the trials. The order is task, estimator, defense grid point, budget, seed, with
 * the seed varying fastest, each axis in spec order.
 */
export function trialIndexer(spec: SweepSpec): TrialIndexer {
  const variants = defenseVariants(spec);
  const count = countTrials(spec);
  if (count > MAX_TRIALS)
    throw new RangeError(
      `The sweep expands to ${count} trials; at most ${MAX_TRIALS} are allowed.`,
    );
  // The trade-off's eps, attack and objective only tell the aggregation where to read, and the
  // examples are read off finished trials; none of them changes a trial.
  const trialEvaluation: TrialEvaluation = { ...spec.evaluation };
  for (const key of ['tradeoffEps', 'tradeoffAttack', 'tradeoffObjective', 'examples'] as const)
    delete (trialEvaluation as Partial<SweepSpec['evaluation']>)[key];
  const sweepId = sweepIdOf(spec);
  const radices = [
    spec.tasks.length,
    spec.estimators.length,
    variants.length,
    spec.budgets.length,
    spec.seeds.length,
  ];

  // The canonical texts of modelContent / trialContent are assembled from parts canonicalized once
  // (keys in sorted order), which makes a 100,000-trial expansion several times faster. A unit test
  // checks every ID against contentId of the full content.
  const cTraining = canonicalJson(spec.training);
  const cEvaluation = canonicalJson(trialEvaluation);
  const cEstimators = spec.estimators.map((e) =>
    canonicalJson({ kind: e.kind, architecture: e.architecture }),
  );
  const cVariants = variants.map((v) => canonicalJson(v));
  // "presetRevision" sorts between "evaluation" and "seed".
  const cRevisions = spec.estimators.map((e) => {
    const rev = presetRevisionOf(spec.training.preset, e.kind);
    return rev === undefined ? '' : `"presetRevision":${canonicalJson(rev)},`;
  });
  const head = (tag: string): string => `{"id":${JSON.stringify(tag)},"value":{`;
  const modelHead = head(ID_VERSIONS.model);
  const trialHead = head(ID_VERSIONS.trial);
  const simulationIds = new Map<string, string>();
  const testSetIds = new Map<string, string>();

  function at(index: number): TrialConfig {
    if (!Number.isInteger(index) || index < 0 || index >= count)
      throw new RangeError(`Trial index ${index} is outside 0..${count - 1}.`);
    const digits = new Array<number>(radices.length);
    let rest = index;
    for (let k = radices.length - 1; k >= 0; k--) {
      digits[k] = rest % radices[k]!;
      rest = Math.floor(rest / radices[k]!);
    }
    const [ti, ei, di, bi, si] = digits as [number, number, number, number, number];
    const task = spec.tasks[ti]!;
    const est = spec.estimators[ei]!;
    const budget = spec.budgets[bi]!;
    const seed = spec.seeds[si]!;
    const common =
      `"budget":${canonicalJson(budget)},"defense":${cVariants[di]!},` +
      `"estimator":${cEstimators[ei]!},`;
    const rear = `${cRevisions[ei]!}"seed":${canonicalJson(seed)},"task":${JSON.stringify(task)},"training":${cTraining}}}`;
    const simKey = `${ti}/${bi}/${si}`;
    let simulationId = simulationIds.get(simKey);
    if (simulationId === undefined) {
      simulationId = simulationIdOf(task, budget, seed, trainingRows(budget, spec.training));
      simulationIds.set(simKey, simulationId);
    }
    const testKey = `${ti}/${si}`;
    let testSetId = testSetIds.get(testKey);
    if (testSetId === undefined) {
      testSetId = testSetIdOf(task, trialEvaluation.nTest, seed);
      testSetIds.set(testKey, testSetId);
    }
    return {
      trialId: shortHash(`${trialHead}${common}"evaluation":${cEvaluation},${rear}`),
      modelId: shortHash(`${modelHead}${common}${rear}`),
      simulationId,
      testSetId,
      index,
      task,
      estimator: { kind: est.kind, architecture: est.architecture },
      defense: variants[di]!,
      budget,
      seed,
      training: spec.training,
      evaluation: trialEvaluation,
      queues: {
        simulate: 'cpu',
        train: est.queue ?? spec.routing.train,
        evaluate: spec.routing.evaluate,
      },
    };
  }

  return { sweepId, count, at };
}

/**
 * Every trial of the sweep, in its deterministic order. The objects share the spec's nested
 * training / evaluation objects: treat them as read-only.
 */
export function expandSweep(spec: SweepSpec): TrialConfig[] {
  const ix = trialIndexer(spec);
  const out: TrialConfig[] = [];
  for (let i = 0; i < ix.count; i++) out.push(ix.at(i));
  return out;
}

/**
 * A trial the search proposed: the sweep's one task, estimator, budget and seed with `defense`, at
 * position `index` (after the grid's). Its IDs are those a grid holding the same point gives, so a
 * proposal equal to a trained trial is that trial.
 */
export function proposedTrial(spec: SweepSpec, defense: TrialDefense, index: number): TrialConfig {
  const evaluation: TrialEvaluation = { ...spec.evaluation };
  delete (evaluation as Partial<SweepSpec['evaluation']>).tradeoffEps;
  const task = spec.tasks[0]!;
  const est = spec.estimators[0]!;
  const budget = spec.budgets[0]!;
  const seed = spec.seeds[0]!;
  const t: TrialConfig = {
    trialId: '',
    modelId: '',
    simulationId: simulationIdOf(task, budget, seed, trainingRows(budget, spec.training)),
    testSetId: testSetIdOf(task, evaluation.nTest, seed),
    index,
    task,
    estimator: { kind: est.kind, architecture: est.architecture },
    defense,
    budget,
    seed,
    training: spec.training,
    evaluation,
    queues: {
      simulate: 'cpu',
      train: est.queue ?? spec.routing.train,
      evaluate: spec.routing.evaluate,
    },
  };
  t.modelId = contentId(ID_VERSIONS.model, modelContent(t));
  t.trialId = contentId(ID_VERSIONS.trial, trialContent(t));
  return t;
}

/** The trial's evaluation records, attack outermost, then objective, then eps. */
export function evaluationPlan(trial: TrialConfig): EvaluationItem[] {
  const out: EvaluationItem[] = [];
  for (const attack of trial.evaluation.attacks)
    for (const objective of trial.evaluation.objectives)
      for (const eps of trial.evaluation.eps)
        out.push({
          evalId: contentId(ID_VERSIONS.evaluation, {
            trialId: trial.trialId,
            attack,
            objective,
            eps,
          }),
          trialId: trial.trialId,
          attack,
          objective,
          eps,
        });
  return out;
}

/**
 * The shards of each of the trial's (attack, eps) evaluations: one per chunk of attackBatchSize test
 * points (sbi/evaluation.ts evaluationChunkCount, which the activities use on the drawn test set;
 * this is its count for nTest, what the workflow plans with).
 */
export function evaluationShardCount(
  evaluation: Pick<TrialEvaluation, 'nTest' | 'attackBatchSize'>,
): number {
  return Math.max(1, Math.ceil(evaluation.nTest / evaluation.attackBatchSize));
}

/**
 * Block activities of one set at the most: each activity is a few events in the pipeline's history,
 * which Temporal caps at 50,000 events, so a set of more blocks gives each activity a run of them.
 */
export const MAX_BLOCK_ACTIVITIES = 200;

/** The [first, last] blocks of each block activity of a set of `blocks` blocks. */
export function blockRanges(blocks: number): [number, number][] {
  const per = Math.ceil(blocks / MAX_BLOCK_ACTIVITIES);
  const out: [number, number][] = [];
  for (let b = 0; b < blocks; b += per) out.push([b, Math.min(blocks, b + per) - 1]);
  return out;
}
