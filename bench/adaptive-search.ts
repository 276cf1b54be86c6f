// Adaptive search against the two baselines on the accuracy-robustness front (issue #22): for the
// same number of trained models, the normalized hypervolume of the front found by the gap-bisecting
// proposer (sweeps/search.ts), by a log-spaced beta grid over the same range, and by random search,
// over several seeds. Trains and evaluates in this process with the code the activities run
// (activities/train.ts fitConfigOf + sbi/fit.ts fitModel, activities/simulate.ts drawDataset,
// sbi/evaluation.ts as activities/evaluate.ts calls it), so it needs no Temporal or MongoDB.
//
//   npm run bench -- adaptive-search [--models 12] [--batch 4] [--seeds 0,1,2] [--n-test 100]
//        [--min 1e-3] [--max 10] [--defense fim] [--backend wasm] [--json]
import { fitConfigOf } from '../activities/train.js';
import { drawDataset } from '../activities/simulate.js';
import { initBackend } from '../sbi/backend.js';
import { evaluateRobustness, type EvaluationSpec } from '../sbi/evaluation.js';
import { fitModel } from '../sbi/fit.js';
import { createRng } from '../sbi/rng.js';
import { getTask } from '../sbi/tasks/index.js';
import { proposedTrial } from '../sweeps/expand.js';
import {
  boundsOf,
  frontIndices,
  normalizedHypervolume,
  type Bounds,
  type Point2,
} from '../sweeps/hypervolume.js';
import { objectivePoint, proposeBatch, type SearchObservation } from '../sweeps/search.js';
import type { SearchSpec, SweepSpec, TrialDefense } from '../sweeps/types.js';
import { validateSweepSpec } from '../sweeps/validate.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';

export const METHODS = ['adaptive', 'grid', 'random'] as const;
type Method = (typeof METHODS)[number];
const SEARCH_METHOD = { adaptive: 'gaps', grid: 'grid', random: 'random' } as const;

export interface SearchBenchOptions {
  models: number;
  batch: number;
  seeds: number[];
  nTest: number;
  min: number;
  max: number;
  defense: 'fim' | 'fim-fast';
  backend?: string;
}

interface Measured extends Point2 {
  kl: number;
  nll: number;
  beta: number;
  round: number;
  seconds: number;
}

export interface SeedFigures {
  seed: number;
  hypervolume: Record<Method, number>;
  points: Record<Method, Measured[]>;
  bounds: Bounds;
  trainings: number;
}

/** The demo's sweep (sweeps/demo.json: its training settings) as a search over one defense's beta. */
function specFor(o: SearchBenchOptions, seed: number, method: Method): SweepSpec {
  return validateSweepSpec({
    name: 'bench-adaptive-search',
    tasks: ['gaussian_linear'],
    estimators: [{ kind: 'maf', architecture: { hidden: [50, 50] } }],
    seeds: [seed],
    budgets: [2000],
    training: { maxEpochs: 20, batchSize: 128, patience: 5 },
    evaluation: {
      attacks: ['l2pgd'],
      objectives: ['rkl'],
      eps: [2],
      nTest: o.nTest,
      steps: 30,
      evalSamples: 128,
      coverageSamples: 100,
      tradeoffEps: 2,
    },
    search: {
      space: [{ defense: o.defense, beta: { min: o.min, max: o.max, scale: 'log' } }],
      objectives: [
        { metric: 'testNll' },
        { metric: 'kl', attack: 'l2pgd', objective: 'rkl', eps: 2 },
      ],
      budget: o.models,
      batch: method === 'adaptive' ? o.batch : o.models,
      seed,
      method: SEARCH_METHOD[method],
    },
  });
}

/** Trains and evaluates one trial of `spec` (the activities' code, in process): its objectives. */
async function measure(
  spec: SweepSpec,
  defense: TrialDefense,
): Promise<{ kl: number; nll: number }> {
  const t = proposedTrial(spec, defense, 0);
  const task = getTask(t.task);
  const train = drawDataset({
    purpose: 'train',
    task: t.task,
    n: t.budget,
    seed: t.seed,
    id: t.simulationId,
  });
  const { saved } = await fitModel(
    fitConfigOf(t),
    { theta: train.theta, x: train.x, n: train.n, dropped: train.dropped },
    {},
    { code: { version: 'bench' }, backend: 'bench' },
  );
  try {
    const loaded = drawDataset({
      purpose: 'test',
      task: t.task,
      n: t.evaluation.nTest,
      seed: t.seed,
      id: t.testSetId,
    });
    const ev = t.evaluation;
    const spec2: EvaluationSpec = {
      attacks: ['l2pgd'],
      divergences: ['rkl'],
      eps: [2],
      ...(ev.steps !== undefined ? { steps: ev.steps } : {}),
      mcSamples: ev.mcSamples,
      evalSamples: ev.evalSamples,
      coverageSamples: ev.coverageSamples,
      coverageLevels: ev.coverageLevels,
      attackBatchSize: ev.attackBatchSize,
    };
    const test = task.analyticPosterior
      ? { ...loaded, analyticPosterior: (x: Float32Array) => task.analyticPosterior!(x) }
      : loaded;
    const [r] = await evaluateRobustness(
      saved.estimator,
      test,
      spec2,
      createRng(t.seed).fork('evaluate/attacks'),
    );
    return { kl: r!.kl.mean, nll: r!.nll.clean };
  } finally {
    saved.estimator.dispose();
  }
}

/** One method's search at one seed, proposing round by round as the SweepWorkflow does. */
async function runSearch(
  o: SearchBenchOptions,
  seed: number,
  method: Method,
  cache: Map<string, Measured>,
  log: (m: string) => void,
): Promise<Measured[]> {
  const spec = specFor(o, seed, method);
  const search = spec.search as SearchSpec;
  const tried: TrialDefense[] = [];
  const observed: SearchObservation[] = [];
  const out: Measured[] = [];
  for (let round = 1; tried.length < search.budget; round++) {
    const batch = proposeBatch({
      search,
      tried,
      observed,
      round,
      count: Math.min(search.batch, search.budget - tried.length),
      gridSize: search.budget,
    });
    if (batch.length === 0) break;
    for (const d of batch) {
      tried.push(d);
      const key = `${seed}|${d.beta}`;
      let m = cache.get(key);
      if (!m) {
        const t0 = performance.now();
        const r = await measure(spec, d);
        // On the search's plane: log10 KL, NLL.
        const p = objectivePoint(search, r);
        m = {
          ...p,
          kl: r.kl,
          nll: r.nll,
          beta: d.beta!,
          round,
          seconds: (performance.now() - t0) / 1000,
        };
        cache.set(key, m);
        log(
          `seed ${seed} ${method} round ${round}: beta ${d.beta} -> KL ${r.kl.toFixed(4)}, NLL ${r.nll.toFixed(4)} (${m.seconds.toFixed(1)} s)`,
        );
      }
      observed.push({ defense: d, kl: m.kl, nll: m.nll });
      out.push({ ...m, round });
    }
  }
  return out;
}

export async function runAdaptiveSearchBench(
  o: SearchBenchOptions,
  log: (m: string) => void = (m) => console.error(m),
): Promise<{ backend: string; seeds: SeedFigures[]; mean: Record<Method, number> }> {
  const backend = (await initBackend(o.backend)).name;
  const seeds: SeedFigures[] = [];
  for (const seed of o.seeds) {
    const cache = new Map<string, Measured>();
    const points = {} as Record<Method, Measured[]>;
    for (const method of METHODS) points[method] = await runSearch(o, seed, method, cache, log);
    // One scale for the three: the bounds of every point any method measured at this seed.
    const bounds = boundsOf(METHODS.flatMap((m) => points[m]))!;
    const hypervolume = {} as Record<Method, number>;
    for (const m of METHODS) hypervolume[m] = normalizedHypervolume(points[m], bounds);
    seeds.push({ seed, hypervolume, points, bounds, trainings: cache.size });
    log(`seed ${seed}: ${METHODS.map((m) => `${m} ${hypervolume[m].toFixed(4)}`).join(', ')}`);
  }
  const mean = {} as Record<Method, number>;
  for (const m of METHODS) mean[m] = seeds.reduce((s, f) => s + f.hypervolume[m], 0) / seeds.length;
  return { backend, seeds, mean };
}

/** The three fronts of one seed as text: a for adaptive, g for grid, r for random; capitals on a front. */
export function asciiFronts(f: SeedFigures, width = 64, height = 20): string {
  const grid = Array.from({ length: height }, () => Array<string>(width).fill(' '));
  const b = f.bounds;
  for (const m of ['random', 'grid', 'adaptive'] as const) {
    const pts = f.points[m];
    const front = new Set(frontIndices(pts));
    pts.forEach((p, i) => {
      if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) return;
      const c = Math.round(((p.x - b.x0) / (b.x1 - b.x0)) * (width - 1));
      const r = height - 1 - Math.round(((p.y - b.y0) / (b.y1 - b.y0)) * (height - 1));
      const ch = m[0]!;
      grid[r]![c] = front.has(i) ? ch.toUpperCase() : ch;
    });
  }
  const lines = grid.map((row, i) => {
    const label =
      i === 0 ? b.y1.toFixed(3) : i === height - 1 ? b.y0.toFixed(3) : ''.padStart(1, ' ');
    return `${label.padStart(8)} |${row.join('')}`;
  });
  lines.push(`${''.padStart(8)} +${'-'.repeat(width)}`);
  lines.push(
    `${''.padStart(10)}${b.x0.toFixed(3)}${'log10 mean KL (l2pgd, rkl, eps 2)'.padStart(width / 2 + 10)}${b.x1.toFixed(3).padStart(width / 2 - 18)}`,
  );
  return `test NLL\n${lines.join('\n')}`;
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const o: SearchBenchOptions = {
    models: numberArg(a, 'models', 12),
    batch: numberArg(a, 'batch', 4),
    seeds: (a.get('seeds') ?? '0,1,2').split(',').map(Number),
    nTest: numberArg(a, 'n-test', 100),
    min: numberArg(a, 'min', 1e-3),
    max: numberArg(a, 'max', 10),
    defense: (a.get('defense') ?? 'fim') as SearchBenchOptions['defense'],
    ...(a.get('backend') ? { backend: a.get('backend')! } : {}),
  };
  const t0 = performance.now();
  const r = await runAdaptiveSearchBench(o);
  const minutes = (performance.now() - t0) / 60000;
  if (a.get('json') === 'true') {
    console.log(JSON.stringify({ options: o, minutes, ...r }));
    return;
  }
  console.log(
    `backend ${r.backend}, ${o.models} models per method, ${o.defense} beta in [${o.min}, ${o.max}] (log), ${minutes.toFixed(1)} min\n`,
  );
  console.log('| seed | adaptive | grid | random | trainings |');
  console.log('|---|---|---|---|---|');
  for (const s of r.seeds)
    console.log(
      `| ${s.seed} | ${s.hypervolume.adaptive.toFixed(4)} | ${s.hypervolume.grid.toFixed(4)} | ${s.hypervolume.random.toFixed(4)} | ${s.trainings} |`,
    );
  console.log(
    `| mean | **${r.mean.adaptive.toFixed(4)}** | ${r.mean.grid.toFixed(4)} | ${r.mean.random.toFixed(4)} | |`,
  );
  for (const s of r.seeds) {
    console.log(`\nseed ${s.seed}:`);
    for (const m of METHODS)
      console.log(`  ${m}: ${s.points[m].map((p) => `${p.beta}@r${p.round}`).join(' ')}`);
    console.log(asciiFronts(s));
  }
}

if (isMain(import.meta.url)) await runMain(cli);
