// A deep ensemble: K MAFs of one architecture trained apart (own initialization, own shuffles) on
// one split, kept as the uniform mixture maf_ensemble defines, log q = logsumexp_k log q_k - log K.
// Unlike RABI's maf_ensemble, whose members train jointly on the mixture's loss, each member here
// minimizes its own NLL; the mixture then averages their errors. Since the members share the split,
// they share the z-score statistics the one maf_ensemble holds, and the file it saves to is an
// ordinary maf_ensemble file that sample, logprob and evaluate read as they read any model.
// A member that stopped early, far above the others' likelihood, still counts 1/K in a uniform
// mixture; fitMixtureWeights instead weighs the members by what they explain on the validation
// rows they share (maximum likelihood over the simplex, by EM), and mixMafs saves those weights.
import type { DensityEstimator } from '../types.js';
import { restoreEstimator } from './index.js';

/**
 * The mixture of `members` as one maf_ensemble (new weights; the members stay the caller's):
 * uniform, or with `mixture`'s member weights.
 */
export function mixMafs(
  members: readonly DensityEstimator[],
  mixture?: readonly number[],
): DensityEstimator {
  const first = members[0];
  if (first === undefined) throw new Error('a mixture needs at least one member');
  const shared = withoutOrders(first.config);
  const sharedJson = JSON.stringify(shared);
  const zscoreJson = JSON.stringify(first.zscore);
  for (const [k, m] of members.entries()) {
    if (m.kind !== 'maf') throw new Error(`member ${k} is a ${m.kind}, not a maf`);
    if (JSON.stringify(withoutOrders(m.config)) !== sharedJson)
      throw new Error(`member ${k}'s architecture differs from member 0's`);
    // A mixture holds one set of statistics: members trained on other splits cannot share it.
    if (JSON.stringify(m.zscore) !== zscoreJson)
      throw new Error(`member ${k} was standardized on other rows than member 0`);
  }
  const config = {
    ...shared,
    members: members.length,
    orders: members.map((m) => m.config.orders),
    ...(mixture ? { mixture: [...mixture] } : {}),
  };
  const weights = members.flatMap((m, k) =>
    m.getWeights().map((w) => ({ ...w, name: `m${k}.${w.name}` })),
  );
  return restoreEstimator(
    'maf_ensemble',
    first.thetaDim,
    first.xDim,
    config,
    first.zscore,
    weights,
  );
}

/** A MAF's config less its variable orders, the one part members differ in. */
function withoutOrders(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([key]) => key !== 'orders'));
}

/**
 * The member weights w (positive, summing to 1) that maximize sum_i log sum_k w_k q_k(row i):
 * EM from the uniform mixture, which climbs this concave objective to its maximum. logq[k][i] is
 * member k's log density of row i; rows where no member is finite, or one is NaN, say nothing
 * about the weights and are left out. With no usable rows the mixture stays uniform.
 */
export function fitMixtureWeights(
  logq: readonly ArrayLike<number>[],
  opts: { tolerance?: number; maxIterations?: number } = {},
): { weights: number[]; iterations: number; meanLogLik: number } {
  const K = logq.length;
  if (K === 0) throw new Error('a mixture needs at least one member');
  const n = logq[0]!.length;
  if (logq.some((l) => l.length !== n))
    throw new Error('every member needs the log density of the same rows');
  const tolerance = opts.tolerance ?? 1e-10;
  const maxIterations = opts.maxIterations ?? 10_000;
  const rows: number[] = [];
  for (let i = 0; i < n; i++) {
    let usable = false;
    let nan = false;
    for (let k = 0; k < K; k++) {
      const v = logq[k]![i]!;
      if (Number.isNaN(v)) nan = true;
      else if (v > -Infinity) usable = true;
    }
    if (usable && !nan) rows.push(i);
  }
  let weights = new Array<number>(K).fill(1 / K);
  if (rows.length === 0 || K === 1) return { weights, iterations: 0, meanLogLik: NaN };
  let iterations = 0;
  while (iterations < maxIterations) {
    iterations++;
    const updated = emStep(logq, rows, weights).next;
    const change = Math.max(...updated.map((w, k) => Math.abs(w - weights[k]!)));
    weights = updated;
    if (change < tolerance) break;
  }
  // EM keeps weights positive in exact arithmetic; a member that explains no row may underflow.
  const floor = 1e-12;
  if (weights.some((w) => w < floor)) {
    const lifted = weights.map((w) => Math.max(w, floor));
    const sum = lifted.reduce((a, b) => a + b, 0);
    weights = lifted.map((w) => w / sum);
  }
  return { weights, iterations, meanLogLik: emStep(logq, rows, weights).meanLogLik };
}

/**
 * One EM step at `weights`: the next weights (each member's responsibility for the rows, averaged
 * over them) and the mean log sum_k w_k q_k of the rows at `weights`.
 */
function emStep(
  logq: readonly ArrayLike<number>[],
  rows: readonly number[],
  weights: readonly number[],
): { next: number[]; meanLogLik: number } {
  const K = weights.length;
  const next = new Array<number>(K).fill(0);
  const term = new Float64Array(K);
  let total = 0;
  for (const i of rows) {
    let max = -Infinity;
    for (let k = 0; k < K; k++) {
      term[k] = logq[k]![i]! + Math.log(weights[k]!);
      if (term[k]! > max) max = term[k]!;
    }
    let sum = 0;
    for (let k = 0; k < K; k++) {
      term[k] = Math.exp(term[k]! - max);
      sum += term[k]!;
    }
    total += max + Math.log(sum);
    for (let k = 0; k < K; k++) next[k]! += term[k]! / sum / rows.length;
  }
  return { next, meanLogLik: total / rows.length };
}
