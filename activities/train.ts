// The train activity: NPE on the trial's simulations with its defense, a checkpoint in the artifact
// store after every epoch, heartbeats carrying the epoch and losses. A retried attempt (a killed or
// drained worker) resumes from the stored checkpoint: the store is authoritative, heartbeat details
// are only a hint (throttled heartbeats may lag behind the last checkpoint, or run ahead of a
// checkpoint whose write was cut off).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { createDefense, type DefenseOptions } from '../sbi/defenses/index.js';
import { createEstimator, taskEstimatorDefaults } from '../sbi/estimators/index.js';
import { loadModel, modelToJson, type SavedModel } from '../sbi/model-file.js';
import { CheckpointMismatchError } from '../sbi/errors.js';
import type { TrainingState } from '../sbi/npe-checkpoint.js';
import {
  DEFAULT_NPE_HYPERPARAMETERS,
  type NPEHyperparameters,
} from '../sbi/npe-hyperparameters.js';
import { trainNPE } from '../sbi/npe.js';
import { defaultValSize } from '../sbi/training-data.js';
import { createRng } from '../sbi/rng.js';
import { defaultThetaTransform } from '../sbi/transforms.js';
import { getTask } from '../sbi/tasks/index.js';
import type { Task } from '../sbi/types.js';
import type { TrialConfig } from '../sweeps/types.js';
import { artifactNames, decodeCheckpoint, encodeCheckpoint } from './artifacts.js';
import type { ActivityDeps } from './deps.js';
import { classify, invalidConfig } from './failures.js';
import { keepAlive } from './keep-alive.js';
import { loadDataset } from './simulate.js';

export type TrainInput = Pick<
  TrialConfig,
  | 'trialId'
  | 'modelId'
  | 'simulationId'
  | 'task'
  | 'estimator'
  | 'defense'
  | 'budget'
  | 'seed'
  | 'training'
>;

/** What a heartbeat of the train activity carries. */
export interface TrainHeartbeat {
  /** Whose training (a pack's trainMany trains several in turn); absent in older heartbeats. */
  trialId?: string;
  epoch: number;
  maxEpochs: number;
  trainLoss: number;
  valLoss: number;
  bestValLoss: number;
}

export interface TrainResult {
  modelArtifact: string;
  epochs: number;
  bestEpoch: number;
  bestValLoss: number;
  stoppedBy: string;
  /** Simulations dropped as non-finite (simulation and training). */
  dropped: number;
  nTrain: number;
  nVal: number;
  /** Wall time of the attempts that trained, summed over resumes is not known: this attempt's. */
  trainSeconds: number;
  /** Epochs already in the checkpoint this attempt resumed from (0: it started fresh). */
  resumedFromEpoch: number;
  /** Epochs this attempt trained. */
  epochsThisAttempt: number;
  /** true when the model existed (a trial with the same modelId trained it) and nothing was trained. */
  cached: boolean;
  backend: string;
}

interface Prepared {
  task: Task;
  hyperparameters: NPEHyperparameters;
  defenseOptions: DefenseOptions;
  architecture: Record<string, unknown>;
}

/** Every setting checked before any data is read: a bad one fails the trial once, not per retry. */
function prepare(input: TrainInput): Prepared {
  try {
    const task = getTask(input.task);
    const t = input.training;
    const hyperparameters: NPEHyperparameters = {
      ...DEFAULT_NPE_HYPERPARAMETERS,
      maxEpochs: t.maxEpochs,
      minEpochs: t.minEpochs,
      batchSize: t.batchSize,
      learningRate: t.learningRate,
      patience: t.patience,
      clipNorm: t.clipNorm === null ? Infinity : t.clipNorm,
      maxNanResets: t.maxNanResets,
      ...(t.valSize !== undefined ? { valSize: t.valSize } : {}),
    };
    const d = input.defense;
    const defenseOptions: DefenseOptions = {};
    if (d.beta !== undefined) defenseOptions.beta = d.beta;
    if (d.trainEps !== undefined) defenseOptions.trainEps = d.trainEps;
    if (d.mcSamples !== undefined) defenseOptions.mcSamples = d.mcSamples;
    if (d.probes !== undefined) defenseOptions.fast = { probes: d.probes };
    // Constructing once here surfaces a bad option now; the instance used for training is fresh.
    createDefense(d.name, defenseOptions)?.dispose?.();
    if (hyperparameters.valSize !== undefined && hyperparameters.valSize >= input.budget)
      throw new RangeError(
        `valSize ${hyperparameters.valSize} leaves no training rows out of ${input.budget} simulations.`,
      );
    return {
      task,
      hyperparameters,
      defenseOptions,
      // RABI's per-task settings (the MLP embedding for high-dimensional x) unless the spec overrides.
      architecture: { ...taskEstimatorDefaults(task.name), ...input.estimator.architecture },
    };
  } catch (err) {
    throw classify(err);
  }
}

function tmpDirOf(deps: ActivityDeps): string {
  return mkdtempSync(join(deps.tmpDir ?? tmpdir(), 'robustsbi-model-'));
}

/** Serializes through the model-file format so the artifact is exactly what `robustsbi train` writes. */
function modelBytes(model: SavedModel): Uint8Array {
  return new TextEncoder().encode(modelToJson(model));
}

/** Reads a stored model artifact back into an estimator (the caller disposes it). */
export async function loadModelArtifact(deps: ActivityDeps, name: string): Promise<SavedModel> {
  const bytes = await deps.artifacts.get(name);
  if (!bytes) throw new Error(`The model artifact ${name} does not exist.`);
  const dir = tmpDirOf(deps);
  try {
    const file = join(dir, 'model.json');
    writeFileSync(file, bytes);
    return loadModel(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function readCheckpoint(
  deps: ActivityDeps,
  name: string,
): Promise<TrainingState | undefined> {
  const bytes = await deps.artifacts.get(name);
  if (!bytes) return undefined;
  try {
    return decodeCheckpoint(bytes);
  } catch (err) {
    deps.logger.warn(`ignoring unreadable checkpoint ${name}: ${(err as Error).message}`, {
      component: 'activity',
    });
    return undefined;
  }
}

export async function train(deps: ActivityDeps, input: TrainInput): Promise<TrainResult> {
  const ctx = Context.current();
  const log = (m: string, meta: Record<string, unknown> = {}) =>
    deps.logger.info(m, { component: 'activity', trialId: input.trialId, ...meta });
  const modelArtifact = artifactNames.model(input.modelId);
  const checkpointName = artifactNames.checkpoint(input.modelId);

  const existing = await deps.artifacts.info(modelArtifact);
  if (existing && typeof existing.metadata.result === 'object' && existing.metadata.result) {
    log(`model ${modelArtifact} already trained; reusing it`);
    return { ...(existing.metadata.result as TrainResult), cached: true, epochsThisAttempt: 0 };
  }

  const p = prepare(input);
  const data = await loadDataset(deps, {
    purpose: 'train',
    task: input.task,
    n: input.budget,
    seed: input.seed,
    id: input.simulationId,
  });

  // Reconcile the previous attempt's last heartbeat with the stored checkpoint.
  let resumeFrom = await readCheckpoint(deps, checkpointName);
  const hint = ctx.info.heartbeatDetails as Partial<TrainHeartbeat> | undefined;
  const ours = hint?.trialId === undefined || hint.trialId === input.trialId;
  if (ours && hint?.epoch !== undefined && hint.epoch !== (resumeFrom?.epoch ?? 0)) {
    log(
      `attempt ${ctx.info.attempt}: the last heartbeat reported epoch ${hint.epoch}, the stored checkpoint holds ${resumeFrom?.epoch ?? 0}; resuming from the checkpoint`,
    );
  }

  const rng = createRng(input.seed);
  const started = performance.now();
  // Until the first epoch ends, the checkpoint's epoch is the progress to report.
  let lastBeat: TrainHeartbeat = {
    trialId: input.trialId,
    epoch: resumeFrom?.epoch ?? 0,
    maxEpochs: p.hyperparameters.maxEpochs,
    trainLoss: NaN,
    valLoss: NaN,
    bestValLoss: NaN,
  };
  const run = async (from: TrainingState | undefined) => {
    const defense = createDefense(input.defense.name, p.defenseOptions);
    try {
      return await trainNPE({
        data: { theta: data.theta, x: data.x, n: data.n },
        thetaDim: p.task.thetaDim,
        xDim: p.task.xDim,
        rng: rng.fork('train'),
        hyperparameters: p.hyperparameters,
        // RABI trains bounded-prior tasks in unconstrained space; the model comes back constrained.
        thetaTransform: defaultThetaTransform(p.task),
        createModel: (zscore) => {
          // The constructors only check the settings against each other (logScaleMin < logScaleMax,
          // bins >= 2, ...): whatever they refuse, no retry can build, so it fails the trial once.
          try {
            return createEstimator(input.estimator.kind, {
              thetaDim: p.task.thetaDim,
              xDim: p.task.xDim,
              zscore,
              config: p.architecture,
              rng: rng.fork('init'),
            });
          } catch (err) {
            throw invalidConfig(
              `Estimator "${input.estimator.kind}" cannot be built: ${(err as Error).message.replace(/\.$/, '')}.`,
              err,
            );
          }
        },
        ...(defense ? { defense } : {}),
        ...(from ? { resumeFrom: from } : {}),
        signal: ctx.cancellationSignal,
        onEpoch: (e) => {
          const beat: TrainHeartbeat = {
            trialId: input.trialId,
            epoch: e.epoch,
            maxEpochs: e.maxEpochs,
            trainLoss: e.trainLoss,
            valLoss: e.valLoss,
            bestValLoss: e.bestValLoss,
          };
          lastBeat = beat;
          ctx.heartbeat(beat);
        },
        checkpoint: async (state) => {
          // A stale attempt (its worker was cut off, the retry elsewhere has finished the model)
          // must not leave a checkpoint behind the finished model: it stops here instead.
          if (await deps.artifacts.exists(modelArtifact))
            throw new Error(
              `train attempt ${ctx.info.attempt} of ${input.modelId} is superseded: the model was finished by another attempt`,
            );
          await deps.artifacts.put(checkpointName, encodeCheckpoint(state), {
            kind: 'checkpoint',
            trialId: input.trialId,
            epoch: state.epoch,
          });
        },
      });
    } finally {
      defense?.dispose?.();
    }
  };

  let result;
  const stopKeepAlive = keepAlive(ctx, () => lastBeat);
  try {
    if (resumeFrom)
      log(`resuming ${input.modelId} from its checkpoint at epoch ${resumeFrom.epoch}`);
    try {
      result = await run(resumeFrom);
    } catch (err) {
      // A checkpoint that no longer fits (written by other code) is discarded, not fatal.
      if (resumeFrom && err instanceof CheckpointMismatchError) {
        log(`discarding the checkpoint: ${err.message}`);
        await deps.artifacts.delete(checkpointName);
        resumeFrom = undefined;
        result = await run(undefined);
      } else throw err;
    }
  } catch (err) {
    throw classify(err);
  } finally {
    stopKeepAlive();
  }

  const trainSeconds = (performance.now() - started) / 1000;
  const resumedFromEpoch = resumeFrom?.epoch ?? 0;
  const out: TrainResult = {
    modelArtifact,
    epochs: result.epochs,
    bestEpoch: result.bestEpoch,
    bestValLoss: result.bestValLoss,
    stoppedBy: result.stoppedBy,
    dropped: data.dropped + result.dropped,
    nTrain: result.nTrain,
    nVal: result.nVal,
    trainSeconds,
    resumedFromEpoch,
    epochsThisAttempt: result.epochs - resumedFromEpoch,
    cached: false,
    backend: deps.backend,
  };
  try {
    const bytes = modelBytes({
      estimator: result.model,
      task: input.task,
      paramNames: p.task.paramNames,
      seed: input.seed,
      n: input.budget,
      training: {
        ...p.hyperparameters,
        valSize: p.hyperparameters.valSize ?? defaultValSize(data.n - result.dropped),
        estimator: input.estimator.kind,
        defense: input.defense.name,
        ...p.defenseOptions,
        modelId: input.modelId,
      },
      summary: {
        epochs: result.epochs,
        bestEpoch: result.bestEpoch,
        bestValLoss: result.bestValLoss,
        stoppedBy: result.stoppedBy,
        dropped: out.dropped,
        nTrain: result.nTrain,
        nVal: result.nVal,
        trainMs: Math.round(trainSeconds * 1000),
      },
      code: { version: deps.codeVersion },
      backend: deps.backend,
      createdAt: new Date().toISOString(),
    });
    // The result rides along in the metadata so a later trial with this modelId can reuse it.
    // Non-finite numbers cannot be stored in MongoDB documents.
    const storable = JSON.parse(
      JSON.stringify(out, (_k, v: unknown) =>
        typeof v === 'number' && !Number.isFinite(v) ? null : v,
      ),
    ) as TrainResult;
    await deps.artifacts.put(modelArtifact, bytes, { kind: 'model', result: storable });
  } finally {
    result.model.dispose();
  }
  // The model is the final state; its checkpoint is no longer needed.
  await deps.artifacts.delete(checkpointName);
  log(
    `trained ${input.modelId}: ${out.epochs} epochs (${out.stoppedBy}), ${out.epochsThisAttempt} in this attempt, best validation NLL ${out.bestValLoss.toFixed(4)}, ${result.fused ? 'fused wasm step' : 'tfjs step'}`,
  );
  return out;
}
