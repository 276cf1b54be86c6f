// Runs the smoke workflow end to end: a worker on a private task queue, a client that starts the
// workflow, and the activity's MongoDB round trip. Used by `robustsbi smoke`, the demo and the tests.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type LogLevel as TemporalLevel,
} from '@temporalio/worker';
import { createSmokeActivities, type SmokeReadBack } from '../activities/smoke.js';
import type { Config } from '../infra/config.js';
import { mongoClient, temporalConnectionOptions } from '../infra/connections.js';
import type { Logger } from '../infra/logger.js';

let runtimeInstalled = false;

/**
 * Routes the Temporal SDK's own logs (worker, bundler, core) into our logger, and with
 * `prometheusBind` ("host:port") has the SDK export its metrics (temporal_*) there. Runtime.install
 * may run once per process, before the first worker; later calls are no-ops and return false.
 */
export function installTemporalRuntime(logger: Logger, prometheusBind?: string): boolean {
  if (runtimeInstalled) return false;
  runtimeInstalled = true;
  const toWinston: Record<TemporalLevel, string> = {
    TRACE: 'debug',
    DEBUG: 'debug',
    INFO: 'debug',
    WARN: 'warn',
    ERROR: 'error',
  };
  try {
    Runtime.install({
      logger: new DefaultLogger('INFO', (entry) => {
        logger.log(toWinston[entry.level], entry.message, {
          component: 'temporal-sdk',
          ...(entry.meta ?? {}),
        });
      }),
      ...(prometheusBind
        ? { telemetryOptions: { metrics: { prometheus: { bindAddress: prometheusBind } } } }
        : {}),
    });
    return true;
  } catch (err) {
    if (prometheusBind) {
      // Most likely the exporter's port is taken: run without it rather than not at all.
      logger.warn(
        `worker: the Temporal SDK's metrics exporter cannot start on ${prometheusBind} (${(err as Error).message}); serving robustsbi_* metrics only`,
        { component: 'worker' },
      );
      runtimeInstalled = false;
      installTemporalRuntime(logger);
    }
    // Otherwise already installed by someone else in this process: keep theirs.
    return false;
  }
}

/** The workflow source for the bundler: compiled JS when built, the TS source under tsx. */
function workflowsPath(): string {
  const js = fileURLToPath(new URL('../workflows/smoke.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('../workflows/smoke.ts', import.meta.url));
}

export interface SmokeOutcome {
  workflowId: string;
  runId: string;
  taskQueue: string;
  result: SmokeReadBack;
}

export async function runSmoke(
  config: Config,
  logger: Logger,
  note = 'robustsbi smoke test',
): Promise<SmokeOutcome> {
  installTemporalRuntime(logger);
  const opts = temporalConnectionOptions(config);
  const mongo = mongoClient(config);
  let native: NativeConnection | undefined;
  let conn: Connection | undefined;
  try {
    await mongo.connect();
    native = await NativeConnection.connect(opts);
    conn = await Connection.connect(opts);
    const client = new Client({ connection: conn, namespace: config.temporal.namespace });
    // A private queue: no other worker can pick up this workflow, and this worker runs nothing else.
    const taskQueue = `robustsbi-smoke-${randomUUID()}`;
    const worker = await Worker.create({
      connection: native,
      namespace: config.temporal.namespace,
      taskQueue,
      workflowsPath: workflowsPath(),
      activities: createSmokeActivities(mongo.db(config.mongo.db)),
    });
    const workflowId = `smoke-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
    logger.info(`smoke: starting workflow ${workflowId} on task queue ${taskQueue}`);
    const handle = await client.workflow.start('smokeWorkflow', {
      taskQueue,
      workflowId,
      args: [{ note }],
      workflowExecutionTimeout: '2 minutes',
    });
    const result = (await worker.runUntil(handle.result())) as SmokeReadBack;
    logger.info(`smoke: workflow ${workflowId} completed`, { matches: result.matches });
    return { workflowId, runId: handle.firstExecutionRunId, taskQueue, result };
  } finally {
    await conn?.close().catch(() => {});
    await native?.close().catch(() => {});
    await mongo.close().catch(() => {});
  }
}
