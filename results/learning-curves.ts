// Learning curves: training and validation loss per epoch of each trained trial, written by the
// train activity as the epochs end, a second's epochs at a time (so the dashboard shows them while a
// trial trains). One document per trial, `_id` its trialId, with one entry per epoch under
// `epochs.e<N>`: writing an epoch is a `$set` of that path, so a retried activity that trains the
// same epochs again (it resumes from its checkpoint and reproduces the same numbers) leaves the same
// document. Epoch 1 replaces the whole map, so a training restarted from scratch leaves no epochs of
// the run it replaced. Reads are by _id, the lookup FerretDB answers without decoding the whole
// collection.
import type { Collection, Db } from 'mongodb';
import { encodeNonFinite, nonFiniteValue, type NonFiniteKind } from './nonfinite.js';
import { documentValidator } from './validate.js';

export const LEARNING_CURVES_COLLECTION = 'learning_curves';

export interface EpochLosses {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  bestValLoss: number;
}

/** A trial's curve, epochs in order; losses may be NaN (a diverging epoch). */
export interface LearningCurve {
  trialId: string;
  modelId: string;
  epochs: number[];
  trainLoss: number[];
  valLoss: number[];
  bestValLoss: number[];
  /** Of the last write: the activity attempt that trained it. */
  attempt: number;
  updatedAt: Date;
}

interface StoredEntry {
  trainLoss: number | null;
  valLoss: number | null;
  bestValLoss: number | null;
  /** Which of the three were non-finite (nonfinite.ts kinds), when any were. */
  nonFinite?: Record<string, string>;
}

const entrySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['trainLoss', 'valLoss', 'bestValLoss'],
  properties: {
    trainLoss: { type: ['number', 'null'] },
    valLoss: { type: ['number', 'null'] },
    bestValLoss: { type: ['number', 'null'] },
    nonFinite: { type: 'object', additionalProperties: { enum: ['nan', 'inf', '-inf'] } },
  },
} as const;

const validateEntry = documentValidator(LEARNING_CURVES_COLLECTION, entrySchema);

function encodeEntry(e: EpochLosses): StoredEntry {
  const out: StoredEntry = { trainLoss: null, valLoss: null, bestValLoss: null };
  const kinds: Record<string, string> = {};
  for (const k of ['trainLoss', 'valLoss', 'bestValLoss'] as const) {
    const { value, markers } = encodeNonFinite(e[k]);
    out[k] = value as number | null;
    if (markers.length > 0) kinds[k] = markers[0]!.value;
  }
  if (Object.keys(kinds).length > 0) out.nonFinite = kinds;
  return out;
}

function decodeEntry(s: StoredEntry, k: 'trainLoss' | 'valLoss' | 'bestValLoss'): number {
  const kind = s.nonFinite?.[k];
  if (kind) return nonFiniteValue(kind as NonFiniteKind);
  return typeof s[k] === 'number' ? s[k] : NaN;
}

export class LearningCurveStore {
  readonly collection: Collection<{ _id: string; [k: string]: unknown }>;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.collection = db.collection(LEARNING_CURVES_COLLECTION);
  }

  /** Stores one epoch's losses of a trial (idempotent: keyed by trial and epoch). */
  putEpoch(trialId: string, modelId: string, attempt: number, losses: EpochLosses): Promise<void> {
    return this.putEpochs(trialId, modelId, attempt, [losses]);
  }

  /**
   * Stores several epochs' losses of a trial in one update (the train activity batches a second's
   * epochs: a write per short epoch cost the store more CPU than the epoch). Idempotent as putEpoch;
   * a batch holding epoch 1 replaces the whole map with its epochs from the last epoch 1 on.
   */
  async putEpochs(
    trialId: string,
    modelId: string,
    attempt: number,
    losses: readonly EpochLosses[],
  ): Promise<void> {
    for (const l of losses)
      if (!Number.isInteger(l.epoch) || l.epoch < 1)
        throw new Error(`A learning-curve epoch must be a positive integer (got ${l.epoch}).`);
    if (losses.length === 0) return;
    // Epoch 1 starts a training over (another candidate, a restart): what came before it goes.
    const start = losses.map((l) => l.epoch).lastIndexOf(1);
    const entries: Record<string, StoredEntry> = {};
    for (const l of start > 0 ? losses.slice(start) : losses) {
      const entry = encodeEntry(l);
      validateEntry(entry);
      entries[`e${l.epoch}`] = entry;
    }
    const set: Record<string, unknown> = { modelId, attempt, updatedAt: this.now() };
    if ('e1' in entries) set.epochs = entries;
    else for (const [k, e] of Object.entries(entries)) set[`epochs.${k}`] = e;
    await this.collection.updateOne({ _id: trialId }, { $set: set }, { upsert: true });
  }

  /** The curve of a trial, or of the trial that trained its model (`modelId`) when it reused one. */
  async get(trialId: string, modelId?: string): Promise<LearningCurve | null> {
    let d = await this.collection.findOne({ _id: trialId });
    if (!d && modelId) d = await this.collection.findOne({ modelId });
    if (!d) return null;
    const map = (d.epochs ?? {}) as Record<string, StoredEntry>;
    const epochs = Object.keys(map)
      .map((k) => Number(k.slice(1)))
      .filter((n) => Number.isInteger(n) && n > 0)
      .sort((a, b) => a - b);
    const at = (n: number) => map[`e${n}`]!;
    return {
      trialId: d._id,
      modelId: String(d.modelId ?? ''),
      epochs,
      trainLoss: epochs.map((n) => decodeEntry(at(n), 'trainLoss')),
      valLoss: epochs.map((n) => decodeEntry(at(n), 'valLoss')),
      bestValLoss: epochs.map((n) => decodeEntry(at(n), 'bestValLoss')),
      attempt: Number(d.attempt ?? 0),
      updatedAt: d.updatedAt as Date,
    };
  }
}
