// The results database: sweeps, trials, evaluations and curves, written only through this class.
// Written for the subset FerretDB 1.24 supports (research/orchestration.md 2 and 4): no transactions,
// no server validators, single-document atomic updates. Every write is an idempotent upsert keyed by
// a deterministic _id (results/bulk-write.ts); every document is validated (results/validate.ts)
// before anything of its batch is written; status changes are fenced (results/trial-transitions.ts)
// so that a stale or late writer cannot undo progress.
import type { Collection, Db, Document, MongoClient } from 'mongodb';
import type { Config } from '../infra/config.js';
import { mongoClient } from '../infra/connections.js';
import {
  COLLECTIONS,
  evaluationId,
  type CollectionName,
  type CurveDoc,
  type ErrorInfo,
  type EvaluationDoc,
  type SweepDoc,
  type SweepStatus,
  type TrialConfig,
  type TrialCounts,
  type TrialDoc,
  type TrialStatus,
} from './documents.js';
import {
  bulkUpsert,
  ID_LOOKUPS_IN_FLIGHT,
  isDuplicateKey,
  mapInFlight,
  type Stored,
  type WriteSummary,
} from './bulk-write.js';
import { ConflictError, NotFoundError, SchemaError } from './errors.js';
import { decodeDocument, encodeDocument, NON_FINITE_KEY } from './nonfinite.js';
import { countTrialsBySweep } from './trial-counts.js';
import {
  detectFence,
  TRIAL_TRANSITIONS,
  transitionUpdate,
  unapplied,
  type FenceMode,
  type TransitionFields,
  type TransitionResult,
} from './trial-transitions.js';
import { validateAll, validateDocument, validatePatch } from './validate.js';

export type SweepInput = Pick<SweepDoc, '_id' | 'name' | 'spec' | 'specHash' | 'codeVersion'> & {
  workflowId?: string;
};

/** A trial registered under one sweep (documents.ts trialInputFromSweep makes one from sweeps/). */
export interface TrialInput {
  _id: string;
  sweepId: string;
  /** Position in that sweep's expansion. */
  index?: number;
  /** Search sweeps: the round that proposed the trial. */
  round?: number;
  config: TrialConfig;
  codeVersion: string;
}

export type EvaluationInput = Omit<EvaluationDoc, 'createdAt' | 'updatedAt'>;

export interface ResultStoreOptions {
  now?: () => Date;
  fence?: FenceMode | 'auto';
}

export class ResultStore {
  readonly sweeps: Collection<Stored>;
  readonly trials: Collection<Stored>;
  readonly evaluations: Collection<Stored>;
  readonly curves: Collection<Stored>;

  private readonly now: () => Date;
  private fence: FenceMode | 'auto';
  private detecting?: Promise<FenceMode>;
  /**
   * Set once FerretDB's lookups by _id are index searches (infra/ferret-id-index.ts): a page of
   * trials is then cheaper to look up one _id at a time than with `$in`, which FerretDB answers by
   * decoding every trial document in Go (560 ms per 100 among 1,000 trials, against ~2 ms an _id).
   */
  idLookupsIndexed = false;

  constructor(
    readonly db: Db,
    options: ResultStoreOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.fence = options.fence ?? 'auto';
    this.sweeps = db.collection(COLLECTIONS.sweeps);
    this.trials = db.collection(COLLECTIONS.trials);
    this.evaluations = db.collection(COLLECTIONS.evaluations);
    this.curves = db.collection(COLLECTIONS.curves);
  }

  /** Indexes the queries and identities need; idempotent (createIndex of an existing index is a no-op). */
  async ensureIndexes(): Promise<void> {
    await this.sweeps.createIndex({ status: 1 }, { name: 'status' });
    // sweepIds is an array: a multikey index on MongoDB, a JSON index on FerretDB; both serve {sweepIds: X}.
    await this.trials.createIndex({ sweepIds: 1, status: 1 }, { name: 'sweep_status' });
    // One evaluation per (trial, attack, objective, eps), whatever _id a writer composed.
    await this.evaluations.createIndex(
      { trialId: 1, attack: 1, objective: 1, eps: 1 },
      { name: 'identity', unique: true },
    );
    await this.curves.createIndex(
      { sweepId: 1, task: 1, kind: 1 },
      { name: 'identity', unique: true },
    );
  }

  /**
   * After an upsert whose $setOnInsert left existing documents alone: the first document whose
   * stored `field` differs from the one written is a conflict (its _id means something else).
   */
  private async checkIdentity(
    collection: Collection<Stored>,
    name: CollectionName,
    docs: readonly Record<string, unknown>[],
    field: string,
    what: string,
  ): Promise<void> {
    const want = new Map(docs.map((d) => [d._id as string, d[field]]));
    const stored = collection.find(
      { _id: { $in: [...want.keys()] } },
      { projection: { [field]: 1 } },
    );
    for await (const d of stored) {
      if (d[field] !== want.get(d._id)) {
        throw new ConflictError(
          name,
          d._id,
          `${name} document ${JSON.stringify(d._id)} already exists with ${what} ${JSON.stringify(d[field])}, not ${JSON.stringify(want.get(d._id))}.`,
        );
      }
    }
  }

  // ---- sweeps ----

  /**
   * Creates the sweep document, or attaches to the existing one with the same _id and specHash
   * (nothing is changed then). Returns whether it was created.
   */
  async createSweep(input: SweepInput): Promise<{ created: boolean }> {
    const now = this.now();
    const doc = encodeDocument({
      ...input,
      status: 'queued' as SweepStatus,
      counts: { trials: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
      createdAt: now,
      updatedAt: now,
    });
    validateDocument('sweeps', doc);
    const r = await bulkUpsert(this.sweeps, [
      { updateOne: { filter: { _id: input._id }, update: { $setOnInsert: doc }, upsert: true } },
    ]);
    if (r.inserted === 0)
      await this.checkIdentity(this.sweeps, 'sweeps', [doc], 'specHash', 'specHash');
    return { created: r.inserted === 1 };
  }

  /**
   * Sets a sweep's status, only from the given states when `from` is set (a cancelled sweep is not
   * revived by a late 'completed'). Returns whether it changed.
   */
  async setSweepStatus(
    sweepId: string,
    status: SweepStatus,
    opts: { from?: readonly SweepStatus[]; error?: ErrorInfo } = {},
  ): Promise<boolean> {
    const now = this.now();
    const set: Record<string, unknown> = { status, updatedAt: now };
    if (status === 'completed') set.completedAt = now;
    if (opts.error) set.error = opts.error;
    validatePatch('sweeps', set, sweepId);
    const filter: Document = { _id: sweepId };
    if (opts.from) filter.status = { $in: [...opts.from] };
    // A sweep that completes after rerun-failed no longer carries the failure of its earlier run.
    const update: Document =
      status === 'completed' && !opts.error ? { $set: set, $unset: { error: '' } } : { $set: set };
    const r = await this.sweeps.updateOne(filter, update);
    if (r.matchedCount === 0 && !(await this.sweeps.findOne({ _id: sweepId }))) {
      throw new NotFoundError('sweeps', sweepId);
    }
    return r.matchedCount === 1;
  }

  /** Recounts the sweep's trials by status and stores the absolute counts (idempotent, unlike $inc). */
  async refreshSweepCounts(sweepId: string): Promise<TrialCounts> {
    const counts = await this.trialCounts(sweepId);
    const set = { counts, updatedAt: this.now() };
    validatePatch('sweeps', set, sweepId);
    const r = await this.sweeps.updateOne({ _id: sweepId }, { $set: set });
    if (r.matchedCount === 0) throw new NotFoundError('sweeps', sweepId);
    return counts;
  }

  /** The sweep's trials counted by status now (zeros when it has none). */
  async trialCounts(sweepId: string): Promise<TrialCounts> {
    return (await countTrialsBySweep(this.trials, [sweepId])).get(sweepId)!;
  }

  /** trialCounts of each of `sweepIds`, or of every sweep with trials when absent. */
  async trialCountsBySweep(sweepIds?: readonly string[]): Promise<Map<string, TrialCounts>> {
    return countTrialsBySweep(this.trials, sweepIds);
  }

  async getSweep(sweepId: string): Promise<SweepDoc | null> {
    const d = await this.sweeps.findOne({ _id: sweepId });
    return d ? decodeDocument<SweepDoc>(d) : null;
  }

  /** All sweeps, newest first (sorted here: FerretDB sorts in-process anyway). */
  async listSweeps(): Promise<SweepDoc[]> {
    const all = await this.sweeps.find({}).toArray();
    return all
      .map((d) => decodeDocument<SweepDoc>(d))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a._id < b._id ? -1 : 1));
  }

  // ---- trials ----

  /**
   * Registers trials under a sweep: a new trial is inserted as queued; an existing one (the same
   * content-addressed trial in an earlier sweep, or a resubmission) keeps its status and results
   * and only gains the sweep in `sweepIds`, so a finished trial is never reset or redone. Validates
   * every trial, in the form it would be inserted, before writing any.
   */
  async upsertTrials(inputs: readonly TrialInput[]): Promise<WriteSummary> {
    const now = this.now();
    const docs = inputs.map(({ sweepId, index, round, ...t }) =>
      encodeDocument({
        ...t,
        sweepIds: [sweepId],
        ...(index !== undefined
          ? { positions: [{ sweepId, index, ...(round !== undefined ? { round } : {}) }] }
          : {}),
        status: 'queued' as TrialStatus,
        attempt: 0,
        createdAt: now,
        updatedAt: now,
      }),
    );
    validateAll('trials', docs);
    return bulkUpsert(
      this.trials,
      docs.map((d) => {
        const { sweepIds, positions, ...rest } = d;
        const add: Document = { sweepIds: (sweepIds as string[])[0] };
        if (positions) add.positions = (positions as unknown[])[0];
        return {
          updateOne: {
            filter: { _id: d._id as string },
            update: { $setOnInsert: rest, $addToSet: add },
            upsert: true,
          },
        };
      }),
      docs as Stored[],
    );
  }

  /**
   * Moves a trial to `to` if TRIAL_TRANSITIONS allows it from its current state and `attempt` is not
   * older than the stored one, setting the given fields in the same single-document update.
   */
  async transitionTrial(
    trialId: string,
    to: TrialStatus,
    fields: TransitionFields,
  ): Promise<TransitionResult> {
    return this.transition(trialId, to, fields);
  }

  /**
   * Takes a trial for a new run: 'running' under the next fencing token (one above the stored
   * attempt), unless it is completed already. Tries again when another writer took a token meanwhile.
   */
  async claimTrial(
    trialId: string,
    fields: Omit<TransitionFields, 'attempt'> = {},
  ): Promise<{ skip: true } | { skip: false; attempt: number }> {
    for (let tries = 0; tries < 5; tries++) {
      const cur = await this.trialState(trialId);
      if (cur.status === 'completed') return { skip: true };
      const attempt = cur.attempt + 1;
      const r = await this.transition(trialId, 'running', { ...fields, attempt }, cur);
      if (r.outcome !== 'refused') return { skip: false, attempt };
      if (r.status === 'completed') return { skip: true };
    }
    throw new Error(`Trial ${trialId} could not be claimed: its attempt kept changing.`);
  }

  /** Which of `trialIds` are completed (their results are kept; they are never rerun), in their order. */
  async completedAmong(trialIds: readonly string[]): Promise<string[]> {
    if (this.idLookupsIndexed && (await this.fenceMode()) === 'read-check-write') {
      const status = await mapInFlight(trialIds, ID_LOOKUPS_IN_FLIGHT, (id) =>
        this.trials.findOne({ _id: id }, { projection: { status: 1 } }),
      );
      return trialIds.filter((_, i) => status[i]?.status === 'completed');
    }
    const done = await this.trials
      .find({ _id: { $in: [...trialIds] }, status: 'completed' }, { projection: { _id: 1 } })
      .toArray();
    const completed = new Set(done.map((d) => d._id));
    return trialIds.filter((id) => completed.has(id));
  }

  private async trialState(trialId: string): Promise<{ status: TrialStatus; attempt: number }> {
    const cur = await this.trials.findOne(
      { _id: trialId },
      { projection: { status: 1, attempt: 1 } },
    );
    if (!cur) throw new NotFoundError('trials', trialId);
    return { status: cur.status as TrialStatus, attempt: cur.attempt as number };
  }

  /** `known`: the trial's state just read, which read-check-write then need not read again. */
  private async transition(
    trialId: string,
    to: TrialStatus,
    fields: TransitionFields,
    known?: { status: TrialStatus; attempt: number },
  ): Promise<TransitionResult> {
    const update = transitionUpdate(trialId, to, fields, this.now());
    const { attempt } = fields;
    const from = TRIAL_TRANSITIONS[to];
    if ((await this.fenceMode()) === 'atomic') {
      const r = await this.trials.updateOne(
        { _id: trialId, status: { $in: [...from] }, attempt: { $lte: attempt } },
        update,
      );
      if (r.matchedCount === 1) return { outcome: 'applied', status: to, attempt };
      return unapplied(to, attempt, await this.trialState(trialId));
    }
    const cur = known ?? (await this.trialState(trialId));
    if (from.includes(cur.status) && typeof cur.attempt === 'number' && cur.attempt <= attempt) {
      const r = await this.trials.updateOne({ _id: trialId }, update);
      if (r.matchedCount === 1) return { outcome: 'applied', status: to, attempt };
      throw new NotFoundError('trials', trialId);
    }
    return unapplied(to, attempt, cur);
  }

  /** The fence mode in use, asking the server on first use when it is 'auto' (again if that failed). */
  async fenceMode(): Promise<FenceMode> {
    if (this.fence !== 'auto') return this.fence;
    this.detecting ??= detectFence(this.db).finally(() => (this.detecting = undefined));
    this.fence = await this.detecting;
    return this.fence;
  }

  async getTrial(trialId: string): Promise<TrialDoc | null> {
    const d = await this.trials.findOne({ _id: trialId });
    return d ? decodeDocument<TrialDoc>(d) : null;
  }

  /** A sweep's trials by index, then _id (FerretDB sorts in-process; sorting here is the same work). */
  async listTrials(sweepId: string, status?: TrialStatus): Promise<TrialDoc[]> {
    const filter: Document = { sweepIds: sweepId };
    if (status) filter.status = status;
    const all = await this.trials.find(filter).toArray();
    const pos = (t: TrialDoc) =>
      t.positions?.find((p) => p.sweepId === sweepId)?.index ?? Number.MAX_SAFE_INTEGER;
    return all
      .map((d) => decodeDocument<TrialDoc>(d))
      .sort((a, b) => pos(a) - pos(b) || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  }

  // ---- evaluations ----

  /**
   * Stores evaluations: identity fields on insert only, measurements with $set (a rerun of a failed
   * trial replaces what its earlier attempt left). Each _id must be evaluationId(trialId, attack,
   * objective, eps), which is sweeps/' evalId. Validates every document before writing any.
   */
  async putEvaluations(inputs: readonly EvaluationInput[]): Promise<WriteSummary> {
    const now = this.now();
    const docs = inputs.map((e) => encodeDocument({ ...e, createdAt: now, updatedAt: now }));
    validateAll('evaluations', docs);
    docs.forEach((d, i) => {
      const expected = evaluationId(
        d.trialId as string,
        d.attack as string,
        d.objective as string,
        d.eps as number,
      );
      if (d._id !== expected) {
        throw new SchemaError(
          'evaluations',
          '_id',
          `must be ${JSON.stringify(expected)} = evaluationId(trialId, attack, objective, eps)`,
          d._id as string,
          docs.length > 1 ? i : undefined,
        );
      }
    });
    const identity = ['_id', 'trialId', 'attack', 'objective', 'eps', 'createdAt'];
    return bulkUpsert(
      this.evaluations,
      docs.map((d) => {
        const onInsert: Record<string, unknown> = {};
        const set: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(d)) (identity.includes(k) ? onInsert : set)[k] = v;
        const update: Document = { $setOnInsert: onInsert, $set: set };
        if (set[NON_FINITE_KEY] === undefined) update.$unset = { [NON_FINITE_KEY]: '' };
        return {
          updateOne: {
            filter: { _id: d._id as string },
            update,
            upsert: true,
          },
        };
      }),
      docs as Stored[],
    );
  }

  async listEvaluations(
    filter: { sweepId: string } | { trialId: string },
  ): Promise<EvaluationDoc[]> {
    let query: Document;
    if ('trialId' in filter) query = { trialId: filter.trialId };
    else {
      const ids = await this.trials
        .find({ sweepIds: filter.sweepId }, { projection: { _id: 1 } })
        .map((d) => d._id)
        .toArray();
      if (ids.length === 0) return [];
      query = { trialId: { $in: ids } };
    }
    const all = await this.evaluations.find(query).toArray();
    return all
      .map((d) => decodeDocument<EvaluationDoc>(d))
      .sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  }

  // ---- curves ----

  /**
   * Makes the sweep's curves exactly `docs`: each replaced whole by _id (idempotent), then curves of
   * the sweep not among them removed. Validates every curve before writing any.
   */
  async replaceCurves(sweepId: string, docs: readonly CurveDoc[]): Promise<void> {
    const encoded = docs.map((d) => encodeDocument(d));
    validateAll('curves', encoded);
    encoded.forEach((d, i) => {
      if (d.sweepId !== sweepId) {
        throw new SchemaError(
          'curves',
          'sweepId',
          `must be ${JSON.stringify(sweepId)}`,
          d._id as string,
          i,
        );
      }
    });
    for (const d of encoded) {
      try {
        await this.curves.replaceOne({ _id: d._id as string }, d as Stored, { upsert: true });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        await this.curves.replaceOne({ _id: d._id as string }, d as Stored, { upsert: true });
      }
    }
    await this.curves.deleteMany({ sweepId, _id: { $nin: encoded.map((d) => d._id as string) } });
  }

  async listCurves(sweepId: string): Promise<CurveDoc[]> {
    const all = await this.curves.find({ sweepId }).toArray();
    return all
      .map((d) => decodeDocument<CurveDoc>(d))
      .sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  }
}

/** A client on config.mongo (URI and database from infra/config.ts) and the store over it. */
export async function openResultStore(
  config: Config,
): Promise<{ client: MongoClient; store: ResultStore; close: () => Promise<void> }> {
  const client = mongoClient(config);
  await client.connect();
  const store = new ResultStore(client.db(config.mongo.db));
  return { client, store, close: () => client.close() };
}
