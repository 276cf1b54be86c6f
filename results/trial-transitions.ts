// How a trial moves between states: which moves are allowed, the single-document update each move
// makes, and the fencing token that keeps a stale or late writer from undoing progress. The store
// (results/store.ts) applies the update under the fence mode its server calls for.
import type { Db, Document } from 'mongodb';
import type { ErrorInfo, TrialStatus, TrialSummary } from './documents.js';
import { SchemaError } from './errors.js';
import { encodeSetFields, NON_FINITE_KEY } from './nonfinite.js';
import { validatePatch } from './validate.js';

export interface TransitionFields {
  /** The writer's fencing token; a write with a lower one than stored is refused as stale. */
  attempt: number;
  summary?: TrialSummary;
  error?: ErrorInfo;
  modelArtifact?: string;
  backend?: string;
}

export interface TransitionResult {
  /** applied: this call moved it; already: it was in that state with this attempt; refused: fenced. */
  outcome: 'applied' | 'already' | 'refused';
  status: TrialStatus;
  attempt: number;
}

/**
 * The states a trial may enter each state from. Nothing leaves 'completed': a finished trial is
 * never redone. 'running' from 'running' is a newer attempt taking over (a retried activity).
 */
export const TRIAL_TRANSITIONS: Record<TrialStatus, readonly TrialStatus[]> = {
  queued: ['queued', 'failed', 'cancelled'],
  running: ['queued', 'running', 'failed', 'cancelled'],
  completed: ['queued', 'running'],
  failed: ['queued', 'running'],
  cancelled: ['queued', 'running', 'failed'],
};

/**
 * How transitionTrial applies its fence. 'atomic': one updateOne whose filter holds the fence, so
 * the server checks and writes as one operation (MongoDB). 'read-check-write': read the trial by
 * _id, check the fence here, write by _id. FerretDB 1.24 (SQLite) evaluates only an `_id` filter
 * in SQL: any other filter makes it decode every trial document in Go, 0.3 ms each, so a fenced
 * update costs O(trials stored) (330 ms at 1,000 trials, against 65 ms read-check-write; BENCHMARKS.md).
 * Its conditional update is not atomic either (it queries, then writes in a transaction of its own),
 * so on FerretDB this gives up no guarantee the server gave. 'auto' (the default) asks the server
 * once: read-check-write where buildInfo names FerretDB, atomic elsewhere.
 */
export type FenceMode = 'atomic' | 'read-check-write';

/** read-check-write on FerretDB (its buildInfo carries ferretdbVersion), atomic on anything else. */
export async function detectFence(db: Db): Promise<FenceMode> {
  const info = await db.admin().command({ buildInfo: 1 });
  return typeof info.ferretdbVersion === 'string' ? 'read-check-write' : 'atomic';
}

/**
 * The update that moves trial `trialId` to `to` with `fields` at `now`, validated. A rerun or a new
 * attempt starts clean: it drops the error and summary an earlier run left.
 */
export function transitionUpdate(
  trialId: string,
  to: TrialStatus,
  fields: TransitionFields,
  now: Date,
): Document {
  const { attempt, ...rest } = fields;
  const plain: Record<string, unknown> = { status: to, attempt, updatedAt: now };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) plain[k] = v;
  if (to === 'running') plain.startedAt = now;
  if (to === 'completed' || to === 'failed' || to === 'cancelled') plain.endedAt = now;
  if (to === 'completed' && plain.summary === undefined) {
    throw new SchemaError('trials', 'summary', 'is required to complete a trial', trialId);
  }
  const set = encodeSetFields(plain);
  // Only summary can hold non-finite numbers; keep markers of the others out of the document.
  for (const k of Object.keys(set)) {
    if (k.startsWith(`${NON_FINITE_KEY}.`) && k !== `${NON_FINITE_KEY}.summary`) delete set[k];
  }
  const patch = Object.fromEntries(Object.entries(set).filter(([k]) => !k.includes('.')));
  validatePatch('trials', patch, trialId);
  const update: Document = { $set: set };
  // A rerun or a new attempt starts clean: no stale error or summary from an earlier run.
  if (to === 'queued' || to === 'running') {
    const unset: Record<string, ''> = {};
    if (plain.error === undefined) unset.error = '';
    if (plain.summary === undefined) {
      unset.summary = '';
      unset[`${NON_FINITE_KEY}.summary`] = '';
    }
    update.$unset = unset;
  }
  return update;
}

/** What a transition the fence did not apply reports: 'already' when the trial is where it was sent. */
export function unapplied(
  to: TrialStatus,
  attempt: number,
  cur: { status: TrialStatus; attempt: number },
): TransitionResult {
  return {
    outcome: cur.status === to && cur.attempt === attempt ? 'already' : 'refused',
    status: cur.status,
    attempt: cur.attempt,
  };
}
