// Aggregation of one sweep: read its trials and evaluations, compute the curves in TypeScript
// (results/curves.ts), and store them in `curves`. Recomputing from the same results writes the
// same documents, so the aggregate activity can run any number of times, including mid-sweep for
// the live dashboard.
import { computeCurves, tradeoffOptionsOfSpec, type TradeoffOptions } from './curves.js';
import type { CurveDoc, TrialCounts } from './documents.js';
import type { ResultStore } from './store.js';

export interface AggregateResult {
  sweepId: string;
  curves: CurveDoc[];
  counts: TrialCounts;
  evaluations: number;
}

export async function aggregateSweep(
  store: ResultStore,
  sweepId: string,
  opts: TradeoffOptions = {},
): Promise<AggregateResult> {
  // The spec says where the trade-off is read (sweeps/ evaluation.tradeoffAttack, tradeoffObjective,
  // tradeoffEps); explicit options win.
  const fromSpec = tradeoffOptionsOfSpec((await store.getSweep(sweepId))?.spec);
  const trials = await store.listTrials(sweepId);
  const evaluations = await store.listEvaluations({ sweepId });
  const curves = computeCurves(sweepId, trials, evaluations, { ...fromSpec, ...opts });
  await store.replaceCurves(sweepId, curves);
  const counts = await store.refreshSweepCounts(sweepId);
  return { sweepId, curves, counts, evaluations: evaluations.length };
}
