// Simulator throughput per task: prior draws + simulate for n rows in one call, on one thread,
// reporting wall and CPU time. `node --import tsx bench/simulators.ts [--n 2000] [--tasks a,b]`.
// pyloric costs about 0.04 s a simulation, so it runs at most PYLORIC_ROWS rows; its non-finite rows
// are the invalid simulations its filter drops. With the reference venv (bench/pyloric-venv.ts;
// --install-reference creates it) the pyloric row is also compared with mackelab/pyloric: both run
// as child processes pinned to the same core (taskset), each on its own prior draws, CPU seconds
// per simulation and peak memory each. --reference-n sets that comparison's size.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRng } from '../sbi/rng.js';
import { TASK_NAMES, getTask } from '../sbi/tasks/index.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { hasTaskset, pyloricPython, runReference } from './pyloric-venv.js';

/** Rows of pyloric per run (about 10 s of one core). */
export const PYLORIC_ROWS = 200;

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
  /** The process's peak resident memory after this task, MB. */
  peakRssMb: number;
}

export type SimulatorFigures = Record<string, SimulatorRow>;

export const SIMULATOR_DEFAULTS: SimulatorOptions = { n: 2000, tasks: [...TASK_NAMES] };

export function runSimulators(opts: SimulatorOptions): SimulatorFigures {
  const out: SimulatorFigures = {};
  for (const name of opts.tasks) {
    const n = name === 'pyloric' ? Math.min(opts.n, PYLORIC_ROWS) : opts.n;
    const task = getTask(name);
    const rng = createRng(0);
    const theta = task.prior.sample(n, rng.fork('prior'));
    // Warm-up: let V8 compile the hot loops before timing.
    const warm = Math.min(20, n);
    task.simulate(theta.subarray(0, warm * task.thetaDim), warm, rng.fork('warm'));
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
      peakRssMb: process.resourceUsage().maxRSS / 1024,
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

/** One side of the pyloric comparison: simulations per CPU-second and peak memory. */
export interface PyloricSide {
  n: number;
  simsPerCpuSecond: number;
  msPerSimCpu: number;
  peakRssMb: number;
  validShare: number;
}

export type PyloricComparison =
  | { core: number | null; robustsbi: PyloricSide; reference: PyloricSide; speedup: number }
  | { unavailable: string };

/** This module's own CLI for pyloric alone, as a child pinned to `core`; its figures. */
function pinnedRobustsbi(n: number, core: number | null): PyloricSide {
  const self = fileURLToPath(import.meta.url);
  const cmd = [process.execPath, ...process.execArgv, self, '--tasks', 'pyloric', '--n', String(n)];
  const args = [...cmd, '--json', '--no-reference'];
  const pinned = core === null ? args : ['taskset', '-c', String(core), ...args];
  const r = spawnSync(pinned[0]!, pinned.slice(1), { encoding: 'utf8', timeout: 1_800_000 });
  if (r.status !== 0) throw new Error(`pyloric child failed: ${r.stderr.slice(-2000)}`);
  const row = (JSON.parse(r.stdout) as SimulatorFigures).pyloric!;
  return {
    n: row.n,
    simsPerCpuSecond: row.simsPerCpuSecond,
    msPerSimCpu: row.msPerSimCpu,
    peakRssMb: row.peakRssMb,
    validShare: 1 - row.nonFiniteRows / row.n,
  };
}

/** robustsbi's pyloric against mackelab/pyloric, n simulations each on the same core. */
export function comparePyloric(n: number, install: boolean, core = 1): PyloricComparison {
  const py = pyloricPython(install);
  if (!py.ok) return { unavailable: py.reason };
  const pin = hasTaskset() ? core : null;
  const robustsbi = pinnedRobustsbi(n, pin);
  const out = runReference(py, ['throughput', String(n)], pin ?? undefined, 3_600_000);
  const r = JSON.parse(out.trim().split('\n').pop()!) as {
    n: number;
    cpuS: number;
    valid: number;
    peakRssMb: number;
  };
  const reference: PyloricSide = {
    n: r.n,
    simsPerCpuSecond: r.n / r.cpuS,
    msPerSimCpu: (1000 * r.cpuS) / r.n,
    peakRssMb: r.peakRssMb,
    validShare: r.valid / r.n,
  };
  return {
    core: pin,
    robustsbi,
    reference,
    speedup: robustsbi.simsPerCpuSecond / reference.simsPerCpuSecond,
  };
}

export function pyloricComparisonTable(c: PyloricComparison): string {
  if ('unavailable' in c) return `pyloric reference: unavailable (${c.unavailable})`;
  const row = (name: string, s: PyloricSide): string =>
    `| ${name} | ${s.n} | ${s.simsPerCpuSecond.toFixed(2)} | ${s.msPerSimCpu.toFixed(1)} | ${s.peakRssMb.toFixed(0)} | ${(100 * s.validShare).toFixed(0)} % |`;
  return [
    `pyloric, 2000 ms at dt 0.025 ms, one thread${c.core === null ? '' : `, both pinned to core ${c.core}`}:`,
    `| simulator | n | sims per CPU-second | ms/sim (CPU) | peak RSS (MB) | valid |`,
    `|---|---|---|---|---|---|`,
    row('robustsbi (TypeScript)', c.robustsbi),
    row('mackelab/pyloric (Cython)', c.reference),
    `speed-up: ${c.speedup.toFixed(2)}x`,
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
  const opts = simulatorOptions(a);
  const f = runSimulators(opts);
  if (a.has('json') && a.has('no-reference')) return console.log(JSON.stringify(f));
  const c =
    opts.tasks.includes('pyloric') && !a.has('no-reference')
      ? comparePyloric(numberArg(a, 'reference-n', 50), a.has('install-reference'))
      : undefined;
  if (a.has('json')) console.log(JSON.stringify(c ? { ...f, pyloricVsReference: c } : f));
  else console.log([simulatorTable(f), ...(c ? [pyloricComparisonTable(c)] : [])].join('\n\n'));
}

if (isMain(import.meta.url)) await runMain(cli);
