// A sweep worker: the tensor backend, the result and artifact stores, and a Temporal worker on the
// `cpu` or `gpu` task queue. The cpu worker also runs the workflows (from the prebuilt bundle) and
// the bookkeeping activities; a gpu worker runs only the activities routed to it (train, evaluate).
// Shutdown is graceful: in-flight activities are cancelled after a short grace, a training stops at
// its next epoch boundary with its checkpoint stored, and Temporal retries it on another worker.
import { NativeConnection, Worker } from '@temporalio/worker';
import {
  createSweepActivities,
  withPackActivities,
  type ActivityDeps,
  type SweepActivities,
} from '../activities/index.js';
import type { Config } from '../infra/config.js';
import { mongoClient, temporalConnectionOptions } from '../infra/connections.js';
import { indexEmbeddedIds } from '../infra/ferret-id-index.js';
import type { Logger } from '../infra/logger.js';
import { ArtifactStore } from '../results/artifacts.js';
import { ResultStore } from '../results/store.js';
import { initBackend, type BackendReport } from '../sbi/backend.js';
import { taskQueueName } from '../workflows/messages.js';
import type { HostPort } from '../infra/config.js';
import { sweepWorkflowBundle } from './bundle.js';
import { formatHostPort, sdkMetricsAddress } from './metrics-address.js';
import { startMetricsServer } from './metrics-server.js';
import { installTemporalRuntime } from './smoke.js';
import { SweepMetrics, metricsInterceptor } from './sweep-metrics.js';
import { workerDeploymentOptions, type WorkerDeployment } from './versioning.js';

export type WorkerQueue = 'cpu' | 'gpu';

export interface SweepWorkerOptions {
  queue: WorkerQueue;
  /** Tensor backend to force (sbi/backend.ts names or auto). */
  backend?: string;
  /** Activities in flight at once on this worker. */
  concurrency?: number;
  /** Prefix of the task queue names (tests isolate themselves with it). */
  queuePrefix?: string;
  /** Recorded on sweeps, trials and models. */
  codeVersion?: string;
  /** At most one training checkpoint per this many seconds (ActivityDeps.checkpointSeconds). */
  checkpointSeconds?: number;
  /** How long in-flight activities may run on after shutdown is asked for, before they are cancelled. */
  shutdownGraceTime?: string;
  /**
   * Builds the activities from this worker's stores; createSweepActivities by default. The
   * orchestration bench (bench/orchestration.ts) passes trivial simulate/train/evaluate here so that
   * the real workflows and the real persistence run without any science.
   */
  activities?: (deps: ActivityDeps) => SweepActivities;
  /** Workflow tasks in flight at once on this worker (the SDK's default when absent). */
  maxConcurrentWorkflowTaskExecutions?: number;
  /**
   * Serve Prometheus metrics here (robustsbi_* and, from the SDK's exporter on the next port, the
   * temporal_* ones). The SDK's exporter is set when the process's Temporal runtime is installed,
   * so only the first worker of a process gets the temporal_* metrics.
   */
  metricsAddress?: HostPort;
  /** The Worker Deployment version this worker announces, and whether Temporal routes by it. */
  deployment?: WorkerDeployment;
}

export interface SweepWorker {
  worker: Worker;
  backend: BackendReport;
  taskQueue: string;
  /** The metrics this worker records (served when metricsAddress was given). */
  metrics: SweepMetrics;
  /** The /metrics URL, when served. */
  metricsUrl?: string;
  /** Closes the connections and the metrics endpoint; call after worker.run() has returned. */
  close(): Promise<void>;
}

export const DEFAULT_CONCURRENCY: Record<WorkerQueue, number> = { cpu: 4, gpu: 1 };

export async function createSweepWorker(
  config: Config,
  logger: Logger,
  opts: SweepWorkerOptions,
): Promise<SweepWorker> {
  const sdkMetrics = opts.metricsAddress ? sdkMetricsAddress(opts.metricsAddress) : undefined;
  const sdkExports = installTemporalRuntime(
    logger,
    sdkMetrics ? formatHostPort(sdkMetrics) : undefined,
  );
  const metrics = new SweepMetrics();
  const backend = await initBackend(opts.backend);
  logger.info(
    `worker: tensor backend ${backend.name}${backend.skipped.length ? ` (not available: ${backend.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})` : ''}`,
    { component: 'worker' },
  );
  const mongo = mongoClient(config);
  let native: NativeConnection | undefined;
  let served: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  try {
    // First: a taken address fails here, before a Worker exists that would keep the process alive.
    if (opts.metricsAddress) {
      served = await startMetricsServer(
        opts.metricsAddress,
        () => metrics.render(),
        sdkExports ? sdkMetrics : undefined,
      );
      logger.info(
        `worker: metrics at ${served.url}${sdkExports ? ` (Temporal SDK exporter on ${formatHostPort(sdkMetrics!)}, merged in)` : ' (robustsbi_* only: the Temporal SDK exporter does not run in this process)'}`,
        { component: 'worker' },
      );
    }
    await mongo.connect();
    const db = mongo.db(config.mongo.db);
    const store = new ResultStore(db);
    await store.ensureIndexes();
    // After ensureIndexes, which creates the collections whose tables it indexes.
    const ids = await indexEmbeddedIds(config);
    store.idLookupsIndexed = ids.status === 'indexed';
    if (ids.status === 'indexed' && ids.created.length > 0)
      logger.info(`worker: FerretDB _id lookups indexed in ${ids.created.length} tables`, {
        component: 'worker',
      });
    else if (ids.status === 'unavailable' && ids.cause !== 'external')
      logger.warn(
        `worker: FerretDB looks documents up by _id with table scans here (${ids.reason}); install sqlite3 to index them`,
        { component: 'worker' },
      );
    // The pack activities are rebuilt over whatever single-trial activities the worker was given.
    const activities = withPackActivities(
      (opts.activities ?? createSweepActivities)({
        store,
        artifacts: new ArtifactStore(db),
        logger,
        codeVersion: opts.codeVersion ?? 'unknown',
        backend: backend.name,
        ...(opts.checkpointSeconds !== undefined
          ? { checkpointSeconds: opts.checkpointSeconds }
          : {}),
      }),
    );
    native = await NativeConnection.connect(temporalConnectionOptions(config));
    const taskQueue = taskQueueName(opts.queue, opts.queuePrefix);
    const worker = await Worker.create({
      connection: native,
      namespace: config.temporal.namespace,
      taskQueue,
      ...(opts.queue === 'cpu' ? { workflowBundle: await sweepWorkflowBundle() } : {}),
      activities,
      maxConcurrentActivityTaskExecutions: opts.concurrency ?? DEFAULT_CONCURRENCY[opts.queue],
      ...(opts.maxConcurrentWorkflowTaskExecutions !== undefined
        ? { maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTaskExecutions }
        : {}),
      shutdownGraceTime: opts.shutdownGraceTime ?? '2 seconds',
      shutdownForceTime: '30 seconds',
      interceptors: { activity: [metricsInterceptor(metrics)] },
      ...(opts.deployment
        ? { workerDeploymentOptions: workerDeploymentOptions(opts.deployment) }
        : {}),
    });
    if (opts.deployment)
      logger.info(
        `worker: build ID ${opts.deployment.buildId} of deployment ${opts.deployment.deploymentName}${opts.deployment.versioning ? ' (versioned: tasks are routed by version)' : ''}`,
        { component: 'worker' },
      );
    logger.info(`worker: polling task queue ${taskQueue} on ${config.temporal.address}`, {
      component: 'worker',
    });
    const conn = native;
    const server = served;
    return {
      worker,
      backend,
      taskQueue,
      metrics,
      ...(server ? { metricsUrl: server.url } : {}),
      close: async () => {
        await server?.close().catch(() => {});
        await conn.close().catch(() => {});
        await mongo.close().catch(() => {});
      },
    };
  } catch (err) {
    await served?.close().catch(() => {});
    await native?.close().catch(() => {});
    await mongo.close().catch(() => {});
    throw err;
  }
}

/**
 * Runs a worker until SIGINT or SIGTERM (or `stop`), then shuts it down gracefully. Returns after the
 * worker has stopped and the connections are closed.
 */
export async function runSweepWorker(
  config: Config,
  logger: Logger,
  opts: SweepWorkerOptions,
  stop?: AbortSignal,
): Promise<void> {
  const w = await createSweepWorker(config, logger, opts);
  const onSignal = (sig: NodeJS.Signals) => {
    logger.info(
      `worker: ${sig} received; stopping (in-flight training checkpoints and is retried elsewhere)`,
      {
        component: 'worker',
      },
    );
    try {
      w.worker.shutdown();
    } catch {
      // A second signal while stopping: the first one is being handled.
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onStop = () => onSignal('SIGTERM');
  stop?.addEventListener('abort', onStop, { once: true });
  try {
    await w.worker.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stop?.removeEventListener('abort', onStop);
    await w.close();
    logger.info('worker: stopped', { component: 'worker' });
  }
}
