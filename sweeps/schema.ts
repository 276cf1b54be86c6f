// The sweep spec as a JSON Schema (draft-07), with defaults that ajv fills (useDefaults). Plain data:
// validate.ts compiles it with ajv; nothing here imports ajv, so workflows may import the limits.
import {
  ARCHITECTURE_KEYS,
  EMBEDDINGS,
  ATTACK_NAMES,
  DEFENSE_NAMES,
  ESTIMATOR_KINDS,
  METRICS,
  OBJECTIVES,
  PRESETS,
  QUEUES,
  SEARCH_METHODS,
  SEARCH_METRICS,
  STOP_RULES,
  TASK_NAMES,
} from './names.js';

/** Bytes of spec text read at most; longer texts are refused before parsing. */
export const MAX_SPEC_BYTES = 1_000_000;
/** Trials one sweep may expand to. */
export const MAX_TRIALS = 100_000;
/** Evaluation records (trials x attacks x objectives x eps) one sweep may ask for: 50 per trial at the trial cap. */
export const MAX_EVALUATIONS = 5_000_000;
/** JSON nesting depth accepted (a spec needs 5). */
export const MAX_DEPTH = 16;

export const MAX_SEEDS = 1000;
export const MAX_BUDGETS = 100;
export const MAX_GRID = 1000;
export const MAX_EPS = 100;
export const MAX_ESTIMATORS = 50;
export const MAX_DEFENSES = 50;
/** Trials one search may train (RABI's multi-objective TPE ran up to 2,000 per task). */
export const MAX_SEARCH_BUDGET = 2000;

/** Which defense takes which grid, and which grids have a default. */
export const DEFENSE_GRIDS = {
  none: { betas: 'forbidden', trainEps: 'forbidden' },
  fim: { betas: 'required', trainEps: 'forbidden' },
  'fim-fast': { betas: 'required', trainEps: 'forbidden' },
  // RABI fixes TRADES' beta at 0.1 and sweeps the training epsilon.
  trades: { betas: [0.1], trainEps: 'required' },
  adversarial: { betas: 'forbidden', trainEps: 'required' },
  // RABI's noise augmentation uses a ball of radius 1.0 x std.
  noise: { betas: 'forbidden', trainEps: [1] },
  'fim-exact': { betas: 'required', trainEps: 'forbidden' },
  'fim-eigenvalue': { betas: 'required', trainEps: 'forbidden' },
} as const satisfies Record<
  (typeof DEFENSE_NAMES)[number],
  Record<'betas' | 'trainEps', 'forbidden' | 'required' | readonly number[]>
>;

/**
 * The extra knobs each defense accepts (sbi/defenses createDefense: mcSamples, fast.probes).
 * fim-fast takes no mcSamples: its default sample source is the batch's own theta, one per row.
 */
export const DEFENSE_OPTIONS = {
  none: [],
  fim: ['mcSamples', 'gradClamp'],
  'fim-fast': ['probes'],
  trades: [],
  adversarial: [],
  noise: [],
  // The Monte Carlo fallback's samples (estimators without a closed-form FIM).
  'fim-exact': ['mcSamples'],
  'fim-eigenvalue': ['mcSamples'],
} as const satisfies Record<(typeof DEFENSE_NAMES)[number], readonly string[]>;

type Schema = Record<string, unknown>;

const int = (minimum: number, maximum: number, extra: Schema = {}): Schema => ({
  type: 'integer',
  minimum,
  maximum,
  ...extra,
});

/** A non-empty list of distinct values: a grid axis. */
const grid = (items: Schema, maxItems: number, extra: Schema = {}): Schema => ({
  type: 'array',
  items,
  minItems: 1,
  maxItems,
  uniqueItems: true,
  ...extra,
});

const betaSchema: Schema = { type: 'number', minimum: 0, maximum: 1e6 };
const trainEpsSchema: Schema = { type: 'number', exclusiveMinimum: 0, maximum: 100 };

const ARCHITECTURE_VALUES: Record<string, Schema> = {
  hidden: {
    type: 'array',
    items: int(1, 4096),
    minItems: 1,
    maxItems: 16,
  },
  numTransforms: int(1, 64),
  // MAFs in an ensemble (RABI: 10 or 50).
  members: int(1, 256),
  bins: int(1, 256),
  components: int(1, 256),
  tailBound: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
  logScaleMin: { type: 'number', minimum: -100, maximum: 100 },
  logScaleMax: { type: 'number', minimum: -100, maximum: 100 },
  minScale: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  minBinWidth: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  minBinHeight: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  minDerivative: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  embedding: { title: 'embedding', enum: EMBEDDINGS },
};

function architectureSchema(kind: (typeof ESTIMATOR_KINDS)[number]): Schema {
  const properties: Record<string, Schema> = {};
  for (const key of ARCHITECTURE_KEYS[kind]) properties[key] = ARCHITECTURE_VALUES[key]!;
  return { type: 'object', title: `${kind} architecture`, properties, additionalProperties: false };
}

const estimatorSchema: Schema = {
  type: ['string', 'object'],
  // Shorthand: "maf" stands for { "kind": "maf" }.
  if: { type: 'string' },
  then: { title: 'estimator', enum: ESTIMATOR_KINDS },
  else: {
    required: ['kind'],
    additionalProperties: false,
    properties: {
      kind: { title: 'estimator', enum: ESTIMATOR_KINDS },
      architecture: { type: 'object' },
      queue: { title: 'queue', enum: QUEUES },
    },
    allOf: ESTIMATOR_KINDS.map((kind) => ({
      if: { properties: { kind: { const: kind } }, required: ['kind'] },
      then: { properties: { architecture: architectureSchema(kind) } },
    })),
  },
};

const defenseSchema: Schema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { title: 'defense', enum: DEFENSE_NAMES },
    betas: grid(betaSchema, MAX_GRID),
    trainEps: grid(trainEpsSchema, MAX_EPS),
    mcSamples: int(1, 1000),
    probes: int(1, 1000),
    gradClamp: { type: 'number', exclusiveMinimum: 0, maximum: 1e12 },
  },
  allOf: DEFENSE_NAMES.map((name) => {
    const then: Schema = {};
    const properties: Record<string, unknown> = {};
    const required: string[] = [];
    for (const axis of ['betas', 'trainEps'] as const) {
      const rule = DEFENSE_GRIDS[name][axis];
      if (rule === 'forbidden') properties[axis] = false;
      else if (rule === 'required') required.push(axis);
      else properties[axis] = { default: [...rule] };
    }
    for (const opt of ['mcSamples', 'probes', 'gradClamp'])
      if (!(DEFENSE_OPTIONS[name] as readonly string[]).includes(opt)) properties[opt] = false;
    then.properties = properties;
    if (required.length > 0) then.required = required;
    return { if: { properties: { name: { const: name } }, required: ['name'] }, then };
  }),
};

const trainingSchema: Schema = {
  type: 'object',
  default: {},
  additionalProperties: false,
  // Defaults are RABI's (sbi/npe.ts DEFAULT_NPE_HYPERPARAMETERS; a unit test keeps them equal).
  properties: {
    maxEpochs: int(1, 100_000, { default: 300 }),
    minEpochs: int(0, 100_000, { default: 5 }),
    batchSize: int(1, 1_000_000, { default: 512 }),
    learningRate: { type: 'number', exclusiveMinimum: 0, maximum: 10, default: 1e-3 },
    patience: int(1, 100_000, { default: 10 }),
    clipNorm: { type: ['number', 'null'], exclusiveMinimum: 0, default: 75 },
    maxNanResets: int(0, 1000, { default: 10 }),
    valSize: int(1, 1_000_000),
    preset: { type: 'string', enum: [...PRESETS] },
    // No defaults: absent is RABI's schedule, and specs written before these existed keep their IDs.
    stopRule: { type: 'string', enum: [...STOP_RULES] },
    anneals: int(0, 100),
    annealFactor: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    annealPatience: int(0, 100_000),
    dropLast: { type: 'boolean' },
  },
};

const evaluationSchema: Schema = {
  type: 'object',
  default: {},
  additionalProperties: false,
  // Defaults are RABI's evaluation settings (research/paper.md sections 3 and 5).
  properties: {
    attacks: grid({ title: 'attack', enum: ATTACK_NAMES }, ATTACK_NAMES.length, {
      default: ['l2pgd', 'noise'],
    }),
    objectives: grid({ title: 'objective', enum: OBJECTIVES }, OBJECTIVES.length, {
      default: ['rkl'],
    }),
    eps: grid({ type: 'number', exclusiveMinimum: 0, maximum: 100 }, MAX_EPS, {
      default: [0.1, 0.2, 0.3, 0.5, 1, 2],
    }),
    nTest: int(1, 1_000_000, { default: 10_000 }),
    mcSamples: int(1, 10_000, { default: 5 }),
    evalSamples: int(1, 100_000, { default: 256 }),
    coverageSamples: int(1, 100_000, { default: 2000 }),
    coverageLevels: int(2, 10_000, { default: 100 }),
    steps: int(1, 100_000),
    attackBatchSize: int(1, 1_000_000, { default: 1000 }),
    // No defaults filled for the diagnostics: a spec without them keeps the trial IDs it had.
    metrics: grid({ title: 'metric', enum: METRICS }, METRICS.length),
    sbc: {
      type: 'object',
      additionalProperties: false,
      properties: {
        pairs: int(2, 100_000),
        samples: int(1, 100_000),
        bins: int(2, 1000),
      },
    },
    c2st: {
      type: 'object',
      additionalProperties: false,
      properties: {
        observations: int(1, 1000),
        samples: int(10, 100_000),
      },
    },
    tradeoffEps: { type: 'number', exclusiveMinimum: 0, maximum: 100, default: 2 },
    // No defaults: absent reads the first attack / objective, and leaves the sweepId as it was.
    tradeoffAttack: { title: 'attack', enum: ATTACK_NAMES },
    tradeoffObjective: { title: 'objective', enum: OBJECTIVES },
    examples: {
      type: 'object',
      additionalProperties: false,
      required: ['eps'],
      properties: {
        eps: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
        attack: { title: 'attack', enum: ATTACK_NAMES },
        objective: { title: 'objective', enum: OBJECTIVES },
        samples: int(10, 100_000, { default: 1000 }),
        predictive: int(0, 1000, { default: 10 }),
      },
    },
  },
};

/** A searched parameter: a fixed value (the plain number schema) or a { min, max, scale } range. */
const searchParam = (value: Schema): Schema => ({
  if: { type: 'object' },
  then: {
    type: 'object',
    title: 'search range',
    required: ['min', 'max'],
    additionalProperties: false,
    properties: {
      min: value,
      max: value,
      scale: { title: 'scale', enum: ['linear', 'log'], default: 'linear' },
    },
  },
  else: value,
});

const searchChoiceSchema: Schema = {
  type: 'object',
  required: ['defense'],
  additionalProperties: false,
  properties: {
    defense: { title: 'defense', enum: DEFENSE_NAMES },
    beta: searchParam(betaSchema),
    trainEps: searchParam(trainEpsSchema),
    mcSamples: int(1, 1000),
    probes: int(1, 1000),
  },
};

const searchObjectiveSchema: Schema = {
  type: 'object',
  required: ['metric'],
  additionalProperties: false,
  properties: {
    metric: { title: 'search objective', enum: SEARCH_METRICS },
    attack: { title: 'attack', enum: ATTACK_NAMES },
    objective: { title: 'objective', enum: OBJECTIVES },
    eps: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
    scale: { title: 'scale', enum: ['linear', 'log'] },
  },
};

const searchSchema: Schema = {
  type: 'object',
  required: ['space', 'objectives', 'budget', 'batch'],
  additionalProperties: false,
  properties: {
    space: grid(searchChoiceSchema, MAX_DEFENSES),
    objectives: { type: 'array', items: searchObjectiveSchema, minItems: 2, maxItems: 2 },
    budget: int(1, MAX_SEARCH_BUDGET),
    batch: int(1, MAX_SEARCH_BUDGET),
    stop: {
      type: 'object',
      required: ['rounds', 'tolerance'],
      additionalProperties: false,
      properties: {
        rounds: int(1, MAX_SEARCH_BUDGET),
        tolerance: { type: 'number', minimum: 0, maximum: 10 },
      },
    },
    seed: int(0, 2_147_483_647, { default: 0 }),
    method: { title: 'search method', enum: SEARCH_METHODS, default: 'gaps' },
  },
};

export const SWEEP_SPEC_SCHEMA: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://robustsbi.dev/schemas/sweep-spec.json',
  title: 'robustsbi sweep spec',
  type: 'object',
  // defenses too, unless a search block is there (validate.ts): a search may start from no grid.
  required: ['name', 'tasks', 'estimators', 'seeds', 'budgets'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    description: { type: 'string', maxLength: 10_000 },
    tasks: grid({ title: 'task', enum: TASK_NAMES }, TASK_NAMES.length),
    estimators: grid(estimatorSchema, MAX_ESTIMATORS),
    defenses: grid(defenseSchema, MAX_DEFENSES),
    seeds: grid(int(0, 2_147_483_647), MAX_SEEDS),
    budgets: grid(int(10, 10_000_000), MAX_BUDGETS),
    training: trainingSchema,
    evaluation: evaluationSchema,
    concurrency: int(1, 10_000, { default: 4 }),
    pack: int(1, 1_000, { default: 1 }),
    routing: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        train: { title: 'queue', enum: QUEUES, default: 'cpu' },
        evaluate: { title: 'queue', enum: QUEUES, default: 'cpu' },
      },
    },
    failFast: { type: 'boolean', default: false },
    search: searchSchema,
  },
};
