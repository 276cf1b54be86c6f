// Shared by the sweep integration tests: a sweep worker in this process on a private task-queue
// prefix, tiny specs with a fresh seed (so every test run has its own sweep and trial IDs on the
// shared test stack), and the stores.
import { randomBytes, randomInt } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { MongoClient } from 'mongodb';
import { connectTemporal } from '../../cli/sweep-client.js';
import { loadConfig, type Config } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import { createLogger, type Logger } from '../../infra/logger.js';
import { ArtifactStore } from '../../results/artifacts.js';
import { ResultStore } from '../../results/store.js';
import { validateSweepSpec } from '../../sweeps/validate.js';
import type { SweepSpec } from '../../sweeps/types.js';
import {
  createSweepWorker,
  type SweepWorker,
  type SweepWorkerOptions,
} from '../../workers/sweep-worker.js';
import { sharedStackEnv } from './harness.js';

export interface SweepTestContext {
  config: Config;
  logger: Logger;
  client: Client;
  mongo: MongoClient;
  store: ResultStore;
  artifacts: ArtifactStore;
  /** Task-queue prefix of this test file: no other worker on the stack serves it. */
  queuePrefix: string;
  close(): Promise<void>;
}

export async function openSweepTestContext(): Promise<SweepTestContext> {
  const config = loadConfig(sharedStackEnv());
  const logger = createLogger({
    level: process.env.ROBUSTSBI_TEST_LOG ? 'info' : 'warn',
    console: !!process.env.ROBUSTSBI_TEST_LOG,
  });
  const { client, close: closeTemporal } = await connectTemporal(config);
  const mongo = mongoClient(config);
  await mongo.connect();
  const db = mongo.db(config.mongo.db);
  const store = new ResultStore(db);
  await store.ensureIndexes();
  return {
    config,
    logger,
    client,
    mongo,
    store,
    artifacts: new ArtifactStore(db),
    queuePrefix: `test-${randomBytes(4).toString('hex')}-`,
    close: async () => {
      await closeTemporal();
      await mongo.close();
    },
  };
}

export interface RunningWorker {
  worker: SweepWorker;
  stop(): Promise<void>;
}

/**
 * A cpu worker (workflows + every activity) running in this process until stop(); `activities`
 * replaces how its activities are built from their dependencies.
 */
export async function startWorker(
  ctx: SweepTestContext,
  concurrency = 4,
  activities?: SweepWorkerOptions['activities'],
): Promise<RunningWorker> {
  const worker = await createSweepWorker(ctx.config, ctx.logger, {
    queue: 'cpu',
    concurrency,
    queuePrefix: ctx.queuePrefix,
    codeVersion: 'test',
    ...(activities ? { activities } : {}),
  });
  const running = worker.worker.run();
  return {
    worker,
    stop: async () => {
      if (worker.worker.getState() === 'RUNNING') worker.worker.shutdown();
      await running;
      await worker.close();
    },
  };
}

/** A seconds-long spec: gaussian_linear, a small MAF, 300 simulations, 3 epochs, 20 test points. */
export function tinySpec(overrides: Record<string, unknown> = {}): SweepSpec {
  return validateSweepSpec({
    name: 'integration',
    tasks: ['gaussian_linear'],
    estimators: [{ kind: 'maf', architecture: { hidden: [16, 16], numTransforms: 2 } }],
    defenses: [{ name: 'none' }, { name: 'fim', betas: [0.01] }],
    // A fresh seed per run: the IDs are new, so earlier runs on the same stack do not count.
    seeds: [randomInt(1, 1_000_000)],
    budgets: [300],
    training: { maxEpochs: 3, minEpochs: 1, batchSize: 100, patience: 5 },
    evaluation: {
      attacks: ['l2pgd', 'noise'],
      objectives: ['rkl'],
      eps: [0.5, 1],
      nTest: 20,
      steps: 3,
      mcSamples: 2,
      evalSamples: 16,
      coverageSamples: 50,
      coverageLevels: 10,
      attackBatchSize: 20,
      tradeoffEps: 1,
    },
    concurrency: 2,
    ...overrides,
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ok` every 200 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  ok: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`Timed out waiting until ${what}.`);
    await sleep(200);
  }
}

export type HistoryEvent = NonNullable<
  Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']
>[number];

/** The attempts of each activity type a workflow started, e.g. { train: [1] }. */
export function activityAttempts(events: readonly HistoryEvent[]): Record<string, number[]> {
  const typeOf = new Map<string, string>();
  const out: Record<string, number[]> = {};
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) typeOf.set(String(e.eventId), s.activityType?.name ?? '?');
    const st = e.activityTaskStartedEventAttributes;
    if (st) (out[typeOf.get(String(st.scheduledEventId)) ?? '?'] ??= []).push(st.attempt ?? 0);
  }
  return out;
}

/** A cheap evaluation: the noise attack at one epsilon on 20 test points. */
export const NOISE_EVALUATION = {
  attacks: ['noise'],
  objectives: ['rkl'],
  eps: [1],
  nTest: 20,
  evalSamples: 16,
  coverageSamples: 50,
  coverageLevels: 10,
  tradeoffEps: 1,
};

export const HEALTHY_MAF = { kind: 'maf', architecture: { hidden: [16, 16], numTransforms: 2 } };
export const HEALTHY_GAUSSIAN = { kind: 'gaussian', architecture: { hidden: [16, 16] } };
/**
 * Valid for the schema (log scales within [-100, 100]), yet exp(-s) >= e^90 overflows float32 for
 * every log scale its clamp allows: every validation NLL is NaN from epoch 1, whatever the seed.
 */
export const OVERFLOWING_MAF = {
  kind: 'maf',
  architecture: { hidden: [16, 16], numTransforms: 2, logScaleMin: -100, logScaleMax: -90 },
};

/** The items a pack activity of `type` was scheduled with, per scheduling, in history order. */
export function scheduledItems<T>(events: readonly HistoryEvent[], type: string): T[][] {
  return events
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)
    .map((e) => {
      const payload = e.activityTaskScheduledEventAttributes!.input!.payloads![0]!;
      return (JSON.parse(new TextDecoder().decode(payload.data!)) as { items: T[] }).items;
    });
}
