// A workflow that expands a sweep inside Temporal's sandbox, so a test can compare its IDs with the
// ones the client computes: the sweeps/ modules must bundle and hash identically there.
import { evaluationPlan, trialIndexer } from '../../../sweeps/expand.js';
import type { SweepSpec } from '../../../sweeps/types.js';

export interface SweepIds {
  sweepId: string;
  trialIds: string[];
  evalIds: string[];
}

export async function sweepIdsWorkflow(spec: SweepSpec): Promise<SweepIds> {
  const ix = trialIndexer(spec);
  const trialIds: string[] = [];
  for (let i = 0; i < ix.count; i++) trialIds.push(ix.at(i).trialId);
  return {
    sweepId: ix.sweepId,
    trialIds,
    evalIds: evaluationPlan(ix.at(ix.count - 1)).map((e) => e.evalId),
  };
}
