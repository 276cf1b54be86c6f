// The client side of sweeps: submit a validated spec (attaching to a running sweep with the same ID),
// read progress from the running workflow or, once it has ended, from MongoDB, and send the control
// signals. Used by `robustsbi sweep`, the demo and the integration tests.
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { TrainHeartbeat } from '../activities/train.js';
import type { Config } from '../infra/config.js';
import { temporalConnectionOptions } from '../infra/connections.js';
import type { SweepStatus } from '../results/documents.js';
import type { ResultStore } from '../results/store.js';
import { sweepIdOf } from '../sweeps/expand.js';
import { SEARCH_ATTRIBUTES, type SearchAttributeName } from '../sweeps/search-attributes.js';
import type { SweepSpec } from '../sweeps/types.js';
import {
  SWEEP_WORKFLOW_TYPE,
  cancelSignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  sweepWorkflowId,
  taskQueueName,
  trialWorkflowId,
  type SweepOptions,
  type SweepProgress,
  type SweepWorkflowInput,
} from '../workflows/messages.js';

export async function connectTemporal(
  config: Config,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect(temporalConnectionOptions(config));
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { client, close: () => connection.close() };
}

export interface ListedWorkflow {
  workflowId: string;
  type: string;
  status: string;
  startTime: string;
  /** The search attributes of sweeps/search-attributes.ts that the workflow carries. */
  searchAttributes: Record<string, unknown>;
}

/** Workflows matching a visibility query over the search attributes, newest first (at most `limit`). */
export async function listWorkflows(
  client: Client,
  query: string,
  limit = 1000,
): Promise<ListedWorkflow[]> {
  const out: ListedWorkflow[] = [];
  try {
    for await (const w of client.workflow.list({ query })) {
      const attrs: Record<string, unknown> = {};
      for (const name of Object.keys(SEARCH_ATTRIBUTES)) {
        const v = (w.searchAttributes as Record<string, unknown[] | undefined>)[name];
        if (v === undefined) continue;
        // Lists stay lists; the single-valued types come back as lists of one.
        attrs[name] = SEARCH_ATTRIBUTES[name as SearchAttributeName] === 'KeywordList' ? v : v[0];
      }
      out.push({
        workflowId: w.workflowId,
        type: w.type,
        status: w.status.name,
        startTime: w.startTime.toISOString(),
        searchAttributes: attrs,
      });
      if (out.length >= limit) break;
    }
  } catch (err) {
    const e = err as {
      code?: number;
      details?: string;
      cause?: { code?: number; details?: string };
    };
    // INVALID_ARGUMENT: the query does not parse or names an attribute the namespace lacks.
    if ((e.code ?? e.cause?.code) === 3)
      throw new SweepQueryError(
        `Temporal rejected the query "${query}": ${(e.details ?? e.cause?.details ?? 'invalid').replace(/\.$/, '')}.`,
      );
    throw err;
  }
  return out;
}

export class SweepQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepQueryError';
  }
}

/**
 * Whether the namespace has every search attribute the workflows set. Where it cannot be told (the
 * operator API is refused), they are assumed missing: a sweep without them runs, one whose upsert
 * names an unregistered attribute stalls.
 */
export async function searchAttributesRegistered(
  client: Client,
): Promise<{ ok: boolean; missing: string[] }> {
  try {
    const r = await client.connection.operatorService.listSearchAttributes({
      namespace: client.options.namespace,
    });
    const have = new Set(Object.keys(r.customAttributes ?? {}));
    const missing = Object.keys(SEARCH_ATTRIBUTES).filter((n) => !have.has(n));
    return { ok: missing.length === 0, missing };
  } catch {
    return { ok: false, missing: Object.keys(SEARCH_ATTRIBUTES) };
  }
}

export interface Submitted {
  sweepId: string;
  workflowId: string;
  /** true when a run of this sweep was running already and the submission attached to it. */
  attached: boolean;
  handle: WorkflowHandle;
  /** The search attributes the namespace lacks (the sweep's workflows then carry none). */
  missingSearchAttributes: string[];
}

/**
 * Starts the sweep's workflow, or attaches to it when it is running (workflowIdConflictPolicy
 * USE_EXISTING). A finished sweep starts a new run, which skips every trial MongoDB holds as
 * completed: only failed, cancelled or missing trials run again.
 */
export async function submitSweep(
  client: Client,
  spec: SweepSpec,
  options: Partial<SweepOptions> = {},
): Promise<Submitted> {
  const sweepId = sweepIdOf(spec);
  const workflowId = sweepWorkflowId(sweepId);
  const running = await isRunning(client, workflowId);
  // An upsert of an attribute the namespace lacks fails every workflow task: leave them out there.
  const sa = await searchAttributesRegistered(client);
  const input: SweepWorkflowInput = {
    sweepId,
    spec,
    options: sa.ok ? options : { ...options, searchAttributes: false },
  };
  const handle = await client.workflow.start(SWEEP_WORKFLOW_TYPE, {
    workflowId,
    taskQueue: taskQueueName('cpu', options.queuePrefix),
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
  });
  return { sweepId, workflowId, attached: running, handle, missingSearchAttributes: sa.missing };
}

async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

export interface SweepStatusReport {
  sweepId: string;
  name?: string;
  /** The workflow's state while it runs; the stored sweep status after. */
  state: string;
  trials: number;
  completed: number;
  failed: number;
  running: number;
  queued: number;
  cancelled: number;
  /** Where the numbers come from. */
  source: 'workflow' | 'database';
  workflowStatus?: string;
  progress?: SweepProgress;
  error?: { type: string; message: string };
}

export class SweepNotFoundError extends Error {
  constructor(readonly sweepId: string) {
    super(
      `No sweep with ID ${sweepId} is known to Temporal or MongoDB; "robustsbi sweep list" shows the known ones.`,
    );
    this.name = 'SweepNotFoundError';
  }
}

/** Progress of a running sweep (queried), else the counts MongoDB holds for it. */
export async function sweepStatus(
  client: Client,
  store: ResultStore,
  sweepId: string,
): Promise<SweepStatusReport> {
  const handle = client.workflow.getHandle(sweepWorkflowId(sweepId));
  let workflowStatus: string | undefined;
  try {
    workflowStatus = (await handle.describe()).status.name;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const doc = await store.getSweep(sweepId);
  if (workflowStatus === 'RUNNING') {
    try {
      const p = await handle.query(progressQuery);
      return {
        sweepId,
        ...(doc ? { name: doc.name } : {}),
        state: p.state,
        trials: p.trials,
        completed: p.completed,
        failed: p.failed,
        running: p.running,
        queued: p.queued,
        cancelled: p.cancelled,
        source: 'workflow',
        workflowStatus,
        progress: p,
      };
    } catch {
      // A query can fail while the workflow continues as new; MongoDB answers instead.
    }
  }
  if (!doc && !workflowStatus) throw new SweepNotFoundError(sweepId);
  const counts = await store.trialCounts(sweepId);
  const state: SweepStatus | string =
    workflowStatus === 'RUNNING'
      ? 'running'
      : (doc?.status ?? workflowStatus?.toLowerCase() ?? 'unknown');
  return {
    sweepId,
    ...(doc ? { name: doc.name } : {}),
    state,
    trials: counts.trials,
    completed: counts.completed,
    failed: counts.failed,
    running: counts.running,
    queued: counts.queued,
    cancelled: counts.cancelled,
    source: 'database',
    ...(workflowStatus ? { workflowStatus } : {}),
    ...(doc?.error ? { error: { type: doc.error.type, message: doc.error.message } } : {}),
  };
}

export type SweepControl = 'pause' | 'resume' | 'cancel';

/** Sends a control signal to the running sweep; false when no run of it is running. */
export async function controlSweep(
  client: Client,
  sweepId: string,
  action: SweepControl,
): Promise<boolean> {
  const workflowId = sweepWorkflowId(sweepId);
  if (!(await isRunning(client, workflowId))) return false;
  const signal = { pause: pauseSignal, resume: resumeSignal, cancel: cancelSignal }[action];
  await client.workflow.getHandle(workflowId).signal(signal);
  return true;
}

/**
 * Waits for the sweep to end, calling onProgress with each queried progress (every intervalMs).
 * Returns the final progress; a failed or cancelled sweep is a result, not an error.
 */
export async function waitForSweep(
  client: Client,
  sweepId: string,
  onProgress: (p: SweepProgress) => void = () => {},
  intervalMs = 1000,
): Promise<SweepProgress> {
  const handle = client.workflow.getHandle(sweepWorkflowId(sweepId));
  const done = handle.result() as Promise<SweepProgress>;
  let finished = false;
  void done.then(
    () => (finished = true),
    () => (finished = true),
  );
  while (!finished) {
    try {
      onProgress(await handle.query(progressQuery));
    } catch {
      // Between runs (continue-as-new) or just finished: ask again.
    }
    await Promise.race([done.catch(() => {}), new Promise((r) => setTimeout(r, intervalMs))]);
  }
  return done;
}

/**
 * The last heartbeat of a trial's running training (epoch and losses), if it is training: of the
 * trainMany of its pack while that trains this trial (or the train activity of a TrialWorkflow
 * started before every trial ran as a pack).
 */
export async function trainingProgress(
  client: Client,
  trialId: string,
  workflowId = trialWorkflowId(trialId),
): Promise<TrainHeartbeat | undefined> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    for (const a of d.raw.pendingActivities ?? []) {
      const first = a.heartbeatDetails?.payloads?.[0];
      const name = a.activityType?.name;
      if ((name !== 'train' && name !== 'trainMany') || !first) continue;
      const beat = defaultPayloadConverter.fromPayload<Partial<TrainHeartbeat>>(first as Payload);
      // Between a pack's items the heartbeat names the item, not an epoch.
      if (beat.epoch === undefined) continue;
      if (beat.trialId === undefined ? name === 'train' : beat.trialId === trialId)
        return beat as TrainHeartbeat;
    }
  } catch {
    // The trial ended meanwhile.
  }
  return undefined;
}
