// A trained model as one self-describing JSON file: the architecture, weights and z-score statistics
// to rebuild it, plus everything needed to reproduce it (task, seed, training options, code version,
// backend). Written atomically; a bad file is reported in one sentence naming the file. The same
// JSON is the model artifact of a sweep (modelToJson / modelFromJson, no file involved).
import { FileFormatError, parseJsonText, readTextFile, writeFileAtomic } from './atomic-file.js';
import { ESTIMATOR_KINDS, restoreEstimator } from './estimators/index.js';
import { decodeFloat32, encodeFloat32 } from './float32-base64.js';
import { reviveNonFinite, toJsonText } from './json-numbers.js';
import type { DensityEstimator, EstimatorKind, SerializedWeights, ZScore } from './types.js';

export const MODEL_FORMAT = 'robustsbi-model';
export const MODEL_FORMAT_VERSION = 1;
const KINDS: readonly EstimatorKind[] = ESTIMATOR_KINDS;

export interface CodeVersion {
  /** package.json version. */
  version: string;
  /** git commit, when the caller could find one. */
  commit?: string;
}

export interface TrainingSummary {
  epochs: number;
  bestEpoch: number;
  bestValLoss: number;
  stoppedBy: string;
  /** Simulations dropped as non-finite, before and during training. */
  dropped: number;
  nTrain: number;
  nVal: number;
  /** Learning-rate cuts taken (hyperparameter anneals); absent when none were. */
  anneals?: number;
  trainMs?: number;
  /**
   * A deep ensemble's members (robustsbi train --ensemble): each one's epochs, best validation NLL
   * and weight in the mixture (absent in files from before fitted weights: uniform).
   */
  members?: { epochs: number; bestValLoss: number; weight?: number }[];
}

/** What a model file records besides the estimator itself. */
export interface ModelMetadata {
  task: string;
  /** Parameter names (CSV headers for sampled theta). */
  paramNames: string[];
  seed: number;
  /** The simulation budget N the model was trained on (before the split). */
  n: number;
  training: Record<string, unknown>;
  summary: TrainingSummary;
  code: CodeVersion;
  backend: string;
  createdAt: string;
}

export interface SavedModel extends ModelMetadata {
  estimator: DensityEstimator;
}

interface ModelFileJson {
  format: typeof MODEL_FORMAT;
  version: number;
  estimator: {
    kind: EstimatorKind;
    thetaDim: number;
    xDim: number;
    config: Record<string, unknown>;
    zscore: ZScore;
    weights: { name: string; shape: number[]; data: string }[];
  };
  task: string;
  paramNames: string[];
  seed: number;
  n: number;
  training: Record<string, unknown>;
  summary: TrainingSummary;
  code: CodeVersion;
  backend: string;
  createdAt: string;
}

export function modelToJson(model: SavedModel): string {
  const e = model.estimator;
  const doc: ModelFileJson = {
    format: MODEL_FORMAT,
    version: MODEL_FORMAT_VERSION,
    estimator: {
      kind: e.kind,
      thetaDim: e.thetaDim,
      xDim: e.xDim,
      config: e.config,
      zscore: e.zscore,
      weights: e
        .getWeights()
        .map((w) => ({ name: w.name, shape: w.shape, data: encodeFloat32(w.values) })),
    },
    task: model.task,
    paramNames: model.paramNames,
    seed: model.seed,
    n: model.n,
    training: model.training,
    summary: model.summary,
    code: model.code,
    backend: model.backend,
    createdAt: model.createdAt,
  };
  return `${toJsonText(doc, 1)}\n`;
}

export function saveModel(path: string, model: SavedModel): void {
  writeFileAtomic(path, modelToJson(model));
}

/** Reads a model file and rebuilds its estimator (the caller disposes it). */
export function loadModel(path: string): SavedModel {
  return modelFromJson(readTextFile(path, 'model file'), `model file ${path}`);
}

/**
 * Rebuilds a model from the JSON text modelToJson wrote (the caller disposes its estimator). A bad
 * text is a FileFormatError of one sentence about `subject` ("model file m.json", "model artifact
 * models/abc").
 */
export function modelFromJson(text: string, subject = 'model JSON'): SavedModel {
  const raw = parseJsonText(text, subject);
  const fail = (problem: string): never => {
    throw new FileFormatError(`The ${subject} ${problem}.`);
  };
  const doc = raw as Partial<ModelFileJson> | null;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    fail('does not hold a JSON object');
  if (doc!.format !== MODEL_FORMAT) {
    fail(
      doc!.format === undefined
        ? `is not a robustsbi model (it has no "format": "${MODEL_FORMAT}" field)`
        : `is a "${String(doc!.format)}" file, not a robustsbi model`,
    );
  }
  if (doc!.version !== MODEL_FORMAT_VERSION) {
    fail(
      `has format version ${String(doc!.version)}, but this robustsbi reads version ${MODEL_FORMAT_VERSION}`,
    );
  }
  const est = doc!.estimator;
  if (typeof est !== 'object' || est === null) fail('has no "estimator" object');
  if (!KINDS.includes(est!.kind)) fail(`names an unknown estimator kind "${String(est!.kind)}"`);
  for (const k of ['thetaDim', 'xDim'] as const) {
    if (!Number.isInteger(est![k]) || est![k] < 1)
      fail(`has an invalid estimator.${k} (${String(est![k])})`);
  }
  if (typeof est!.config !== 'object' || est!.config === null)
    fail('has no estimator.config object');
  checkZScore(est!.zscore, est!.thetaDim, est!.xDim, fail);
  if (!Array.isArray(est!.weights)) fail('has no estimator.weights list');
  const weights: SerializedWeights[] = est!.weights.map((w, i) => {
    if (
      typeof w?.name !== 'string' ||
      !Array.isArray(w.shape) ||
      !w.shape.every((s) => Number.isInteger(s) && s >= 0)
    ) {
      fail(`has a malformed estimator.weights[${i}] (it needs a name, a shape and base64 data)`);
    }
    const size = w.shape.reduce((a, b) => a * b, 1);
    try {
      return { name: w.name, shape: w.shape, values: Array.from(decodeFloat32(w.data, size)) };
    } catch (e) {
      return fail(`has weight "${w.name}" whose data ${(e as Error).message}`);
    }
  });
  if (typeof doc!.task !== 'string' || doc!.task === '') fail('has no "task" name');
  if (
    !Array.isArray(doc!.paramNames) ||
    doc!.paramNames.length !== est!.thetaDim ||
    !doc!.paramNames.every((s) => typeof s === 'string')
  ) {
    fail(`has no list of ${est!.thetaDim} "paramNames"`);
  }
  if (!Number.isInteger(doc!.seed)) fail('has no integer "seed"');

  let estimator: DensityEstimator;
  try {
    estimator = restoreEstimator(
      est!.kind,
      est!.thetaDim,
      est!.xDim,
      est!.config,
      est!.zscore,
      weights,
    );
  } catch (e) {
    return fail(
      `does not describe a valid ${est!.kind} estimator (${firstSentence((e as Error).message)})`,
    );
  }
  const summary = reviveNonFinite(doc!.summary ?? {}) as TrainingSummary;
  return {
    estimator,
    task: doc!.task!,
    paramNames: doc!.paramNames!,
    seed: doc!.seed!,
    n: typeof doc!.n === 'number' ? doc!.n : NaN,
    training: reviveNonFinite(doc!.training ?? {}) as Record<string, unknown>,
    summary,
    code: (doc!.code ?? { version: 'unknown' }) as CodeVersion,
    backend: typeof doc!.backend === 'string' ? doc!.backend : 'unknown',
    createdAt: typeof doc!.createdAt === 'string' ? doc!.createdAt : '',
  };
}

function checkZScore(z: unknown, thetaDim: number, xDim: number, fail: (p: string) => never): void {
  const zs = z as Partial<ZScore> | null;
  if (typeof zs !== 'object' || zs === null) fail('has no estimator.zscore object');
  const lens = { thetaMean: thetaDim, thetaStd: thetaDim, xMean: xDim, xStd: xDim } as const;
  for (const [k, len] of Object.entries(lens) as [keyof ZScore, number][]) {
    const v = zs![k];
    if (
      !Array.isArray(v) ||
      v.length !== len ||
      !v.every((a) => typeof a === 'number' && Number.isFinite(a))
    ) {
      fail(`has an invalid estimator.zscore.${k} (it needs ${len} finite numbers)`);
    }
  }
}

function firstSentence(s: string): string {
  return s.split('\n')[0]!.replace(/\.$/, '');
}
