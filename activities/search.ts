// The search activity: one round of a search sweep. Reads the results of the sweep's trials so far
// from MongoDB, applies the stop rule, proposes the next batch (sweeps/search.ts, pure and seeded)
// and registers the proposals as ordinary trials of the sweep, tagged with their round. The
// workflow passes the trials of the earlier rounds, not "whatever the store holds", so that a rerun
// of the sweep proposes from the same history as the run before it.
import { trialInputFromSweep } from '../results/documents.js';
import { sameEps } from '../results/curves.js';
import { proposedTrial } from '../sweeps/expand.js';
import { hypervolumeByRound, hypervolumeStalled } from '../sweeps/hypervolume.js';
import {
  objectivePoint,
  proposeBatch,
  type SearchObservation,
  type SearchPoint,
} from '../sweeps/search.js';
import type { SweepSpec, TrialDefense } from '../sweeps/types.js';
import type { ActivityDeps } from './deps.js';

export type { SearchPoint } from '../sweeps/search.js';

export interface ProposeSearchInput {
  sweepId: string;
  spec: SweepSpec;
  /** The round to propose (1 for the first). */
  round: number;
  /** Index of the first proposal in the sweep's order (after the grid and earlier proposals). */
  firstIndex: number;
  /** Every trial of the earlier rounds. */
  points: SearchPoint[];
}

export interface ProposeSearchResult {
  /** The round's points, in order; empty when the search is over. */
  defenses: TrialDefense[];
  /** Normalized hypervolume after each round so far (index: round). */
  hypervolume: number[];
  /** Why nothing was proposed: the budget is spent, the hypervolume stalled, or the space is exhausted. */
  stopped?: 'budget' | 'hypervolume' | 'exhausted';
}

/** The completed trials among `points` with both objectives, read from the store. */
export async function observe(
  deps: Pick<ActivityDeps, 'store'>,
  spec: SweepSpec,
  points: readonly SearchPoint[],
): Promise<(SearchObservation & { round: number })[]> {
  const kl = spec.search!.objectives.find((o) => o.metric === 'kl');
  if (!kl || kl.metric !== 'kl') return [];
  const out: (SearchObservation & { round: number })[] = [];
  for (const p of points) {
    const t = await deps.store.getTrial(p.trialId);
    if (!t || t.status !== 'completed' || !t.summary) continue;
    const e = (await deps.store.listEvaluations({ trialId: p.trialId })).find(
      (v) => v.attack === kl.attack && v.objective === kl.objective && sameEps(v.eps, kl.eps),
    );
    if (!e) continue;
    out.push({ defense: p.defense, kl: e.kl.mean, nll: t.summary.testNll, round: p.round });
  }
  return out;
}

export async function proposeSearch(
  deps: ActivityDeps,
  input: ProposeSearchInput,
): Promise<ProposeSearchResult> {
  const { spec, round, points } = input;
  const search = spec.search;
  if (!search) throw new Error(`Sweep ${input.sweepId} has no search block.`);
  const observed = await observe(deps, spec, points);
  const hypervolume = hypervolumeByRound(
    observed.map((o) => ({ ...objectivePoint(search, o), round: o.round })),
  );
  // The curve so far reaches the round before this one even where its last rounds measured nothing.
  while (hypervolume.length > 0 && hypervolume.length < round)
    hypervolume.push(hypervolume[hypervolume.length - 1]!);
  const left = search.budget - points.length;
  if (left <= 0) return { defenses: [], hypervolume, stopped: 'budget' };
  if (search.stop && hypervolumeStalled(hypervolume, search.stop))
    return { defenses: [], hypervolume, stopped: 'hypervolume' };
  const gridTrials = points.filter((p) => p.round === 0).length;
  const defenses = proposeBatch({
    search,
    tried: points.map((p) => p.defense),
    observed,
    round,
    count: Math.min(search.batch, left),
    gridSize: search.budget - gridTrials,
  });
  if (defenses.length === 0) return { defenses, hypervolume, stopped: 'exhausted' };
  await deps.store.upsertTrials(
    defenses.map((d, k) => ({
      ...trialInputFromSweep(
        input.sweepId,
        proposedTrial(spec, d, input.firstIndex + k),
        deps.codeVersion,
      ),
      round,
    })),
  );
  deps.logger.info(
    `search round ${round}: proposed ${defenses.length} (${defenses.map((d) => JSON.stringify(d)).join(', ')}); hypervolume ${hypervolume.map((h) => h.toFixed(4)).join(' ')}`,
    { component: 'activity', sweepId: input.sweepId },
  );
  return { defenses, hypervolume };
}
