// The smoke activity: one write and one read through the mongodb driver, proving that a worker
// reaches the MongoDB-protocol server. The collection holds nothing else.
import type { Db } from 'mongodb';

export interface SmokeDoc {
  _id: string;
  workflowId: string;
  note: string;
  writtenAt: Date;
}

export interface SmokeReadBack {
  id: string;
  /** true when the document read back equals the one written. */
  matches: boolean;
  note: string;
}

export const SMOKE_COLLECTION = 'smoke';

export function createSmokeActivities(db: Db) {
  return {
    async writeAndReadBack(input: {
      id: string;
      workflowId: string;
      note: string;
    }): Promise<SmokeReadBack> {
      const coll = db.collection<SmokeDoc>(SMOKE_COLLECTION);
      const doc: SmokeDoc = {
        _id: input.id,
        workflowId: input.workflowId,
        note: input.note,
        writtenAt: new Date(),
      };
      // Replace-with-upsert keeps a retried attempt idempotent (FerretDB has no transactions).
      await coll.replaceOne({ _id: doc._id }, doc, { upsert: true });
      const back = await coll.findOne({ _id: doc._id });
      const matches =
        back !== null &&
        back.workflowId === doc.workflowId &&
        back.note === doc.note &&
        back.writtenAt.getTime() === doc.writtenAt.getTime();
      return { id: doc._id, matches, note: back?.note ?? '' };
    },
  };
}

export type SmokeActivities = ReturnType<typeof createSmokeActivities>;
