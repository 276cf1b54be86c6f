// Live trial counts per sweep, tallied from the trials themselves (the sweep document's counts are
// refreshed only when the sweep aggregates), in one query for all sweeps.
import type { TrialCounts, TrialStatus } from './documents.js';
import type { ResultStore } from './store.js';

export function emptyCounts(): TrialCounts {
  return { trials: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
}

/** Counts by status of every sweep's trials (a trial shared by two sweeps counts in both). */
export async function liveCounts(
  store: ResultStore,
  sweepIds?: readonly string[],
): Promise<Map<string, TrialCounts>> {
  const out = new Map<string, TrialCounts>();
  for (const id of sweepIds ?? []) out.set(id, emptyCounts());
  const filter = sweepIds ? { sweepIds: { $in: [...sweepIds] } } : {};
  const cursor = store.trials.find(filter, { projection: { sweepIds: 1, status: 1 } });
  for await (const t of cursor) {
    for (const id of (t.sweepIds as string[] | undefined) ?? []) {
      if (sweepIds && !sweepIds.includes(id)) continue;
      let c = out.get(id);
      if (!c) out.set(id, (c = emptyCounts()));
      c.trials++;
      const status = t.status as TrialStatus;
      if (status in c) c[status]++;
    }
  }
  return out;
}
