// One way to fit a model: a training configuration and its simulations in, the model file's
// contents out. `robustsbi train` and the sweep's train activity both call fitModel, so the same
// configuration gives the same file whichever of them trained it; they keep only their own
// concerns (arguments and printing; checkpoints, heartbeats and artifacts).
import { defenseDefaults, createDefense, type DefenseOptions } from './defenses/index.js';
import type { DefenseName } from './defenses/names.js';
import { createEstimator, taskEstimatorDefaults } from './estimators/index.js';
import type { CodeVersion, SavedModel } from './model-file.js';
import type { TrainingState } from './npe-checkpoint.js';
import { resolveHyperparameters, type NPEHyperparameters } from './npe-hyperparameters.js';
import { trainNPE, type EpochProgress, type TrainNPEResult } from './npe.js';
import { createRng } from './rng.js';
import { DivergedError } from './errors.js';
import { presetSettings, type Preset, type PresetName } from './presets.js';
import { getTask } from './tasks/index.js';
import { defaultValSize } from './training-data.js';
import { defaultThetaTransform } from './transforms.js';
import type { XTransformSpec } from './x-transform.js';
import type { EstimatorKind, Task } from './types.js';

export interface FitConfig {
  task: string;
  /** Estimator kind (maf, nsf, gaussian, mdn). */
  estimator: string;
  /** Architecture settings over the task's and the estimator's defaults. */
  architecture?: Record<string, unknown>;
  defense: string;
  defenseOptions?: DefenseOptions;
  /** Settings over DEFAULT_NPE_HYPERPARAMETERS. */
  hyperparameters?: Partial<NPEHyperparameters>;
  /** Seeds initialization, the split and the shuffles (and, upstream, the simulations). */
  seed: number;
  /**
   * Named estimator and training choices (sbi/presets.ts; default robustsbi's). Under a preset
   * whose validation rows are 'extra' (rabi), the data's last extraValidationRows rows validate.
   */
  preset?: PresetName;
  /** Train on transformed x (sbi/x-transform.ts); the model file's config records it. */
  xTransform?: XTransformSpec;
  /**
   * Member k > 0 of a deep ensemble (sbi/estimators/deep-ensemble.ts): its own initialization and
   * shuffles, forked from the seed by k, on member 0's split. Absent or 0: the seed's own run.
   */
  member?: number;
}

/** Training simulations: n finite rows, and how many the simulation had already dropped. */
export interface FitData {
  theta: Float32Array;
  x: Float32Array;
  n: number;
  dropped: number;
}

/** The caller's hooks into training (trainNPE's options of the same names). */
export interface FitHooks {
  onEpoch?(progress: EpochProgress): void | Promise<void>;
  checkpoint?(state: TrainingState): void | Promise<void>;
  /** trainNPE's checkpointEveryMs: at most one checkpoint per this many ms (0: every epoch). */
  checkpointEveryMs?: number;
  resumeFrom?: TrainingState;
  keepFinalState?: boolean;
  signal?: AbortSignal;
}

/** What the model file records about who trained it, beside the configuration. */
export interface FitProvenance {
  code: CodeVersion;
  backend: string;
  /** The simulation file trained on, where the rows did not come from simulating with the seed. */
  sims?: string;
}

export interface FittedModel {
  /** The model file's contents; the caller owns (and disposes) saved.estimator. */
  saved: SavedModel;
  result: TrainNPEResult;
  trainMs: number;
}

interface ResolvedFit {
  preset: Preset;
  task: Task;
  defense: DefenseName;
  defenseOptions: DefenseOptions;
  hyperparameters: NPEHyperparameters;
  architecture: Record<string, unknown>;
}

/**
 * Every setting checked before any data is read or simulated, so a bad one fails at once: the task,
 * the hyperparameters, the defense and its options, and a validation size that leaves training rows
 * out of `budget` simulations. RangeError or the registries' "Unknown ..." errors.
 */
export function checkFitConfig(config: FitConfig, budget: number): ResolvedFit {
  const task = getTask(config.task);
  const preset = presetSettings(config.preset);
  const hyperparameters = resolveHyperparameters({
    ...(preset.validation === 'extra' ? { valSize: preset.extraValidationRows } : {}),
    ...Object.fromEntries(
      Object.entries(config.hyperparameters ?? {}).filter(([, v]) => v !== undefined),
    ),
  });
  const defenseOptions = Object.fromEntries(
    Object.entries(config.defenseOptions ?? {}).filter(([, v]) => v !== undefined),
  ) as DefenseOptions;
  // Constructing once surfaces an unknown name or a bad option now; a fresh instance trains.
  createDefense(config.defense, defenseOptions)?.dispose?.();
  const defense = config.defense as DefenseName;
  if (hyperparameters.valSize !== undefined && hyperparameters.valSize >= budget)
    throw new RangeError(
      `valSize ${hyperparameters.valSize} leaves no training rows out of ${budget} simulations.`,
    );
  return {
    preset,
    task,
    defense,
    defenseOptions,
    hyperparameters,
    // RABI's per-task settings (the MLP embedding for high-dimensional x), then the preset's
    // estimator choices, unless overridden.
    architecture: {
      ...taskEstimatorDefaults(task.name),
      ...preset.architecture[config.estimator as EstimatorKind],
      ...config.architecture,
    },
  };
}

/**
 * Under a preset whose validation rows are simulated beside the budget, valSize counts simulations.
 * Where the simulator dropped some (pyloric keeps ~1 in 10), the last rows validate in the
 * validation simulations' share of the rows kept: the drops are spread over the dataset, and the
 * rows do not record which simulation they came from. Undefined: valSize rows, as set.
 */
function extraValidationRows(r: ResolvedFit, data: FitData): number | undefined {
  const v = r.hyperparameters.valSize;
  if (r.preset.validation !== 'extra' || v === undefined || data.dropped === 0) return undefined;
  return Math.max(1, Math.round((v * data.n) / (data.n + data.dropped)));
}

/**
 * Trains NPE on `data` as `config` says (random streams forked from the seed, RABI's theta
 * transform for bounded priors) and returns the model file's contents. Throws DivergedError,
 * CheckpointMismatchError (a resumeFrom of another run), RangeError for a setting no retry can fix.
 */
export async function fitModel(
  config: FitConfig,
  data: FitData,
  hooks: FitHooks,
  provenance: FitProvenance,
): Promise<FittedModel> {
  const budget = data.n + data.dropped;
  const r = checkFitConfig(config, budget);
  const { task } = r;
  const valRows = extraValidationRows(r, data);
  const started = performance.now();
  let result: TrainNPEResult | undefined;
  let restarts = 0;
  // RABI's rule: a run that ends diverged starts again with the learning rate x 0.1.
  for (let lr = r.hyperparameters.learningRate; result === undefined; lr *= 0.1) {
    try {
      // A restart is a new run: a checkpoint of the diverged one does not resume it.
      const { resumeFrom, ...fresh } = hooks;
      const runHooks = restarts === 0 && resumeFrom ? { ...fresh, resumeFrom } : fresh;
      result = await trainOnce(config, r, data, runHooks, {
        ...r.hyperparameters,
        ...(valRows !== undefined ? { valSize: valRows } : {}),
        learningRate: lr,
      });
    } catch (err) {
      if (!(err instanceof DivergedError)) throw err;
      if (restarts >= r.preset.nanRestarts)
        throw restarts > 0 ? new DivergedError(err.epoch, err.nanResets, restarts) : err;
      restarts += 1;
    }
  }
  const trainMs = performance.now() - started;
  const saved: SavedModel = {
    estimator: result.model,
    task: task.name,
    paramNames: task.paramNames,
    seed: config.seed,
    n: budget,
    training: {
      ...r.hyperparameters,
      valSize: r.hyperparameters.valSize ?? defaultValSize(data.n - result.dropped),
      estimator: config.estimator,
      preset: config.preset ?? 'robustsbi',
      ...(restarts > 0
        ? { nanRestarts: restarts, learningRate: r.hyperparameters.learningRate * 0.1 ** restarts }
        : {}),
      ...(provenance.sims !== undefined ? { sims: provenance.sims } : {}),
      defense: r.defense,
      ...defenseDefaults(r.defense),
      ...r.defenseOptions,
    },
    summary: {
      epochs: result.epochs,
      bestEpoch: result.bestEpoch,
      bestValLoss: result.bestValLoss,
      stoppedBy: result.stoppedBy,
      dropped: data.dropped + result.dropped,
      nTrain: result.nTrain,
      nVal: result.nVal,
      ...(result.anneals > 0 ? { anneals: result.anneals } : {}),
      trainMs: Math.round(trainMs),
    },
    code: provenance.code,
    backend: provenance.backend,
    createdAt: new Date().toISOString(),
  };
  return { saved, result, trainMs };
}

/** One trainNPE run of the resolved configuration at the given hyperparameters. */
async function trainOnce(
  config: FitConfig,
  r: ResolvedFit,
  data: FitData,
  hooks: FitHooks,
  hyperparameters: NPEHyperparameters,
): Promise<TrainNPEResult> {
  const { task } = r;
  const seeded = createRng(config.seed);
  const rng = config.member ? seeded.fork(`member/${config.member}`) : seeded;
  const defense = createDefense(r.defense, r.defenseOptions);
  try {
    return await trainNPE({
      data: { theta: data.theta, x: data.x, n: data.n },
      thetaDim: task.thetaDim,
      xDim: task.xDim,
      rng: rng.fork('train'),
      ...(config.member ? { splitRng: seeded.fork('train') } : {}),
      hyperparameters,
      zscoreTheta: r.preset.zscoreTheta,
      validationRows: r.preset.validation === 'extra' ? 'last' : 'random',
      // RABI trains bounded-prior tasks in unconstrained space; the model comes back constrained.
      thetaTransform: defaultThetaTransform(task),
      ...(config.xTransform ? { xTransform: config.xTransform } : {}),
      createModel: (zscore) => {
        // The constructors only check the settings against each other (logScaleMin < logScaleMax,
        // bins >= 2, ...): whatever they refuse, no retry can build.
        try {
          return createEstimator(config.estimator, {
            thetaDim: task.thetaDim,
            xDim: task.xDim,
            zscore,
            config: r.architecture,
            rng: rng.fork('init'),
          });
        } catch (err) {
          throw new RangeError(
            `Estimator "${config.estimator}" cannot be built: ${(err as Error).message.replace(/\.$/, '')}.`,
            { cause: err },
          );
        }
      },
      ...(defense ? { defense } : {}),
      ...(hooks.onEpoch ? { onEpoch: hooks.onEpoch } : {}),
      ...(hooks.checkpoint ? { checkpoint: hooks.checkpoint } : {}),
      ...(hooks.checkpointEveryMs !== undefined
        ? { checkpointEveryMs: hooks.checkpointEveryMs }
        : {}),
      ...(hooks.resumeFrom ? { resumeFrom: hooks.resumeFrom } : {}),
      ...(hooks.keepFinalState ? { keepFinalState: true } : {}),
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    });
  } finally {
    defense?.dispose?.();
  }
}
