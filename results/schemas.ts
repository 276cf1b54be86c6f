// JSON Schemas (ajv 8) of the stored documents, which results/validate.ts checks in the application
// before every write because FerretDB 1.24 has no server-side validators. They describe the *stored*
// form: a non-finite measured number is null there, with its marker in `nonFinite`
// (results/nonfinite.ts).
import { SUMMARY_QUANTILES } from '../sbi/metrics/summary.js';
import { OBJECTIVES } from '../sweeps/names.js';
import { SWEEP_STATUSES, TRIAL_STATUSES } from './documents.js';

const id = { type: 'string', minLength: 1, maxLength: 1024 } as const;
const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
const finite = { type: 'number' } as const;
const nonNegative = { type: 'number', minimum: 0 } as const;
/** A measured number: null in storage when it was NaN or +-Infinity. */
const measured = { type: ['number', 'null'] } as const;
const count = { type: 'integer', minimum: 0 } as const;
const date = { bsonDate: true } as const;
const measuredArray = { type: 'array', items: measured } as const;
const finiteArray = { type: 'array', items: finite } as const;

const nonFiniteMap = {
  type: 'object',
  additionalProperties: {
    type: 'array',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['path', 'value'],
      properties: {
        path: { type: 'string' },
        value: { enum: ['nan', 'inf', '-inf'] },
      },
    },
  },
} as const;

const errorInfo = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'message', 'nonRetryable'],
  properties: {
    type: name,
    message: { type: 'string', maxLength: 20000 },
    nonRetryable: { type: 'boolean' },
  },
} as const;

const counts = {
  type: 'object',
  additionalProperties: false,
  required: ['trials', 'queued', 'running', 'completed', 'failed', 'cancelled'],
  properties: {
    trials: count,
    queued: count,
    running: count,
    completed: count,
    failed: count,
    cancelled: count,
  },
} as const;

export const sweepSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    '_id',
    'name',
    'spec',
    'specHash',
    'status',
    'counts',
    'codeVersion',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    _id: id,
    name: { type: 'string', minLength: 1, maxLength: 500 },
    spec: { type: 'object' },
    specHash: { type: 'string', pattern: '^[0-9a-f]{8,128}$' },
    status: { enum: [...SWEEP_STATUSES] },
    counts,
    codeVersion: { type: 'string', minLength: 1, maxLength: 200 },
    createdAt: date,
    updatedAt: date,
    workflowId: id,
    completedAt: date,
    error: errorInfo,
    nonFinite: nonFiniteMap,
  },
} as const;

export const trialConfigSchema = {
  type: 'object',
  required: ['task', 'estimator', 'defense', 'beta', 'budget', 'seed'],
  properties: {
    task: name,
    estimator: name,
    defense: name,
    beta: nonNegative,
    trainEps: nonNegative,
    budget: { type: 'integer', minimum: 1 },
    seed: count,
  },
} as const;

export const trialSummarySchema = {
  type: 'object',
  required: ['testNll', 'valLoss', 'epochs', 'trainSeconds', 'droppedSims'],
  properties: {
    testNll: measured,
    valLoss: measured,
    epochs: count,
    trainSeconds: nonNegative,
    droppedSims: count,
    // Against the analytic posterior (gaussian_linear), from the trial's evaluations.
    c2stTruth: measured,
    klQPTruth: measured,
    klPQTruth: measured,
  },
  // Further scalar metrics (c2st, bestEpoch, ...) may be added by the trainer.
  additionalProperties: measured,
} as const;

const trialProperties = {
  _id: id,
  sweepIds: { type: 'array', minItems: 1, uniqueItems: true, items: id },
  positions: {
    type: 'array',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['sweepId', 'index'],
      // round: the search round that proposed the trial (0: the spec's grid); search sweeps only.
      properties: { sweepId: id, index: count, round: count },
    },
  },
  config: trialConfigSchema,
  status: { enum: [...TRIAL_STATUSES] },
  attempt: count,
  summary: trialSummarySchema,
  error: errorInfo,
  modelArtifact: id,
  backend: name,
  codeVersion: { type: 'string', minLength: 1, maxLength: 200 },
  createdAt: date,
  updatedAt: date,
  startedAt: date,
  endedAt: date,
  nonFinite: nonFiniteMap,
} as const;

export const trialSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    '_id',
    'sweepIds',
    'config',
    'status',
    'attempt',
    'codeVersion',
    'createdAt',
    'updatedAt',
  ],
  properties: trialProperties,
} as const;

/** The fields a status transition may set on a trial. */
export const trialPatchSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: trialProperties.status,
    attempt: trialProperties.attempt,
    summary: trialProperties.summary,
    error: trialProperties.error,
    modelArtifact: trialProperties.modelArtifact,
    backend: trialProperties.backend,
    updatedAt: date,
    startedAt: date,
    endedAt: date,
  },
} as const;

/** The fields a sweep update may set. */
export const sweepPatchSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: sweepSchema.properties.status,
    counts,
    updatedAt: date,
    completedAt: date,
    workflowId: id,
    error: errorInfo,
  },
} as const;

/** sbi/metrics/summary.ts Summary: mean, median, std, min, max and the quantiles of paper.md 3.4. */
const summaryProperties = {
  n: { type: 'integer', minimum: 1 },
  mean: measured,
  median: measured,
  std: measured,
  min: measured,
  max: measured,
  ...Object.fromEntries(SUMMARY_QUANTILES.map(([, k]) => [k, measured])),
};
const summaryRequired = [
  'n',
  'mean',
  'median',
  'std',
  'min',
  'max',
  ...SUMMARY_QUANTILES.map(([, k]) => k),
];

const summarySchema = {
  type: 'object',
  additionalProperties: false,
  required: summaryRequired,
  properties: summaryProperties,
} as const;

const klSummary = {
  type: 'object',
  additionalProperties: false,
  required: [...summaryRequired, 'guarded'],
  properties: { ...summaryProperties, guarded: count },
} as const;

/** The ground-truth metrics of an evaluation (tasks with an analytic posterior). */
const groundTruthSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['c2st', 'klQP', 'klPQ', 'samples'],
  properties: {
    c2st: measured,
    klQP: measured,
    klPQ: measured,
    samples: { type: 'integer', minimum: 1 },
  },
} as const;

/** sbi/diagnostics.ts Diagnostics: SBC and C2ST of the trial on its clean test set. */
const diagnosticsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    sbc: {
      type: 'object',
      additionalProperties: false,
      required: ['pairs', 'samples', 'bins', 'pValues', 'chi2', 'histogram', 'minPValue'],
      properties: {
        pairs: { type: 'integer', minimum: 1 },
        samples: { type: 'integer', minimum: 1 },
        bins: { type: 'integer', minimum: 2 },
        pValues: measuredArray,
        chi2: measuredArray,
        histogram: { type: 'array', items: count },
        minPValue: measured,
      },
    },
    c2st: {
      type: 'object',
      additionalProperties: false,
      required: ['value', 'method', 'observations', 'samples'],
      properties: {
        value: measured,
        method: { enum: ['bayes-optimal', 'classifier'] },
        observations: { type: 'integer', minimum: 1 },
        samples: { type: 'integer', minimum: 1 },
        perObservation: measuredArray,
      },
    },
  },
} as const;

export const evaluationSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    '_id',
    'trialId',
    'attack',
    'objective',
    'eps',
    'epsAbs',
    'epsScale',
    'nTest',
    'kl',
    'nllClean',
    'nllAttacked',
    'coverage',
    'coverageAbsArea',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    _id: id,
    trialId: id,
    attack: name,
    objective: { enum: OBJECTIVES },
    eps: nonNegative,
    epsAbs: nonNegative,
    epsScale: nonNegative,
    nTest: { type: 'integer', minimum: 1 },
    kl: klSummary,
    nllClean: measured,
    nllAttacked: measured,
    nllAttackedSummary: summarySchema,
    groundTruth: groundTruthSchema,
    // On the evaluations of the trial's first (attack, eps) only, where the spec asks for them.
    diagnostics: diagnosticsSchema,
    coverage: {
      type: 'object',
      additionalProperties: false,
      required: ['levels', 'clean', 'attacked'],
      properties: {
        levels: { type: 'array', minItems: 2, items: { type: 'number', minimum: 0, maximum: 1 } },
        clean: measuredArray,
        attacked: measuredArray,
      },
    },
    coverageAbsArea: {
      type: 'object',
      additionalProperties: false,
      required: ['clean', 'attacked'],
      properties: { clean: measured, attacked: measured },
    },
    seconds: nonNegative,
    createdAt: date,
    updatedAt: date,
    nonFinite: nonFiniteMap,
  },
} as const;

const seriesKeyProps = {
  attack: name,
  objective: { enum: OBJECTIVES },
  defense: name,
  beta: nonNegative,
  trainEps: nonNegative,
  estimator: name,
  budget: { type: 'integer', minimum: 1 },
} as const;
const seriesKeyRequired = [
  'attack',
  'objective',
  'defense',
  'beta',
  'estimator',
  'budget',
] as const;

const curveBase = {
  _id: id,
  sweepId: id,
  task: name,
  nonFinite: nonFiniteMap,
} as const;

export const tradeoffCurveSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    '_id',
    'sweepId',
    'task',
    'kind',
    'attack',
    'objective',
    'eps',
    'points',
    'front',
    'missing',
  ],
  properties: {
    ...curveBase,
    kind: { const: 'tradeoff' },
    attack: name,
    objective: { enum: OBJECTIVES },
    eps: nonNegative,
    points: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['trialId', 'defense', 'beta', 'estimator', 'budget', 'seed', 'x', 'y', 'pareto'],
        properties: {
          trialId: id,
          defense: name,
          beta: nonNegative,
          trainEps: nonNegative,
          estimator: name,
          budget: { type: 'integer', minimum: 1 },
          seed: count,
          x: measured,
          y: measured,
          groundTruth: {
            type: 'object',
            additionalProperties: false,
            required: ['c2st', 'klQP', 'klPQ'],
            properties: { c2st: measured, klQP: measured, klPQ: measured },
          },
          trainSeconds: nonNegative,
          epochs: count,
          pareto: { type: 'boolean' },
        },
      },
    },
    front: { type: 'array', items: id },
    missing: { type: 'array', items: id },
    evaluated: {
      type: 'object',
      additionalProperties: false,
      required: ['attacks', 'objectives', 'eps'],
      properties: {
        attacks: { type: 'array', items: name },
        objectives: { type: 'array', items: { enum: OBJECTIVES } },
        eps: { type: 'array', items: nonNegative },
      },
    },
  },
} as const;

export const klVsEpsCurveSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['_id', 'sweepId', 'task', 'kind', 'series'],
  properties: {
    ...curveBase,
    kind: { const: 'kl_vs_eps' },
    series: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: [...seriesKeyRequired, 'eps', 'median', 'q15', 'q85', 'mean', 'trials'],
        properties: {
          ...seriesKeyProps,
          eps: { type: 'array', items: nonNegative },
          median: measuredArray,
          q15: measuredArray,
          q85: measuredArray,
          mean: measuredArray,
          trials: { type: 'array', items: count },
        },
      },
    },
  },
} as const;

export const coverageCurveSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['_id', 'sweepId', 'task', 'kind', 'series'],
  properties: {
    ...curveBase,
    kind: { const: 'coverage' },
    series: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: [...seriesKeyRequired, 'levels', 'clean', 'cleanAbsArea', 'trials', 'curves'],
        properties: {
          ...seriesKeyProps,
          levels: finiteArray,
          clean: measuredArray,
          cleanAbsArea: measured,
          trials: count,
          curves: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['eps', 'observed', 'absArea', 'trials'],
              properties: {
                eps: nonNegative,
                observed: measuredArray,
                absArea: measured,
                trials: count,
              },
            },
          },
        },
      },
    },
  },
} as const;
