// NPE training as RABI runs it (research/paper.md section 7): Adam, shuffled minibatches, global
// gradient-norm clipping, early stopping on a held-out validation NLL with RABI's counter rule, and
// recovery from a NaN validation loss. Progress, checkpoint and resume hooks serve the workflow
// layer; the `defense` hook is where FIM / TRADES / adversarial / noise training plug in.
import { Adam } from './adam.js';
import { meanPerSampleStd } from './attacks/eps.js';
import { tf } from './backend.js';
import { earlyStoppingStep, initialEarlyStopping, type StoppedBy } from './early-stopping.js';
import { DivergedError } from './errors.js';
import { computeZScore } from './estimators/zscore.js';
import { finiteOrNull } from './json-numbers.js';
import {
  checkResumable,
  decodeAdam,
  decodeWeights,
  encodeAdam,
  encodeWeights,
  streamPath,
  type TrainingState,
} from './npe-checkpoint.js';
import { resolveHyperparameters, type NPEHyperparameters } from './npe-hyperparameters.js';
import { defaultValSize, dropNonFinite, gatherRows, splitOrder } from './training-data.js';
import {
  isIdentityXTransform,
  transformRows,
  validateXTransformSpec,
  XTransformedEstimator,
  type XTransformSpec,
} from './x-transform.js';
import {
  ConstrainedEstimator,
  isIdentityTransform,
  toUnconstrained,
  validateTransformSpec,
  type ThetaTransformSpec,
} from './transforms.js';
import type { DensityEstimator, FusedPlan, FusedTrainer, RandomStream, ZScore } from './types.js';

// Until activities/failures.ts imports it from errors.ts.

/** What a defense sees at each training step. */
export interface DefenseContext {
  model: DensityEstimator;
  /** Deterministic per epoch (forked from the training stream), so resumed runs draw the same numbers. */
  rng: RandomStream;
  /** 0-based epoch index and the optimizer step about to be taken (1-based, as Adam counts). */
  epoch: number;
  step: number;
  /** Mean over training rows of the per-row std of raw x (RABI's X.std(1).mean()), for relative epsilons. */
  xScale: number;
}

/**
 * The extension point for training-time defenses. Every hook runs inside the step's tf.tidy: tensors
 * a defense keeps across steps (an EMA of gradients, say) must be tf.keep'd or Variables, and the
 * defense disposes them in dispose(). All hooks are optional.
 */
export interface TrainingDefense {
  readonly name: string;
  /** Replaces the batch before the loss (adversarial training, noise augmentation). Not differentiated. */
  prepareBatch?(
    theta: tf.Tensor2D,
    x: tf.Tensor2D,
    ctx: DefenseContext,
  ): { theta: tf.Tensor2D; x: tf.Tensor2D };
  /** A term added to the mean NLL and differentiated with it (TRADES). Never part of the reported loss. */
  extraLoss?(theta: tf.Tensor2D, x: tf.Tensor2D, ctx: DefenseContext): tf.Scalar;
  /**
   * Gradients added to the NLL gradient before clipping (FIM trace with its EMA, paper.md 2.2), keyed
   * by variable name as in model.trainableVariables(); a missing name adds nothing.
   */
  extraGrads?(theta: tf.Tensor2D, x: tf.Tensor2D, ctx: DefenseContext): Record<string, tf.Tensor>;
  /**
   * The same regularizer described for a fused trainer to run (DensityEstimator.fusedTrainer), or
   * null where this configuration has no fused form; absent means none.
   */
  fusedPlan?(): FusedPlan | null;
  /** JSON-serializable state for checkpoints, and its inverse. */
  getState?(): unknown;
  setState?(state: unknown): void;
  dispose?(): void;
}

export interface EpochProgress {
  /** 1-based. */
  epoch: number;
  maxEpochs: number;
  trainLoss: number;
  valLoss: number;
  bestValLoss: number;
  /** Early-stopping counter after this epoch (stops when it exceeds patience). */
  counter: number;
  epochMs: number;
  /** This process's CPU time (user + system) over the same span as epochMs. */
  epochCpuMs: number;
  /** Since this call of trainNPE started. */
  elapsedMs: number;
}

export interface TrainingData {
  theta: Float32Array;
  x: Float32Array;
  n: number;
}

export interface TrainNPEOptions {
  data: TrainingData;
  thetaDim: number;
  xDim: number;
  /** Builds the untrained model from the training split's z-score statistics. */
  createModel(zscore: ZScore): DensityEstimator;
  /**
   * Source of the split, the shuffles and the defense noise. Only fork() is used, so a stream with
   * the same seed gives the same run, and a resumed run the same numbers as an uninterrupted one.
   */
  rng: RandomStream;
  /**
   * The split's own stream, where it is not rng's: the members of an ensemble share their split
   * (and so their z-score statistics) and draw everything else apart.
   */
  splitRng?: RandomStream;
  hyperparameters?: Partial<NPEHyperparameters>;
  defense?: TrainingDefense;
  onEpoch?(progress: EpochProgress): void | Promise<void>;
  /**
   * Called with the full state after an epoch (every epoch, or as checkpointEveryMs allows); a later
   * trainNPE({ resumeFrom }) continues exactly.
   */
  checkpoint?(state: TrainingState): void | Promise<void>;
  /**
   * Checkpoint at most once per this many milliseconds (absent or 0: after every epoch). The epoch
   * that ends the run is always checkpointed, and an abort first checkpoints the epochs done since
   * the last one, so only a hard kill loses epochs, at most this long of them. Encoding and storing
   * a state can cost more than a short epoch.
   */
  checkpointEveryMs?: number;
  resumeFrom?: TrainingState;
  /**
   * Return the state after the last epoch (TrainNPEResult.finalState), to go on from later, without
   * the cost of a checkpoint at every epoch.
   */
  keepFinalState?: boolean;
  /** Checked between epochs; an aborted signal stops training by throwing its reason. */
  signal?: AbortSignal;
  /**
   * Train in unconstrained space (research/paper.md section 7): the model is fit to u = T^-1(theta)
   * (rows outside the support are dropped with the non-finite ones), defenses and checkpoints see
   * that model, and the returned model is a ConstrainedEstimator with T re-attached. The returned
   * zscore and losses are those of u.
   */
  thetaTransform?: ThetaTransformSpec;
  /**
   * Fit the model to transformed x (sbi/x-transform.ts: log on positive dimensions); the returned
   * model is an XTransformedEstimator taking raw x, and its zscore is that of the transformed x. Not
   * with a defense: a defense's eps would be measured in the transformed x.
   */
  xTransform?: XTransformSpec;
  /**
   * Take the estimator's fused training step (hand-written wasm kernels, e.g. the affine MAF's)
   * when the backend keeps tensors in host memory and the defense, if any, has a fused form
   * (TrainingDefense.fusedPlan). It computes the same step as tfjs; false forces the tfjs step (for
   * comparisons). Default true.
   */
  fused?: boolean;
  /** Whether theta is z-scored inside the model (default true; RABI: false, sbi/presets.ts). */
  zscoreTheta?: boolean;
  /**
   * Which rows validate: a random subset (default), or the last valSize rows, simulated beside the
   * training budget (RABI's separate validation rows, sbi/presets.ts).
   */
  validationRows?: 'random' | 'last';
}

export interface TrainNPEResult {
  /** Holds the best weights. The caller owns (and disposes) it. */
  model: DensityEstimator;
  zscore: ZScore;
  /** Epochs run, including any before a resume. */
  epochs: number;
  /**
   * 1-based epoch of the best validation loss (never 0: a run with no finite one throws
   * DivergedError), or 0 for a model fitted in closed form.
   */
  bestEpoch: number;
  bestValLoss: number;
  trainLosses: number[];
  valLosses: number[];
  stoppedBy: StoppedBy;
  /** Whether the epochs ran the estimator's fused step (TrainNPEOptions.fused) or tfjs ops. */
  fused: boolean;
  nanResets: number;
  /** Learning-rate cuts taken (hyperparameter anneals). */
  anneals: number;
  /** Rows dropped because theta or x had a non-finite value. */
  dropped: number;
  nTrain: number;
  nVal: number;
  /** The state after the last epoch (before the best weights were restored), with keepFinalState. */
  finalState?: TrainingState;
  /**
   * log q of each validation row under the returned weights, in the space the model trained in
   * (transformed theta and x): runs on one split (deep-ensemble members) see the same rows in the
   * same order, and the Jacobians they share cancel in any comparison between them.
   */
  valLogProbs: Float64Array;
}

/** Mean -log q over all rows, in chunks so validation sets of any size fit. */
export function meanNLL(
  model: DensityEstimator,
  theta: tf.Tensor2D,
  x: tf.Tensor2D,
  chunk = 4096,
): number {
  const n = theta.shape[0];
  let total = 0;
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const s = tf.tidy(() => {
      const lp = model.logProb(
        tf.slice(theta, [start, 0], [size, -1]),
        tf.slice(x, [start, 0], [size, -1]),
      );
      return tf.sum(lp);
    });
    total -= s.dataSync()[0]!;
    s.dispose();
  }
  return total / n;
}

/** log q of every row, in chunks so validation sets of any size fit. */
export function rowLogProbs(
  model: DensityEstimator,
  theta: tf.Tensor2D,
  x: tf.Tensor2D,
  chunk = 4096,
): Float64Array {
  const n = theta.shape[0];
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const lp = tf.tidy(() =>
      model.logProb(tf.slice(theta, [start, 0], [size, -1]), tf.slice(x, [start, 0], [size, -1])),
    );
    out.set(lp.dataSync(), start);
    lp.dispose();
  }
  return out;
}

const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function trainNPE(opts: TrainNPEOptions): Promise<TrainNPEResult> {
  const started = performance.now();
  const hp = resolveHyperparameters(opts.hyperparameters);
  const { thetaDim, xDim, rng, defense } = opts;

  const transform =
    opts.thetaTransform && !isIdentityTransform(opts.thetaTransform)
      ? validateTransformSpec(opts.thetaTransform, thetaDim)
      : undefined;
  const thetaIn = transform
    ? toUnconstrained(transform, opts.data.theta.subarray(0, opts.data.n * thetaDim), opts.data.n)
    : opts.data.theta;
  const xTransform =
    opts.xTransform && !isIdentityXTransform(opts.xTransform)
      ? validateXTransformSpec(opts.xTransform, xDim)
      : undefined;
  if (xTransform && defense)
    throw new RangeError(
      'A transformed x does not combine with a defense, whose eps is measured in x as simulated.',
    );
  const xIn = xTransform
    ? transformRows(xTransform, opts.data.x.subarray(0, opts.data.n * xDim), opts.data.n)
    : opts.data.x;
  const clean = dropNonFinite(thetaIn, xIn, opts.data.n, thetaDim, xDim);
  if (clean.n < 2) {
    throw new RangeError(
      `NPE needs at least 2 finite simulations, got ${clean.n} (${clean.dropped} dropped as non-finite).`,
    );
  }
  const nVal = hp.valSize ?? defaultValSize(clean.n);
  const nTrain = clean.n - nVal;
  if (nTrain < 1)
    throw new RangeError(`Validation size ${nVal} leaves no training rows out of ${clean.n}.`);
  const order = splitOrder(clean.n, nVal, opts.validationRows, opts.splitRng ?? rng);
  const valRows = order.subarray(0, nVal);
  const trainRows = order.subarray(nVal);
  const trainTheta = gatherRows(clean.theta, thetaDim, trainRows);
  const trainX = gatherRows(clean.x, xDim, trainRows);
  const zscore = computeZScore(trainTheta, trainX, nTrain, thetaDim, xDim);
  if (opts.zscoreTheta === false) {
    zscore.thetaMean = zscore.thetaMean.map(() => 0);
    zscore.thetaStd = zscore.thetaStd.map(() => 1);
  }
  const xScale = meanPerSampleStd(trainX, nTrain, xDim);

  const model = opts.createModel(zscore);
  if (model.thetaDim !== thetaDim || model.xDim !== xDim) {
    throw new RangeError(
      `createModel built a ${model.thetaDim}->${model.xDim} model for ${thetaDim}-dim theta and ${xDim}-dim x.`,
    );
  }
  if (model.fitClosedForm) {
    // No epochs: fitted on the training rows, scored on the validation rows as an epoch would be.
    try {
      if (defense)
        throw new RangeError(
          `A ${model.kind} estimator is fitted in closed form: it takes no defense.`,
        );
      model.fitClosedForm(trainTheta, trainX, nTrain);
      const valTheta = tf.tensor2d(gatherRows(clean.theta, thetaDim, valRows), [nVal, thetaDim]);
      const valX = tf.tensor2d(gatherRows(clean.x, xDim, valRows), [nVal, xDim]);
      const valLogProbs = rowLogProbs(model, valTheta, valX);
      valTheta.dispose();
      valX.dispose();
      const valLoss = -valLogProbs.reduce((s, v) => s + v, 0) / nVal;
      if (!Number.isFinite(valLoss)) throw new DivergedError(0, 0);
      return {
        model: wrapTransforms(model, transform, xTransform),
        zscore,
        epochs: 0,
        bestEpoch: 0,
        bestValLoss: valLoss,
        trainLosses: [],
        valLosses: [valLoss],
        stoppedBy: 'closed-form',
        fused: false,
        nanResets: 0,
        anneals: 0,
        dropped: clean.dropped,
        nTrain,
        nVal,
        valLogProbs,
      };
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  const vars = model.trainableVariables();
  const adam = new Adam(vars, hp);
  const adamHost = adam.hostState();
  // Fused where the model has kernels and the defense, if any, has a fused form.
  const plan = defense ? (defense.fusedPlan?.() ?? null) : undefined;
  const fused: FusedTrainer | null =
    opts.fused !== false && plan !== null && adamHost
      ? (model.fusedTrainer?.(trainTheta, trainX, nTrain, Math.min(hp.batchSize, nTrain), plan) ??
        null)
      : null;
  const valThetaRows = gatherRows(clean.theta, thetaDim, valRows);
  const valXRows = gatherRows(clean.x, xDim, valRows);
  const tensors = {
    valTheta: tf.tensor2d(valThetaRows, [nVal, thetaDim]),
    valX: tf.tensor2d(valXRows, [nVal, xDim]),
  };

  let es = initialEarlyStopping();
  // The schedule's step settings: hp with the learning rate of the anneals taken so far.
  let stepHp = hp;
  const setAnneals = (anneals: number): void => {
    stepHp = { ...hp, learningRate: hp.learningRate * (hp.annealFactor ?? 0.1) ** anneals };
    adam.setLearningRate(stepHp.learningRate);
  };
  let best = { weights: model.getWeights(), adam: adam.snapshot() };
  // The fused step keeps weights and Adam moments in its own memory across epochs: they move in
  // only after something changed the variables (a start, a resume, a restore) and back out only
  // where something reads them (a better epoch's snapshot, a checkpoint, the end). At 1k rows an
  // epoch is a few steps, and the two copies per epoch were ~15% of its CPU (BENCHMARKS.md).
  let fusedCurrent = false;
  let varsBehind = false;
  const syncVars = (): void => {
    if (fused && adamHost && varsBehind) fused.store(adamHost, vars);
    varsBehind = false;
  };
  const trainLosses: number[] = [];
  const valLosses: number[] = [];
  let startEpoch = 0;
  let stoppedBy: StoppedBy | null = null;

  try {
    if (opts.resumeFrom) {
      const r = opts.resumeFrom;
      checkResumable(r, { thetaDim, xDim, nTrain, nVal, dropped: clean.dropped }, hp, rng);
      model.setWeights(decodeWeights(r.weights));
      adam.restore(decodeAdam(r.adam));
      best = { weights: decodeWeights(r.best.weights), adam: decodeAdam(r.best.adam) };
      es = { ...r.earlyStopping, bestValLoss: r.earlyStopping.bestValLoss ?? Infinity };
      setAnneals(es.anneals ?? 0);
      r.trainLosses.forEach((v) => trainLosses.push(v ?? NaN));
      r.valLosses.forEach((v) => valLosses.push(v ?? NaN));
      startEpoch = r.epoch;
      stoppedBy = r.stoppedBy;
      if (r.defense && defense?.setState) defense.setState(r.defense.state);
      if (r.finished && r.stoppedBy === 'early-stopping' && (es.anneals ?? 0) < (hp.anneals ?? 0)) {
        // Early stopping ended it where this schedule anneals instead: take that anneal now (the
        // state the anneal decision gives) and go on, as one run with the anneals would have.
        es = { ...es, anneals: (es.anneals ?? 0) + 1, counter: 0 };
        restoreBest();
        setAnneals(es.anneals!);
        stoppedBy = null;
      } else if (r.finished) startEpoch = hp.maxEpochs; // nothing left to run
    }

    const checkpointEveryMs = opts.checkpointEveryMs ?? 0;
    let checkpointedEpochs = startEpoch;
    let lastCheckpointAt = performance.now();
    const writeCheckpoint = async (checkpoint: (state: TrainingState) => unknown) => {
      syncVars();
      await checkpoint(stateAfter(trainLosses.length));
      checkpointedEpochs = trainLosses.length;
      lastCheckpointAt = performance.now();
    };

    for (let epoch = startEpoch; epoch < hp.maxEpochs && stoppedBy === null; epoch++) {
      if (opts.signal?.aborted) {
        // Keep the epochs since the last checkpoint for the retry. The abort is what to report: a
        // checkpoint that fails now leaves the previous one standing.
        if (opts.checkpoint && checkpointedEpochs < trainLosses.length)
          await writeCheckpoint(opts.checkpoint).catch(() => undefined);
        throw opts.signal.reason ?? new Error('Training was aborted.');
      }
      const epochStart = performance.now();
      const epochCpu = process.cpuUsage();
      const trainLoss = runEpoch(epoch);
      // The fused trainer holds the epoch's weights: validate there, without tfjs.
      const valLoss = fused?.meanNLL
        ? fused.meanNLL(valThetaRows, valXRows, nVal)
        : meanNLL(model, tensors.valTheta, tensors.valX);
      trainLosses.push(trainLoss);
      valLosses.push(valLoss);

      const step = earlyStoppingStep(es, epoch, valLoss, hp);
      es = step.state;
      if (step.improved) {
        syncVars();
        best = { weights: model.getWeights(), adam: adam.snapshot() };
      }
      if (step.decision === 'diverged') throw new DivergedError(epoch + 1, es.nanResets);
      if (step.decision === 'reload') restoreBest();
      if (step.decision === 'anneal') {
        restoreBest();
        setAnneals(es.anneals ?? 0);
      }
      if (step.decision === 'stop') stoppedBy = 'early-stopping';
      else if (epoch + 1 === hp.maxEpochs) stoppedBy = 'max-epochs';

      const now = performance.now();
      await opts.onEpoch?.({
        epoch: epoch + 1,
        maxEpochs: hp.maxEpochs,
        trainLoss,
        valLoss,
        bestValLoss: es.bestValLoss,
        counter: es.counter,
        epochMs: now - epochStart,
        epochCpuMs: cpuMs(process.cpuUsage(epochCpu)),
        elapsedMs: now - started,
      });
      if (
        opts.checkpoint &&
        (stoppedBy !== null ||
          checkpointEveryMs <= 0 ||
          performance.now() - lastCheckpointAt >= checkpointEveryMs)
      )
        await writeCheckpoint(opts.checkpoint);
      await yieldToEventLoop();
    }
    // No epoch ever had a finite validation loss (fewer epochs than maxNanResets allows): the "best"
    // state is the untrained initialization, so this is a divergence, not a trained model.
    if (es.bestEpoch === 0) throw new DivergedError(trainLosses.length, es.nanResets);
    syncVars();
    const finalState = opts.keepFinalState ? stateAfter(trainLosses.length) : undefined;
    // RABI restores the best state only on an early stop; we also do at max epochs, so the
    // returned model is always the one with the best validation loss.
    restoreBest();
    const valLogProbs = rowLogProbs(model, tensors.valTheta, tensors.valX);
    return {
      model: wrapTransforms(model, transform, xTransform),
      zscore,
      epochs: trainLosses.length,
      bestEpoch: es.bestEpoch,
      bestValLoss: es.bestValLoss,
      trainLosses,
      valLosses,
      stoppedBy: stoppedBy ?? 'max-epochs',
      fused: fused !== null,
      nanResets: es.nanResets,
      anneals: es.anneals ?? 0,
      dropped: clean.dropped,
      nTrain,
      nVal,
      ...(finalState ? { finalState } : {}),
      valLogProbs,
    };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    adam.dispose();
    fused?.dispose();
    for (const t of Object.values(tensors)) t.dispose();
  }

  function restoreBest(): void {
    model.setWeights(best.weights);
    adam.restore(best.adam);
    fusedCurrent = false;
    varsBehind = false;
  }

  /** One pass over the shuffled training rows; returns the mean of the batch NLLs (RABI's train loss). */
  function runEpoch(epoch: number): number {
    const perm = rng.fork(`npe/epoch/${epoch}`).permutation(nTrain);
    const defenseRng = rng.fork(`npe/defense/${epoch}`);
    // sbi's loader drops a last partial batch; a smaller final step weighs its rows more.
    const end = hp.dropLast ? nTrain - (nTrain % Math.min(hp.batchSize, nTrain)) : nTrain;
    if (fused && adamHost) {
      // Same batches in the same order as the tfjs loop below, the same defense stream.
      if (!fusedCurrent) fused.load(adamHost, vars);
      fusedCurrent = true;
      let sum = 0;
      let count = 0;
      for (let start = 0; start < end; start += hp.batchSize) {
        sum += fused.step(
          perm.subarray(start, Math.min(start + hp.batchSize, end)),
          adamHost,
          stepHp,
          { rng: defenseRng, xScale },
        );
        count += 1;
      }
      varsBehind = true;
      return sum / count;
    }
    let lossSum: tf.Scalar = tf.scalar(0);
    let batches = 0;
    for (let start = 0; start < end; start += hp.batchSize) {
      const idx = perm.subarray(start, Math.min(start + hp.batchSize, end));
      const next = tf.tidy(() => {
        // Gathered here and uploaded: cheaper than a gather kernel per tensor on every backend.
        let theta = tf.tensor2d(gatherRows(trainTheta, thetaDim, idx), [idx.length, thetaDim]);
        let x = tf.tensor2d(gatherRows(trainX, xDim, idx), [idx.length, xDim]);
        const ctx: DefenseContext = { model, rng: defenseRng, epoch, step: adam.step + 1, xScale };
        if (defense?.prepareBatch) ({ theta, x } = defense.prepareBatch(theta, x, ctx));
        let nll: tf.Scalar | undefined;
        const { grads } = tf.variableGrads(() => {
          nll = tf.keep(tf.neg(tf.mean(model.logProb(theta, x))) as tf.Scalar);
          return defense?.extraLoss ? tf.add(nll, defense.extraLoss(theta, x, ctx)) : nll;
        }, vars);
        let g: (tf.Tensor | null)[] = vars.map((v) => grads[v.name] ?? null);
        if (defense?.extraGrads) {
          const extra = defense.extraGrads(theta, x, ctx);
          g = g.map((gi, i) => {
            const e = extra[vars[i]!.name];
            if (e === undefined) return gi;
            return gi === null ? e : tf.add(gi, e);
          });
        }
        adam.applyClipped(g, hp.clipNorm);
        const sum = tf.add(lossSum, nll!) as tf.Scalar;
        nll!.dispose();
        return sum;
      });
      lossSum.dispose();
      lossSum = next;
      batches += 1;
    }
    const mean = lossSum.dataSync()[0]! / batches;
    lossSum.dispose();
    return mean;
  }

  function stateAfter(epochsDone: number): TrainingState {
    const state: TrainingState = {
      format: 'robustsbi-npe-checkpoint',
      version: 1,
      epoch: epochsDone,
      finished: stoppedBy !== null,
      stoppedBy,
      thetaDim,
      xDim,
      nTrain,
      nVal,
      dropped: clean.dropped,
      hyperparameters: { ...hp },
      weights: encodeWeights(model.getWeights()),
      adam: encodeAdam(adam.snapshot()),
      best: { weights: encodeWeights(best.weights), adam: encodeAdam(best.adam) },
      earlyStopping: { ...es, bestValLoss: finiteOrNull(es.bestValLoss) },
      rng: { scheme: 'fork-per-epoch', nextEpoch: epochsDone, ...streamPath(rng) },
      trainLosses: trainLosses.map(finiteOrNull),
      valLosses: valLosses.map(finiteOrNull),
    };
    if (defense?.getState) state.defense = { name: defense.name, state: defense.getState() };
    return state;
  }
}

/** The trained model seen in theta and x as simulated: the x transform inside the theta one. */
function wrapTransforms(
  model: DensityEstimator,
  thetaTransform: ThetaTransformSpec | undefined,
  xTransform: XTransformSpec | undefined,
): DensityEstimator {
  const inX = xTransform ? new XTransformedEstimator(model, xTransform) : model;
  return thetaTransform ? new ConstrainedEstimator(inX, thetaTransform) : inX;
}
