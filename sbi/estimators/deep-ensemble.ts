// A deep ensemble: K MAFs of one architecture trained apart (own initialization, own shuffles) on
// one split, kept as the uniform mixture maf_ensemble defines, log q = logsumexp_k log q_k - log K.
// Unlike RABI's maf_ensemble, whose members train jointly on the mixture's loss, each member here
// minimizes its own NLL; the mixture then averages their errors. Since the members share the split,
// they share the z-score statistics the one maf_ensemble holds, and the file it saves to is an
// ordinary maf_ensemble file that sample, logprob and evaluate read as they read any model.
import type { DensityEstimator } from '../types.js';
import { restoreEstimator } from './index.js';

/** The uniform mixture of `members` as one maf_ensemble (new weights; the members stay the caller's). */
export function mixMafs(members: readonly DensityEstimator[]): DensityEstimator {
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
