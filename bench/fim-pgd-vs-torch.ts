// The paper's method and its evaluation beside PyTorch on the same core (issue 17, item 5): the
// exact `fim` training step and the L2-PGD step on the rKL objective, robustsbi against PyTorch
// autograd with RABI's semantics (bench/torch/fim_pgd_cost.py), one thread each, peak RSS beside each.
//
//   node dist/bench/fim-pgd-vs-torch.js [--n 10000] [--epochs 2] [--reps 5] [--backend wasm]
//                                       [--install-torch] [--json]
//   (or npm run bench -- fim-torch [options]; the suite reports the same figures)
//
// robustsbi's side goes through the public APIs only, so a faster implementation behind them is
// measured as soon as it lands:
// - the fim step: trainNPE with the `fim` defense (M = 5, the whole batch of 512) on
//   gaussian_linear with n training rows, in bench/defense-cost.ts's child process (its peak RSS its
//   own). Per step: the median epoch after the first (the first carries the warm-up; with one
//   epoch, that one), by process CPU time, scaled to 512 rows (epoch CPU * 512 / n: the last batch
//   of an epoch is short). The epoch includes its validation pass, a few ms.
// - the PGD step: runAttack('l2pgd', ..., { divergence: 'rkl', steps: 5 }) for 100 test x, as
//   bench/attack-cost.ts runs it (RABI's MAF at random initialization, z-score from 2,000
//   training rows, eps 1, M = 5), in a child process of its own: one 1-step warm-up, then --reps
//   attacks of 5 steps; per step, the median attack by CPU time / 5.
// Ratios are by CPU time (less sensitive to other load on the machine than wall time), each > 1
// when robustsbi is the faster: fimStepVsTorch.ratio = torch ms / robustsbi ms,
// evaluationThroughput.ratio = robustsbi / torch in test points x PGD steps per CPU-second.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../sbi/backend.js';
import { runAttack } from '../sbi/attacks/index.js';
import { clipBoxOf } from '../sbi/attacks/eps.js';
import { computeZScore, createEstimator } from '../sbi/estimators/index.js';
import { createRng } from '../sbi/rng.js';
import { simulateDataset } from '../sbi/simulate.js';
import { getTask } from '../sbi/tasks/index.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { runDefenseCost, type DefenseCostRow } from './defense-cost.js';
import { repoRoot } from './train-throughput.js';
import { torchPython } from './torch-venv.js';

/** As bench/attack-cost.ts: 100 test x, attacks of 5 steps (auto step size = eps), eps 1. */
export const PGD_POINTS = 100;
export const PGD_STEPS = 5;
const PGD_EPS = 1;

const ONE_THREAD_ENV = {
  TF_NUM_INTRAOP_THREADS: '1',
  TF_NUM_INTEROP_THREADS: '1',
  OMP_NUM_THREADS: '1',
  MKL_NUM_THREADS: '1',
};

export type TorchStatus = { ok: true; version: string } | { ok: false; reason: string };

export interface StepFigures {
  /** The median repetition's milliseconds per step, by process CPU time and by wall time. */
  msPerStepCpu: number;
  msPerStepWall: number;
  /** Every repetition's CPU milliseconds per step. */
  repsMsPerStepCpu: number[];
  /** Peak resident set of the process that ran this part alone, MB. */
  peakRssMb: number;
}

export type TorchFimPgd =
  | { ok: true; version: string; plain: StepFigures; fim: StepFigures; pgd: StepFigures }
  | { ok: false; reason: string };

function num(o: Record<string, unknown>, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`torch output: ${where}.${key} is not a finite number`);
  return v;
}

function stepFigures(o: unknown, where: string): StepFigures {
  if (typeof o !== 'object' || o === null) throw new Error(`torch output: no ${where} part`);
  const r = o as Record<string, unknown>;
  const reps = r.reps_ms_per_step_cpu;
  if (!Array.isArray(reps) || reps.some((v) => typeof v !== 'number'))
    throw new Error(`torch output: ${where}.reps_ms_per_step_cpu is not a list of numbers`);
  return {
    msPerStepCpu: num(r, 'ms_per_step_cpu', where),
    msPerStepWall: num(r, 'ms_per_step_wall', where),
    repsMsPerStepCpu: reps as number[],
    peakRssMb: num(r, 'peak_rss_mb', where),
  };
}

/** bench/torch/fim_pgd_cost.py's JSON line (snake_case) as figures; throws on a malformed one. */
export function parseTorchFimPgd(line: string): TorchFimPgd & { ok: true } {
  const o = JSON.parse(line) as Record<string, unknown>;
  if (typeof o.torch_version !== 'string') throw new Error('torch output: no torch_version');
  return {
    ok: true,
    version: o.torch_version,
    plain: stepFigures(o.plain, 'plain'),
    fim: stepFigures(o.fim, 'fim'),
    pgd: stepFigures(o.pgd, 'pgd'),
  };
}

/** The last line of a failed child's stderr that names an error, else its last line. */
function failure(stderr: string | undefined, status: number | null): string {
  const lines = (stderr ?? '').trim().split('\n');
  const named = [...lines].reverse().find((l) => /\w*Error\b|failed/.test(l));
  return (named ?? lines.pop() ?? `exit ${status}`).trim().slice(0, 200) || `exit ${status}`;
}

/**
 * Runs the PyTorch side (each part in a process of its own). `install` creates the venv when it is
 * missing; otherwise a missing venv comes back as { ok: false, reason } naming `installHint`.
 */
export function runTorchFimPgd(opts: {
  install: boolean;
  installHint?: string;
  reps: number;
}): TorchFimPgd {
  const py = torchPython(opts.install, opts.installHint);
  if (!py.ok) return { ok: false, reason: py.reason };
  console.error('torch: the plain, exact-fim and PGD-rKL steps, one thread...');
  const script = join(repoRoot(), 'bench', 'torch', 'fim_pgd_cost.py');
  const r = spawnSync(py.python, [script, '--reps', String(opts.reps)], {
    encoding: 'utf8',
    env: { ...process.env, ...ONE_THREAD_ENV },
    maxBuffer: 16 * 2 ** 20,
  });
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || line === undefined)
    return { ok: false, reason: `fim_pgd_cost.py failed: ${failure(r.stderr, r.status)}` };
  try {
    return parseTorchFimPgd(line);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** The median of xs (the lower middle of an even count); NaN when empty. */
export function lowerMedian(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1]!;
}

/**
 * Milliseconds per full batch of a training run: the median epoch after the first (or the only
 * one), times batchSize / nTrain. By CPU time and by wall time.
 */
export function msPerBatch(
  row: Pick<DefenseCostRow, 'epochCpuMs' | 'epochMs' | 'nTrain' | 'batchSize'>,
): { cpu: number; wall: number } {
  const tail = <T>(xs: T[]): T[] => (xs.length > 1 ? xs.slice(1) : xs);
  const scale = row.batchSize / row.nTrain;
  return {
    cpu: lowerMedian(tail(row.epochCpuMs)) * scale,
    wall: lowerMedian(tail(row.epochMs)) * scale,
  };
}

export interface FimStepVsTorch {
  /** robustsbi's exact fim step (NLL + FIM + Adam), CPU ms per batch of 512. */
  backendMsPerStep: number;
  backendWallMsPerStep: number;
  /** Whether trainNPE ran the fim epochs as the fused wasm step or as tfjs ops. */
  backendStep: 'fused' | 'tfjs ops';
  /** Peak RSS of the whole fim training process. */
  backendPeakRssMb: number;
  /** The undefended step of the same trainNPE run shape, and fim / it. */
  backendPlainMsPerStep: number | null;
  backendRatioToPlain: number | null;
  /** PyTorch's, RABI's semantics; null where torch did not run. */
  torchMsPerStep: number | null;
  torchWallMsPerStep: number | null;
  torchPeakRssMb: number | null;
  torchPlainMsPerStep: number | null;
  torchRatioToPlain: number | null;
  /** torch ms / robustsbi ms, by CPU time: > 1 when robustsbi is the faster. */
  ratio: number | null;
  torch: TorchStatus;
  settings: { nTrain: number; batch: number; mcSamples: 5; epochs: number };
}

/** The fim comparison from the fim (and none) training rows and the torch figures. */
export function fimStepVsTorch(
  fim: DefenseCostRow,
  none: DefenseCostRow | undefined,
  torch: TorchFimPgd,
): FimStepVsTorch {
  const b = msPerBatch(fim);
  const plain = none ? msPerBatch(none).cpu : null;
  return {
    backendMsPerStep: b.cpu,
    backendWallMsPerStep: b.wall,
    backendStep: fim.step,
    backendPeakRssMb: fim.maxRssMB,
    backendPlainMsPerStep: plain,
    backendRatioToPlain: plain ? b.cpu / plain : null,
    torchMsPerStep: torch.ok ? torch.fim.msPerStepCpu : null,
    torchWallMsPerStep: torch.ok ? torch.fim.msPerStepWall : null,
    torchPeakRssMb: torch.ok ? torch.fim.peakRssMb : null,
    torchPlainMsPerStep: torch.ok ? torch.plain.msPerStepCpu : null,
    torchRatioToPlain: torch.ok ? torch.fim.msPerStepCpu / torch.plain.msPerStepCpu : null,
    ratio: torch.ok ? torch.fim.msPerStepCpu / b.cpu : null,
    torch: torch.ok ? { ok: true, version: torch.version } : { ok: false, reason: torch.reason },
    settings: {
      nTrain: fim.nTrain,
      batch: fim.batchSize,
      mcSamples: 5,
      epochs: fim.epochCpuMs.length,
    },
  };
}

export interface BackendPgd extends StepFigures {
  backend: string;
  points: number;
  steps: number;
  reps: number;
}

export interface EvaluationThroughput {
  /** robustsbi: test points x PGD steps per CPU-second (L2 PGD, rKL, M = 5). */
  backend: number;
  /** PyTorch's, the same; { ok: false, reason } where torch did not run. */
  torch: number | { ok: false; reason: string };
  /** backend / torch: > 1 when robustsbi is the faster; null without torch. */
  ratio: number | null;
  backendPeakRssMb: number;
  torchPeakRssMb: number | null;
  backendMsPerStep: number;
  backendWallMsPerStep: number;
  torchMsPerStep: number | null;
  torchWallMsPerStep: number | null;
  torchVersion?: string;
  settings: { points: number; stepsPerAttack: number; mcSamples: 5; eps: number; backend: string };
}

/** Test points x PGD steps per CPU-second for `points` rows at `msPerStep` per step. */
export function pointStepsPerSecond(points: number, msPerStep: number): number {
  return (points * 1000) / msPerStep;
}

export function evaluationThroughput(b: BackendPgd, torch: TorchFimPgd): EvaluationThroughput {
  const backend = pointStepsPerSecond(b.points, b.msPerStepCpu);
  const t = torch.ok ? pointStepsPerSecond(PGD_POINTS, torch.pgd.msPerStepCpu) : null;
  return {
    backend,
    torch: t ?? { ok: false, reason: (torch as { reason: string }).reason },
    ratio: t === null ? null : backend / t,
    backendPeakRssMb: b.peakRssMb,
    torchPeakRssMb: torch.ok ? torch.pgd.peakRssMb : null,
    backendMsPerStep: b.msPerStepCpu,
    backendWallMsPerStep: b.msPerStepWall,
    torchMsPerStep: torch.ok ? torch.pgd.msPerStepCpu : null,
    torchWallMsPerStep: torch.ok ? torch.pgd.msPerStepWall : null,
    ...(torch.ok ? { torchVersion: torch.version } : {}),
    settings: {
      points: b.points,
      stepsPerAttack: b.steps,
      mcSamples: 5,
      eps: PGD_EPS,
      backend: b.backend,
    },
  };
}

const f1 = (v: number | null, digits = 1): string =>
  v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits);
const f0 = (v: number): string => Math.round(v).toLocaleString('en-US');

/** Rows [bench, figure, value, note] for the suite's table. */
export function sideBySideRows(
  fim: FimStepVsTorch | { error: string },
  ev: EvaluationThroughput | { error: string },
): string[][] {
  const rows: string[][] = [];
  if ('error' in fim) rows.push(['exact fim vs torch', 'failed', '-', fim.error.slice(0, 120)]);
  else {
    rows.push([
      'exact fim vs torch',
      `robustsbi ms/step (CPU; ${fim.backendStep})`,
      f1(fim.backendMsPerStep),
      `peak RSS ${f0(fim.backendPeakRssMb)} MB; ${f1(fim.backendRatioToPlain)}x its plain step ` +
        `(${f1(fim.backendPlainMsPerStep, 2)} ms); batch ${fim.settings.batch}, M 5, ` +
        `n ${fim.settings.nTrain}, median epoch after the first of ${fim.settings.epochs}`,
    ]);
    if (fim.torch.ok)
      rows.push([
        'exact fim vs torch',
        `torch ${fim.torch.version} ms/step (CPU)`,
        f1(fim.torchMsPerStep),
        `peak RSS ${f0(fim.torchPeakRssMb!)} MB; ${f1(fim.torchRatioToPlain)}x its plain step ` +
          `(${f1(fim.torchPlainMsPerStep, 2)} ms); torch/robustsbi ${f1(fim.ratio, 2)} (>1: robustsbi faster)`,
      ]);
    else rows.push(['exact fim vs torch', 'torch', 'unavailable', fim.torch.reason]);
  }
  if ('error' in ev) rows.push(['evaluation (L2-PGD rKL)', 'failed', '-', ev.error.slice(0, 120)]);
  else {
    rows.push([
      'evaluation (L2-PGD rKL)',
      'robustsbi test points x steps per CPU-s',
      f0(ev.backend),
      `${f1(ev.backendMsPerStep)} ms/step for ${ev.settings.points} x, M 5; peak RSS ${f0(ev.backendPeakRssMb)} MB`,
    ]);
    if (typeof ev.torch === 'number')
      rows.push([
        'evaluation (L2-PGD rKL)',
        `torch ${ev.torchVersion ?? ''} test points x steps per CPU-s`.replace('  ', ' '),
        f0(ev.torch),
        `${f1(ev.torchMsPerStep)} ms/step; peak RSS ${f0(ev.torchPeakRssMb!)} MB; ` +
          `robustsbi/torch ${f1(ev.ratio, 2)} (>1: robustsbi faster)`,
      ]);
    else rows.push(['evaluation (L2-PGD rKL)', 'torch', 'unavailable', ev.torch.reason]);
  }
  return rows;
}

/** Child mode: time robustsbi's L2-PGD rKL attack as bench/attack-cost.ts does; prints one JSON line. */
async function pgdChild(backendName: string, reps: number): Promise<void> {
  const backend = await initBackend(backendName);
  const task = getTask('gaussian_linear');
  const train = simulateDataset(task, 2000, createRng(0));
  const zscore = computeZScore(train.theta, train.x, train.n, task.thetaDim, task.xDim);
  const test = simulateDataset(task, PGD_POINTS, createRng(1));
  const x = tf.tensor2d(test.x, [PGD_POINTS, task.xDim]);
  const theta = tf.tensor2d(test.theta, [PGD_POINTS, task.thetaDim]);
  const est = createEstimator('maf', {
    thetaDim: task.thetaDim,
    xDim: task.xDim,
    zscore,
    rng: createRng(2),
  });
  const setup = {
    estimator: est,
    x,
    theta,
    epsAbs: PGD_EPS,
    box: clipBoxOf(test.x),
    rng: createRng(3),
  };
  // Warm-up for half a second: V8 tiers wasm and JavaScript up in the background over the first
  // hundreds of milliseconds (one warm-up step left the first repetitions ~2x slower than the rest).
  for (const t0 = performance.now(); performance.now() - t0 < 500;)
    runAttack('l2pgd', setup, { divergence: 'rkl', steps: PGD_STEPS }).dispose();
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const adv = runAttack('l2pgd', setup, { divergence: 'rkl', steps: PGD_STEPS });
    await adv.data();
    const c = process.cpuUsage(c0);
    wall.push((performance.now() - t0) / PGD_STEPS);
    cpu.push((c.user + c.system) / 1000 / PGD_STEPS);
    adv.dispose();
  }
  const mid = cpu.indexOf(lowerMedian(cpu));
  const out: BackendPgd = {
    backend: backend.name,
    points: PGD_POINTS,
    steps: PGD_STEPS,
    reps,
    msPerStepCpu: cpu[mid]!,
    msPerStepWall: wall[mid]!,
    repsMsPerStepCpu: cpu,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
  est.dispose();
  tf.dispose([x, theta]);
  console.log(JSON.stringify(out));
}

/** robustsbi's PGD-rKL step in a child process of its own (its peak RSS its own). */
export function runBackendPgd(opts: { backend: string; reps: number }): BackendPgd {
  const self = fileURLToPath(import.meta.url);
  // Under tsx the child needs the loader too; compiled, plain node is enough.
  const nodeArgs = self.endsWith('.ts') ? ['--import', 'tsx', self] : [self];
  console.error(`pgd: ${opts.reps} L2-PGD rKL attacks of ${PGD_STEPS} steps on ${PGD_POINTS} x...`);
  const r = spawnSync(
    process.execPath,
    [...nodeArgs, '--child', 'pgd', '--backend', opts.backend, '--reps', String(opts.reps)],
    { encoding: 'utf8', env: { ...process.env, ...ONE_THREAD_ENV }, maxBuffer: 16 * 2 ** 20 },
  );
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || line === undefined)
    throw new Error(`the PGD child failed: ${failure(r.stderr, r.status)}`);
  return JSON.parse(line) as BackendPgd;
}

export interface SideBySide {
  fimStepVsTorch: FimStepVsTorch | { error: string };
  evaluationThroughput: EvaluationThroughput | { error: string };
  /** The training rows behind the fim figures (none, fim, and any others run). */
  defenseRows: DefenseCostRow[];
}

/** The fim comparison from defense-cost rows, or why it cannot be made. */
export function fimFromRows(
  rows: readonly DefenseCostRow[],
  torch: TorchFimPgd,
): FimStepVsTorch | { error: string } {
  const fim = rows.find((r) => r.label === 'fim');
  if (!fim) return { error: 'the fim training run failed' };
  return fimStepVsTorch(
    fim,
    rows.find((r) => r.label === 'none'),
    torch,
  );
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const backend = a.get('backend') ?? 'wasm';
  const reps = numberArg(a, 'reps', 5);
  if (a.get('child') === 'pgd') return pgdChild(backend, reps);
  const n = numberArg(a, 'n', 10000);
  const epochs = numberArg(a, 'epochs', 2);
  const f = runDefenseCost({
    n,
    epochs,
    beta: 0.01,
    reps: 1,
    seed: 0,
    backend,
    defenses: ['none', 'fim', 'adversarial'],
  });
  const torch = runTorchFimPgd({
    install: a.has('install-torch'),
    installHint: 'npm run bench -- fim-torch --install-torch creates it',
    reps,
  });
  let ev: EvaluationThroughput | { error: string };
  try {
    ev = evaluationThroughput(runBackendPgd({ backend, reps }), torch);
  } catch (err) {
    ev = { error: (err as Error).message };
  }
  const out: SideBySide = {
    fimStepVsTorch: fimFromRows(f.rows, torch),
    evaluationThroughput: ev,
    defenseRows: f.rows,
  };
  if (a.has('json')) {
    console.log(JSON.stringify(out));
    return;
  }
  const adv = f.rows.find((r) => r.label === 'adversarial')?.ratioToNone;
  const fimRatio = f.rows.find((r) => r.label === 'fim')?.ratioToNone;
  console.log('| bench | figure | value | note |\n|---|---|---|---|');
  for (const r of sideBySideRows(out.fimStepVsTorch, out.evaluationThroughput))
    console.log(`| ${r.join(' | ')} |`);
  console.log(
    `\nTraining time / none (n ${n}, ${epochs} epochs): fim ${f1(fimRatio ?? null, 2)}, ` +
      `adversarial ${f1(adv ?? null, 2)}.`,
  );
}

if (isMain(import.meta.url)) await runMain(cli);
