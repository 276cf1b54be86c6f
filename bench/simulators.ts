// Simulator throughput per task: prior draws + simulate for n rows in one call, on one thread,
// reporting wall and CPU time. `node --import tsx bench/simulators.ts [--n 2000] [--tasks a,b]`.
import { createRng } from '../sbi/rng.js';
import { TASK_NAMES, getTask } from '../sbi/tasks/index.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';

export interface SimulatorOptions {
  n: number;
  tasks: string[];
}

export interface SimulatorRow {
  task: string;
  thetaDim: number;
  xDim: number;
  n: number;
  simsPerSecond: number;
  simsPerCpuSecond: number;
  msPerSimCpu: number;
  nonFiniteRows: number;
}

export type SimulatorFigures = Record<string, SimulatorRow>;

export const SIMULATOR_DEFAULTS: SimulatorOptions = { n: 2000, tasks: [...TASK_NAMES] };

export function runSimulators(opts: SimulatorOptions): SimulatorFigures {
  const out: SimulatorFigures = {};
  for (const name of opts.tasks) {
    const n = opts.n;
    const task = getTask(name);
    const rng = createRng(0);
    const theta = task.prior.sample(n, rng.fork('prior'));
    // Warm-up: let V8 compile the hot loops before timing.
    task.simulate(theta.subarray(0, 20 * task.thetaDim), 20, rng.fork('warm'));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const x = task.simulate(theta, n, rng.fork('sim'));
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(cpu0);
    const cpu = (c.user + c.system) / 1e6;
    let bad = 0;
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < task.xDim; j++) {
        if (!Number.isFinite(x[r * task.xDim + j]!)) {
          bad++;
          break;
        }
      }
    }
    out[name] = {
      task: name,
      thetaDim: task.thetaDim,
      xDim: task.xDim,
      n,
      simsPerSecond: n / wall,
      simsPerCpuSecond: n / cpu,
      msPerSimCpu: (1000 * cpu) / n,
      nonFiniteRows: bad,
    };
  }
  return out;
}

export function simulatorTable(f: SimulatorFigures): string {
  const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
  return [
    `| task | theta -> x | n | sims/s (wall) | sims per CPU-second | ms/sim (CPU) | non-finite rows |`,
    `|---|---|---|---|---|---|---|`,
    ...Object.values(f).map(
      (r) =>
        `| ${r.task} | ${r.thetaDim} -> ${r.xDim} | ${r.n} | ${fmt(r.simsPerSecond)} | ${fmt(r.simsPerCpuSecond)} | ${r.msPerSimCpu.toFixed(3)} | ${r.nonFiniteRows} |`,
    ),
  ].join('\n');
}

export function simulatorOptions(a: Map<string, string>): SimulatorOptions {
  return {
    n: numberArg(a, 'n', SIMULATOR_DEFAULTS.n),
    tasks: a.get('tasks')?.split(',') ?? SIMULATOR_DEFAULTS.tasks,
  };
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const f = runSimulators(simulatorOptions(a));
  console.log(a.has('json') ? JSON.stringify(f) : simulatorTable(f));
}

if (isMain(import.meta.url)) await runMain(cli);
