// Aggregation of one sweep: read its trials and evaluations, compute the curves in TypeScript
// (results/curves.ts), and store them in `curves`. Recomputing from the same results writes the
// same documents, so the aggregate activity can run any number of times, including mid-sweep for
// the live dashboard.
import { computeCurves, type TradeoffOptions } from './curves.js';
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
  // The spec says at which eps the trade-off is read (sweeps/ evaluation.tradeoffEps).
  const spec = (await store.getSweep(sweepId))?.spec as
    { evaluation?: { tradeoffEps?: unknown } } | undefined;
  const specEps = spec?.evaluation?.tradeoffEps;
  const eps = opts.eps ?? (typeof specEps === 'number' ? specEps : undefined);
  const trials = await store.listTrials(sweepId);
  const evaluations = await store.listEvaluations({ sweepId });
  const curves = computeCurves(sweepId, trials, evaluations, {
    ...opts,
    ...(eps !== undefined ? { eps } : {}),
  });
  await store.replaceCurves(sweepId, curves);
  const counts = await store.refreshSweepCounts(sweepId);
  return { sweepId, curves, counts, evaluations: evaluations.length };
}
