// `robustsbi simulate`: draws N (theta, x) pairs from a task and writes them to one simulation file.
import type { Command } from '../command.js';
import { checkOutputPath, parseCommandArgs, parseInteger, required } from '../sbi-args.js';

const usage = 'robustsbi simulate --task TASK --n N [--seed S] --out FILE';

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('simulate', argv, {
    task: { type: 'string' },
    n: { type: 'string' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
  });
  const taskName = required(v.task, 'task', 'simulate');
  const n = parseInteger('n', required(v.n, 'n', 'simulate'), 1);
  const seed = parseInteger('seed', v.seed!, 0);
  const out = checkOutputPath('out', required(v.out, 'out', 'simulate'));

  const { taskByName } = await import('../sbi-context.js');
  const task = taskByName(taskName);
  const { createRng } = await import('../../sbi/rng.js');
  const { simulateDataset } = await import('../../sbi/simulate.js');
  const { saveSimulations } = await import('../../sbi/simulation-file.js');
  const { codeVersion } = await import('../code-version.js');

  const data = simulateDataset(task, n, createRng(seed));
  saveSimulations(out, {
    task: task.name,
    seed,
    n: data.n,
    dropped: data.dropped,
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    paramNames: task.paramNames,
    theta: data.theta,
    x: data.x,
    code: codeVersion(),
    createdAt: new Date().toISOString(),
  });
  console.log(
    `simulate: ${data.n} simulations of ${task.name} (seed ${seed}, ${data.dropped} non-finite dropped) -> ${v.out}`,
  );
  return 0;
}

export const command: Command = {
  name: 'simulate',
  summary: 'Simulate N (theta, x) pairs of a task into a file',
  usage,
  run,
};
