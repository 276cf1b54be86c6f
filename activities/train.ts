// The train activity: NPE on the trial's simulations with its defense, a checkpoint in the artifact
// store every few seconds (deps.checkpointSeconds) and before a cancelled attempt stops, heartbeats
// carrying the epoch and losses. A retried attempt (a killed or drained worker) resumes from the
// stored checkpoint: the store is authoritative, heartbeat details are only a hint (heartbeats run
// ahead of a throttled checkpoint, and may lag behind one or run ahead of one whose write was cut
// off).
import { Context } from '@temporalio/activity';
import type { DefenseOptions } from '../sbi/defenses/index.js';
import { CheckpointMismatchError } from '../sbi/errors.js';
import { checkFitConfig, fitModel, type FitConfig, type FitHooks } from '../sbi/fit.js';
import type { SavedModel } from '../sbi/model-file.js';
import type { TrainingState } from '../sbi/npe-checkpoint.js';
import type { TrialConfig } from '../sweeps/types.js';
import { trainingRows } from '../sweeps/expand.js';
import {
  artifactNames,
  decodeCheckpoint,
  decodeModel,
  encodeCheckpoint,
  encodeModel,
} from './artifacts.js';
import { DEFAULT_CHECKPOINT_SECONDS, type ActivityDeps } from './deps.js';
import { classify } from './failures.js';
import { keepAlive } from './keep-alive.js';
import { LearningCurveStore } from '../results/learning-curves.js';
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

/** At most one learning-curve write per this many ms of a training. */
const CURVE_WRITE_MS = 1000;

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

/** The sbi/ fit configuration of a trial: the sweep's settings in sbi's terms. */
export function fitConfigOf(input: TrainInput): FitConfig {
  const t = input.training;
  const d = input.defense;
  const defenseOptions: DefenseOptions = {
    beta: d.beta,
    trainEps: d.trainEps,
    mcSamples: d.mcSamples,
    gradClamp: d.gradClamp,
    ...(d.probes !== undefined ? { fast: { probes: d.probes } } : {}),
  };
  return {
    task: input.task,
    estimator: input.estimator.kind,
    architecture: input.estimator.architecture,
    defense: d.name,
    defenseOptions,
    hyperparameters: {
      maxEpochs: t.maxEpochs,
      minEpochs: t.minEpochs,
      batchSize: t.batchSize,
      learningRate: t.learningRate,
      patience: t.patience,
      clipNorm: t.clipNorm === null ? Infinity : t.clipNorm,
      maxNanResets: t.maxNanResets,
      valSize: t.valSize,
      stopRule: t.stopRule,
      anneals: t.anneals,
      annealFactor: t.annealFactor,
      annealPatience: t.annealPatience,
      dropLast: t.dropLast,
    },
    seed: input.seed,
    ...(t.preset !== undefined ? { preset: t.preset } : {}),
  };
}

/** Reads a stored model artifact back into an estimator (the caller disposes it). */
export async function loadModelArtifact(deps: ActivityDeps, name: string): Promise<SavedModel> {
  const bytes = await deps.artifacts.get(name);
  if (!bytes) throw new Error(`The model artifact ${name} does not exist.`);
  return decodeModel(bytes, name);
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

  const config = fitConfigOf(input);
  // Every setting checked before any data is read: a bad one fails the trial once, not per retry.
  const rows = trainingRows(input.budget, input.training);
  try {
    checkFitConfig(config, rows);
  } catch (err) {
    throw classify(err);
  }
  const data = await loadDataset(deps, {
    purpose: 'train',
    task: input.task,
    n: rows,
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

  const started = performance.now();
  // Until the first epoch ends, the checkpoint's epoch is the progress to report.
  let lastBeat: TrainHeartbeat = {
    trialId: input.trialId,
    epoch: resumeFrom?.epoch ?? 0,
    maxEpochs: input.training.maxEpochs,
    trainLoss: NaN,
    valLoss: NaN,
    bestValLoss: NaN,
  };
  // Each epoch's losses go to the learning_curves collection in order, off the training's path, at
  // most one write a second (the first epoch at once): a write per short epoch cost FerretDB more
  // CPU than the epoch. A failed write costs the dashboard points, never the training.
  let curves: LearningCurveStore | undefined;
  let curveWrites: Promise<void> = Promise.resolve();
  let pendingEpochs: TrainHeartbeat[] = [];
  let lastCurveWrite = -Infinity;
  const flushCurve = () => {
    if (pendingEpochs.length === 0) return;
    const batch = pendingEpochs;
    pendingEpochs = [];
    lastCurveWrite = performance.now();
    curveWrites = curveWrites
      .then(() =>
        (curves ??= new LearningCurveStore(deps.store.db)).putEpochs(
          input.trialId,
          input.modelId,
          ctx.info.attempt,
          batch,
        ),
      )
      .catch((err: unknown) => {
        const epochs = `${batch[0]!.epoch} to ${batch[batch.length - 1]!.epoch}`;
        deps.logger.warn(
          `learning curve of ${input.trialId}, epochs ${epochs}: ${(err as Error).message}`,
          { component: 'activity' },
        );
      });
  };
  const storeEpoch = (e: TrainHeartbeat) => {
    pendingEpochs.push(e);
    if (performance.now() - lastCurveWrite >= CURVE_WRITE_MS) flushCurve();
  };
  const hooks: FitHooks = {
    signal: ctx.cancellationSignal,
    checkpointEveryMs: 1000 * (deps.checkpointSeconds ?? DEFAULT_CHECKPOINT_SECONDS),
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
      storeEpoch(beat);
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
  };
  const provenance = { code: { version: deps.codeVersion }, backend: deps.backend };
  const dataset = { theta: data.theta, x: data.x, n: data.n, dropped: data.dropped };
  const run = (from: TrainingState | undefined) =>
    fitModel(config, dataset, { ...hooks, ...(from ? { resumeFrom: from } : {}) }, provenance);

  let fitted;
  const stopKeepAlive = keepAlive(ctx, () => lastBeat);
  try {
    if (resumeFrom)
      log(`resuming ${input.modelId} from its checkpoint at epoch ${resumeFrom.epoch}`);
    try {
      fitted = await run(resumeFrom);
    } catch (err) {
      // A checkpoint that no longer fits (written by other code) is discarded, not fatal.
      if (resumeFrom && err instanceof CheckpointMismatchError) {
        log(`discarding the checkpoint: ${err.message}`);
        await deps.artifacts.delete(checkpointName);
        resumeFrom = undefined;
        fitted = await run(undefined);
      } else throw err;
    }
  } catch (err) {
    throw classify(err);
  } finally {
    stopKeepAlive();
    flushCurve();
    await curveWrites;
  }

  const trainSeconds = (performance.now() - started) / 1000;
  const { result, saved } = fitted;
  const resumedFromEpoch = resumeFrom?.epoch ?? 0;
  const out: TrainResult = {
    modelArtifact,
    epochs: result.epochs,
    bestEpoch: result.bestEpoch,
    bestValLoss: result.bestValLoss,
    stoppedBy: result.stoppedBy,
    dropped: saved.summary.dropped,
    nTrain: result.nTrain,
    nVal: result.nVal,
    trainSeconds,
    resumedFromEpoch,
    epochsThisAttempt: result.epochs - resumedFromEpoch,
    cached: false,
    backend: deps.backend,
  };
  try {
    // The result rides along in the metadata so a later trial with this modelId can reuse it
    // (the artifact store encodes its non-finite numbers). The bytes are what `robustsbi train` writes.
    await deps.artifacts.put(modelArtifact, encodeModel(saved), { kind: 'model', result: out });
  } finally {
    saved.estimator.dispose();
  }
  // The model is the final state; its checkpoint is no longer needed.
  await deps.artifacts.delete(checkpointName);
  log(
    `trained ${input.modelId}: ${out.epochs} epochs (${out.stoppedBy}), ${out.epochsThisAttempt} in this attempt, best validation NLL ${out.bestValLoss.toFixed(4)}, ${result.fused ? 'fused wasm step' : 'tfjs step'}`,
  );
  return out;
}
