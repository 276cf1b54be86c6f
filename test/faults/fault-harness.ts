// Shared by the fault-injection tests: a private embedded stack per test file (infra/stack.ts starts
// it, on free loopback ports, with its state under .data/faults/<name>) whose servers a test can
// SIGKILL and restart on the same ports and data files, sweep workers as real child processes that
// can be SIGKILLed, and the MongoDB checks every fault test ends with. Every process started here
// runs with its cwd in the test's data dir, which is how scripts/test-faults.mjs finds orphans.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import type { MongoClient } from 'mongodb';
import { decodeCheckpoint, artifactNames } from '../../activities/artifacts.js';
import { connectTemporal, submitSweep } from '../../cli/sweep-client.js';
import { loadConfig, projectRoot, type Config } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import {
  down,
  isAlive,
  stackPaths,
  up,
  type PidFile,
  type ServiceName,
} from '../../infra/stack.js';
import { ArtifactStore } from '../../results/artifacts.js';
import { ResultStore } from '../../results/store.js';
import { SEARCH_ATTRIBUTES } from '../../sweeps/search-attributes.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import type { SweepSpec, TrialConfig } from '../../sweeps/types.js';
import { validateSweepSpec } from '../../sweeps/validate.js';
import { trialWorkflowId } from '../../workflows/messages.js';
import { privateStackEnv } from '../integration/harness.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cliMain = (() => {
  const js = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
})();

/** Polls `check` until it returns a value other than undefined; fails with `what` at the deadline. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s: ${what}`);
    await sleep(intervalMs);
  }
}

export interface FaultWorker {
  pid: number;
  child: ChildProcess;
  log: string;
  /** Resolves with the signal (or exit code) once the process has exited. */
  exited: Promise<NodeJS.Signals | number | null>;
  alive(): boolean;
}

export class FaultStack {
  readonly workers: FaultWorker[] = [];
  private temporal?: { client: Client; close: () => Promise<void> };
  private mongoConn?: MongoClient;
  private workerSeq = 0;

  private constructor(
    readonly name: string,
    readonly config: Config,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  /** A fresh data dir .data/faults/<name>, free ports, both servers started. */
  static async start(name: string): Promise<FaultStack> {
    const dataDir = join(projectRoot(), '.data', 'faults', name);
    const env = { ...(await privateStackEnv(dataDir)), MONGODB_DB: 'robustsbi_faults' };
    const config = loadConfig(env);
    // A stack left by an interrupted run of this test is stopped before its data is wiped.
    await down(config).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    const stack = new FaultStack(name, config, env);
    try {
      await stack.up();
    } catch (err) {
      // One server may be up while the other failed: the caller's after hook has no stack to close.
      await down(config).catch(() => {});
      throw err;
    }
    return stack;
  }

  get dataDir(): string {
    return this.config.dataDir;
  }

  /** Starts whichever server is not running, on the same port and data files as before. */
  async up(): Promise<void> {
    await up(this.config, { startTimeoutMs: 60_000, searchAttributes: SEARCH_ATTRIBUTES });
  }

  pidOf(service: ServiceName): number | undefined {
    const f = stackPaths(this.config).pidFile(service);
    if (!existsSync(f)) return undefined;
    const rec = JSON.parse(readFileSync(f, 'utf8')) as PidFile;
    return isAlive(rec.pid) ? rec.pid : undefined;
  }

  /** SIGKILLs a server and waits until it is gone (its pid file stays; up() replaces it). */
  async kill(service: ServiceName): Promise<number> {
    const pid = this.pidOf(service);
    assert.ok(pid, `the ${service} server is not running`);
    process.kill(pid, 'SIGKILL');
    await waitFor(`${service} pid ${pid} to exit`, 10_000, async () =>
      isAlive(pid) ? undefined : true,
    );
    return pid;
  }

  async client(): Promise<Client> {
    this.temporal ??= await connectTemporal(this.config);
    return this.temporal.client;
  }

  async mongo(): Promise<MongoClient> {
    if (!this.mongoConn) {
      const m = mongoClient(this.config);
      await m.connect();
      this.mongoConn = m;
    }
    return this.mongoConn;
  }

  async store(): Promise<ResultStore> {
    return new ResultStore((await this.mongo()).db(this.config.mongo.db));
  }

  async artifacts(): Promise<ArtifactStore> {
    return new ArtifactStore((await this.mongo()).db(this.config.mongo.db));
  }

  /** A real `robustsbi worker` process (cpu queue) that a test may SIGKILL; `env` adds to the stack's. */
  spawnWorker(queuePrefix: string, concurrency = 1, env: NodeJS.ProcessEnv = {}): FaultWorker {
    const n = ++this.workerSeq;
    const logs = join(this.dataDir, 'logs');
    mkdirSync(logs, { recursive: true });
    const log = join(logs, `worker-${n}.log`);
    const out = openSync(log, 'a');
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv.filter((a) => !a.startsWith('--test')),
        cliMain,
        'worker',
        '--queue',
        'cpu',
        '--queue-prefix',
        queuePrefix,
        '--concurrency',
        String(concurrency),
        // The faults strike at checkpoint epochs of trainings that last seconds.
        '--checkpoint-every',
        '0',
      ],
      { cwd: this.dataDir, env: { ...this.env, ...env }, stdio: ['ignore', out, out] },
    );
    closeSync(out);
    assert.ok(child.pid, 'the worker process did not start');
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.once('exit', (code, signal) => resolve(signal ?? code)),
    );
    const w: FaultWorker = {
      pid: child.pid,
      child,
      log,
      exited,
      alive: () => child.exitCode === null && child.signalCode === null,
    };
    this.workers.push(w);
    return w;
  }

  /** SIGKILLs a worker and waits for its exit. */
  async killWorker(w: FaultWorker): Promise<void> {
    assert.ok(w.alive(), `worker ${w.pid} had already exited:\n${this.workerLog(w)}`);
    w.child.kill('SIGKILL');
    assert.equal(await w.exited, 'SIGKILL');
  }

  workerLog(w: FaultWorker, lines = 30): string {
    if (!existsSync(w.log)) return '';
    return readFileSync(w.log, 'utf8').trim().split('\n').slice(-lines).join('\n');
  }

  /** Fails when a worker that was not killed by the test has exited. */
  assertWorkersAlive(): void {
    for (const w of this.workers) {
      if (w.child.signalCode === 'SIGKILL') continue;
      assert.ok(w.alive(), `worker ${w.pid} exited by itself:\n${this.workerLog(w)}`);
    }
  }

  /** Stops everything this stack started; safe to call more than once and after failures. */
  async close(): Promise<void> {
    for (const w of this.workers) if (w.alive()) w.child.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => w.exited));
    await this.temporal?.close().catch(() => {});
    this.temporal = undefined;
    await this.mongoConn?.close(true).catch(() => {});
    this.mongoConn = undefined;
    await down(this.config, { stopTimeoutMs: 10_000 });
  }
}

/**
 * A few seconds-long trials: gaussian_linear, a small MAF, `seeds` trials of `epochs` epochs, and a
 * small noise-attack evaluation (2 evaluation documents per trial). A fresh seed per run.
 */
export function faultSpec(trials: number, epochs: number, budget = 1000): SweepSpec {
  const base = randomInt(1, 1_000_000);
  return validateSweepSpec({
    name: 'faults',
    tasks: ['gaussian_linear'],
    // An NSF on tfjs ops: epochs long enough to strike mid-training (a MAF takes the fused wasm
    // step, whose epochs here last a few milliseconds).
    estimators: [{ kind: 'nsf', architecture: { hidden: [16, 16], numTransforms: 2 } }],
    defenses: [{ name: 'none' }],
    seeds: Array.from({ length: trials }, (_, i) => base + i),
    budgets: [budget],
    training: { maxEpochs: epochs, minEpochs: 1, batchSize: 50, patience: 1000 },
    evaluation: {
      attacks: ['noise'],
      objectives: ['rkl'],
      eps: [0.5, 1],
      nTest: 20,
      evalSamples: 16,
      coverageSamples: 50,
      coverageLevels: 10,
      tradeoffEps: 1,
    },
    concurrency: 2,
  });
}

/** The stored epoch of each trial's training checkpoint (absent: none stored). */
export async function checkpointEpochs(
  stack: FaultStack,
  trials: readonly TrialConfig[],
): Promise<Map<string, number>> {
  const artifacts = await stack.artifacts();
  const out = new Map<string, number>();
  for (const t of trials) {
    const bytes = await artifacts.get(artifactNames.checkpoint(t.modelId));
    if (bytes) out.set(t.trialId, decodeCheckpoint(bytes).epoch);
  }
  return out;
}

/** The pid in the identity of the worker running the trial's trainMany activity, if one is running. */
export async function trainingWorkerPid(
  stack: FaultStack,
  trial: TrialConfig,
): Promise<number | undefined> {
  const client = await stack.client();
  try {
    const d = await client.workflow.getHandle(trialWorkflowId(trial.trialId)).describe();
    for (const a of d.raw.pendingActivities ?? []) {
      if (a.activityType?.name !== 'trainMany') continue;
      const m = /^(\d+)@/.exec(a.lastWorkerIdentity ?? '');
      // state 2 is PENDING_ACTIVITY_STATE_STARTED: a worker holds it now.
      if (m && a.state === 2) return Number(m[1]);
    }
  } catch {
    // Not started yet, or the server is restarting.
  }
  return undefined;
}

/** Activity attempts after the first, by activity type, over the trials' workflow histories. */
export async function retriedActivities(
  stack: FaultStack,
  trials: readonly TrialConfig[],
): Promise<Record<string, number>> {
  const client = await stack.client();
  const out: Record<string, number> = {};
  for (const t of trials) {
    const history = await client.workflow.getHandle(trialWorkflowId(t.trialId)).fetchHistory();
    const types = new Map<string, string>();
    for (const e of history.events ?? []) {
      const sched = e.activityTaskScheduledEventAttributes;
      if (sched) types.set(String(e.eventId), sched.activityType?.name ?? '?');
      const started = e.activityTaskStartedEventAttributes;
      if (started && (started.attempt ?? 1) > 1) {
        const type = types.get(String(started.scheduledEventId)) ?? '?';
        out[type] = (out[type] ?? 0) + (started.attempt! - 1);
      }
    }
  }
  return out;
}

/** Waits until the sweep document says completed; tolerates servers that are briefly away. */
export async function waitForSweepCompleted(
  stack: FaultStack,
  spec: SweepSpec,
  timeoutMs: number,
): Promise<void> {
  const sweepId = sweepIdOf(spec);
  await waitFor(
    `sweep ${sweepId} to complete`,
    timeoutMs,
    async () => {
      stack.assertWorkersAlive();
      try {
        const doc = await (await stack.store()).getSweep(sweepId);
        if (doc?.status === 'failed' || doc?.status === 'cancelled')
          throw new Error(`sweep ended ${doc.status}: ${JSON.stringify(doc.error)}`);
        return doc?.status === 'completed' ? true : undefined;
      } catch (err) {
        if (/sweep ended/.test((err as Error).message)) throw err;
        return undefined;
      }
    },
    1000,
  );
}

/**
 * What every fault test ends with: the sweep completed, each trial has exactly one completed trial
 * document and exactly its planned evaluation documents (counted by trialId: none lost, none extra).
 * Returns the trial documents.
 */
export async function assertSweepIntact(stack: FaultStack, spec: SweepSpec) {
  const store = await stack.store();
  const sweepId = sweepIdOf(spec);
  const trials = expandSweep(spec);
  const sweep = await store.getSweep(sweepId);
  assert.equal(sweep?.status, 'completed');
  assert.equal(await store.trials.countDocuments({ sweepIds: sweepId }), trials.length);
  const docs = [];
  for (const t of trials) {
    const found = await store.trials.find({ _id: t.trialId }).toArray();
    assert.equal(found.length, 1, `trial ${t.trialId}: ${found.length} documents`);
    const doc = found[0]!;
    assert.equal(doc.status, 'completed', `trial ${t.trialId} is ${doc.status}`);
    assert.equal(doc.summary?.epochs, t.training.maxEpochs);
    const plan = evaluationPlan(t)
      .map((p) => p.evalId)
      .sort();
    const evals = await store.evaluations.find({ trialId: t.trialId }).toArray();
    assert.deepEqual(evals.map((e) => e._id).sort(), plan, `evaluations of trial ${t.trialId}`);
    docs.push(doc);
  }
  assert.equal(
    await store.evaluations.countDocuments({ trialId: { $in: trials.map((t) => t.trialId) } }),
    trials.reduce((n, t) => n + evaluationPlan(t).length, 0),
  );
  return docs;
}

/**
 * A sweep of `trials` tiny trials served by two worker processes, returned once one training is
 * under way (a checkpoint at epoch 1 or later, with at least two epochs to go): the moment the
 * server-fault tests strike.
 */
export async function startSweepInTraining(s: FaultStack, prefix: string, trials = 3, epochs = 10) {
  const spec = faultSpec(trials, epochs);
  const planned = expandSweep(spec);
  const workers = [s.spawnWorker(prefix), s.spawnWorker(prefix)];
  await submitSweep(await s.client(), spec, { queuePrefix: prefix, heartbeatTimeout: '5s' });
  const atEpoch = await waitFor('a training to be under way', 180_000, async () => {
    s.assertWorkersAlive();
    const e = [...(await checkpointEpochs(s, planned)).values()];
    return e.find((x) => x >= 1 && x < epochs - 2);
  });
  return { spec, trials: planned, workers, atEpoch };
}
