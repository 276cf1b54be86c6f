// `robustsbi worker --queue cpu|gpu`: a long-running sweep worker. It logs the tensor backend it got
// and stops gracefully on SIGINT / SIGTERM (an in-flight training stops at its next epoch with its
// checkpoint stored, and Temporal retries it on another worker).
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { parseCommandArgs, parseInteger } from '../sbi-args.js';
import { probeMongo, probeTemporal, unreachableSentence } from '../../infra/probe.js';
import { closeLogger } from '../../infra/logger.js';
import { parseHostPort } from '../../infra/config.js';
import { processMetricsAddress } from '../../workers/metrics-address.js';
import { BackendUnavailableError, InvalidSettingError } from '../../sbi/errors.js';
import { commandContext, userFacing } from './infra.js';
import { DEFAULT_CHECKPOINT_SECONDS } from '../../activities/deps.js';
// Node built-ins only: light enough for `robustsbi --help`, which loads every command module.
import {
  PROCESS_INDEX_ENV,
  ProcessesError,
  parseProcesses,
  runSupervisor,
  withoutProcessesOption,
} from '../../workers/supervisor.js';

const usage = `robustsbi worker --queue cpu|gpu [--backend B] [--concurrency K] [--processes N|auto]
                 [--metrics host:port] [--checkpoint-every S]

  --queue Q         cpu: workflows, simulation, bookkeeping and the activities routed to cpu;
                    gpu: the train / evaluate activities routed to gpu (run a cpu worker as well)
  --backend B       tfjs-node-gpu, tfjs-node, wasm, cpu or auto (default)
  --concurrency K   activities in flight at once (default 4 on cpu, 1 on gpu; with --processes,
                    1 per process: one process computes on one core)
  --queue-prefix P  prefix of the task queue names (isolates a test deployment; default none)
  --checkpoint-every S  store a training's checkpoint at most once per S seconds (default
                    ${DEFAULT_CHECKPOINT_SECONDS}; 0: after every epoch). A stopped or cancelled training stores its
                    last epoch first; a killed worker's retry redoes at most S seconds of training
  --processes N     run N worker processes under a supervisor, one per core (auto: every core
                    available); a process that dies is restarted, SIGINT / SIGTERM stops them all
  --metrics A       serve Prometheus metrics at http://A/metrics: robustsbi_* and the Temporal SDK's
                    temporal_* (whose own exporter takes the next port, on 127.0.0.1); default
                    ROBUSTSBI_METRICS_ADDR, else none. With --processes, process i serves on
                    port + 2i

  Environment: ROBUSTSBI_WORKER_DEPLOYMENT (default robustsbi) and ROBUSTSBI_BUILD_ID (default
  derived from the code version) name the Worker Deployment version this worker announces;
  ROBUSTSBI_WORKER_VERSIONING=on has Temporal route tasks by it (README: "Run it on a cluster").`;

/** Runs `processes` children, each this command with the same options but --processes. */
async function supervise(processes: number, argv: string[]): Promise<number> {
  const r = await runSupervisor({
    processes,
    command: process.execPath,
    args: [
      ...process.execArgv,
      process.argv[1]!,
      'worker',
      ...withoutProcessesOption(argv),
      // tfjs computes on its process's one thread: a second CPU-bound activity in a process only
      // takes work another process would have run on its own core.
      ...(argv.some((a) => a === '--concurrency' || a.startsWith('--concurrency='))
        ? []
        : ['--concurrency', '1']),
    ],
  });
  if (r.reason) throw new UserError(r.reason, 1);
  return r.code;
}

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('worker', argv, {
    queue: { type: 'string' },
    backend: { type: 'string' },
    concurrency: { type: 'string' },
    'queue-prefix': { type: 'string', default: '' },
    processes: { type: 'string' },
    metrics: { type: 'string' },
    'checkpoint-every': { type: 'string' },
  });
  const queue = v.queue;
  if (queue !== 'cpu' && queue !== 'gpu')
    throw new UserError(
      `"robustsbi worker" needs --queue cpu or --queue gpu${queue ? ` (got "${queue}")` : ''}.`,
    );
  const concurrency =
    v.concurrency === undefined ? undefined : parseInteger('concurrency', v.concurrency, 1);
  const checkpointSeconds =
    v['checkpoint-every'] === undefined
      ? undefined
      : parseInteger('checkpoint-every', v['checkpoint-every'], 0);
  const prefix = v['queue-prefix']!;
  if (!/^[A-Za-z0-9._-]*$/.test(prefix))
    throw new UserError(
      `--queue-prefix may hold letters, digits, ".", "_" and "-" only (got "${prefix}").`,
    );
  let processes: number | undefined;
  try {
    processes = v.processes === undefined ? undefined : parseProcesses(v.processes);
  } catch (err) {
    if (err instanceof ProcessesError) throw new UserError(err.message);
    throw err;
  }
  const { config, logger } = commandContext();
  let metricsAddress = config.metrics;
  if (v.metrics !== undefined) {
    metricsAddress = parseHostPort(v.metrics);
    if (!metricsAddress || metricsAddress.port >= 65535)
      throw new UserError(
        `--metrics must be host:port with a port from 1 to 65534 (got "${v.metrics}").`,
      );
  }
  // Under a supervisor: label this process's log entries, and stop when the supervisor is gone.
  const index = process.env[PROCESS_INDEX_ENV];
  if (index !== undefined) {
    logger.defaultMeta = { ...logger.defaultMeta, process: Number(index), pid: process.pid };
    if (metricsAddress) metricsAddress = processMetricsAddress(metricsAddress, Number(index));
    if (process.send) {
      process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
      process.channel?.unref();
    }
  }
  try {
    const [t, m] = await Promise.all([probeTemporal(config), probeMongo(config)]);
    const hint =
      ' Start the embedded stack with "robustsbi infra up" or fix TEMPORAL_ADDRESS / MONGODB_URI.';
    if (!t.ok) throw new UserError(unreachableSentence('temporal', config, t) + hint, 1);
    if (!m.ok) throw new UserError(unreachableSentence('mongodb', config, m) + hint, 1);
    if (processes !== undefined) return await supervise(processes, argv);
    const { runSweepWorker } = await import('../../workers/sweep-worker.js');
    const { codeVersion, codeVersionLabel } = await import('../code-version.js');
    const { buildIdOf } = await import('../../workers/versioning.js');
    try {
      await runSweepWorker(config, logger, {
        queue,
        ...(v.backend !== undefined ? { backend: v.backend } : {}),
        ...(concurrency !== undefined ? { concurrency } : {}),
        ...(checkpointSeconds !== undefined ? { checkpointSeconds } : {}),
        queuePrefix: prefix,
        codeVersion: codeVersionLabel(),
        ...(metricsAddress ? { metricsAddress } : {}),
        deployment: {
          deploymentName: config.worker.deploymentName,
          buildId: config.worker.buildId ?? buildIdOf(codeVersion()),
          versioning: config.worker.versioning,
        },
      });
    } catch (err) {
      if (
        err instanceof InvalidSettingError ||
        err instanceof BackendUnavailableError ||
        (err as Error).name === 'MetricsAddressError'
      )
        throw new UserError((err as Error).message);
      throw err;
    }
    return 0;
  } catch (err) {
    throw userFacing(err);
  } finally {
    await closeLogger(logger);
  }
}

export const command: Command = {
  name: 'worker',
  summary:
    'Run a sweep worker (or one per core: --processes) on the cpu or gpu task queue until SIGINT / SIGTERM',
  usage,
  run,
};
