// NPE training as RABI runs it (research/paper.md section 7): Adam, shuffled minibatches, global
// gradient-norm clipping, early stopping on a held-out validation NLL with RABI's counter rule, and
// recovery from a NaN validation loss. Progress, checkpoint and resume hooks serve the workflow
// layer; the `defense` hook is where FIM / TRADES / adversarial / noise training plug in.
import { meanPerSampleStd } from './attacks/eps.js';
import { tf } from './backend.js';
import { computeZScore } from './estimators/zscore.js';
import { decodeFloat32, encodeFloat32 } from './float32-base64.js';
import {
  ConstrainedEstimator,
  isIdentityTransform,
  toUnconstrained,
  validateTransformSpec,
  type ThetaTransformSpec,
} from './transforms.js';
import type {
  AdamHostState,
  DensityEstimator,
  FusedPlan,
  FusedTrainer,
  RandomStream,
  SerializedWeights,
  ZScore,
} from './types.js';

export interface NPEHyperparameters {
  learningRate: number;
  batchSize: number;
  /** Global gradient-norm clip (PyTorch clip_grad_norm_); Infinity turns it off. */
  clipNorm: number;
  /** Held-out validation rows; undefined means min(512, 10% of the finite rows), at least 1. */
  valSize?: number;
  patience: number;
  /** Early stopping may not stop before this many epochs have run past the first (RABI: epoch index < minEpochs). */
  minEpochs: number;
  maxEpochs: number;
  /** NaN validation losses tolerated (each reloads the best state) before DivergedError. */
  maxNanResets: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export const DEFAULT_NPE_HYPERPARAMETERS: Readonly<NPEHyperparameters> = Object.freeze({
  learningRate: 1e-3,
  batchSize: 512,
  clipNorm: 75,
  patience: 10,
  minEpochs: 5,
  maxEpochs: 300,
  maxNanResets: 10,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
});

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
  hyperparameters?: Partial<NPEHyperparameters>;
  defense?: TrainingDefense;
  onEpoch?(progress: EpochProgress): void | Promise<void>;
  /** Called after every epoch with the full state; a later trainNPE({ resumeFrom }) continues exactly. */
  checkpoint?(state: TrainingState): void | Promise<void>;
  resumeFrom?: TrainingState;
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
   * Take the estimator's fused training step (hand-written wasm kernels, e.g. the affine MAF's)
   * when the backend keeps tensors in host memory and the defense, if any, has a fused form
   * (TrainingDefense.fusedPlan). It computes the same step as tfjs; false forces the tfjs step (for
   * comparisons). Default true.
   */
  fused?: boolean;
}

export interface TrainNPEResult {
  /** Holds the best weights. The caller owns (and disposes) it. */
  model: DensityEstimator;
  zscore: ZScore;
  /** Epochs run, including any before a resume. */
  epochs: number;
  /** 1-based epoch of the best validation loss (never 0: a run with no finite one throws DivergedError). */
  bestEpoch: number;
  bestValLoss: number;
  trainLosses: number[];
  valLosses: number[];
  stoppedBy: 'early-stopping' | 'max-epochs';
  /** Whether the epochs ran the estimator's fused step (TrainNPEOptions.fused) or tfjs ops. */
  fused: boolean;
  nanResets: number;
  /** Rows dropped because theta or x had a non-finite value. */
  dropped: number;
  nTrain: number;
  nVal: number;
}

/**
 * Training blew up: the validation loss stayed NaN through every allowed reset, or training ended
 * without a single finite one. Not retryable.
 */
export class DivergedError extends Error {
  readonly retryable = false;
  constructor(
    readonly epoch: number,
    readonly nanResets: number,
  ) {
    super(
      `Training diverged: the validation loss was NaN at epoch ${epoch} after ${nanResets - 1} reloads of the best state.`,
    );
    this.name = 'DivergedError';
  }
}

// ---------------------------------------------------------------------------------------------
// Early stopping (pure)

export interface EarlyStoppingState {
  /** Infinity until a finite validation loss is seen. */
  bestValLoss: number;
  /** 1-based epoch of bestValLoss; 0 before any. */
  bestEpoch: number;
  counter: number;
  nanResets: number;
}

export type StopDecision = 'continue' | 'stop' | 'reload' | 'diverged';

export function initialEarlyStopping(): EarlyStoppingState {
  return { bestValLoss: Infinity, bestEpoch: 0, counter: 0, nanResets: 0 };
}

/**
 * RABI's EarlyStopping.__call__: an improvement lowers the counter by one (floored at 0, not reset),
 * anything else raises it; a non-finite loss asks for the best state back ('reload') until more
 * than maxNanResets have happened ('diverged'); otherwise stop once counter > patience, but never
 * while epochIndex < minEpochs. epochIndex is 0-based.
 */
export function earlyStoppingStep(
  s: EarlyStoppingState,
  epochIndex: number,
  valLoss: number,
  rule: Pick<NPEHyperparameters, 'patience' | 'minEpochs' | 'maxNanResets'>,
): { state: EarlyStoppingState; decision: StopDecision; improved: boolean } {
  const next = { ...s };
  const improved = valLoss < s.bestValLoss; // false for NaN
  if (improved) {
    next.bestValLoss = valLoss;
    next.bestEpoch = epochIndex + 1;
    next.counter = Math.max(s.counter - 1, 0);
  } else {
    next.counter = s.counter + 1;
  }
  let decision: StopDecision;
  if (!Number.isFinite(valLoss)) {
    next.nanResets = s.nanResets + 1;
    decision = next.nanResets > rule.maxNanResets ? 'diverged' : 'reload';
  } else if (epochIndex < rule.minEpochs) {
    decision = 'continue';
  } else {
    decision = next.counter > rule.patience ? 'stop' : 'continue';
  }
  return { state: next, decision, improved };
}

// ---------------------------------------------------------------------------------------------
// Data preparation (pure)

/** Drops rows whose theta or x holds NaN or +-Infinity; such simulations are never trained on. */
export function dropNonFinite(
  theta: Float32Array,
  x: Float32Array,
  n: number,
  thetaDim: number,
  xDim: number,
): { theta: Float32Array; x: Float32Array; n: number; dropped: number } {
  if (theta.length !== n * thetaDim || x.length !== n * xDim) {
    throw new RangeError(
      `Training data has ${theta.length} theta and ${x.length} x values, expected ${n}x${thetaDim} and ${n}x${xDim}.`,
    );
  }
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    if (allFinite(theta, i * thetaDim, thetaDim) && allFinite(x, i * xDim, xDim)) keep.push(i);
  }
  if (keep.length === n) return { theta, x, n, dropped: 0 };
  return {
    theta: gatherRows(theta, thetaDim, keep),
    x: gatherRows(x, xDim, keep),
    n: keep.length,
    dropped: n - keep.length,
  };
}

function allFinite(a: Float32Array, start: number, len: number): boolean {
  for (let j = start; j < start + len; j++) if (!Number.isFinite(a[j])) return false;
  return true;
}

export function gatherRows(a: Float32Array, dim: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r]!;
    out.set(a.subarray(i * dim, (i + 1) * dim), r * dim);
  }
  return out;
}

export function defaultValSize(n: number): number {
  return Math.max(1, Math.min(512, Math.floor(n / 10)));
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping and Adam

/**
 * Scales all gradients by min(1, maxNorm / (norm + 1e-6)) where norm is the L2 norm of all of them
 * together, as torch.nn.utils.clip_grad_norm_. Null entries (no gradient) stay null.
 */
export function clipByGlobalNorm(
  grads: (tf.Tensor | null)[],
  maxNorm: number,
): { grads: (tf.Tensor | null)[]; norm: tf.Scalar } {
  const present = grads.filter((g): g is tf.Tensor => g !== null);
  const [norm, ...scaled] = tf.tidy(() => {
    const sq = present.map((g) => tf.sum(tf.square(g)));
    const total = tf.sqrt(sq.length === 0 ? tf.scalar(0) : tf.addN(sq)) as tf.Scalar;
    if (!Number.isFinite(maxNorm)) return [total, ...present.map((g) => tf.clone(g))];
    const coef = tf.minimum(
      tf.div(tf.scalar(maxNorm), tf.add(total, tf.scalar(1e-6))),
      tf.scalar(1),
    );
    return [total, ...present.map((g) => tf.mul(g, coef))];
  });
  let k = 0;
  return { grads: grads.map((g) => (g === null ? null : scaled[k++]!)), norm: norm as tf.Scalar };
}

/** One Adam update of p in place (torch.optim.Adam's formula), gradient scaled by coef first. */
function adamUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  coef: number,
  b1: number,
  b2: number,
  stepSize: number,
  sqrtBc2: number,
  eps: number,
): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const n = p.length;
  for (let k = 0; k < n; k++) {
    const gk = g[k]! * coef;
    const mk = b1 * m[k]! + c1 * gk;
    const vk = b2 * v[k]! + c2 * gk * gk;
    m[k] = mk;
    v[k] = vk;
    p[k] = p[k]! - (stepSize * mk) / (Math.sqrt(vk) / sqrtBc2 + eps);
  }
}

export interface AdamSnapshot {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * Backends whose tensors live in this process's memory, where reading a gradient is a copy and not
 * a device round trip. There Adam runs as one loop over plain arrays: on wasm each of its ~13
 * elementwise ops per variable costs ~15-20 us of tfjs dispatch, far more than the arithmetic.
 */
function onHost(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}

/**
 * Adam exactly as torch.optim.Adam (no weight decay, no amsgrad), with readable moments for
 * checkpoints. On host backends the moments are Float32Arrays and the update runs in JavaScript
 * (float64 intermediates, float32 storage); elsewhere they are tf.Variables updated by tensor ops.
 */
export class Adam {
  step = 0;
  private readonly m: tf.Variable[] | Float32Array[];
  private readonly v: tf.Variable[] | Float32Array[];
  private readonly host: boolean;

  /** `mode` picks the implementation; 'auto' (the default) takes 'host' on host backends. */
  constructor(
    private readonly vars: tf.Variable[],
    private readonly hp: Pick<NPEHyperparameters, 'learningRate' | 'beta1' | 'beta2' | 'epsilon'>,
    mode: 'auto' | 'host' | 'tensor' = 'auto',
  ) {
    this.host = mode === 'auto' ? onHost() : mode === 'host';
    if (this.host) {
      this.m = vars.map((w) => new Float32Array(w.size));
      this.v = vars.map((w) => new Float32Array(w.size));
    } else {
      // tidy frees the zeros tensors; the variables keep their own reference to the data.
      this.m = vars.map((w) => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
      this.v = vars.map((w) => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
    }
  }

  /** One update; grads align with the variables, null meaning no gradient (the variable is skipped). */
  apply(grads: (tf.Tensor | null)[]): void {
    if (this.host) {
      this.applyHost(
        grads.map((g) => (g === null ? null : (g.dataSync() as Float32Array))),
        1,
      );
      return;
    }
    this.step += 1;
    const { learningRate: lr, beta1: b1, beta2: b2, epsilon: eps } = this.hp;
    const stepSize = lr / (1 - b1 ** this.step);
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.step);
    const m = this.m as tf.Variable[];
    const v = this.v as tf.Variable[];
    tf.tidy(() => {
      grads.forEach((g, i) => {
        if (g === null) return;
        m[i]!.assign(tf.add(tf.mul(m[i]!, b1), tf.mul(g, 1 - b1)));
        v[i]!.assign(tf.add(tf.mul(v[i]!, b2), tf.mul(tf.square(g), 1 - b2)));
        const denom = tf.add(tf.div(tf.sqrt(v[i]!), sqrtBc2), eps);
        this.vars[i]!.assign(tf.sub(this.vars[i]!, tf.mul(tf.div(m[i]!, denom), stepSize)));
      });
    });
  }

  /**
   * clipByGlobalNorm(grads, maxNorm) followed by apply, reading each gradient once on host
   * backends. Returns the norm before clipping.
   */
  applyClipped(grads: (tf.Tensor | null)[], maxNorm: number): number {
    if (!this.host) {
      const { grads: clipped, norm } = clipByGlobalNorm(grads, maxNorm);
      this.apply(clipped);
      const n = norm.dataSync()[0]!;
      tf.dispose([norm, ...clipped.filter((g): g is tf.Tensor => g !== null)]);
      return n;
    }
    const g = grads.map((t) => (t === null ? null : (t.dataSync() as Float32Array)));
    let sq = 0;
    for (const a of g) if (a !== null) for (let k = 0; k < a.length; k++) sq += a[k]! * a[k]!;
    const norm = Math.sqrt(sq);
    // As torch's clip_grad_norm_ and clipByGlobalNorm: scale by min(1, maxNorm / (norm + 1e-6)).
    const coef = Number.isFinite(maxNorm) ? Math.min(maxNorm / (norm + 1e-6), 1) : 1;
    this.applyHost(g, coef);
    return norm;
  }

  private applyHost(grads: (Float32Array | null)[], coef: number): void {
    this.step += 1;
    const { learningRate: lr, beta1: b1, beta2: b2, epsilon: eps } = this.hp;
    const stepSize = lr / (1 - b1 ** this.step);
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.step);
    const ms = this.m as Float32Array[];
    const vs = this.v as Float32Array[];
    grads.forEach((g, i) => {
      if (g === null) return;
      const w = this.vars[i]!;
      const p = (w.dataSync() as Float32Array).slice();
      adamUpdate(p, g, ms[i]!, vs[i]!, coef, b1, b2, stepSize, sqrtBc2, eps);
      tf.tidy(() => w.assign(tf.tensor(p, w.shape, 'float32')));
    });
  }

  /** The host moments and a view of the step count, for fused trainers; null off host backends. */
  hostState(): AdamHostState | null {
    if (!this.host) return null;
    const state = { m: this.m as Float32Array[], v: this.v as Float32Array[] } as AdamHostState;
    Object.defineProperty(state, 'step', {
      get: () => this.step,
      set: (s: number) => {
        this.step = s;
      },
      enumerable: true,
    });
    return state;
  }

  snapshot(): AdamSnapshot {
    const read = (t: tf.Variable | Float32Array): Float32Array =>
      t instanceof Float32Array ? t.slice() : (t.dataSync() as Float32Array).slice();
    return { step: this.step, m: this.m.map(read), v: this.v.map(read) };
  }

  restore(s: AdamSnapshot): void {
    if (s.m.length !== this.m.length || s.v.length !== this.v.length) {
      throw new RangeError(
        `Adam state has ${s.m.length} moments, the model ${this.m.length} variables.`,
      );
    }
    const check = (src: Float32Array[]): void =>
      src.forEach((a, i) => {
        if (a.length !== this.vars[i]!.size)
          throw new RangeError(
            `Adam moment ${i} has ${a.length} values, expected ${this.vars[i]!.size}.`,
          );
      });
    check(s.m);
    check(s.v);
    this.step = s.step;
    const put = (dst: tf.Variable[] | Float32Array[], src: Float32Array[]): void =>
      dst.forEach((d, i) => {
        if (d instanceof Float32Array) d.set(src[i]!);
        else tf.tidy(() => d.assign(tf.tensor(src[i]!, d.shape)));
      });
    put(this.m, s.m);
    put(this.v, s.v);
  }

  dispose(): void {
    if (this.host) return;
    for (const t of [...(this.m as tf.Variable[]), ...(this.v as tf.Variable[])]) t.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint state (JSON-serializable: float arrays as base64 float32, Infinity/NaN as null)

export interface EncodedWeights {
  name: string;
  shape: number[];
  data: string;
}

export interface EncodedAdam {
  step: number;
  m: string[];
  v: string[];
}

export interface TrainingState {
  format: 'robustsbi-npe-checkpoint';
  version: 1;
  /** Epochs completed. */
  epoch: number;
  /** True once training has stopped; resuming from it only restores the best weights. */
  finished: boolean;
  stoppedBy: TrainNPEResult['stoppedBy'] | null;
  thetaDim: number;
  xDim: number;
  nTrain: number;
  nVal: number;
  dropped: number;
  hyperparameters: NPEHyperparameters;
  weights: EncodedWeights[];
  adam: EncodedAdam;
  best: { weights: EncodedWeights[]; adam: EncodedAdam };
  earlyStopping: {
    bestValLoss: number | null;
    bestEpoch: number;
    counter: number;
    nanResets: number;
  };
  /**
   * The random state. Every epoch draws from rng.fork(`npe/epoch/<k>`) and rng.fork(`npe/defense/<k>`)
   * of the caller's stream, so the stream's seed plus `epoch` above is the whole state; resume with
   * a stream of the same seed.
   */
  rng: { scheme: 'fork-per-epoch'; nextEpoch: number; path?: string[] };
  trainLosses: (number | null)[];
  valLosses: (number | null)[];
  defense?: { name: string; state: unknown };
}

function encodeWeights(ws: SerializedWeights[]): EncodedWeights[] {
  return ws.map((w) => ({ name: w.name, shape: [...w.shape], data: encodeFloat32(w.values) }));
}

function decodeWeights(ws: EncodedWeights[]): SerializedWeights[] {
  return ws.map((w) => ({
    name: w.name,
    shape: [...w.shape],
    values: Array.from(
      decodeFloat32(
        w.data,
        w.shape.reduce((a, b) => a * b, 1),
      ),
    ),
  }));
}

function encodeAdam(s: AdamSnapshot): EncodedAdam {
  return { step: s.step, m: s.m.map((a) => encodeFloat32(a)), v: s.v.map((a) => encodeFloat32(a)) };
}

function decodeAdam(s: EncodedAdam): AdamSnapshot {
  return { step: s.step, m: s.m.map((a) => decodeFloat32(a)), v: s.v.map((a) => decodeFloat32(a)) };
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

// ---------------------------------------------------------------------------------------------
// The training loop

function resolveHyperparameters(
  partial: Partial<NPEHyperparameters> | undefined,
): NPEHyperparameters {
  const hp: NPEHyperparameters = { ...DEFAULT_NPE_HYPERPARAMETERS };
  for (const [k, v] of Object.entries(partial ?? {})) {
    if (v !== undefined) (hp as unknown as Record<string, unknown>)[k] = v;
  }
  const positiveInt = (name: keyof NPEHyperparameters, min: number): void => {
    const v = hp[name];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < min)) {
      throw new RangeError(
        `NPE hyperparameter ${name} must be an integer >= ${min}, got ${String(v)}.`,
      );
    }
  };
  positiveInt('batchSize', 1);
  positiveInt('maxEpochs', 1);
  positiveInt('minEpochs', 0);
  positiveInt('patience', 0);
  positiveInt('maxNanResets', 0);
  positiveInt('valSize', 1);
  if (!(hp.learningRate > 0) || !Number.isFinite(hp.learningRate))
    throw new RangeError(
      `NPE hyperparameter learningRate must be a positive number, got ${hp.learningRate}.`,
    );
  if (!(hp.clipNorm > 0))
    throw new RangeError(
      `NPE hyperparameter clipNorm must be positive (Infinity disables clipping), got ${hp.clipNorm}.`,
    );
  if (!(hp.beta1 >= 0 && hp.beta1 < 1 && hp.beta2 >= 0 && hp.beta2 < 1 && hp.epsilon > 0))
    throw new RangeError(
      'NPE hyperparameters beta1 and beta2 must lie in [0, 1) and epsilon must be positive.',
    );
  return hp;
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
  const clean = dropNonFinite(thetaIn, opts.data.x, opts.data.n, thetaDim, xDim);
  if (clean.n < 2) {
    throw new RangeError(
      `NPE needs at least 2 finite simulations, got ${clean.n} (${clean.dropped} dropped as non-finite).`,
    );
  }
  const nVal = hp.valSize ?? defaultValSize(clean.n);
  const nTrain = clean.n - nVal;
  if (nTrain < 1)
    throw new RangeError(`Validation size ${nVal} leaves no training rows out of ${clean.n}.`);
  const order = rng.fork('npe/split').permutation(clean.n);
  const valRows = order.subarray(0, nVal);
  const trainRows = order.subarray(nVal);
  const trainTheta = gatherRows(clean.theta, thetaDim, trainRows);
  const trainX = gatherRows(clean.x, xDim, trainRows);
  const zscore = computeZScore(trainTheta, trainX, nTrain, thetaDim, xDim);
  const xScale = meanPerSampleStd(trainX, nTrain, xDim);

  const model = opts.createModel(zscore);
  if (model.thetaDim !== thetaDim || model.xDim !== xDim) {
    throw new RangeError(
      `createModel built a ${model.thetaDim}->${model.xDim} model for ${thetaDim}-dim theta and ${xDim}-dim x.`,
    );
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
  let best = { weights: model.getWeights(), adam: adam.snapshot() };
  const trainLosses: number[] = [];
  const valLosses: number[] = [];
  let startEpoch = 0;
  let stoppedBy: TrainNPEResult['stoppedBy'] | null = null;

  try {
    if (opts.resumeFrom) {
      const r = opts.resumeFrom;
      checkResumable(r, { thetaDim, xDim, nTrain, nVal, dropped: clean.dropped });
      // maxEpochs may grow (to extend a run); anything else would make the resumed run a different one.
      const before = JSON.parse(JSON.stringify({ ...r.hyperparameters, valSize: nVal })) as Record<
        string,
        unknown
      >;
      const now = JSON.parse(JSON.stringify({ ...hp, valSize: nVal })) as Record<string, unknown>;
      const changed = Object.keys({ ...before, ...now }).filter(
        (k) => k !== 'maxEpochs' && before[k] !== now[k],
      );
      if (changed.length > 0) {
        const list = changed
          .map((k) => `${k} ${String(before[k])} -> ${String(now[k])}`)
          .join(', ');
        throw new RangeError(
          `The checkpoint to resume from was trained with other hyperparameters (${list}).`,
        );
      }
      const path = streamPath(rng).path;
      if (r.rng.path && path && JSON.stringify(r.rng.path) !== JSON.stringify(path)) {
        throw new RangeError(
          `The checkpoint to resume from was trained with the random stream ${r.rng.path.join('/')}, not ${path.join('/')}.`,
        );
      }
      model.setWeights(decodeWeights(r.weights));
      adam.restore(decodeAdam(r.adam));
      best = { weights: decodeWeights(r.best.weights), adam: decodeAdam(r.best.adam) };
      es = { ...r.earlyStopping, bestValLoss: r.earlyStopping.bestValLoss ?? Infinity };
      r.trainLosses.forEach((v) => trainLosses.push(v ?? NaN));
      r.valLosses.forEach((v) => valLosses.push(v ?? NaN));
      startEpoch = r.epoch;
      stoppedBy = r.stoppedBy;
      if (r.defense && defense?.setState) defense.setState(r.defense.state);
      if (r.finished) startEpoch = hp.maxEpochs; // nothing left to run
    }

    for (let epoch = startEpoch; epoch < hp.maxEpochs && stoppedBy === null; epoch++) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('Training was aborted.');
      const epochStart = performance.now();
      const epochCpu = process.cpuUsage();
      const trainLoss = runEpoch(epoch);
      // The fused trainer holds the weights runEpoch just stored: validate there, without tfjs.
      const valLoss = fused?.meanNLL
        ? fused.meanNLL(valThetaRows, valXRows, nVal)
        : meanNLL(model, tensors.valTheta, tensors.valX);
      trainLosses.push(trainLoss);
      valLosses.push(valLoss);

      const step = earlyStoppingStep(es, epoch, valLoss, hp);
      es = step.state;
      if (step.improved) best = { weights: model.getWeights(), adam: adam.snapshot() };
      if (step.decision === 'diverged') throw new DivergedError(epoch + 1, es.nanResets);
      if (step.decision === 'reload') restoreBest();
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
      if (opts.checkpoint) await opts.checkpoint(stateAfter(epoch + 1));
      await yieldToEventLoop();
    }
    // No epoch ever had a finite validation loss (fewer epochs than maxNanResets allows): the "best"
    // state is the untrained initialization, so this is a divergence, not a trained model.
    if (es.bestEpoch === 0) throw new DivergedError(trainLosses.length, es.nanResets);
    // RABI restores the best state only on an early stop; we also do at max epochs, so the
    // returned model is always the one with the best validation loss.
    restoreBest();
    return {
      model: transform ? new ConstrainedEstimator(model, transform) : model,
      zscore,
      epochs: trainLosses.length,
      bestEpoch: es.bestEpoch,
      bestValLoss: es.bestValLoss,
      trainLosses,
      valLosses,
      stoppedBy: stoppedBy ?? 'max-epochs',
      fused: fused !== null,
      nanResets: es.nanResets,
      dropped: clean.dropped,
      nTrain,
      nVal,
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
  }

  /** One pass over the shuffled training rows; returns the mean of the batch NLLs (RABI's train loss). */
  function runEpoch(epoch: number): number {
    const perm = rng.fork(`npe/epoch/${epoch}`).permutation(nTrain);
    const defenseRng = rng.fork(`npe/defense/${epoch}`);
    if (fused && adamHost) {
      // Same batches in the same order as the tfjs loop below, the same defense stream.
      fused.load(adamHost, vars);
      let sum = 0;
      let count = 0;
      for (let start = 0; start < nTrain; start += hp.batchSize) {
        sum += fused.step(
          perm.subarray(start, Math.min(start + hp.batchSize, nTrain)),
          adamHost,
          hp,
          { rng: defenseRng, xScale },
        );
        count += 1;
      }
      fused.store(adamHost, vars);
      return sum / count;
    }
    let lossSum: tf.Scalar = tf.scalar(0);
    let batches = 0;
    for (let start = 0; start < nTrain; start += hp.batchSize) {
      const idx = perm.subarray(start, Math.min(start + hp.batchSize, nTrain));
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

/** The seed path of an sbi/rng.ts stream (other RandomStreams have none), to refuse a resume with another seed. */
function streamPath(rng: RandomStream): { path?: string[] } {
  const withState = rng as RandomStream & { state?: () => { path?: unknown } };
  const path = typeof withState.state === 'function' ? withState.state().path : undefined;
  return Array.isArray(path) ? { path: path.map(String) } : {};
}

function checkResumable(
  r: TrainingState,
  expect: { thetaDim: number; xDim: number; nTrain: number; nVal: number; dropped: number },
): void {
  if (r?.format !== 'robustsbi-npe-checkpoint' || r.version !== 1) {
    throw new RangeError(
      'The checkpoint to resume from is not a version-1 robustsbi NPE checkpoint.',
    );
  }
  for (const k of ['thetaDim', 'xDim', 'nTrain', 'nVal', 'dropped'] as const) {
    if (r[k] !== expect[k]) {
      throw new RangeError(
        `The checkpoint to resume from has ${k} = ${r[k]} but this run has ${expect[k]}; it belongs to other data.`,
      );
    }
  }
}
