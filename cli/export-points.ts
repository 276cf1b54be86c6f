// The per-test-point rows of `robustsbi export --what points`: the values each evaluation kept in
// its `points/...` chunk artifacts (activities/evaluate.ts), one chunk in memory at a time. In cli/
// because it reads the activities' artifact encoding.
import { artifactNames, decodeChunkPoints } from '../activities/artifacts.js';
import type { ArtifactStore } from '../results/artifacts.js';
import type { FlatRow } from '../results/export.js';
import { trialIdBatches, type SourceOptions } from '../results/export-source.js';
import type { ResultStore } from '../results/store.js';

/** What a points export could not find: (trial, attack, eps) whose chunks are not kept. */
export interface PointGaps {
  missing: { trialId: string; attack: string; eps: number }[];
}

/**
 * One row per (trial, attack, objective, eps, test point) from the kept evaluation chunks: the
 * point's KL, attacked NLL and coverage rank, and its clean NLL, clean coverage rank and (tasks
 * with an analytic posterior) ground-truth metrics. Evaluations stored before every evaluation
 * kept its chunks have none; they are listed in `gaps.missing`.
 */
export async function* pointRows(
  store: ResultStore,
  artifacts: ArtifactStore,
  sweepId: string,
  gaps: PointGaps = { missing: [] },
  opts: SourceOptions = {},
): AsyncGenerator<FlatRow> {
  for await (const ids of trialIdBatches(store, sweepId, opts)) {
    for (const trialId of ids) {
      const pairs = new Map<string, { attack: string; eps: number }>();
      const cursor = store.evaluations.find({ trialId }, { projection: { attack: 1, eps: 1 } });
      for await (const d of cursor) {
        const attack = d.attack as string;
        const eps = d.eps as number;
        pairs.set(`${attack}|${eps}`, { attack, eps });
      }
      const sorted = [...pairs.values()].sort(
        (a, b) => (a.attack < b.attack ? -1 : a.attack > b.attack ? 1 : 0) || a.eps - b.eps,
      );
      for (const { attack, eps } of sorted) {
        let found = false;
        for (let c = 0; ; c++) {
          const name = artifactNames.evaluationChunk(trialId, attack, eps, c);
          const bytes = await artifacts.get(name);
          if (!bytes) break;
          found = true;
          const chunk = decodeChunkPoints(bytes, name);
          const truth = chunk.groundTruth;
          for (const r of chunk.records) {
            for (let i = 0; i < r.kl.length; i++) {
              yield {
                trialId,
                attack,
                objective: r.objective,
                eps,
                point: chunk.from + i,
                kl: r.kl[i]!,
                nllAttacked: r.nllAttacked[i]!,
                coverageRank: r.coverageRank[i]!,
                nllClean: chunk.nllClean[i]!,
                cleanCoverageRank: chunk.cleanCoverageRank[i]!,
                c2stTruth: truth ? truth.c2st[i]! : null,
                klQPTruth: truth ? truth.klQP[i]! : null,
                klPQTruth: truth ? truth.klPQ[i]! : null,
              };
            }
          }
        }
        if (!found) gaps.missing.push({ trialId, attack, eps });
      }
    }
  }
}
