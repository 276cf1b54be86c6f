// The rows of `robustsbi export`, read from MongoDB with cursors in batches: a sweep's trials and
// its evaluations (the per-test-point rows are cli/export-points.ts'). Nothing holds more than one
// batch of documents or one batch of trial IDs, so the export's memory does not grow with the sweep.
// Rows come in the server's natural order, unsorted: a sort makes FerretDB read and order every
// matching document before it answers the first batch (a 100,000-evaluation sweep outran the
// driver's 120 s socket timeout that way on a loaded two-core machine).
import type { Document } from 'mongodb';
import { decodeDocument } from './nonfinite.js';
import type { ResultStore } from './store.js';

export interface SourceOptions {
  /** Documents per cursor batch (the driver's batchSize). */
  batchSize?: number;
  /** Trial IDs per `$in` query of evaluations. */
  idBatch?: number;
}

const DEFAULT_BATCH = 500;
const DEFAULT_ID_BATCH = 200;

/** The sweep's trials, decoded (non-finite numbers restored). */
export async function* trialRows(
  store: ResultStore,
  sweepId: string,
  opts: SourceOptions = {},
): AsyncGenerator<Record<string, unknown>> {
  const cursor = store.trials
    .find({ sweepIds: sweepId })
    .batchSize(opts.batchSize ?? DEFAULT_BATCH);
  try {
    for await (const d of cursor) yield decodeDocument<Record<string, unknown>>(d);
  } finally {
    await cursor.close();
  }
}

/** The sweep's trial IDs, a batch at a time. */
export async function* trialIdBatches(
  store: ResultStore,
  sweepId: string,
  opts: SourceOptions,
): AsyncGenerator<string[]> {
  const size = opts.idBatch ?? DEFAULT_ID_BATCH;
  const cursor = store.trials
    .find({ sweepIds: sweepId }, { projection: { _id: 1 } })
    .batchSize(opts.batchSize ?? DEFAULT_BATCH);
  let batch: string[] = [];
  try {
    for await (const d of cursor) {
      batch.push(d._id as string);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    await cursor.close();
  }
}

/** The sweep's evaluations, trial batch by trial batch; decoded. */
export async function* evaluationRows(
  store: ResultStore,
  sweepId: string,
  opts: SourceOptions = {},
): AsyncGenerator<Record<string, unknown>> {
  for await (const ids of trialIdBatches(store, sweepId, opts)) {
    const query: Document = ids.length === 1 ? { trialId: ids[0] } : { trialId: { $in: ids } };
    const cursor = store.evaluations.find(query).batchSize(opts.batchSize ?? DEFAULT_BATCH);
    try {
      for await (const d of cursor) yield decodeDocument<Record<string, unknown>>(d);
    } finally {
      await cursor.close();
    }
  }
}
