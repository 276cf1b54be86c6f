// Trial counts by status, tallied from the trials themselves (a sweep document's `counts` are
// refreshed only when the sweep aggregates), in one query for any number of sweeps. The store's
// trialCounts and refreshSweepCounts are the way in; nothing else reads the trials for counts.
import type { Collection, Document } from 'mongodb';
import type { TrialCounts, TrialStatus } from './documents.js';

export function emptyTrialCounts(): TrialCounts {
  return { trials: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
}

/**
 * Counts by status of the trials of each of `sweepIds` (every one present in the result, zeros when
 * it has none), or of every sweep that has trials when `sweepIds` is absent. A trial shared by two
 * sweeps counts in both.
 */
export async function countTrialsBySweep(
  trials: Collection<Document & { _id: string }>,
  sweepIds?: readonly string[],
): Promise<Map<string, TrialCounts>> {
  const out = new Map<string, TrialCounts>();
  for (const id of sweepIds ?? []) out.set(id, emptyTrialCounts());
  // One sweep: an equality the sweep_status index (and FerretDB's JSON index) serves directly.
  const filter =
    sweepIds === undefined
      ? {}
      : sweepIds.length === 1
        ? { sweepIds: sweepIds[0] }
        : { sweepIds: { $in: [...sweepIds] } };
  const cursor = trials.find(filter, { projection: { sweepIds: 1, status: 1 } });
  for await (const t of cursor) {
    for (const id of (t.sweepIds as string[] | undefined) ?? []) {
      if (sweepIds && !sweepIds.includes(id)) continue;
      let c = out.get(id);
      if (!c) out.set(id, (c = emptyTrialCounts()));
      c.trials++;
      const status = t.status as TrialStatus;
      if (status in c) c[status]++;
    }
  }
  return out;
}
