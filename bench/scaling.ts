// `npm run bench -- scaling`: the same CPU-bound sweep (FIM-regularized MAF trainings, a cheap
// evaluation) run by `robustsbi worker --processes 1` and then `--processes 2` on a private embedded
// stack, each on fresh seeds so nothing is cached between them; prints each run's wall time, the
// speedup (throughput ratio), and `sweep plan`'s wall estimate beside what was measured, with the
// machine's load average, since other work on the machine changes the figures.
//
//   npm run bench -- scaling [--trials 8] [--budget 1000] [--epochs 8] [--processes 1,2] [--json]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { connectTemporal, submitSweep, waitForSweep } from '../cli/sweep-client.js';
import { calibrateFor, human, planSweep, reportPlan } from '../cli/sweep-plan.js';
import { mongoClient } from '../infra/connections.js';
import { CalibrationStore } from '../results/calibrations.js';
import { initBackend } from '../sbi/backend.js';
import { sweepIdOf } from '../sweeps/expand.js';
import type { SweepSpec } from '../sweeps/types.js';
import { validateSweepSpec } from '../sweeps/validate.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { serverCpuSeconds, withPrivateStack } from './private-stack.js';

const cliMain = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface ScalingOptions {
  trials: number;
  budget: number;
  epochs: number;
  processes: number[];
}

export interface ScalingRun {
  processes: number;
  wallS: number;
  trialsPerMinute: number;
  /** sweep plan's wall estimate for this many worker processes. */
  estimateS: number;
  /** CPU seconds the worker processes used during the sweep (/proc; 0 where unreadable). */
  workerCpuS: number;
  /** CPU seconds the Temporal dev server and FerretDB used meanwhile. */
  serverCpuS: number;
  loadAverage1m: { start: number; end: number };
}

/** FIM-regularized MAF trainings (CPU-bound), each trial the same work; `seed0` keeps runs apart. */
function spec(o: ScalingOptions, seed0: number): SweepSpec {
  return validateSweepSpec({
    name: `bench-scaling-${seed0}`,
    tasks: ['gaussian_linear'],
    estimators: [{ kind: 'maf', architecture: { hidden: [50, 50] } }],
    defenses: [{ name: 'fim', betas: [0.01] }],
    seeds: Array.from({ length: o.trials }, (_, i) => seed0 + i),
    budgets: [o.budget],
    training: { maxEpochs: o.epochs, minEpochs: o.epochs, batchSize: 128, patience: 1000 },
    evaluation: {
      attacks: ['noise'],
      objectives: ['rkl'],
      eps: [1],
      nTest: 50,
      evalSamples: 32,
      coverageSamples: 100,
      coverageLevels: 10,
      tradeoffEps: 1,
    },
    // Enough trials in flight for every process to have one.
    concurrency: Math.max(...o.processes) * 2,
    routing: { train: 'cpu', evaluate: 'cpu' },
  });
}

/** utime + stime of a live process in seconds (Linux /proc), 0 where unreadable. */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

export async function runScaling(o: ScalingOptions): Promise<ScalingRun[]> {
  return withPrivateStack('scaling', async (config) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: config.temporal.address,
      MONGODB_URI: config.mongo.uri,
      MONGODB_DB: config.mongo.db,
      ROBUSTSBI_DATA_DIR: config.dataDir,
      ROBUSTSBI_LOG_LEVEL: 'info',
    };
    const backend = await initBackend('auto');
    const { client, close } = await connectTemporal(config);
    const mongo = mongoClient(config);
    await mongo.connect();
    const runs: ScalingRun[] = [];
    try {
      // The plan's rates, measured on this private database (a few seconds).
      const cal = await calibrateFor(
        new CalibrationStore(mongo.db(config.mongo.db)),
        [planSweep(spec(o, 1))],
        { backend: backend.name, codeVersion: 'bench', say: (m) => console.error(m) },
      );
      for (const [k, processes] of o.processes.entries()) {
        const s = spec(o, 1000 * (k + 1));
        const estimate = reportPlan(s, cal.rates, { processes }).estimate.wallSeconds;
        const prefix = `scaling${processes}-`;
        let out = '';
        const sup = spawn(
          process.execPath,
          [
            cliMain,
            'worker',
            '--queue',
            'cpu',
            '--processes',
            String(processes),
            '--queue-prefix',
            prefix,
          ],
          { env, stdio: ['ignore', 'ignore', 'pipe'] },
        );
        sup.stderr!.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<void>((r) => sup.once('exit', () => r()));
        const polling = () => (out.match(/polling task queue/g) ?? []).length;
        const t0 = Date.now();
        while (polling() < processes) {
          if (sup.exitCode !== null) throw new Error(`the workers exited: ${out}`);
          if (Date.now() - t0 > 120_000) throw new Error(`the workers did not start: ${out}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        const load0 = loadavg()[0]!;
        const servers0 = serverCpuSeconds(config);
        // The workers' CPU seconds from here on: how many cores' worth the sweep really got.
        const cpuAtStart = new Map(
          [...out.matchAll(/worker \d+ started, pid (\d+)/g)].map((m) => [
            Number(m[1]),
            cpuSecondsOf(Number(m[1])),
          ]),
        );
        const start = performance.now();
        await submitSweep(client, s, { queuePrefix: prefix });
        const final = await waitForSweep(client, sweepIdOf(s), () => {}, 250);
        const wallS = (performance.now() - start) / 1000;
        const load1 = loadavg()[0]!;
        const servers1 = serverCpuSeconds(config);
        const serversS =
          (servers1.temporal ?? 0) -
          (servers0.temporal ?? 0) +
          (servers1.mongodb ?? 0) -
          (servers0.mongodb ?? 0);
        const cpuS = [...out.matchAll(/worker \d+ started, pid (\d+)/g)]
          .map((m) => cpuSecondsOf(Number(m[1])) - (cpuAtStart.get(Number(m[1])) ?? 0))
          .reduce((a, b) => a + b, 0);
        sup.kill('SIGTERM');
        await exited;
        // Which process ran what, for a reader who wants to check the spread.
        const log = join(config.dataDir, 'logs', `scaling-workers-${processes}.log`);
        mkdirSync(dirname(log), { recursive: true });
        writeFileSync(log, out);
        if (final.state !== 'completed' || final.completed !== o.trials)
          throw new Error(`the sweep with ${processes} processes ended ${final.state}: ${out}`);
        const run: ScalingRun = {
          processes,
          wallS,
          trialsPerMinute: (60 * o.trials) / wallS,
          estimateS: estimate,
          workerCpuS: cpuS,
          serverCpuS: serversS,
          loadAverage1m: { start: load0, end: load1 },
        };
        console.error(
          `scaling: ${processes} process(es): ${wallS.toFixed(1)} s (plan: ${human(estimate)}), workers used ${(cpuS / wallS).toFixed(2)} cores, servers ${(serversS / wallS).toFixed(2)}, load ${load0.toFixed(2)} -> ${load1.toFixed(2)}`,
        );
        runs.push(run);
      }
    } finally {
      await close();
      await mongo.close();
    }
    return runs;
  });
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const o: ScalingOptions = {
    trials: numberArg(a, 'trials', 8),
    budget: numberArg(a, 'budget', 1000),
    epochs: numberArg(a, 'epochs', 8),
    processes: (a.get('processes') ?? '1,2').split(',').map(Number),
  };
  const runs = await runScaling(o);
  if (a.has('json')) {
    console.log(JSON.stringify({ cores: availableParallelism(), options: o, runs }, null, 1));
    return;
  }
  const base = runs[0]!;
  console.log(
    `| worker processes | wall (s) | trials/min | speedup vs ${base.processes} | cores the workers got | cores the servers used | plan's wall estimate (s) | measured / plan | load (1 min) start -> end |`,
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of runs)
    console.log(
      `| ${r.processes} | ${r.wallS.toFixed(1)} | ${r.trialsPerMinute.toFixed(2)} | ${(base.wallS / r.wallS).toFixed(2)}x | ${(r.workerCpuS / r.wallS).toFixed(2)} | ${(r.serverCpuS / r.wallS).toFixed(2)} | ${r.estimateS.toFixed(1)} | ${(r.wallS / r.estimateS).toFixed(2)} | ${r.loadAverage1m.start.toFixed(2)} -> ${r.loadAverage1m.end.toFixed(2)} |`,
    );
  console.log(
    `\n${o.trials} trials of FIM-regularized MAF ([50, 50], batch 128) on ${o.budget} gaussian_linear simulations, ${o.epochs} epochs each, noise attack at one eps on 50 points; ${availableParallelism()} cores.`,
  );
}

if (isMain(import.meta.url)) await runMain(cli);
