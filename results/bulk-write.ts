// The store's batched writes under FerretDB 1.24's limits: idempotent bulk upserts that survive
// duplicate-key races and report what they inserted, and lookups by _id kept a few in flight.
import { MongoServerError, type Collection, type Document } from 'mongodb';

/** Every document here has a string _id (a deterministic ID), never an ObjectId. */
export type Stored = Document & { _id: string };

const DUPLICATE_KEY = 11000;
/** Operations per bulk write: bounds the message size (an evaluation is a few kB). */
const BATCH = 500;

export interface WriteSummary {
  /** Documents created by this call. */
  inserted: number;
  /** Documents that existed and were matched (updated or left as they were). */
  matched: number;
}

export function isDuplicateKey(err: unknown): boolean {
  if (!(err instanceof MongoServerError)) return false;
  if (err.code === DUPLICATE_KEY) return true;
  const writeErrors = (err as { writeErrors?: { code?: number }[] }).writeErrors;
  return Array.isArray(writeErrors) && writeErrors.some((w) => w.code === DUPLICATE_KEY);
}

/**
 * Where an ordered write stopped: the lowest index among its write errors (0 when none is given,
 * which undercounts what was inserted but never skips a document).
 */
function firstWriteErrorIndex(err: unknown): number {
  const raw = (err as { writeErrors?: unknown }).writeErrors;
  const list = (Array.isArray(raw) ? raw : raw ? [raw] : []) as { index?: unknown }[];
  const idx = list.map((w) => w.index).filter((i): i is number => typeof i === 'number' && i >= 0);
  return idx.length > 0 ? Math.min(...idx) : 0;
}

/** Lookups by _id in flight at once: enough to hide the round trips. */
export const ID_LOOKUPS_IN_FLIGHT = 8;

/** `f` over `items` with at most `limit` calls in flight; results in the order of `items`. */
export async function mapInFlight<I, O>(
  items: readonly I[],
  limit: number,
  f: (item: I) => Promise<O>,
): Promise<O[]> {
  const out = new Array<O>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/**
 * Runs idempotent upserts. Two writers upserting the same new _id race, and the loser gets a
 * duplicate-key error (11000); a rerun then finds the document. FerretDB 1.24 stops a bulk update
 * at its first error and reports neither which operation failed (index 0 always) nor what the
 * others did, so after a duplicate key the batch is rerun one operation at a time, each retried
 * once: the same operation failing twice is not a race and is thrown. Filters hold only _id:
 * FerretDB evaluates an `_id` filter in SQL (an index search where infra/ferret-id-index.ts
 * added its index) but decodes every document for a compound equality. After a race
 * the counts may call inserted documents matched.
 *
 * `fresh[i]`, when given, is the document ops[i] creates when its _id is new. A batch is then first
 * inserted as it is, and upserted only when some _id exists already: FerretDB 1.24 pays a scan of
 * the collection for every upsert that inserts (about 10 ms of its CPU per write at 1,500
 * documents, growing with the collection), but not for an insert or an upsert that matches. An
 * insert that stops at an existing _id leaves the documents before it inserted; the upserts then
 * rerun over the whole batch, which changes nothing in those (their update is what they hold).
 */
export async function bulkUpsert(
  collection: Collection<Stored>,
  ops: Parameters<Collection<Stored>['bulkWrite']>[0],
  fresh?: readonly Stored[],
): Promise<WriteSummary> {
  const summary: WriteSummary = { inserted: 0, matched: 0 };
  for (let at = 0; at < ops.length; at += BATCH) {
    const batch = ops.slice(at, at + BATCH);
    let insertedFirst = 0;
    if (fresh) {
      try {
        await collection.insertMany(fresh.slice(at, at + BATCH) as Stored[], { ordered: true });
        summary.inserted += batch.length;
        continue;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        insertedFirst = firstWriteErrorIndex(err);
      }
    }
    const r = await upsertBatch(collection, batch);
    // The documents inserted before the duplicate were matched by their rerun upserts.
    const counted = Math.min(insertedFirst, r.matched);
    summary.inserted += r.inserted + counted;
    summary.matched += r.matched - counted;
  }
  return summary;
}

async function upsertBatch(
  collection: Collection<Stored>,
  batch: Parameters<Collection<Stored>['bulkWrite']>[0],
): Promise<WriteSummary> {
  const summary: WriteSummary = { inserted: 0, matched: 0 };
  try {
    const r = await collection.bulkWrite(batch, { ordered: true });
    return { inserted: r.upsertedCount, matched: r.matchedCount };
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
  for (const op of batch) {
    let r;
    try {
      r = await collection.bulkWrite([op], { ordered: true });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      r = await collection.bulkWrite([op], { ordered: true });
    }
    summary.inserted += r.upsertedCount;
    summary.matched += r.matchedCount;
  }
  return summary;
}
