// A uniform mixture of K MAFs, RABI's `maf_ensemble` (InverseAffineAutoregressiveEnsemble; paper.md
// section 7: 10 members, 10 or 50 in its configs). Each member is a full MAF (maf.ts) with its own
// weights and its own variable orders, all drawn from the seed; the orders are saved in the config
// (one list per member), so a saved ensemble rebuilds identically.
//   log q(theta | x) = logsumexp_k log q_k(theta | x) - log K
// or, with `mixture` (weights w_k fitted to validation rows; deep-ensemble.ts), logsumexp_k (log
// q_k + log w_k); RABI's ensembles hold none.
//   rsample: one member per sample index (categorical by the weights, shared by every row of x), that many
//   reparameterized draws from each member, concatenated along the sample axis in member order and
//   shuffled along it.
// Both use only twice-differentiable ops (ops.ts logSumExp and permuteRows), so the FIM regularizer
// may differentiate them. There is no fused trainer or fused inference: tfjs trains and samples it.
import { tf } from '../backend.js';
import { logSumExp, permuteRows } from '../ops.js';
import type { DensityEstimator, RandomStream, SerializedWeights, ZScore } from '../types.js';
import { MAF_DEFAULTS, Maf, type MafConfig } from './maf.js';

export interface MafEnsembleConfig {
  members: number;
  hidden: number[];
  numTransforms: number;
  logScaleMin: number;
  logScaleMax: number;
  /** Per member, one variable order per transform. */
  orders: number[][][];
  /** Member weights, positive and summing to 1; absent: uniform. */
  mixture?: number[];
  [key: string]: unknown;
}

/** RABI's ensemble of 10 MAFs, each with the MAF's defaults. */
export const MAF_ENSEMBLE_DEFAULTS = { members: 10, ...MAF_DEFAULTS };

/**
 * Config keys passed on to every member as they are (absent stays absent): the MAF's own choices,
 * which index.ts also accepts in a MAF's config.
 */
export const MEMBER_KEYS = [
  'affine',
  'clampGradient',
  'degrees',
  'biasInit',
  'inputFanIn',
  'contextLayer',
  'activation',
  'embedding',
] as const;

/** A member's weights are its MAF's, named `m<k>.<name>`. */
const MEMBER_NAME = /^m(\d+)\.(.+)$/;

export class MafEnsemble implements DensityEstimator {
  readonly kind = 'maf_ensemble' as const;
  readonly thetaDim: number;
  readonly xDim: number;
  readonly config: Record<string, unknown>;
  private readonly members: Maf[] = [];
  /** Each member's weight names and shapes, to check a whole set before assigning any of it. */
  private readonly layout: Map<string, number[]>[];
  /** Member weights (uniform without config.mixture) and their logs. */
  private readonly weights: number[];
  private readonly logWeights: number[];

  constructor(
    thetaDim: number,
    xDim: number,
    config: MafEnsembleConfig,
    zscore: ZScore,
    rng: RandomStream,
  ) {
    const K = config.members;
    if (!Number.isInteger(K) || K < 1)
      throw new Error(`members must be a positive integer, got ${K}`);
    if (!Array.isArray(config.orders) || config.orders.length !== K)
      throw new Error(
        `expected one list of variable orders per member (${K}), got ${JSON.stringify(config.orders)}`,
      );
    this.weights = checkMixture(config.mixture, K);
    this.logWeights = this.weights.map(Math.log);
    this.thetaDim = thetaDim;
    this.xDim = xDim;
    this.config = config;
    try {
      for (let k = 0; k < K; k++) {
        const member: MafConfig = {
          hidden: config.hidden,
          numTransforms: config.numTransforms,
          logScaleMin: config.logScaleMin,
          logScaleMax: config.logScaleMax,
          orders: config.orders[k]!,
        };
        for (const key of MEMBER_KEYS)
          if (config[key] !== undefined) (member as Record<string, unknown>)[key] = config[key];
        this.members.push(new Maf(thetaDim, xDim, member, zscore, rng.fork(`member-${k}`)));
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
    this.layout = this.members.map(
      (m) => new Map(m.getWeights().map((w) => [w.name, w.shape] as [string, number[]])),
    );
  }

  get size(): number {
    return this.members.length;
  }

  /** Member k, a MAF of its own (for tests and diagnostics). */
  member(k: number): Maf {
    const m = this.members[k];
    if (!m) throw new Error(`no member ${k} in an ensemble of ${this.members.length}`);
    return m;
  }

  get zscore(): ZScore {
    return this.members[0]!.zscore;
  }

  /** Every member gets the same statistics (assign a whole new object, as for any estimator). */
  set zscore(stats: ZScore) {
    for (const m of this.members) m.zscore = stats;
  }

  logProb(theta: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      // Uniform: - log K after the sum, as before weights existed, so RABI's runs keep their floats.
      if (this.config.mixture === undefined) {
        const rows = this.members.map((m) => tf.expandDims(m.logProb(theta, x), 0));
        const K = this.members.length;
        return tf.sub(logSumExp(tf.concat(rows, 0), 0), Math.log(K)) as tf.Tensor1D;
      }
      const rows = this.members.map((m, k) =>
        tf.expandDims(tf.add(m.logProb(theta, x), this.logWeights[k]!), 0),
      );
      return logSumExp(tf.concat(rows, 0), 0) as tf.Tensor1D;
    });
  }

  /** Draws per member for n sample indices: each index picks a member by the weights. */
  private counts(n: number, rng: RandomStream): number[] {
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`number of samples must be a positive integer, got ${n}`);
    const K = this.members.length;
    const counts = new Array<number>(K).fill(0);
    if (this.config.mixture === undefined) {
      // Uniform: the draws every ensemble saved before weights existed made, kept to the sample.
      for (let i = 0; i < n; i++) counts[rng.int(K)]! += 1;
      return counts;
    }
    for (let i = 0; i < n; i++) {
      let u = rng.uniform();
      let k = 0;
      while (k < K - 1 && u >= this.weights[k]!) u -= this.weights[k++]!;
      counts[k]! += 1;
    }
    return counts;
  }

  rsample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    const counts = this.counts(n, rng);
    return tf.tidy(() => {
      const parts = this.members.flatMap((m, k) =>
        counts[k]! > 0 ? [m.rsample(x, counts[k]!, rng)] : [],
      );
      const all = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
      return permuteRows(all, rng.permutation(n)) as tf.Tensor3D;
    });
  }

  sample(x: tf.Tensor2D, n: number, rng: RandomStream): tf.Tensor3D {
    const counts = this.counts(n, rng);
    // Member by member, so that only one member's sampling intermediates are alive at a time.
    const parts: tf.Tensor3D[] = [];
    try {
      this.members.forEach((m, k) => {
        if (counts[k]! > 0) parts.push(m.sample(x, counts[k]!, rng));
      });
      const perm = rng.permutation(n);
      return tf.tidy(() => {
        const all = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
        return tf.gather(all, tf.tensor1d(perm, 'int32'), 0) as tf.Tensor3D;
      });
    } finally {
      tf.dispose(parts);
    }
  }

  trainableVariables(): tf.Variable[] {
    return this.members.flatMap((m) => m.trainableVariables());
  }

  getWeights(): SerializedWeights[] {
    return this.members.flatMap((m, k) =>
      m.getWeights().map((w) => ({ ...w, name: `m${k}.${w.name}` })),
    );
  }

  /** Sets every member's weights; the whole set is checked first, so a bad one changes nothing. */
  setWeights(weights: SerializedWeights[]): void {
    const groups = this.members.map((): SerializedWeights[] => []);
    const seen = new Set<string>();
    for (const w of weights) {
      if (seen.has(w.name)) throw new Error('weights: duplicate names');
      seen.add(w.name);
      const match = MEMBER_NAME.exec(w.name);
      const k = match ? Number(match[1]) : -1;
      const shape = match ? this.layout[k]?.get(match[2]!) : undefined;
      if (!shape) throw new Error(`weights: unexpected weight "${w.name}"`);
      if (w.shape.length !== shape.length || w.shape.some((s, i) => s !== shape[i]))
        throw new Error(`weights: "${w.name}" has shape [${w.shape}], expected [${shape}]`);
      const size = shape.reduce((a, b) => a * b, 1);
      if (w.values.length !== size)
        throw new Error(`weights: "${w.name}" has ${w.values.length} values, expected ${size}`);
      groups[k]!.push({ ...w, name: match![2]! });
    }
    this.layout.forEach((names, k) => {
      for (const name of names.keys())
        if (!seen.has(`m${k}.${name}`)) throw new Error(`weights: missing weight "m${k}.${name}"`);
    });
    this.members.forEach((m, k) => m.setWeights(groups[k]!));
  }

  dispose(): void {
    for (const m of this.members) m.dispose();
    this.members.length = 0;
  }
}

/** The member weights `mixture` holds (uniform when absent), or one sentence on what is wrong. */
function checkMixture(mixture: unknown, K: number): number[] {
  if (mixture === undefined) return new Array<number>(K).fill(1 / K);
  if (
    !Array.isArray(mixture) ||
    mixture.length !== K ||
    mixture.some((w) => typeof w !== 'number' || !Number.isFinite(w) || w <= 0)
  )
    throw new Error(
      `mixture must hold one positive weight per member (${K}), got ${JSON.stringify(mixture)}`,
    );
  const total = (mixture as number[]).reduce((a, b) => a + b, 0);
  if (Math.abs(total - 1) > 1e-6) throw new Error(`mixture weights must sum to 1, got ${total}`);
  return mixture as number[];
}
