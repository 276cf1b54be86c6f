// Issue 19's comparison on equal footing: robustsbi train's default (sbi/train-defaults.ts) and sbi
// 0.27's NPE() defaults trained on the very same simulated rows, sampled at the same observations,
// and scored by the same C2ST (and KL where the posterior is analytic) with the same seeds and sizes
// as bench/accuracy.ts. sbi runs in the torch venv through bench/torch/sbi_npe_reference.py.
//
//   node dist/bench/sbi-parity.js (or npm run bench -- sbi-parity) [--tasks two_moons,gaussian_linear] [--n 1000,10000] [--obs 3]
//        [--samples 10000] [--c2st-samples 2000] [--c2st-max-epochs 500] [--seed 0 | --seeds 0,1,2]
//        [--backend wasm] [--tools robustsbi,sbi] [--install-sbi] [--keep DIR] [--heldout 10000]
//        [--floor K] [--config JSON | --add-candidate JSON] [--hp JSON] [--ensemble K]
//        [--mixture fitted|uniform] [--leakage reject|keep]
//
// Beside the C2ST, both tools' mean -log q(theta | x) over --heldout rows from the joint (the same
// rows for every seed and budget; 0 skips it): the expected KL to the true posterior up to a
// constant, a paired score with far less noise than three observations' C2ST. --config '{...}'
// sets estimator settings over robustsbi's default architecture (a variant to screen; it pins that
// one architecture), --add-candidate '{...}' adds such an architecture to the default's candidates
// (the validation NLL chooses among them all, as train would with it), --hp '{...}'
// training settings over its default schedule (dropLast, batchSize, ...), --ensemble K trains K
// members of the kept architecture apart and scores their mixture (robustsbi train --ensemble K),
// weighted by validation (--mixture fitted, train's default) or uniform; the held-out NLL of both
// mixtures is in the cell's note either way. robustsbi's draws outside the prior's support are
// redrawn, as robustsbi sample and sbi's posterior.sample do (the acceptance in the cell's note);
// --leakage keep scores the flow's draws as they are (the share outside in the note). --floor K
// adds K rows 'reference': another draw of the reference posterior scored against it, the C2ST an
// exact posterior gets at these sizes (its spread is the noise under every other row).
// robustsbi's cell is exactly accuracy.ts's with the default's flags (same training set, training
// and posterior streams), so its figures repeat that bench's "new default" rows. Training CPU s is
// the training alone (no simulation) for both: process.cpuUsage here, time.process_time of one
// torch thread there.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../sbi/backend.js';
import { fitMixtureWeights, mixMafs } from '../sbi/estimators/deep-ensemble.js';
import { c2st } from '../sbi/metrics/c2st.js';
import { samplePosterior, shareInSupport, type Leakage } from '../sbi/posterior-samples.js';
import { createRng } from '../sbi/rng.js';
import {
  candidateSchedule,
  chooseByValidation,
  describeChoice,
} from '../sbi/choose-by-validation.js';
import { describeXChoice } from '../sbi/x-transform-choice.js';
import {
  DEFAULT_TRAIN_ESTIMATOR,
  SMALL_BUDGET,
  candidateEstimator,
  closedFormFits,
  trainCandidates,
  trainDefaults,
} from '../sbi/train-defaults.js';
import type { SimulatedDataset } from '../sbi/simulate.js';
import type { Task } from '../sbi/types.js';
import type { TrainingState } from '../sbi/npe-checkpoint.js';
import type { NPEHyperparameters } from '../sbi/npe-hyperparameters.js';
import type { TrainNPEResult } from '../sbi/npe.js';
import {
  analyticKL,
  analyticKLFromLogQ,
  benchTask,
  cellDataset,
  cellRng,
  cellXTransform,
  heldoutDataset,
  heldoutNll,
  meanNll,
  meanSd,
  observation,
  referenceSamples,
  trainCell,
} from './accuracy-core.js';
import { isMain, numberArg, numberListArg, parseArgs, runMain } from './args.js';
import { priorSpec, readSbiOutputs, writeExchange, type ExchangeMeta } from './sbi-exchange.js';
import { sbiPython } from './sbi-venv.js';
import { repoRoot } from './train-throughput.js';

const SCRIPT = join(repoRoot(), 'bench', 'torch', 'sbi_npe_reference.py');

interface ToolCell {
  tool: 'robustsbi' | 'sbi' | 'reference';
  task: string;
  n: number;
  /** The cell's seed (its training set and streams); the draw's index for a 'reference' row. */
  seed: number;
  c2st: number[];
  kl: (number | null)[] | null;
  mean: number;
  sd: number;
  epochs: number;
  trainCpuS: number;
  trainS: number;
  /** Mean -log q over the held-out rows; null when none were asked for. */
  heldoutNll: number | null;
  note?: string;
}

interface Scoring {
  task: Task;
  xs: Float32Array[];
  refs: Float32Array[];
  c2stSamples: number;
  c2stMaxEpochs: number;
  heldout: SimulatedDataset | null;
}

/** C2ST of each observation's samples against its reference, seeded as accuracy.ts seeds it. */
function scoreAll(s: Scoring, samples: readonly Float32Array[], label: string): number[] {
  return samples.map((post, i) => {
    const k = i + 1;
    const t0 = performance.now();
    const r = c2st(s.refs[i]!, post, s.task.thetaDim, createRng(1).fork(`c2st-${k}`), {
      maxSamples: s.c2stSamples,
      maxEpochs: s.c2stMaxEpochs,
    });
    console.error(
      `  ${label} obs ${k}: C2ST ${r.accuracy.toFixed(3)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
    return r.accuracy;
  });
}

/** What robustsbi's cell trains and how it draws, where it departs from train's default. */
interface Variant {
  /** --config and --add-candidate: each cell trains cellCandidates of them at its budget. */
  config: Record<string, unknown>;
  addCandidate: Record<string, unknown> | null;
  /** Training settings over the default schedule. */
  hp: Partial<NPEHyperparameters>;
  ensemble: number;
  mixture: 'fitted' | 'uniform';
  leakage: Leakage;
}

/**
 * The architectures a cell trains, as `robustsbi train` would: every candidate on the same split,
 * the lowest best validation NLL kept. A --config variant pins one architecture, as an architecture
 * option does; --add-candidate tries one more after the default's (each candidate keeps its own
 * streams, so the default's runs are the same with it as without it).
 */
export function cellCandidates(
  defaultArchitecture: Readonly<Record<string, unknown>>,
  config: Readonly<Record<string, unknown>>,
  addCandidate: Readonly<Record<string, unknown>> | null,
  n: number,
  ensemble = 1,
  task: { name: string; xDim: number } = { name: 'two_moons', xDim: 2 },
): Record<string, unknown>[] {
  if (Object.keys(config).length > 0) {
    if (addCandidate)
      throw new Error(
        '--config pins one architecture; --add-candidate adds one: give one of them.',
      );
    return [{ ...defaultArchitecture, ...config }];
  }
  const candidates = trainCandidates('robustsbi', DEFAULT_TRAIN_ESTIMATOR, {
    n,
    closedForm: ensemble === 1 && closedFormFits(task, n),
  });
  return addCandidate ? [...candidates, { ...defaultArchitecture, ...addCandidate }] : candidates;
}

async function robustsbiCell(
  s: Scoring,
  n: number,
  seed: number,
  nSamples: number,
  v: Variant,
): Promise<ToolCell> {
  const { task } = s;
  const { ensemble, mixture } = v;
  const cell = cellRng(seed, task.name, n);
  const data = cellDataset(task, n, cell);
  const base = trainDefaults('robustsbi', DEFAULT_TRAIN_ESTIMATOR);
  const defaults = { ...base, hyperparameters: { ...base.hyperparameters, ...v.hp } };
  const candidates = cellCandidates(base.architecture, v.config, v.addCandidate, n, ensemble, task);
  // As robustsbi train's --x-transform auto: log x where the linear-Gaussian probe prefers it.
  const x = cellXTransform(task, data, cell);
  const xLine = describeXChoice(x, task.thetaDim);
  const xNote = xLine === undefined ? '' : `${xLine}; `;
  let trainS = 0;
  let trainCpuS = 0;
  type Run = { trained: TrainNPEResult; architecture: Record<string, unknown> };
  const runOnce = async (
    architecture: Record<string, unknown>,
    hyperparameters: Partial<NPEHyperparameters>,
    resumeFrom?: TrainingState,
  ): Promise<Run> => {
    const kind = candidateEstimator(architecture, DEFAULT_TRAIN_ESTIMATOR);
    const run = await trainCell({
      task,
      data,
      cell,
      estimator: kind.estimator,
      config: kind.architecture,
      hyperparameters,
      ...(x.transform ? { xTransform: x.transform } : {}),
      ...(resumeFrom ? { resumeFrom } : {}),
      keepFinalState: hyperparameters !== defaults.hyperparameters,
    });
    trainS += run.trainS;
    trainCpuS += run.trainCpuS;
    return { trained: run.trained, architecture };
  };
  // As robustsbi train does: candidates to their first stop, the kept one then anneals.
  const schedule = candidateSchedule(defaults.hyperparameters, candidates.length);
  const choice = (await chooseByValidation(
    candidates,
    (architecture) => runOnce(architecture, schedule),
    {
      bestValLoss: (r) => r.trained.bestValLoss,
      dispose: (r) => r.trained.model.dispose(),
      ...(schedule !== defaults.hyperparameters
        ? {
            finish: (r: Run) =>
              runOnce(r.architecture, defaults.hyperparameters, r.trained.finalState),
          }
        : {}),
    },
  ))!;
  const trained = choice.chosen.trained;
  // As robustsbi train --ensemble K: K - 1 more of the kept architecture, trained apart, mixed.
  const members: TrainNPEResult[] = [trained];
  for (let k = 1; k < ensemble; k++) {
    const run = await trainCell({
      task,
      data,
      cell,
      estimator: DEFAULT_TRAIN_ESTIMATOR,
      config: choice.chosen.architecture,
      hyperparameters: defaults.hyperparameters,
      ...(x.transform ? { xTransform: x.transform } : {}),
      member: k,
    });
    trainS += run.trainS;
    trainCpuS += run.trainCpuS;
    members.push(run.trained);
  }
  // Each member's own held-out NLL, and the other mixture's, beside the scored one's.
  let ensembleNote = '';
  let model = trained.model;
  if (ensemble > 1) {
    const models = members.map((m) => m.model);
    const memberNll = s.heldout ? models.map((m) => heldoutNll(m, task, s.heldout!)) : [];
    const fit = fitMixtureWeights(members.map((m) => m.valLogProbs));
    const uniform = mixMafs(models);
    const fitted = mixMafs(models, fit.weights);
    for (const m of models) m.dispose();
    const [scored, other] = mixture === 'fitted' ? [fitted, uniform] : [uniform, fitted];
    const otherNll = s.heldout ? heldoutNll(other, task, s.heldout) : NaN;
    other.dispose();
    model = scored;
    ensembleNote =
      `; ${mixture} mixture of ${ensemble} (validation ${members.map((m) => m.bestValLoss.toFixed(3)).join(', ')}; ` +
      `held-out ${memberNll.map((v) => v.toFixed(3)).join(', ')}; weights ${fit.weights.map((w) => w.toFixed(3)).join(', ')}, ` +
      `validation ${(-fit.meanLogLik).toFixed(3)}; ${mixture === 'fitted' ? 'uniform' : 'fitted'} held-out ${otherNll.toFixed(3)})`;
  }
  const prior = v.leakage === 'reject' ? task.prior : undefined;
  const draws = s.xs.map((x, i) =>
    samplePosterior(model, x, nSamples, cell.fork(`posterior-${i + 1}`), prior),
  );
  const samples = draws.map((d) => d.samples);
  const leakageNote =
    v.leakage === 'reject'
      ? `; acceptance ${draws.map((d) => d.acceptance.toFixed(3)).join(', ')}`
      : `; draws kept outside the support: ${samples.map((d) => (1 - shareInSupport(task.prior, d, nSamples)).toFixed(3)).join(', ')}`;
  const chosen = xNote + describeChoice(choice, 3) + ensembleNote + leakageNote;
  console.error(
    `  robustsbi ${task.name} ${n}: ${trained.epochs} epochs (${trained.stoppedBy}), ${trainCpuS.toFixed(1)} s CPU; ${chosen}`,
  );
  const kl = task.analyticPosterior
    ? s.xs.map((x, i) => analyticKL(model, task, x, s.refs[i]!))
    : null;
  const nll = s.heldout ? heldoutNll(model, task, s.heldout) : null;
  model.dispose();
  const scores = scoreAll(s, samples, `robustsbi ${task.name} ${n}`);
  return {
    tool: 'robustsbi',
    task: task.name,
    n,
    seed,
    c2st: scores,
    kl,
    ...meanSd(scores),
    epochs: trained.epochs,
    trainCpuS,
    trainS,
    heldoutNll: nll,
    note: chosen,
  };
}

function sbiCell(
  s: Scoring,
  n: number,
  seed: number,
  nSamples: number,
  python: string,
  dir: string,
): ToolCell {
  const { task } = s;
  // The same rows robustsbi trains on (its own validation split is taken out of them, as sbi's is).
  const data = cellDataset(task, n, cellRng(seed, task.name, n));
  const meta: ExchangeMeta = {
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    n: data.n,
    observations: s.xs.length,
    samples: nSamples,
    seed,
    prior: priorSpec(task.prior),
    logQAtReference: task.analyticPosterior !== undefined,
    ...(s.heldout ? { heldout: s.heldout.n } : {}),
  };
  const obs = new Float32Array(s.xs.length * task.xDim);
  s.xs.forEach((x, i) => obs.set(x, i * task.xDim));
  mkdirSync(dir, { recursive: true });
  writeExchange(
    dir,
    meta,
    data.theta,
    data.x,
    obs,
    meta.logQAtReference ? s.refs : [],
    s.heldout ?? undefined,
  );
  const t0 = performance.now();
  const r = spawnSync(python, [SCRIPT, dir], {
    // sbi writes its tensorboard logs under ./sbi-logs: keep them in the exchange directory.
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
  });
  if (r.status !== 0) throw new Error(`sbi on ${task.name} at ${n} failed (exit ${r.status})`);
  const out = readSbiOutputs(dir, meta);
  console.error(
    `  sbi ${task.name} ${n}: ${out.run.epochs} epochs, ${out.run.trainCpuS.toFixed(1)} s CPU (${((performance.now() - t0) / 1000).toFixed(0)} s with sampling)`,
  );
  const kl = meta.logQAtReference
    ? s.xs.map((x, i) => analyticKLFromLogQ(task, x, s.refs[i]!, out.logQ[i]!))
    : null;
  const scores = scoreAll(s, out.samples, `sbi ${task.name} ${n}`);
  return {
    tool: 'sbi',
    task: task.name,
    n,
    seed,
    c2st: scores,
    kl,
    ...meanSd(scores),
    epochs: out.run.epochs,
    trainCpuS: out.run.trainCpuS,
    trainS: out.run.trainWallS,
    heldoutNll: out.heldoutLogQ ? meanNll(out.heldoutLogQ) : null,
    note: `sbi ${out.run.sbiVersion}, torch ${out.run.torchVersion}${out.run.acceptance ? `; acceptance ${out.run.acceptance.map((a) => a.toFixed(3)).join(', ')}` : ''}`,
  };
}

/** Draw d of the reference posterior, independent of the one scored against, as a cell of its own. */
function floorCell(s: Scoring, d: number, nSamples: number): ToolCell {
  const { task } = s;
  const draw = task.referencePosterior;
  if (!draw) throw new Error(`${task.name} has no reference posterior to draw again`);
  const samples = s.xs.map((x, i) =>
    draw.call(task, x, nSamples, createRng(1000 + d).fork(`floor/${i + 1}`)),
  );
  const scores = scoreAll(s, samples, `reference ${task.name} draw ${d}`);
  return {
    tool: 'reference',
    task: task.name,
    n: 0,
    seed: d,
    c2st: scores,
    kl: null,
    ...meanSd(scores),
    epochs: 0,
    trainCpuS: 0,
    trainS: 0,
    heldoutNll: null,
    note: `independent draw ${d}`,
  };
}

/** One (task, N) compared over the seeds where both tools ran: robustsbi minus sbi, paired by seed. */
export interface PairedRow {
  task: string;
  n: number;
  seeds: number[];
  robustsbi: number;
  sbi: number;
  /** Mean of the per-seed differences in mean C2ST, their sample sd, and the paired t (NaN for one seed). */
  diff: number;
  diffSd: number;
  t: number;
  /** Mean per-seed difference in held-out NLL; null where either side has none. */
  nllDiff: number | null;
  /** robustsbi's training CPU over sbi's, summed over the seeds. */
  cpuRatio: number;
}

type PairedInput = Pick<
  ToolCell,
  'tool' | 'task' | 'n' | 'seed' | 'c2st' | 'mean' | 'heldoutNll' | 'trainCpuS'
>;

/** The paired comparison per (task, N), in first-seen order; cells scored without C2ST are left out. */
export function pairedSummary(cells: readonly PairedInput[]): PairedRow[] {
  const groups = new Map<string, { task: string; n: number; by: Map<number, PairedInput[]> }>();
  for (const c of cells) {
    if (c.tool === 'reference' || c.c2st.length === 0) continue;
    const key = `${c.task}/${c.n}`;
    const g = groups.get(key) ?? { task: c.task, n: c.n, by: new Map() };
    groups.set(key, g);
    g.by.set(c.seed, [...(g.by.get(c.seed) ?? []), c]);
  }
  const rows: PairedRow[] = [];
  for (const { task, n, by } of groups.values()) {
    const pairs = [...by.entries()]
      .map(([seed, cs]) => ({
        seed,
        r: cs.find((c) => c.tool === 'robustsbi'),
        s: cs.find((c) => c.tool === 'sbi'),
      }))
      .filter((p): p is { seed: number; r: PairedInput; s: PairedInput } => !!p.r && !!p.s);
    if (pairs.length === 0) continue;
    const diffs = pairs.map((p) => p.r.mean - p.s.mean);
    const { mean: diff, sd } = meanSd(diffs);
    const k = pairs.length;
    const nlls = pairs.map((p) =>
      p.r.heldoutNll === null || p.s.heldoutNll === null ? null : p.r.heldoutNll - p.s.heldoutNll,
    );
    rows.push({
      task,
      n,
      seeds: pairs.map((p) => p.seed),
      robustsbi: meanSd(pairs.map((p) => p.r.mean)).mean,
      sbi: meanSd(pairs.map((p) => p.s.mean)).mean,
      diff,
      diffSd: k > 1 ? sd : NaN,
      t: k > 1 ? diff / (sd / Math.sqrt(k)) : NaN,
      nllDiff: nlls.every((v) => v !== null) ? meanSd(nlls as number[]).mean : null,
      cpuRatio:
        pairs.reduce((a, p) => a + p.r.trainCpuS, 0) / pairs.reduce((a, p) => a + p.s.trainCpuS, 0),
    });
  }
  return rows;
}

function fmt(c: ToolCell): string {
  const kl = c.kl?.length
    ? ` (KL ${c.kl.map((v) => (v === null ? '-' : v.toFixed(2))).join(', ')})`
    : '';
  const nll = c.heldoutNll === null ? '-' : c.heldoutNll.toFixed(3);
  // --obs 0 scores held-out NLL alone: no C2ST to list or average.
  const c2st = c.c2st.length === 0 ? '-' : c.c2st.map((v) => v.toFixed(3)).join(', ');
  const mean = c.c2st.length === 0 ? '-' : `**${c.mean.toFixed(3)}**`;
  return `${c2st}${kl} | ${mean} | ${nll} | ${c.epochs} | ${c.trainCpuS.toFixed(1)}`;
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const tasks = (a.get('tasks') ?? 'two_moons,gaussian_linear,sbibm_gaussian_linear,slcp').split(
    ',',
  );
  const budgets = numberListArg(
    a,
    'n',
    '1000,10000',
    (n) => Number.isInteger(n) && n >= 1,
    'positive integers',
  );
  const tools = (a.get('tools') ?? 'robustsbi,sbi').split(',');
  for (const t of tools)
    if (t !== 'robustsbi' && t !== 'sbi')
      throw new Error(`--tools must list robustsbi and/or sbi, not ${t}`);
  const nObs = numberArg(a, 'obs', 3);
  const nSamples = numberArg(a, 'samples', 10000);
  const c2stSamples = numberArg(a, 'c2st-samples', 2000);
  const c2stMaxEpochs = numberArg(a, 'c2st-max-epochs', 500);
  // --seeds 0,1,2 runs every cell per seed and adds the paired comparison; --seed S is one seed.
  const seeds = numberListArg(
    a,
    'seeds',
    String(numberArg(a, 'seed', 0)),
    (k) => Number.isInteger(k) && k >= 0,
    'non-negative integers',
  );
  const heldoutRows = numberArg(a, 'heldout', 10000);
  const floor = numberArg(a, 'floor', 0);
  // A variant of robustsbi's default to screen: estimator settings over the default architecture.
  const config = a.has('config') ? (JSON.parse(a.get('config')!) as Record<string, unknown>) : {};
  // ... or one more candidate beside the default's.
  const addCandidate = a.has('add-candidate')
    ? (JSON.parse(a.get('add-candidate')!) as Record<string, unknown>)
    : null;
  // ... and training settings over the default schedule.
  const hp = a.has('hp') ? (JSON.parse(a.get('hp')!) as Partial<NPEHyperparameters>) : {};
  const ensemble = numberArg(a, 'ensemble', 1);
  if (!Number.isInteger(ensemble) || ensemble < 1)
    throw new Error(`--ensemble must be a positive integer, not ${ensemble}`);
  const mixture = a.get('mixture') ?? 'fitted';
  if (mixture !== 'fitted' && mixture !== 'uniform')
    throw new Error(`--mixture must be fitted or uniform, not ${mixture}`);
  const leakage = a.get('leakage') ?? 'reject';
  if (leakage !== 'reject' && leakage !== 'keep')
    throw new Error(`--leakage must be reject or keep, not ${leakage}`);
  // Checked once here, so a bad pair fails before any cell runs.
  cellCandidates(
    trainDefaults('robustsbi', DEFAULT_TRAIN_ESTIMATOR).architecture,
    config,
    addCandidate,
    SMALL_BUDGET,
  );
  const variant: Variant = { config, addCandidate, hp, ensemble, mixture, leakage };
  const backend = await initBackend(a.get('backend'));

  let python: string | null = null;
  if (tools.includes('sbi')) {
    const sbi = sbiPython(a.has('install-sbi'));
    if (sbi.ok) python = sbi.python;
    else console.log(`sbi: unavailable (${sbi.reason})`);
  }
  const keep = a.get('keep');
  const root = keep ?? mkdtempSync(join(tmpdir(), 'robustsbi-sbi-parity-'));
  console.error(`backend ${backend.name}; exchange files in ${root}`);

  const cells: ToolCell[] = [];
  try {
    for (const name of tasks) {
      const task = benchTask(name);
      const xs = Array.from({ length: nObs }, (_, i) => observation(task, i + 1).x);
      const refs = xs.map((x, i) => referenceSamples(task, i + 1, x, nSamples));
      const heldout = heldoutRows > 0 ? heldoutDataset(task, heldoutRows) : null;
      const scoring: Scoring = { task, xs, refs, c2stSamples, c2stMaxEpochs, heldout };
      for (let d = 0; d < floor; d++) cells.push(floorCell(scoring, d, nSamples));
      for (const n of budgets)
        for (const seed of seeds) {
          if (tools.includes('robustsbi'))
            cells.push(await robustsbiCell(scoring, n, seed, nSamples, variant));
          if (python !== null)
            cells.push(
              sbiCell(
                scoring,
                n,
                seed,
                nSamples,
                python,
                join(root, seeds.length === 1 ? `${name}-${n}` : `${name}-${n}-seed${seed}`),
              ),
            );
        }
    }
  } finally {
    if (keep === undefined) rmSync(root, { recursive: true, force: true });
  }

  console.log(
    `backend: ${backend.name}; seeds ${seeds.join(', ')}; observations k = 1..${nObs}; ${nSamples} posterior and reference samples; C2ST on ${c2stSamples} vs ${c2stSamples}, at most ${c2stMaxEpochs} classifier epochs`,
  );
  console.log(
    `| task | N | seed | tool | C2ST k = 1..K | mean | held-out NLL (${heldoutRows} rows) | epochs | train CPU s |`,
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const c of cells)
    console.log(
      `| ${c.task} | ${c.tool === 'reference' ? '-' : c.n} | ${c.seed} | ${c.tool} | ${fmt(c)} |`,
    );
  const paired = pairedSummary(cells);
  if (paired.some((r) => r.seeds.length > 1)) {
    console.log('\nPaired over seeds (robustsbi minus sbi; t = mean / (sd / sqrt(seeds))):');
    console.log(
      '| task | N | seeds | C2ST robustsbi | C2ST sbi | difference (sd) | paired t | held-out NLL difference | train CPU robustsbi / sbi |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of paired)
      console.log(
        `| ${r.task} | ${r.n} | ${r.seeds.join(', ')} | ${r.robustsbi.toFixed(3)} | ${r.sbi.toFixed(3)} | ` +
          `${r.diff >= 0 ? '+' : ''}${r.diff.toFixed(4)} (${r.diffSd.toFixed(4)}) | ${r.t.toFixed(1)} | ` +
          `${r.nllDiff === null ? '-' : r.nllDiff.toFixed(3)} | ${r.cpuRatio.toFixed(2)} |`,
      );
  }
  console.log(
    JSON.stringify({
      bench: 'sbi-parity',
      backend: backend.name,
      seeds,
      nObs,
      nSamples,
      c2stSamples,
      c2stMaxEpochs,
      cells,
    }),
  );
}

if (isMain(import.meta.url)) await runMain(cli);
