// Tags and notes on sweeps and trials (`robustsbi sweep tag | note`), in a collection of their own
// so the sweep and trial documents, which workflows write, stay theirs. One document per target,
// `_id` `sweep:ID` or `trial:ID`; a tag is one `$set` of `tags.KEY` (so tagging twice is the same as
// once), a note is appended with its time. Keys are checked here because FerretDB refuses '.' and
// '$' in field names; values and notes are any text, which the dashboard shows as text.
import type { Collection, Db } from 'mongodb';
import { documentValidator } from './validate.js';

export const ANNOTATIONS_COLLECTION = 'annotations';

export const ANNOTATION_KINDS = ['sweep', 'trial'] as const;
export type AnnotationKind = (typeof ANNOTATION_KINDS)[number];

export interface Note {
  text: string;
  at: Date;
}

export interface AnnotationDoc {
  _id: string;
  kind: AnnotationKind;
  targetId: string;
  tags: Record<string, string>;
  notes: Note[];
  createdAt: Date;
  updatedAt: Date;
}

export const TAG_KEY = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const MAX_TAG_VALUE = 200;
export const MAX_NOTE = 2000;

export class AnnotationError extends Error {}

/** `key=value` arguments as tags; one sentence naming the bad argument otherwise. */
export function parseTags(args: readonly string[]): Record<string, string> {
  if (args.length === 0) throw new AnnotationError('Give at least one tag as key=value.');
  const tags: Record<string, string> = {};
  for (const a of args) {
    const at = a.indexOf('=');
    if (at < 0) throw new AnnotationError(`The tag "${a}" is not key=value.`);
    const key = a.slice(0, at);
    const value = a.slice(at + 1);
    checkTagKey(key);
    if (value.length > MAX_TAG_VALUE)
      throw new AnnotationError(
        `The value of tag "${key}" is ${value.length} characters long; at most ${MAX_TAG_VALUE} are allowed.`,
      );
    tags[key] = value;
  }
  return tags;
}

export function checkTagKey(key: string): void {
  if (!TAG_KEY.test(key))
    throw new AnnotationError(
      `The tag key "${key}" must start with a letter and hold only letters, digits, "_" and "-" (at most 64 characters).`,
    );
}

export function checkNote(text: string): string {
  const t = text.trim();
  if (t === '') throw new AnnotationError('The note is empty.');
  if (t.length > MAX_NOTE)
    throw new AnnotationError(
      `The note is ${t.length} characters long; at most ${MAX_NOTE} are allowed.`,
    );
  return t;
}

export function annotationId(kind: AnnotationKind, targetId: string): string {
  return `${kind}:${targetId}`;
}

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['_id', 'kind', 'targetId', 'tags', 'notes', 'createdAt', 'updatedAt'],
  properties: {
    _id: { type: 'string', minLength: 3, maxLength: 300 },
    kind: { enum: [...ANNOTATION_KINDS] },
    targetId: { type: 'string', minLength: 1, maxLength: 200 },
    tags: {
      type: 'object',
      propertyNames: { pattern: TAG_KEY.source },
      additionalProperties: { type: 'string', maxLength: MAX_TAG_VALUE },
    },
    notes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['text', 'at'],
        properties: {
          text: { type: 'string', minLength: 1, maxLength: MAX_NOTE },
          at: { bsonDate: true },
        },
      },
    },
    createdAt: { bsonDate: true },
    updatedAt: { bsonDate: true },
  },
} as const;

const validate = documentValidator(ANNOTATIONS_COLLECTION, schema);

export class AnnotationStore {
  readonly collection: Collection<AnnotationDoc>;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.collection = db.collection<AnnotationDoc>(ANNOTATIONS_COLLECTION);
  }

  /** Sets the given tags (others are kept); removes the `remove` keys. */
  async tag(
    kind: AnnotationKind,
    targetId: string,
    tags: Record<string, string>,
    remove: readonly string[] = [],
  ): Promise<AnnotationDoc> {
    for (const k of remove) checkTagKey(k);
    const now = this.now();
    const _id = annotationId(kind, targetId);
    // The whole document as it would look fresh, so the schema checks keys and values once.
    validate({ _id, kind, targetId, tags, notes: [], createdAt: now, updatedAt: now });
    const set: Record<string, unknown> = { updatedAt: now };
    for (const [k, v] of Object.entries(tags)) set[`tags.${k}`] = v;
    const update: Record<string, unknown> = {
      $set: set,
      $setOnInsert: { kind, targetId, notes: [], createdAt: now },
    };
    if (remove.length > 0) update.$unset = Object.fromEntries(remove.map((k) => [`tags.${k}`, '']));
    // A fresh document needs its tags object even when only removing.
    if (Object.keys(tags).length === 0)
      await this.collection.updateOne(
        { _id },
        { $setOnInsert: { kind, targetId, tags: {}, notes: [], createdAt: now } },
        { upsert: true },
      );
    await this.collection.updateOne({ _id }, update, { upsert: true });
    return (await this.get(kind, targetId))!;
  }

  /** Appends a note. */
  async note(kind: AnnotationKind, targetId: string, text: string): Promise<AnnotationDoc> {
    const now = this.now();
    const _id = annotationId(kind, targetId);
    const note = { text: checkNote(text), at: now };
    validate({ _id, kind, targetId, tags: {}, notes: [note], createdAt: now, updatedAt: now });
    await this.collection.updateOne(
      { _id },
      {
        $push: { notes: note },
        $set: { updatedAt: now },
        $setOnInsert: { kind, targetId, tags: {}, createdAt: now },
      },
      { upsert: true },
    );
    return (await this.get(kind, targetId))!;
  }

  async get(kind: AnnotationKind, targetId: string): Promise<AnnotationDoc | null> {
    return this.collection.findOne({ _id: annotationId(kind, targetId) });
  }

  /** Every annotation of a kind (few: they are written by hand), by target ID. */
  async all(kind: AnnotationKind): Promise<Map<string, AnnotationDoc>> {
    const docs = await this.collection.find({ kind }).toArray();
    return new Map(docs.map((d) => [d.targetId, d]));
  }
}
