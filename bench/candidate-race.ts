// Whether robustsbi train could stop its losing candidate early without changing what it keeps.
// train fits every candidate architecture to its first early stop and keeps the lowest best
// validation NLL (sbi/choose-by-validation.ts); the loser's epochs are spent for nothing, and on
// sir at 1k they are what puts train above sbi's CPU. Two ways to cut them are read off the
// candidates' validation curves, trained as train trains them:
//
// - a margin race: both candidates in lockstep, the one whose best trails the other's by more than
//   m dropped. Always safe where m is above the largest deficit the eventual winner ever had;
//   below it, safe only where the loser falls behind by m before the winner ever does.
// - a shorter race patience: each candidate to its first stop under patience P < the schedule's,
//   the kept one then resumed to its real stop (trainNPE resumes a stop exactly). Safe where the
//   choice at P equals the choice at the full patience.
//
//   npm run bench -- candidate-race --tasks sir,slcp [--n 1000] [--seeds 0,1,2] [--margins 0.1,0.3,0.5]
//        [--patiences 5,10,15] [--from 10] [--backend wasm]
import { initBackend } from '../sbi/backend.js';
import { candidateSchedule } from '../sbi/choose-by-validation.js';
import { earlyStoppingStep, initialEarlyStopping } from '../sbi/early-stopping.js';
import { DEFAULT_TRAIN_ESTIMATOR, trainCandidates, trainDefaults } from '../sbi/train-defaults.js';
import { benchTask, cellDataset, cellRng, cellXTransform, trainCell } from './accuracy-core.js';
import { isMain, numberArg, numberListArg, parseArgs, runMain } from './args.js';

/** The lowest loss up to and including each epoch (Infinity before the first finite one). */
export function runningBest(val: readonly number[], epochs = val.length): number[] {
  const out: number[] = [];
  let best = Infinity;
  for (let e = 0; e < epochs; e++) {
    const v = val[e];
    if (v !== undefined && v < best) best = v;
    out.push(best);
  }
  return out;
}

/**
 * Where a run on these validation losses first stops under sbi's rule with `patience` (no anneals):
 * the 1-based epoch and the best loss by then; the whole curve when it never stops.
 */
export function firstStop(
  val: readonly number[],
  patience: number,
): { epoch: number; best: number } {
  const rule = {
    patience,
    minEpochs: 0,
    maxNanResets: Infinity,
    stopRule: 'sbi' as const,
    anneals: 0,
  };
  let es = initialEarlyStopping();
  for (let e = 0; e < val.length; e++) {
    const step = earlyStoppingStep(es, e, val[e]!, rule);
    es = step.state;
    if (step.decision === 'stop') return { epoch: e + 1, best: es.bestValLoss };
  }
  return { epoch: val.length, best: es.bestValLoss };
}

/**
 * The largest amount by which the winner's running best trailed the loser's from epoch `from`
 * (0-based) on, both curves carried at their last best past their ends: a margin race drops the
 * winner for any margin below it.
 */
export function largestDeficit(
  winner: readonly number[],
  loser: readonly number[],
  from: number,
): number {
  const epochs = Math.max(winner.length, loser.length);
  const w = runningBest(winner, epochs);
  const l = runningBest(loser, epochs);
  let worst = -Infinity;
  for (let e = from; e < epochs; e++) worst = Math.max(worst, w[e]! - l[e]!);
  return worst;
}

/**
 * Where a margin race of two candidates ends: the first epoch (1-based, after `from`) at which one
 * running best trails the other's by more than `margin`, and which one (0 or 1) is dropped there;
 * undefined when neither ever trails by that much. Curves are carried at their last best past their
 * ends, as a stopped candidate's best stands while the other trains on.
 */
export function marginRace(
  a: readonly number[],
  b: readonly number[],
  margin: number,
  from: number,
): { epoch: number; dropped: 0 | 1 } | undefined {
  const epochs = Math.max(a.length, b.length);
  const ra = runningBest(a, epochs);
  const rb = runningBest(b, epochs);
  for (let e = from; e < epochs; e++) {
    const gap = ra[e]! - rb[e]!;
    if (Math.abs(gap) > margin) return { epoch: e + 1, dropped: gap > 0 ? 0 : 1 };
  }
  return undefined;
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const tasks = (a.get('tasks') ?? 'sir').split(',');
  const n = numberArg(a, 'n', 1000);
  const seeds = numberListArg(a, 'seeds', '0,1,2', Number.isInteger, 'integers');
  const margins = numberListArg(a, 'margins', '0.1,0.3,0.5', (m) => m >= 0, 'non-negative numbers');
  const patiences = numberListArg(
    a,
    'patiences',
    '5,10,15',
    (p) => Number.isInteger(p) && p >= 0,
    'non-negative integers',
  );
  const from = numberArg(a, 'from', 10);
  const backend = await initBackend(a.get('backend'));
  const defaults = trainDefaults('robustsbi', DEFAULT_TRAIN_ESTIMATOR);
  const candidates = trainCandidates('robustsbi', DEFAULT_TRAIN_ESTIMATOR);
  if (candidates.length !== 2) throw new Error('The race is read for two candidates.');
  const schedule = candidateSchedule(defaults.hyperparameters, candidates.length);
  console.log(
    `backend ${backend.name}; N = ${n}; patience ${schedule.patience}; deficits from epoch ${from + 1}`,
  );
  console.log(
    `| task | seed | epochs A, B | train CPU s A, B | best validation A, B | kept | winner's largest deficit | ` +
      margins.map((m) => `margin ${m}: dropped at (loser epochs saved)`).join(' | ') +
      ' | ' +
      patiences.map((p) => `patience ${p}: same choice (loser epochs saved)`).join(' | ') +
      ' |',
  );
  console.log(`|${' --- |'.repeat(7 + margins.length + patiences.length)}`);
  for (const name of tasks) {
    const task = benchTask(name);
    for (const seed of seeds) {
      const cell = cellRng(seed, task.name, n);
      const data = cellDataset(task, n, cell);
      // As train's --x-transform auto, so the curves are the ones train sees.
      const x = cellXTransform(task, data, cell);
      const runs: { val: number[]; best: number; epochs: number; cpuS: number }[] = [];
      for (const config of candidates) {
        const run = await trainCell({
          task,
          data,
          cell,
          estimator: DEFAULT_TRAIN_ESTIMATOR,
          config,
          hyperparameters: schedule,
          ...(x.transform ? { xTransform: x.transform } : {}),
        });
        run.trained.model.dispose();
        runs.push({
          val: run.trained.valLosses,
          best: run.trained.bestValLoss,
          epochs: run.trained.epochs,
          cpuS: run.trainCpuS,
        });
      }
      const [A, B] = runs as [(typeof runs)[0], (typeof runs)[0]];
      const kept = A.best <= B.best ? 0 : 1;
      const [W, L] = kept === 0 ? [A, B] : [B, A];
      const deficit = largestDeficit(W.val, L.val, from);
      const marginCells = margins.map((m) => {
        const end = marginRace(A.val, B.val, m, from);
        if (end === undefined || end.epoch >= L.epochs) return 'never';
        return end.dropped === kept
          ? `**winner dropped** at ${end.epoch}`
          : `${end.epoch} (${L.epochs - end.epoch})`;
      });
      const patienceCells = patiences.map((p) => {
        const [sa, sb] = [firstStop(A.val, p), firstStop(B.val, p)];
        const same = (sa.best <= sb.best ? 0 : 1) === kept;
        const loserStop = kept === 0 ? sb : sa;
        return same
          ? `yes (${L.epochs - loserStop.epoch})`
          : `**no** (${(sa.best - sb.best).toFixed(3)})`;
      });
      console.log(
        `| ${task.name} | ${seed} | ${A.epochs}, ${B.epochs} | ${A.cpuS.toFixed(1)}, ${B.cpuS.toFixed(1)} | ${A.best.toFixed(3)}, ${B.best.toFixed(3)} | ` +
          `${'AB'[kept]} | ${deficit.toFixed(3)} | ${marginCells.join(' | ')} | ${patienceCells.join(' | ')} |`,
      );
    }
  }
}

if (isMain(import.meta.url)) await runMain(cli);
