// The errors the results store throws for a write no retry can fix. Their names are the failure
// types of sweeps/failures.ts, under which Temporal sees them (non-retryable) and a trial records them.
import { FAILURE_TYPES } from '../sweeps/failures.js';

/** A document that may not be stored; `field` is the dotted path of the offending field. */
export class SchemaError extends Error {
  constructor(
    readonly collection: string,
    readonly field: string,
    readonly problem: string,
    readonly docId?: string,
    readonly index?: number,
  ) {
    const where = docId !== undefined ? ` ${JSON.stringify(docId)}` : '';
    const pos = index !== undefined ? ` (#${index} of the batch)` : '';
    super(`${collection} document${where}${pos}: ${field || '(document)'} ${problem}.`);
    this.name = FAILURE_TYPES.schema;
  }
}

/** An _id already holds a document whose identity fields differ from the one being written. */
export class ConflictError extends Error {
  constructor(
    readonly collection: string,
    readonly docId: string,
    message: string,
  ) {
    super(message);
    this.name = FAILURE_TYPES.conflict;
  }
}

export class NotFoundError extends Error {
  constructor(
    readonly collection: string,
    readonly docId: string,
  ) {
    super(`No ${collection} document with _id ${JSON.stringify(docId)}.`);
    this.name = FAILURE_TYPES.notFound;
  }
}
