// The yardstick for `robustsbi evaluate` on gaussian_linear: the exact posterior attacked as an
// estimator would be (sbi/metrics/exact-posterior-attack.ts), on the same test pairs, eps scale and
// clipping box as `robustsbi evaluate --seed S` uses. Any estimator close to the posterior
// must show about this KL and this coverage under an L2 attack of the same size.
//
//   npm run bench -- exact-attack [--task gaussian_linear] [--eps 0.2,0.5,1,2] [--n-test 200]
//        [--seed 7] [--samples 2000] [--json]
import { absoluteEps, meanPerSampleStd } from '../sbi/attacks/eps.js';
import {
  attackExactPosterior,
  linearGaussianPosterior,
  type ExactAttackResult,
} from '../sbi/metrics/exact-posterior-attack.js';
import { createRng } from '../sbi/rng.js';
import { simulateDataset } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';

/** Coverage levels shown in BENCHMARKS.md: indices into the 100-level grid i / 99. */
const SHOWN = [9, 29, 49, 69, 89, 94];

export interface ExactAttackFigures {
  task: string;
  nTest: number;
  seed: number;
  scale: number;
  rows: (Omit<ExactAttackResult, 'kl'> & { klMedian: number })[];
}

export function runExactAttack(opts: {
  task: string;
  eps: number[];
  nTest: number;
  seed: number;
  samples: number;
}): ExactAttackFigures {
  const task = getTask(opts.task);
  const posterior = task.analyticPosterior?.bind(task);
  if (!posterior) throw new Error(`${task.name} has no analytic posterior.`);
  // The test set `robustsbi evaluate --seed S` draws (cli/commands/evaluate.ts).
  const rng = createRng(opts.seed);
  const test = simulateDataset(task, opts.nTest, rng.fork('evaluate/test-set'));
  const p = linearGaussianPosterior(posterior, task.xDim, test.x.subarray(0, task.xDim));
  const scale = meanPerSampleStd(test.x, test.n, task.xDim);
  const rows = opts.eps.map((eps) => {
    const r = attackExactPosterior(p, test, eps, absoluteEps(eps, scale), rng.fork(`eps/${eps}`), {
      samples: opts.samples,
    });
    const sorted = Float64Array.from(r.kl).sort();
    return {
      eps: r.eps,
      epsAbs: r.epsAbs,
      klBound: r.klBound,
      klMean: r.klMean,
      klMedian: sorted[Math.floor(sorted.length / 2)]!,
      coverage: r.coverage,
      coverageAbsArea: r.coverageAbsArea,
    };
  });
  return { task: task.name, nTest: test.n, seed: opts.seed, scale, rows };
}

export function exactAttackTable(f: ExactAttackFigures): string {
  const lines = [
    `Exact posterior of ${f.task} under its worst-case L2 attack: ${f.nTest} test pairs (seed ${f.seed}), eps scale ${f.scale.toFixed(4)}`,
    '',
    '| eps | eps abs | rKL = fKL bound | mean | median | coverage at 0.09 / 0.29 / 0.49 / 0.70 / 0.90 / 0.95 | coverage area |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of f.rows) {
    const cov = SHOWN.map((i) => r.coverage[i]!.toFixed(2)).join(' / ');
    lines.push(
      `| ${r.eps} | ${r.epsAbs.toFixed(3)} | ${r.klBound.toFixed(1)} | ${r.klMean.toFixed(1)} | ${r.klMedian.toFixed(1)} | ${cov} | ${r.coverageAbsArea.toFixed(3)} |`,
    );
  }
  return lines.join('\n');
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const f = runExactAttack({
    task: a.get('task') ?? 'gaussian_linear',
    eps: (a.get('eps') ?? '0,0.2,0.5,1,2').split(',').map(Number),
    nTest: numberArg(a, 'n-test', 200),
    seed: numberArg(a, 'seed', 7),
    samples: numberArg(a, 'samples', 2000),
  });
  console.log(a.has('json') ? JSON.stringify(f) : exactAttackTable(f));
}

if (isMain(import.meta.url)) await runMain(cli);
