// The estimator registry: names, RABI's default hyperparameters, construction from a seeded stream
// and reconstruction from a saved (config, z-score, weights) triple.
import { InvalidSettingError } from '../errors.js';
import { createRng } from '../rng.js';
import { ConstrainedEstimator, validateTransformSpec } from '../transforms.js';
import { validateXTransformSpec, XTransformedEstimator } from '../x-transform.js';
import type {
  DensityEstimator,
  EstimatorKind,
  RandomStream,
  SerializedWeights,
  ZScore,
} from '../types.js';
import { drawOrders } from './autoregressive.js';
import { EMBEDDINGS } from './base.js';
import { DiagonalGaussian, GAUSSIAN_DEFAULTS, type GaussianConfig } from './gaussian.js';
import { CONTEXT_LAYERS, INPUT_FAN_INS, MADE_ACTIVATIONS, MADE_DEGREES } from './made.js';
import { AFFINE_DIRECTIONS, MAF_DEFAULTS, Maf, type MafConfig } from './maf.js';
import {
  MAF_ENSEMBLE_DEFAULTS,
  MEMBER_KEYS,
  MafEnsemble,
  type MafEnsembleConfig,
} from './maf-ensemble.js';
import { MDN_DEFAULTS, MixtureDensityNetwork, type MdnConfig } from './mdn.js';
import {
  MULTIVARIATE_GAUSSIAN_DEFAULTS,
  MultivariateGaussian,
  type MultivariateGaussianConfig,
} from './multivariate-gaussian.js';
import { NSF_DEFAULTS, Nsf, SPLINE_KINDS, type NsfConfig } from './nsf.js';
import {
  LINEAR_GAUSSIAN_DEFAULTS,
  LinearGaussian,
  type LinearGaussianConfig,
} from './linear-gaussian.js';

export { computeZScore, identityZScore } from './zscore.js';
export { EMBEDDINGS, MLP_EMBEDDING_SIZES, type Embedding } from './base.js';
export { taskEstimatorDefaults } from './task-defaults.js';

export const ESTIMATOR_KINDS: readonly EstimatorKind[] = [
  'maf',
  'nsf',
  'gaussian',
  'mdn',
  'multivariate_gaussian',
  'maf_ensemble',
  'linear_gaussian',
];

const DEFAULTS: Record<EstimatorKind, Record<string, unknown>> = {
  maf: MAF_DEFAULTS,
  nsf: NSF_DEFAULTS,
  gaussian: GAUSSIAN_DEFAULTS,
  mdn: MDN_DEFAULTS,
  multivariate_gaussian: MULTIVARIATE_GAUSSIAN_DEFAULTS,
  maf_ensemble: MAF_ENSEMBLE_DEFAULTS,
  linear_gaussian: LINEAR_GAUSSIAN_DEFAULTS,
};

/**
 * Keys a config may hold beyond the defaults: the flows' variable orders (drawn when absent) and the
 * embedding net ('identity' when absent, so configs saved before it existed rebuild unchanged).
 */
const EXTRA_KEYS: Record<EstimatorKind, string[]> = {
  maf: ['orders', ...MEMBER_KEYS],
  // spline absent: 'rational-quadratic' (model files from before the choice existed).
  nsf: [
    'orders',
    'embedding',
    'spline',
    'degrees',
    'biasInit',
    'inputFanIn',
    'contextLayer',
    'activation',
  ],
  gaussian: ['embedding'],
  mdn: ['embedding'],
  multivariate_gaussian: ['embedding'],
  // orders: one list per member; mixture: member weights fitted to validation rows (uniform when absent).
  maf_ensemble: ['orders', 'mixture', ...MEMBER_KEYS],
  linear_gaussian: [],
};

/**
 * The flows' named choices (maf.ts, made.ts, nsf.ts; an ensemble's members too): RABI's where the
 * rabi preset sets them.
 */
const CHOICES: Record<string, readonly string[]> = {
  affine: AFFINE_DIRECTIONS,
  clampGradient: ['zero', 'pass'],
  degrees: MADE_DEGREES,
  biasInit: ['zero', 'torch'],
  inputFanIn: INPUT_FAN_INS,
  contextLayer: CONTEXT_LAYERS,
  activation: MADE_ACTIVATIONS,
  spline: SPLINE_KINDS,
};

export function isEstimatorKind(s: string): s is EstimatorKind {
  return (ESTIMATOR_KINDS as readonly string[]).includes(s);
}

function checkKind(kind: string): asserts kind is EstimatorKind {
  if (!isEstimatorKind(kind))
    throw new InvalidSettingError(
      `Unknown estimator "${kind}"; known: ${ESTIMATOR_KINDS.join(', ')}`,
    );
}

/** RABI's hyperparameters for `kind` (a fresh copy). Flows get their `orders` at creation. */
export function defaultEstimatorConfig(kind: string): Record<string, unknown> {
  checkKind(kind);
  return structuredClone(DEFAULTS[kind]);
}

function mergeConfig(
  kind: EstimatorKind,
  overrides: Record<string, unknown>,
): Record<string, unknown> {
  const known = [...Object.keys(DEFAULTS[kind]), ...EXTRA_KEYS[kind]];
  for (const key of Object.keys(overrides)) {
    if (!known.includes(key))
      throw new InvalidSettingError(`Unknown ${kind} setting "${key}"; known: ${known.join(', ')}`);
  }
  const config = { ...structuredClone(DEFAULTS[kind]), ...structuredClone(overrides) };
  const hidden = config.hidden;
  // Every kind but the closed-form linear-Gaussian one has hidden layers.
  if (
    'hidden' in DEFAULTS[kind] &&
    (!Array.isArray(hidden) ||
      hidden.length === 0 ||
      hidden.some((h) => !Number.isInteger(h) || h < 1))
  ) {
    throw new InvalidSettingError(
      `${kind} hidden sizes must be a non-empty list of positive integers, got ${JSON.stringify(hidden)}`,
    );
  }
  if (
    config.embedding !== undefined &&
    !(EMBEDDINGS as readonly unknown[]).includes(config.embedding)
  ) {
    throw new InvalidSettingError(
      `${kind} embedding must be one of ${EMBEDDINGS.join(', ')}, got ${JSON.stringify(config.embedding)}`,
    );
  }
  if (
    config.members !== undefined &&
    !(Number.isInteger(config.members) && (config.members as number) >= 1)
  )
    throw new InvalidSettingError(
      `${kind} setting "members" must be a positive integer, got ${JSON.stringify(config.members)}`,
    );
  for (const [key, allowed] of Object.entries(CHOICES)) {
    const v = config[key];
    if (v !== undefined && !allowed.includes(v as string))
      throw new InvalidSettingError(
        `${kind} setting "${key}" must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`,
      );
  }
  for (const [key, v] of Object.entries(config)) {
    if (
      key !== 'hidden' &&
      key !== 'orders' &&
      key !== 'mixture' &&
      key !== 'embedding' &&
      !(key in CHOICES) &&
      (typeof v !== 'number' || !Number.isFinite(v))
    ) {
      throw new InvalidSettingError(
        `${kind} setting "${key}" must be a finite number, got ${JSON.stringify(v)}`,
      );
    }
  }
  return config;
}

function build(
  kind: EstimatorKind,
  thetaDim: number,
  xDim: number,
  config: Record<string, unknown>,
  zscore: ZScore,
  rng: RandomStream,
): DensityEstimator {
  switch (kind) {
    case 'maf':
      return new Maf(thetaDim, xDim, config as MafConfig, zscore, rng);
    case 'nsf':
      return new Nsf(thetaDim, xDim, config as NsfConfig, zscore, rng);
    case 'gaussian':
      return new DiagonalGaussian(thetaDim, xDim, config as GaussianConfig, zscore, rng);
    case 'mdn':
      return new MixtureDensityNetwork(thetaDim, xDim, config as MdnConfig, zscore, rng);
    case 'multivariate_gaussian':
      return new MultivariateGaussian(
        thetaDim,
        xDim,
        config as MultivariateGaussianConfig,
        zscore,
        rng,
      );
    case 'maf_ensemble':
      return new MafEnsemble(thetaDim, xDim, config as MafEnsembleConfig, zscore, rng);
    case 'linear_gaussian':
      return new LinearGaussian(thetaDim, xDim, config as LinearGaussianConfig, zscore, rng);
  }
}

export interface CreateEstimatorOptions {
  thetaDim: number;
  xDim: number;
  zscore: ZScore;
  /** Partial overrides of defaultEstimatorConfig(kind). */
  config?: Record<string, unknown>;
  /** Draws the initial weights (and the flows' variable orders): same stream, same model. */
  rng: RandomStream;
}

export function createEstimator(kind: string, opts: CreateEstimatorOptions): DensityEstimator {
  checkKind(kind);
  const config = mergeConfig(kind, opts.config ?? {});
  if (EXTRA_KEYS[kind].includes('orders') && config.orders === undefined) {
    const orders = opts.rng.fork('orders');
    const draw = (rng: RandomStream): number[][] =>
      drawOrders(rng, opts.thetaDim, config.numTransforms as number);
    // An ensemble's members each get their own orders.
    config.orders =
      kind === 'maf_ensemble'
        ? Array.from({ length: config.members as number }, (_, k) =>
            draw(orders.fork(`member-${k}`)),
          )
        : draw(orders);
  }
  return build(kind, opts.thetaDim, opts.xDim, config, opts.zscore, opts.rng.fork('weights'));
}

/** Rebuilds a saved estimator: its full config (as estimator.config), z-score statistics and weights. */
export function restoreEstimator(
  kind: string,
  thetaDim: number,
  xDim: number,
  config: Record<string, unknown>,
  zscore: ZScore,
  weights: SerializedWeights[],
): DensityEstimator {
  checkKind(kind);
  // A model trained in unconstrained space comes back with its transform re-attached.
  if (config.thetaTransform !== undefined) {
    const { thetaTransform, ...innerConfig } = config;
    const spec = validateTransformSpec(thetaTransform, thetaDim);
    const inner = restoreEstimator(kind, thetaDim, xDim, innerConfig, zscore, weights);
    return new ConstrainedEstimator(inner, spec);
  }
  // One trained on transformed x (log x) comes back taking raw x.
  if (config.xTransform !== undefined) {
    const { xTransform, ...innerConfig } = config;
    const spec = validateXTransformSpec(xTransform, xDim);
    const inner = restoreEstimator(kind, thetaDim, xDim, innerConfig, zscore, weights);
    return new XTransformedEstimator(inner, spec);
  }
  const full = mergeConfig(kind, config);
  if (EXTRA_KEYS[kind].includes('orders') && full.orders === undefined) {
    throw new Error(`a saved ${kind} config must hold its variable orders`);
  }
  // The initial values are overwritten by `weights`; any stream will do.
  const model = build(kind, thetaDim, xDim, full, zscore, createRng(0));
  try {
    model.setWeights(weights);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
