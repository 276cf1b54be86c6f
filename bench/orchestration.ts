// Orchestration overhead (issue 8): a sweep of trivial trials through the REAL SweepWorkflow and
// TrialWorkflow on a private embedded stack (bench/private-stack.ts), served by an in-process sweep
// worker whose simulate / train / evaluate return at once (no science) while claim, complete, the
// evaluation documents, the sweep's registration, status and aggregation go through the real
// activities and the real ResultStore, so the persistence path is counted. Since the trials do
// nothing, wall time of the sweep / trials is the per-trial overhead (bar: at most 50 ms).
//
//   node --import tsx bench/orchestration.ts [--trials 1000] [--window 50] [--activities 50]
//        [--pack 1] [--workflow-tasks 10] [--continue-as-new 1000] [--stall-s 120] [--json]
//
// The trivial activities are plugged in through createSweepWorker's `activities` option
// (workers/sweep-worker.ts): the workflow code is the production code, unchanged.
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { connectTemporal, submitSweep } from '../cli/sweep-client.js';
import { createSweepActivities, type SweepActivities } from '../activities/index.js';
import type { ActivityDeps } from '../activities/deps.js';
import { artifactNames } from '../activities/artifacts.js';
import type { Config } from '../infra/config.js';
import { mongoClient } from '../infra/connections.js';
import { createLogger } from '../infra/logger.js';
import { ResultStore } from '../results/store.js';
import { expandSweep } from '../sweeps/expand.js';
import type { Objective } from '../sweeps/names.js';
import { createSweepWorker } from '../workers/sweep-worker.js';
import { progressQuery, sweepWorkflowId, type SweepProgress } from '../workflows/messages.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { syntheticEvaluation, trivialSpec } from './synthetic-results.js';
import { serverCpuSeconds, withPrivateStack } from './private-stack.js';

export interface OrchestrationOptions {
  trials: number;
  /** Trials in flight at once (the spec's concurrency: the sweep's sliding window). */
  window: number;
  /** Trials per TrialPackWorkflow (the spec's pack; 1: a pack of one per trial). */
  pack: number;
  /** maxConcurrentActivityTaskExecutions of the worker. */
  activityConcurrency: number;
  /** maxConcurrentWorkflowTaskExecutions of the worker (SDK default when absent). */
  workflowTaskConcurrency?: number;
  /** SweepOptions.continueAsNewEvery (production default 200). */
  continueAsNewEvery?: number;
  /** Fail when no trial completes for this many seconds (default 120). */
  stallS?: number;
}

export interface OrchestrationFigures {
  trialsPerSecond: number;
  overheadMsPerTrial: number;
  trials: number;
  wallS: number;
  /** CPU seconds of this process (worker + client); the servers run in their own processes. */
  benchCpuS: number;
  /** CPU seconds of the Temporal and FerretDB server processes during the sweep (Linux only). */
  serverCpuS: { temporal?: number; mongodb?: number };
  evaluationsStored: number;
  trialsCompleted: number;
  /** Runs of the SweepWorkflow (1 + continue-as-new count); absent when it stalled. */
  sweepRuns?: number;
  /**
   * Set when no trial completed for stallS seconds: the sweep was abandoned and the figures are over
   * the trials completed until the last completion.
   */
  stalled?: string;
  /** Time inside each activity (the persistence path's share of the overhead). */
  activities: ActivityTimes;
  settings: Required<Omit<OrchestrationOptions, 'workflowTaskConcurrency' | 'stallS'>> & {
    workflowTaskConcurrency: number | 'sdk default';
  };
}

export const ORCHESTRATION_DEFAULTS: OrchestrationOptions = {
  trials: 1000,
  window: 50,
  pack: 1,
  activityConcurrency: 50,
};

/**
 * The production activities with simulate, train and evaluate replaced by ones that return at once.
 * evaluate still writes its evaluation documents through the ResultStore (one per objective), as the
 * real one does, so every write a trial makes is made.
 */
export function trivialActivities(deps: ActivityDeps): SweepActivities {
  const real = createSweepActivities(deps);
  return {
    ...real,
    simulate: async (input) => ({
      artifact:
        input.purpose === 'train'
          ? artifactNames.simulations(input.id)
          : artifactNames.testSet(input.id),
      n: input.n,
      dropped: 0,
      cached: false,
    }),
    train: async (input) => ({
      modelArtifact: artifactNames.model(input.modelId),
      epochs: 1,
      bestEpoch: 1,
      bestValLoss: 1,
      stoppedBy: 'max-epochs',
      dropped: 0,
      nTrain: input.budget,
      nVal: 0,
      trainSeconds: 0,
      resumedFromEpoch: 0,
      epochsThisAttempt: 1,
      cached: false,
      backend: deps.backend,
    }),
    evaluate: async (input) => {
      const { trial, attack, eps } = input;
      const ev = trial.evaluation;
      const docs = ev.objectives.map((objective) =>
        syntheticEvaluation(trial.trialId, attack, objective, eps, ev.nTest),
      );
      await deps.store.putEvaluations(docs);
      return {
        cached: false,
        records: ev.objectives.map((objective: Objective) => ({
          objective,
          eps,
          klMean: 0.2,
          nllClean: 1,
          nllAttacked: 2,
        })),
      };
    },
  };
}

/** Per activity name: calls and summed milliseconds inside the activity function. */
export type ActivityTimes = Record<string, { calls: number; totalMs: number; meanMs: number }>;

/** Wraps every activity so that its time inside the worker is summed into `times`. */
function timedActivities(acts: SweepActivities, times: ActivityTimes): SweepActivities {
  const out: Record<string, (input: never) => Promise<unknown>> = {};
  for (const [name, f] of Object.entries(acts) as [string, (input: never) => Promise<unknown>][]) {
    out[name] = async (input: never) => {
      const t0 = performance.now();
      try {
        return await f(input);
      } finally {
        const t = (times[name] ??= { calls: 0, totalMs: 0, meanMs: 0 });
        t.calls++;
        t.totalMs += performance.now() - t0;
        t.meanMs = t.totalMs / t.calls;
      }
    };
  }
  return out as unknown as SweepActivities;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What was done when the sweep stalled: the figures are then taken over the completed trials. */
interface Stall {
  completed: number;
  /** ms (performance.now) when the last trial completed. */
  lastCompletionAt: number;
  message: string;
}

/**
 * The sweep's result, or a Stall naming the stuck trials and their pending activities when no
 * trial completes for stallS seconds: an activity task lost between server and worker is only
 * retried after its startToClose timeout (an hour for simulate), which would hold the bench that long.
 */
async function resultOrStall(
  client: Client,
  sweepId: string,
  stallS: number,
): Promise<SweepProgress | Stall> {
  const handle = client.workflow.getHandle(sweepWorkflowId(sweepId));
  let done = false;
  const result = (handle.result() as Promise<SweepProgress>).finally(() => (done = true));
  // Once stalled, the result is abandoned: its rejection when the connection closes is expected.
  result.catch(() => {});
  let last = -1;
  let lastChange = performance.now();
  let lastLog = performance.now();
  while (!done) {
    await Promise.race([result.catch(() => {}), sleep(5000)]);
    if (done) break;
    let p: SweepProgress;
    try {
      p = await handle.query(progressQuery);
    } catch {
      continue; // between runs (continue-as-new)
    }
    const now = performance.now();
    if (now - lastLog > 30_000) {
      console.error(`orchestration: ${p.completed}/${p.trials} trials, ${p.running} running`);
      lastLog = now;
    }
    if (p.completed !== last) {
      last = p.completed;
      lastChange = now;
      continue;
    }
    if (now - lastChange < stallS * 1000) continue;
    const stuck = await Promise.all(
      p.runningTrials.slice(0, 5).map(async (t) => {
        try {
          const d = await client.workflow.getHandle(t.workflowId).describe();
          const acts = (d.raw.pendingActivities ?? [])
            .map((a) => `${a.activityType?.name ?? '?'} attempt ${a.attempt ?? '?'}`)
            .join(', ');
          return `${t.trialId} (${acts || 'no pending activity'})`;
        } catch {
          return t.trialId;
        }
      }),
    );
    return {
      completed: p.completed,
      lastCompletionAt: lastChange,
      message: `the sweep stalled: no trial completed for ${stallS} s at ${p.completed}/${p.trials} (state ${p.state}, run ${p.runs}); running: ${stuck.join('; ')}`,
    };
  }
  return result;
}

/** Runs the trivial sweep on a stack that is already up (config). */
export async function runOrchestrationOn(
  config: Config,
  opts: OrchestrationOptions,
): Promise<OrchestrationFigures> {
  const logger = createLogger({ level: 'warn', console: true });
  const times: ActivityTimes = {};
  const queuePrefix = `bench-${randomBytes(4).toString('hex')}-`;
  const w = await createSweepWorker(config, logger, {
    queue: 'cpu',
    queuePrefix,
    codeVersion: 'bench',
    concurrency: opts.activityConcurrency,
    activities: (deps) => timedActivities(trivialActivities(deps), times),
    ...(opts.workflowTaskConcurrency !== undefined
      ? { maxConcurrentWorkflowTaskExecutions: opts.workflowTaskConcurrency }
      : {}),
  });
  const running = w.worker.run();
  const { client, close } = await connectTemporal(config);
  const mongo = mongoClient(config);
  await mongo.connect();
  try {
    const spec = trivialSpec(opts.trials, opts.window, opts.pack);
    const n = expandSweep(spec).length;
    console.error(`orchestration: ${n} trivial trials, window ${opts.window}...`);
    const server0 = serverCpuSeconds(config);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const sub = await submitSweep(client, spec, {
      queuePrefix,
      ...(opts.continueAsNewEvery !== undefined
        ? { continueAsNewEvery: opts.continueAsNewEvery }
        : {}),
    });
    const outcome = await resultOrStall(client, sub.sweepId, opts.stallS ?? 120);
    const stall = 'message' in outcome ? outcome : undefined;
    const wallS = ((stall ? stall.lastCompletionAt : performance.now()) - t0) / 1000;
    const c = process.cpuUsage(cpu0);
    const server1 = serverCpuSeconds(config);
    const serverCpuS: OrchestrationFigures['serverCpuS'] = {};
    for (const k of ['temporal', 'mongodb'] as const) {
      if (server0[k] !== undefined && server1[k] !== undefined)
        serverCpuS[k] = server1[k] - server0[k];
    }
    const store = new ResultStore(mongo.db(config.mongo.db));
    const trialsCompleted = (await store.listTrials(sub.sweepId, 'completed')).length;
    const evaluationsStored = (await store.listEvaluations({ sweepId: sub.sweepId })).length;
    // Every completed trial must have its evaluation stored; the whole sweep unless it stalled.
    const done = stall ? stall.completed : n;
    const workflowSays = stall ? stall.completed : (outcome as SweepProgress).completed;
    if (trialsCompleted !== done || evaluationsStored < done || workflowSays !== done)
      throw new Error(
        `orchestration: expected ${done} completed trials and evaluations, found ${trialsCompleted} trials, ${evaluationsStored} evaluations (workflow says ${workflowSays})`,
      );
    if (stall)
      console.error(`orchestration: ${stall.message}; figures over the ${done} completed trials`);
    return {
      trialsPerSecond: done / wallS,
      overheadMsPerTrial: (1000 * wallS) / done,
      trials: done,
      wallS,
      benchCpuS: (c.user + c.system) / 1e6,
      serverCpuS,
      evaluationsStored,
      trialsCompleted,
      ...(stall ? { stalled: stall.message } : { sweepRuns: (outcome as SweepProgress).runs }),
      activities: times,
      settings: {
        trials: opts.trials,
        window: opts.window,
        pack: opts.pack,
        activityConcurrency: opts.activityConcurrency,
        workflowTaskConcurrency: opts.workflowTaskConcurrency ?? 'sdk default',
        continueAsNewEvery: opts.continueAsNewEvery ?? 200,
      },
    };
  } finally {
    w.worker.shutdown();
    await running;
    await w.close();
    await close();
    await mongo.close();
  }
}

/** Starts a private stack, runs the sweep, stops the stack. */
export function runOrchestration(opts: OrchestrationOptions): Promise<OrchestrationFigures> {
  return withPrivateStack('orchestration', (config) => runOrchestrationOn(config, opts));
}

export function orchestrationOptions(a: Map<string, string>): OrchestrationOptions {
  const o: OrchestrationOptions = {
    trials: numberArg(a, 'trials', ORCHESTRATION_DEFAULTS.trials),
    window: numberArg(a, 'window', ORCHESTRATION_DEFAULTS.window),
    pack: numberArg(a, 'pack', ORCHESTRATION_DEFAULTS.pack),
    activityConcurrency: numberArg(a, 'activities', ORCHESTRATION_DEFAULTS.activityConcurrency),
  };
  if (a.has('workflow-tasks')) o.workflowTaskConcurrency = numberArg(a, 'workflow-tasks', 0);
  if (a.has('continue-as-new')) o.continueAsNewEvery = numberArg(a, 'continue-as-new', 200);
  if (a.has('stall-s')) o.stallS = numberArg(a, 'stall-s', 120);
  return o;
}

export function orchestrationTable(f: OrchestrationFigures): string {
  const s = f.settings;
  const acts = Object.entries(f.activities)
    .map(([k, v]) => `${k} ${v.calls} x ${v.meanMs.toFixed(1)} ms`)
    .join(', ');
  return [
    '| trials | window | pack | activity slots | workflow-task slots | continue-as-new every | sweep runs | wall s | trials/s | overhead ms/trial | CPU s: worker / temporal / ferretdb |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    `| ${f.trials}${f.stalled ? ' (stalled)' : ''} | ${s.window} | ${s.pack} | ${s.activityConcurrency} | ${s.workflowTaskConcurrency} | ${s.continueAsNewEvery} | ${f.sweepRuns ?? '-'} | ${f.wallS.toFixed(1)} | ${f.trialsPerSecond.toFixed(1)} | ${f.overheadMsPerTrial.toFixed(1)} | ${f.benchCpuS.toFixed(1)} / ${f.serverCpuS.temporal?.toFixed(1) ?? '-'} / ${f.serverCpuS.mongodb?.toFixed(1) ?? '-'} |`,
    '',
    `Time inside the activities (calls x mean): ${acts}.`,
    ...(f.stalled ? ['', `Stalled: ${f.stalled}.`] : []),
  ].join('\n');
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const f = await runOrchestration(orchestrationOptions(a));
  if (a.has('json')) console.log(JSON.stringify(f));
  else console.log(orchestrationTable(f));
}

if (isMain(import.meta.url)) await runMain(cli);
