// Cost of the attacks and metrics of `robustsbi evaluate` per estimator, on gaussian_linear
// (theta 10, x 10) with RABI's default architectures at random initialization (cost does not depend
// on training). Prints wall and process-CPU milliseconds: per PGD step for B test x, and per x for
// the final KL (256 samples) and expected coverage (2000 samples).
//
//   node --import tsx bench/attack-cost.ts [--backend wasm] [--kinds gaussian,maf,nsf] [--b 100] [--steps 5]
// (BENCH_TRACE=1 names each case on stderr before it runs, to locate a backend abort.)
import { initBackend, tf } from '../sbi/backend.js';
import { runAttack, type AttackName } from '../sbi/attacks/index.js';
import { clipBoxOf } from '../sbi/attacks/eps.js';
import { expectedCoverage } from '../sbi/metrics/coverage.js';
import { klUnderAttack } from '../sbi/metrics/robustness.js';
import { createEstimator, computeZScore } from '../sbi/estimators/index.js';
import { createRng } from '../sbi/rng.js';
import { simulateDataset } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

async function timed(f: () => Promise<void> | void): Promise<{ wallMs: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  return { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}

const backend = await initBackend(option('backend', 'wasm'));
const kinds = option('kinds', 'gaussian,maf,nsf').split(',');
const b = Number(option('b', '100'));
const steps = Number(option('steps', '5'));
const task = getTask('gaussian_linear');
const train = simulateDataset(task, 2000, createRng(0));
const zscore = computeZScore(train.theta, train.x, train.n, task.thetaDim, task.xDim);
const test = simulateDataset(task, b, createRng(1));
const box = clipBoxOf(test.x);
const x = tf.tensor2d(test.x, [b, task.xDim]);
const theta = tf.tensor2d(test.theta, [b, task.thetaDim]);
const fmt = (t: { wallMs: number; cpuMs: number }, per = 1) =>
  `${(t.wallMs / per).toFixed(1)} ms wall, ${(t.cpuMs / per).toFixed(1)} ms cpu`;

console.log(`backend ${backend.name}, B = ${b} test x, gaussian_linear`);
for (const kind of kinds) {
  const est = createEstimator(kind, {
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    zscore,
    rng: createRng(2),
  });
  const setup = { estimator: est, x, theta, epsAbs: 1, box, rng: createRng(3) };
  const rows: string[] = [];
  const cases: [string, AttackName, 'rkl' | 'fkl'][] = [
    ['l2pgd rkl', 'l2pgd', 'rkl'],
    ['l2pgd fkl', 'l2pgd', 'fkl'],
    ['nll (targeted)', 'nll', 'rkl'],
  ];
  for (const [label, attack, div] of cases) {
    if (process.env.BENCH_TRACE) console.error(`${kind} ${label}`);
    runAttack(attack, setup, { divergence: div, steps: 1 }).dispose(); // warm-up
    const t = await timed(async () => {
      const adv = runAttack(attack, setup, { divergence: div, steps });
      await adv.data();
      adv.dispose();
    });
    rows.push(`  ${label.padEnd(16)} per step: ${fmt(t, steps)}`);
  }
  for (const attack of ['fim-eigen', 'noise'] as const) {
    const t = await timed(async () => {
      const adv = runAttack(attack, setup, { divergence: 'rkl' });
      await adv.data();
      adv.dispose();
    });
    rows.push(`  ${attack.padEnd(16)} total:    ${fmt(t)}`);
  }
  const adv = test.x.map((v) => v + 0.05);
  const tk = await timed(async () => {
    await klUnderAttack(est, 'rkl', test.x, adv, createRng(4));
  });
  rows.push(`  ${'KL (256)'.padEnd(16)} per x:    ${fmt(tk, b)}`);
  const tc = await timed(async () => {
    await expectedCoverage(est, test.x, test.theta, createRng(5));
  });
  rows.push(`  ${'coverage (2000)'.padEnd(16)} per x:    ${fmt(tc, b)}`);
  console.log(`${kind}:\n${rows.join('\n')}`);
  est.dispose();
}
tf.dispose([x, theta]);
