// The rows of `robustsbi export`, read from MongoDB with cursors in batches: a sweep's trials and
// its evaluations (the per-test-point rows are cli/export-points.ts'). Nothing holds more than one
// batch of documents or one batch of trial IDs, so the export's memory does not grow with the sweep.
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

/** The sweep's trials by _id, decoded (non-finite numbers restored). */
export async function* trialRows(
  store: ResultStore,
  sweepId: string,
  opts: SourceOptions = {},
): AsyncGenerator<Record<string, unknown>> {
  const cursor = store.trials
    .find({ sweepIds: sweepId })
    .sort({ _id: 1 })
    .batchSize(opts.batchSize ?? DEFAULT_BATCH);
  try {
    for await (const d of cursor) yield decodeDocument<Record<string, unknown>>(d);
  } finally {
    await cursor.close();
  }
}

/** The sweep's trial IDs by _id, a batch at a time. */
export async function* trialIdBatches(
  store: ResultStore,
  sweepId: string,
  opts: SourceOptions,
): AsyncGenerator<string[]> {
  const size = opts.idBatch ?? DEFAULT_ID_BATCH;
  const cursor = store.trials
    .find({ sweepIds: sweepId }, { projection: { _id: 1 } })
    .sort({ _id: 1 })
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

/** The sweep's evaluations, trial batch by trial batch, each batch by _id; decoded. */
export async function* evaluationRows(
  store: ResultStore,
  sweepId: string,
  opts: SourceOptions = {},
): AsyncGenerator<Record<string, unknown>> {
  for await (const ids of trialIdBatches(store, sweepId, opts)) {
    const query: Document = ids.length === 1 ? { trialId: ids[0] } : { trialId: { $in: ids } };
    const cursor = store.evaluations
      .find(query)
      .sort({ _id: 1 })
      .batchSize(opts.batchSize ?? DEFAULT_BATCH);
    try {
      for await (const d of cursor) yield decodeDocument<Record<string, unknown>>(d);
    } finally {
      await cursor.close();
    }
  }
}
