// Classifier two-sample test (C2ST) as sbibm scores posteriors: z-score both sets with the
// reference's statistics, train sklearn's default MLPClassifier (two ReLU layers of 10*d units,
// Adam, L2 alpha/2/batch * ||W||^2, stop when the epoch loss fails to improve by tol for more than
// n_iter_no_change epochs), 5-fold shuffled cross-validation, score = mean held-out accuracy.
// 0.5 means indistinguishable, 1.0 means perfectly separable.
import { tf } from '../backend.js';
import { linear } from '../ops.js';
import type { RandomStream } from '../types.js';
import { FusedMlpClassifier, type DenseLayer } from './c2st-fused.js';

export interface C2STOptions {
  /** Hidden width = widthFactor * d (sbibm: 10). */
  widthFactor?: number;
  folds?: number;
  learningRate?: number;
  /** sklearn's L2 strength; the penalty per batch is alpha / 2 / batch * sum ||W||^2 (biases free). */
  alpha?: number;
  /** Default min(200, n_train), as sklearn's batch_size='auto'. */
  batchSize?: number;
  tol?: number;
  nIterNoChange?: number;
  maxEpochs?: number;
  /** z-score both sets with the reference's mean and unbiased std (sbibm's C2ST_Z). */
  zScore?: boolean;
  /**
   * Use at most this many rows of each set (a seeded random subset), to trade precision for time.
   * sbibm compares 10k vs 10k.
   */
  maxSamples?: number;
  /**
   * Where the classifier trains: 'fused' (default) on the fused MAF step's WebAssembly products
   * (metrics/c2st-fused.ts), 'tfjs' on tfjs ops and the active backend. Same network, initial
   * weights, batches, loss and Adam; they differ by float rounding, so scores agree closely but not
   * to the bit.
   */
  kernels?: 'fused' | 'tfjs';
}

export interface C2STResult {
  /** Mean held-out accuracy over the folds. */
  accuracy: number;
  foldAccuracies: number[];
  /** Training epochs each fold ran before the stopping rule fired. */
  foldEpochs: number[];
  nReference: number;
  nEstimate: number;
}

const DEFAULTS = {
  widthFactor: 10,
  folds: 5,
  learningRate: 1e-3,
  alpha: 1e-4,
  tol: 1e-4,
  nIterNoChange: 10,
  maxEpochs: 10000,
  zScore: true,
  kernels: 'fused' as 'fused' | 'tfjs',
};

/**
 * C2ST between `reference` (nRef rows) and `estimate` (nEst rows), both row-major with `dim`
 * columns. Deterministic given `rng` (it draws the subsets, the folds, the initial weights and the
 * epoch shuffles from forks of it, and does not advance it).
 */
export function c2st(
  reference: Float32Array,
  estimate: Float32Array,
  dim: number,
  rng: RandomStream,
  options: C2STOptions = {},
): C2STResult {
  const o = { ...DEFAULTS, ...options };
  if (!(Number.isInteger(dim) && dim > 0))
    throw new Error(`c2st: dim must be a positive integer, got ${dim}`);
  if (reference.length % dim !== 0 || estimate.length % dim !== 0) {
    throw new Error('c2st: sample arrays must hold whole rows of dim values');
  }
  let ref = reference;
  let est = estimate;
  if (o.maxSamples !== undefined) {
    ref = subsample(ref, dim, o.maxSamples, rng.fork('subsample-reference'));
    est = subsample(est, dim, o.maxSamples, rng.fork('subsample-estimate'));
  }
  const nRef = ref.length / dim;
  const nEst = est.length / dim;
  const n = nRef + nEst;
  if (nRef < 2 || nEst < 1 || n < o.folds)
    throw new Error(`c2st: too few samples (${nRef} vs ${nEst})`);

  // Pooled data, labels 0 = reference, 1 = estimate (sbibm's order).
  const data = new Float32Array(n * dim);
  data.set(ref, 0);
  data.set(est, nRef * dim);
  if (o.zScore) zScoreInPlace(data, ref, dim);
  const labels = new Float32Array(n);
  labels.fill(1, nRef);

  // KFold(shuffle=True): shuffle once, then contiguous folds; the first n % k folds get one more.
  const order = rng.fork('kfold').permutation(n);
  const foldSizes = Array.from(
    { length: o.folds },
    (_, i) => Math.floor(n / o.folds) + (i < n % o.folds ? 1 : 0),
  );
  const foldAccuracies: number[] = [];
  const foldEpochs: number[] = [];
  // One classifier for all folds: the pooled rows go into its memory (or tensors) once.
  const maxBatch = batchSize(o, n);
  const clf =
    o.kernels === 'fused'
      ? fusedClassifier(data, labels, dim, o, maxBatch)
      : tfjsClassifier(data, labels, dim, o);
  try {
    let start = 0;
    for (let f = 0; f < o.folds; f++) {
      const size = foldSizes[f]!;
      const testIdx = order.subarray(start, start + size);
      const trainIdx = new Int32Array(n - size);
      trainIdx.set(order.subarray(0, start), 0);
      trainIdx.set(order.subarray(start + size), start);
      start += size;
      const { accuracy, epochs } = fitAndScore(
        clf,
        labels,
        dim,
        trainIdx,
        testIdx,
        rng.fork(`fold-${f}`),
        o,
      );
      foldAccuracies.push(accuracy);
      foldEpochs.push(epochs);
    }
  } finally {
    clf.dispose();
  }
  const accuracy = foldAccuracies.reduce((a, b) => a + b, 0) / foldAccuracies.length;
  return { accuracy, foldAccuracies, foldEpochs, nReference: nRef, nEstimate: nEst };
}

function subsample(a: Float32Array, dim: number, max: number, rng: RandomStream): Float32Array {
  const n = a.length / dim;
  if (n <= max) return a;
  const perm = rng.permutation(n);
  const out = new Float32Array(max * dim);
  for (let i = 0; i < max; i++) out.set(a.subarray(perm[i]! * dim, (perm[i]! + 1) * dim), i * dim);
  return out;
}

/** z-scores `data` in place with `ref`'s column means and unbiased stds (no zero-std guard, as sbibm). */
function zScoreInPlace(data: Float32Array, ref: Float32Array, dim: number): void {
  const n = ref.length / dim;
  for (let j = 0; j < dim; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += ref[i * dim + j]!;
    mean /= n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (ref[i * dim + j]! - mean) ** 2;
    const std = Math.sqrt(ss / (n - 1));
    for (let i = 0; i < data.length / dim; i++)
      data[i * dim + j] = (data[i * dim + j]! - mean) / std;
  }
}

/** Glorot-uniform with sklearn's ReLU factor 6: weights and biases on +-sqrt(6 / (fan_in + fan_out)). */
function initLayer(fanIn: number, fanOut: number, rng: RandomStream): DenseLayer {
  const bound = Math.sqrt(6 / (fanIn + fanOut));
  const w = new Float32Array(fanIn * fanOut);
  const b = new Float32Array(fanOut);
  rng.fillUniform(w);
  rng.fillUniform(b);
  for (let i = 0; i < w.length; i++) w[i] = (2 * w[i]! - 1) * bound;
  for (let i = 0; i < b.length; i++) b[i] = (2 * b[i]! - 1) * bound;
  return { w, b };
}

/** The classifier's three layers as both paths start them: d -> width -> width -> 1. */
function initialLayers(dim: number, width: number, rng: RandomStream): DenseLayer[] {
  return [initLayer(dim, width, rng), initLayer(width, width, rng), initLayer(width, 1, rng)];
}

/** sklearn's _update_no_improvement_count with early_stopping=False; true when training stops. */
class NoImprovementStop {
  private best = Infinity;
  private count = 0;
  constructor(
    private readonly tol: number,
    private readonly patience: number,
  ) {}

  stopsAfter(epochLoss: number): boolean {
    if (!Number.isFinite(epochLoss)) throw new Error(`c2st: training loss became ${epochLoss}`);
    if (epochLoss > this.best - this.tol) this.count++;
    else this.count = 0;
    if (epochLoss < this.best) this.best = epochLoss;
    return this.count > this.patience;
  }
}

/**
 * What one fold needs of a classifier: start from given layers (and fresh Adam moments), one epoch
 * over rows in the order given (sklearn's batches of the shuffled rows; returns the epoch's mean
 * batch loss, sklearn's stopping statistic), and the logits of rows. Rows are row numbers of the
 * pooled data.
 */
interface FoldClassifier {
  start(layers: DenseLayer[]): void;
  epoch(rows: Int32Array, batch: number): number;
  logits(rows: Int32Array): Float32Array;
  dispose(): void;
}

type Settings = typeof DEFAULTS & C2STOptions;

/** The batch over `rows` training rows: the option, else sklearn's batch_size='auto', min(200, rows). */
function batchSize(o: Settings, rows: number): number {
  return Math.min(o.batchSize ?? 200, rows);
}

function fitAndScore(
  clf: FoldClassifier,
  labels: Float32Array,
  dim: number,
  trainIdx: Int32Array,
  testIdx: Int32Array,
  rng: RandomStream,
  o: Settings,
): { accuracy: number; epochs: number } {
  clf.start(initialLayers(dim, o.widthFactor * dim, rng.fork('init')));
  const shuffleRng = rng.fork('shuffle');
  const nTrain = trainIdx.length;
  const batch = batchSize(o, nTrain);
  const rows = new Int32Array(nTrain);
  const stop = new NoImprovementStop(o.tol, o.nIterNoChange);
  let epochs = 0;
  for (let epoch = 0; epoch < o.maxEpochs; epoch++) {
    const perm = shuffleRng.permutation(nTrain);
    for (let i = 0; i < nTrain; i++) rows[i] = trainIdx[perm[i]!]!;
    epochs++;
    if (stop.stopsAfter(clf.epoch(rows, batch))) break;
  }
  const z = clf.logits(testIdx);
  let correct = 0;
  // predict_proba > 0.5  <=>  logit > 0
  for (let i = 0; i < testIdx.length; i++)
    if ((z[i]! > 0 ? 1 : 0) === labels[testIdx[i]!]) correct++;
  return { accuracy: correct / testIdx.length, epochs };
}

/** The classifier on the fused kernels (metrics/c2st-fused.ts). */
function fusedClassifier(
  data: Float32Array,
  labels: Float32Array,
  dim: number,
  o: Settings,
  maxBatch: number,
): FoldClassifier {
  const clf = new FusedMlpClassifier(data, labels, dim, o.widthFactor * dim, maxBatch);
  const adam = { learningRate: o.learningRate, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
  return {
    start: (layers) => clf.reset(layers),
    epoch: (rows, batch) => {
      let lossSum = 0;
      for (let s = 0; s < rows.length; s += batch) {
        const bs = Math.min(batch, rows.length - s);
        lossSum += clf.step(rows.subarray(s, s + bs), o.alpha, adam) * bs;
      }
      return lossSum / rows.length;
    },
    logits: (rows) => clf.logits(rows),
    dispose: () => undefined,
  };
}

/** The classifier on tfjs ops and the active backend. */
function tfjsClassifier(
  data: Float32Array,
  labels: Float32Array,
  dim: number,
  o: Settings,
): FoldClassifier {
  const x = tf.tensor2d(data, [labels.length, dim]);
  const y = tf.tensor2d(labels, [labels.length, 1]);
  let fold: { layers: { w: tf.Variable; b: tf.Variable }[]; optimizer: tf.Optimizer } | undefined;
  const endFold = (): void => {
    fold?.optimizer.dispose();
    fold?.layers.forEach((l) => (l.w.dispose(), l.b.dispose()));
    fold = undefined;
  };
  const forward = (h: tf.Tensor2D): tf.Tensor2D => {
    // ops.linear: one fused kernel, and on wasm a gradient without transposed matMuls (~7x slower).
    fold!.layers.forEach((l, i) => {
      const act = i < fold!.layers.length - 1 ? 'relu' : 'linear';
      h = linear(h, l.w as tf.Tensor2D, l.b as tf.Tensor1D, act);
    });
    return h;
  };
  return {
    start: (layers) => {
      endFold();
      fold = {
        // tidy frees the initial-value tensors; the variables (not tracked by tidy) survive.
        layers: tf.tidy(() =>
          layers.map((l) => ({
            w: tf.variable(tf.tensor2d(l.w, [l.w.length / l.b.length, l.b.length])),
            b: tf.variable(tf.tensor1d(l.b)),
          })),
        ),
        optimizer: tf.train.adam(o.learningRate, 0.9, 0.999, 1e-8),
      };
    },
    epoch: (rows, batch) => {
      const { layers, optimizer } = fold!;
      const vars = layers.flatMap((l) => [l.w, l.b]);
      // Sum over batches of (batch loss * batch size), read once per epoch, not once per step.
      const lossSum = tf.tidy(() => {
        const rowsT = tf.tensor1d(rows, 'int32');
        const xs = tf.gather(x, rowsT);
        const ys = tf.gather(y, rowsT);
        let acc: tf.Scalar = tf.scalar(0);
        for (let s = 0; s < rows.length; s += batch) {
          const bs = Math.min(batch, rows.length - s);
          const xb = tf.slice(xs, [s, 0], [bs, dim]) as tf.Tensor2D;
          const yb = tf.slice(ys, [s, 0], [bs, 1]) as tf.Tensor2D;
          const loss = optimizer.minimize(
            () => {
              // Binary log-loss from logits: mean softplus(z) - y z, stable for large |z|.
              const z = forward(xb);
              const bce = tf.mean(tf.sub(tf.softplus(z), tf.mul(yb, z)));
              const l2 = tf.addN(layers.map((l) => tf.sum(tf.square(l.w))));
              return tf.add(bce, tf.mul(l2, (0.5 * o.alpha) / bs)) as tf.Scalar;
            },
            true,
            vars,
          )!;
          acc = tf.add(acc, tf.mul(loss, bs));
        }
        return acc;
      });
      const mean = lossSum.dataSync()[0]! / rows.length;
      lossSum.dispose();
      return mean;
    },
    logits: (rows) => {
      const z = tf.tidy(() => forward(tf.gather(x, tf.tensor1d(rows, 'int32')) as tf.Tensor2D));
      const out = (z.dataSync() as Float32Array).slice();
      z.dispose();
      return out;
    },
    dispose: () => {
      endFold();
      x.dispose();
      y.dispose();
    },
  };
}
