// Simulator throughput per task: prior draws + simulate for n rows in one call, on one thread,
// reporting wall and CPU time. `node --import tsx bench/simulators.ts [--n 2000] [--tasks a,b]`.
import { createRng } from '../sbi/rng.js';
import { TASK_NAMES, getTask } from '../sbi/tasks/index.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const n = Number(arg('n') ?? 2000);
const tasks = arg('tasks')?.split(',') ?? [...TASK_NAMES];
console.log(
  `| task | theta -> x | n | sims/s (wall) | sims per CPU-second | ms/sim (CPU) | non-finite rows |`,
);
console.log(`|---|---|---|---|---|---|---|`);
for (const name of tasks) {
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
  const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
  console.log(
    `| ${name} | ${task.thetaDim} -> ${task.xDim} | ${n} | ${fmt(n / wall)} | ${fmt(n / cpu)} | ${((1000 * cpu) / n).toFixed(3)} | ${bad} |`,
  );
}
