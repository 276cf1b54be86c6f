// `robustsbi sweep plan` / `sweep run --dry-run` / `calibrate` / the estimate line of `sweep status`:
// the plan of a spec (sweeps/plan.ts), the rates of this host and backend from MongoDB (measured now
// where missing, cli/calibration.ts), and the estimate printed with its breakdown, its bounds and
// warnings where one activity would outrun its timeout.
import { availableParallelism, hostname, loadavg } from 'node:os';
import {
  entriesToRates,
  type CalibrationDoc,
  type CalibrationStore,
} from '../results/calibrations.js';
import type { ResultStore } from '../results/store.js';
import {
  estimatePlan,
  evaluateSeconds,
  missingRates,
  planActivities,
  simulateActivitySeconds,
  simulateSeconds,
  trainSeconds,
  type MissingRates,
  type Rates,
  type SweepEstimate,
  type SweepPlan,
} from '../sweeps/plan.js';
import type { SweepSpec } from '../sweeps/types.js';
import { DEFAULT_SWEEP_OPTIONS, type SweepOptions } from '../workflows/messages.js';
import { simulationBlockRows } from '../sbi/simulate.js';
import { getTask, isTaskName } from '../sbi/tasks/index.js';

/** The plan of `spec` with each task's simulation blocks as sbi/ defines them. */
export function planSweep(spec: SweepSpec): SweepPlan {
  return planActivities(
    spec,
    (task) => (isTaskName(task) ? simulationBlockRows(getTask(task)) : Infinity),
    (task) => (isTaskName(task) ? (getTask(task).keptShare ?? 1) : 1),
  );
}

/** '10 minutes', '24 hours', '4s', '90 ms' -> seconds; NaN when unreadable. */
export function durationSeconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|seconds?|minutes?|hours?|days?)$/.exec(text.trim());
  if (!m) return NaN;
  const unit = m[2]!;
  const mult =
    unit === 'ms'
      ? 1e-3
      : /^s/.test(unit)
        ? 1
        : /^m/.test(unit)
          ? 60
          : /^h/.test(unit)
            ? 3600
            : 86400;
  return Number(m[1]) * mult;
}

/** 0.4 s, 12 s, 3.5 min, 2.1 h, 3.2 days. */
export function human(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s < 10 ? s.toFixed(1) : s.toFixed(0)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  if (s < 86400 * 2) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

export interface Calibrated {
  rates: Rates;
  doc: CalibrationDoc;
  /** What this call measured, with seconds each. */
  measured: { what: string; seconds: number }[];
  /** What could not be measured here (not stored: a later plan tries again). */
  failed: { what: string; error: string }[];
}

function missingCount(m: MissingRates): number {
  return m.simulate.length + m.train.length + m.attack.length + m.metric.length;
}

/**
 * The rates `plans` need on this host and backend: from MongoDB, with whatever is missing measured
 * now and stored (everything measured again with `recalibrate`).
 */
export async function calibrateFor(
  store: CalibrationStore,
  plans: SweepPlan[],
  opts: {
    backend: string;
    codeVersion: string;
    recalibrate?: boolean;
    extraTasks?: string[];
    say?: (m: string) => void;
  },
): Promise<Calibrated> {
  const host = hostname();
  const old = opts.recalibrate ? undefined : await store.get(host, opts.backend);
  let rates: Rates = old
    ? entriesToRates(old.rates)
    : { simulate: {}, train: {}, attack: {}, metric: {} };
  const measured: { what: string; seconds: number }[] = [];
  const failed: { what: string; error: string }[] = [];
  const { measureMissing } = await import('./calibration.js');
  for (const plan of plans) {
    const missing = missingRates(plan, rates);
    for (const t of opts.extraTasks ?? [])
      if (rates.simulate[t] === undefined && !missing.simulate.includes(t))
        missing.simulate.push(t);
    if (missingCount(missing) === 0) continue;
    opts.say?.(`calibrating: measuring ${missingCount(missing)} rates this host has not measured`);
    const m = await measureMissing(missing, rates, opts.backend, (what, seconds, error) => {
      if (error) opts.say?.(`  could not measure ${what}: ${error}`);
      else {
        measured.push({ what, seconds });
        opts.say?.(`  measured ${what} (${seconds.toFixed(1)} s)`);
      }
    });
    rates = m.rates;
    failed.push(...m.failed);
  }
  const doc =
    old && measured.length === 0
      ? old
      : await store.put({
          host,
          backend: opts.backend,
          cores: availableParallelism(),
          loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
          codeVersion: opts.codeVersion,
          rates,
        });
  return { rates, doc, measured, failed };
}

/** Median share of maxEpochs that the completed trials stored here trained (early stopping). */
export async function typicalEpochShare(
  store: ResultStore,
): Promise<{ share: number; trials: number } | undefined> {
  const docs = await store.trials
    .find(
      { status: 'completed' },
      { projection: { 'summary.epochs': 1, 'config.training.maxEpochs': 1 } },
    )
    .limit(5000)
    .toArray();
  const shares: number[] = [];
  for (const d of docs as {
    summary?: { epochs?: unknown };
    config?: { training?: { maxEpochs?: unknown } };
  }[]) {
    const e = d.summary?.epochs;
    const m = d.config?.training?.maxEpochs;
    if (typeof e === 'number' && typeof m === 'number' && m > 0) shares.push(Math.min(1, e / m));
  }
  if (shares.length === 0) return undefined;
  shares.sort((a, b) => a - b);
  return { share: shares[Math.floor(shares.length / 2)]!, trials: shares.length };
}

export interface PlanReport {
  plan: SweepPlan;
  estimate: SweepEstimate;
  /** The estimate for one worker process, and at the typical early-stopping share when known. */
  oneProcess: SweepEstimate;
  typical?: { share: number; trials: number; estimate: SweepEstimate };
  warnings: string[];
  lines: string[];
}

const pad = (s: string, n: number) => s.padEnd(n);

/** The plan of `spec` estimated from `rates`, as lines to print (and the numbers behind them). */
export function reportPlan(
  spec: SweepSpec,
  rates: Rates,
  opts: {
    processes: number;
    options?: Partial<SweepOptions>;
    typical?: { share: number; trials: number };
    calibration?: CalibrationDoc;
    /** Rates that could not be measured here (calibrateFor). */
    failed?: { what: string; error: string }[];
  },
): PlanReport {
  const plan = planSweep(spec);
  const o = { ...DEFAULT_SWEEP_OPTIONS, ...opts.options };
  const est = (processes: number, epochsFraction = 1) =>
    estimatePlan(plan, rates, { processes, concurrency: spec.concurrency, epochsFraction });
  const estimate = est(opts.processes);
  const oneProcess = est(1);
  const lines: string[] = [];
  const warnings: string[] = [];
  lines.push(
    `sweep plan "${spec.name}": ${plan.trials} trials in ${plan.workflows} workflows (pack ${plan.pack}), ${spec.concurrency} trials in flight at most`,
  );
  const c = opts.calibration;
  if (c)
    lines.push(
      `rates measured on ${c.host} with the ${c.backend} backend, ${c.updatedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (load ${c.loadAverage1m} on ${c.cores} cores then)`,
    );
  lines.push('');
  lines.push(
    `${pad('step', 15)}${pad('activities', 12)}${pad('CPU', 11)}${pad('longest activity', 18)}timeout`,
  );
  const timeouts = {
    // A simulate activity heartbeats only between data sets: the heartbeat timeout bounds one draw.
    'simulate-train': ['heartbeat', durationSeconds(o.heartbeatTimeout)],
    train: ['start-to-close', durationSeconds(o.trainTimeout)],
    'simulate-test': ['heartbeat', durationSeconds(o.heartbeatTimeout)],
    evaluate: ['start-to-close', durationSeconds(o.evaluateTimeout)],
  } as const;
  for (const s of estimate.steps) {
    const [kind, limit] = timeouts[s.step];
    lines.push(
      `${pad(s.step, 15)}${pad(String(s.activities), 12)}${pad(human(s.cpuSeconds), 11)}${pad(human(s.longestActivitySeconds), 18)}${human(limit)} (${kind})`,
    );
  }
  // Per piece of work, where one activity holding it (or a full pack of it) would outrun its timeout.
  const over: string[] = [];
  /** `one` piece of work; a pack's activity of train or evaluate holds `pack` of them unless `alone`. */
  const check = (step: keyof typeof timeouts, what: string, one: number, alone = false) => {
    const [kind, limit] = timeouts[step];
    const packed = !alone && (step === 'train' || step === 'evaluate') ? one * plan.pack : one;
    if (packed > limit)
      over.push(
        `${what}: about ${human(packed)}${plan.pack > 1 && packed !== one ? ` for a pack of ${plan.pack}` : ''}, beyond the ${human(limit)} ${kind} timeout of its ${step} activity`,
      );
  };
  // The breakdown: each distinct piece of work, its count and its time.
  lines.push('', 'breakdown (count x one = CPU):');
  let known = 0;
  let unknown = 0;
  const row = (what: string, count: number, one: number) => {
    if (Number.isFinite(one)) known += count * one;
    else unknown += count;
    lines.push(
      `  ${pad(what, 64)} ${String(count).padStart(6)} x ${pad(human(one), 9)} = ${human(count * one)}`,
    );
  };
  for (const step of ['simulate-train', 'simulate-test'] as const)
    for (const { unit } of plan.steps[step].units)
      check(
        step,
        unit.blocks > 1
          ? `drawing a block of ${Math.ceil(unit.n / unit.blocks)} ${unit.task} simulations`
          : `drawing ${unit.n} ${unit.task} simulations`,
        simulateActivitySeconds(unit, rates),
      );
  for (const { unit } of plan.steps.train.units)
    check(
      'train',
      `training ${unit.kind} ${unit.defense.name} on ${unit.rows} ${unit.task} simulations at maxEpochs ${unit.maxEpochs}`,
      trainSeconds(unit, rates),
    );
  {
    // A trial's evaluate activity runs all its attack x eps; sharded, one activity one chunk of one.
    const perTrial = new Map<string, number>();
    for (const { unit } of plan.steps.evaluate.units) {
      if (unit.shards > 1) {
        check(
          'evaluate',
          `evaluating one shard of ${Math.ceil(unit.nTest / unit.shards)} ${unit.task} ${unit.kind} test points under ${unit.attack}`,
          evaluateSeconds(unit, rates) / unit.shards,
          true,
        );
        continue;
      }
      const k = `${unit.task} ${unit.kind}`;
      perTrial.set(
        k,
        (perTrial.get(k) ?? 0) + evaluateSeconds(unit, rates) * plan.evaluationsPerAttack,
      );
    }
    for (const [k, t] of perTrial) check('evaluate', `evaluating one ${k} trial`, t);
  }
  for (const step of ['simulate-train', 'simulate-test'] as const)
    for (const { unit, count } of plan.steps[step].units)
      row(
        `${step === 'simulate-train' ? 'training set' : 'test set'} ${unit.task} n=${unit.n}`,
        count,
        simulateSeconds(unit, rates),
      );
  for (const { unit, count } of plan.steps.train.units)
    row(
      `train ${unit.task} ${unit.kind} ${unit.defense.name} N=${unit.rows} <=${unit.maxEpochs} ep b=${unit.batchSize}`,
      count,
      trainSeconds(unit, rates),
    );
  for (const { unit, count } of plan.steps.evaluate.units)
    row(
      `evaluate ${unit.task} ${unit.kind} ${unit.attack} ${unit.steps > 1 ? `${unit.steps} steps ` : ''}x${unit.objectives.length} obj, ${unit.nTest} pts`,
      count,
      evaluateSeconds(unit, rates),
    );
  lines.push('');
  if (unknown > 0)
    lines.push(
      `total: at least ${human(known)} of CPU (${(known / 3600).toFixed(2)} CPU-hours) and ${unknown} pieces of work whose rate could not be measured here (?)`,
    );
  else
    lines.push(
      `total: ${human(estimate.cpuSeconds)} of CPU (${(estimate.cpuSeconds / 3600).toFixed(2)} CPU-hours); an upper bound for training, which is counted at maxEpochs ${spec.training.maxEpochs} (early stopping after patience ${spec.training.patience} ends most sooner)`,
    );
  let typical: PlanReport['typical'];
  if (opts.typical && opts.typical.share < 1) {
    const t = est(opts.processes, opts.typical.share);
    typical = { ...opts.typical, estimate: t };
    lines.push(
      `       at the median ${Math.round(opts.typical.share * 100)}% of maxEpochs that the ${opts.typical.trials} completed trials stored here trained: ${human(t.cpuSeconds)} of CPU, about ${human(t.wallSeconds)} wall on ${opts.processes} worker processes`,
    );
  }
  const wallOf = (e: SweepEstimate) =>
    Number.isFinite(e.wallSeconds)
      ? `about ${human(e.wallSeconds)}`
      : `more than ${human(known / Math.max(1, Math.min(e.processes, spec.concurrency)))}`;
  lines.push(
    `wall: ${wallOf(estimate)} on ${opts.processes} worker process${opts.processes === 1 ? '' : 'es'} (one core each: robustsbi worker --processes ${opts.processes})${opts.processes !== 1 ? `, ${wallOf(oneProcess)} on 1` : ''}; orchestration, storage and simulation-set races are not counted`,
  );
  for (const f of opts.failed ?? [])
    warnings.push(
      `could not measure ${f.what} with the ${opts.calibration?.backend ?? 'current'} backend (${f.error}); that work would likely fail the same way on workers with this backend`,
    );
  if (over.length > 0) {
    warnings.push(
      `${over.length} piece${over.length === 1 ? '' : 's'} of work would outrun ${over.length === 1 ? 'its' : 'their'} activity's timeout on this host and backend: ${over.slice(0, 4).join('; ')}${over.length > 4 ? `; and ${over.length - 4} more` : ''} (raise the timeout, route the step to a faster queue, or shrink the sizes)`,
    );
  }
  for (const w of warnings) lines.push(`warning: ${w}`);
  return { plan, estimate, oneProcess, ...(typical ? { typical } : {}), warnings, lines };
}

export interface RanFigures {
  trials: number;
  completed: number;
  trainSeconds: number;
  evaluationSeconds: number;
  evaluationRecords: number;
  /** From the sweep's creation to its last trial's end. */
  wallSeconds?: number;
  /** Every trial ended before the sweep was created: an earlier sweep ran them (no wall time here). */
  ranBefore?: boolean;
}

/** What the stored trials and evaluations of a sweep say about the time they took. */
export async function ranFigures(store: ResultStore, sweepId: string): Promise<RanFigures> {
  const sweep = await store.getSweep(sweepId);
  const trials = (await store.trials
    .find({ sweepIds: sweepId }, { projection: { status: 1, summary: 1, endedAt: 1 } })
    .toArray()) as {
    _id: string;
    status: string;
    summary?: { trainSeconds?: number };
    endedAt?: Date;
  }[];
  let trainS = 0;
  let completed = 0;
  let last: Date | undefined;
  const ids: string[] = [];
  for (const t of trials) {
    if (t.status !== 'completed') continue;
    completed++;
    ids.push(t._id);
    trainS += t.summary?.trainSeconds ?? 0;
    if (t.endedAt && (!last || t.endedAt > last)) last = t.endedAt;
  }
  let evalS = 0;
  let records = 0;
  for (let i = 0; i < ids.length; i += 200) {
    const evals = (await store.evaluations
      .find({ trialId: { $in: ids.slice(i, i + 200) } }, { projection: { seconds: 1 } })
      .toArray()) as { seconds?: number }[];
    for (const e of evals) {
      records++;
      evalS += e.seconds ?? 0;
    }
  }
  return {
    trials: trials.length,
    completed,
    trainSeconds: trainS,
    evaluationSeconds: evalS,
    evaluationRecords: records,
    ...(sweep && last
      ? last.getTime() >= sweep.createdAt.getTime()
        ? { wallSeconds: (last.getTime() - sweep.createdAt.getTime()) / 1000 }
        : { ranBefore: true }
      : {}),
  };
}

/** One line: the plan's estimate for the completed trials against what they took. */
export function compareLine(report: PlanReport, ran: RanFigures): string {
  if (ran.completed === 0)
    return `estimate vs ran: no trial has completed yet; the plan estimates ${human(report.estimate.cpuSeconds)} of CPU for the ${report.plan.trials} trials`;
  const share = report.plan.trials > 0 ? ran.completed / report.plan.trials : 0;
  const step = (name: string) =>
    report.estimate.steps.find((s) => s.step === name)!.cpuSeconds * share;
  const typical = report.typical?.estimate.steps.find((s) => s.step === 'train')!.cpuSeconds;
  const parts = [
    `training ${human(step('train'))} at maxEpochs${typical !== undefined ? ` (${human(typical * share)} typical)` : ''} vs ${human(ran.trainSeconds)} ran (each training's wall time: those sharing a worker process overlap)`,
    // The stored record timings leave out each activity's clean coverage (computed once per activity).
    `evaluation ${human(step('evaluate'))} vs ${human(ran.evaluationSeconds)} in the ${ran.evaluationRecords} records' own timings`,
  ];
  if (ran.ranBefore && ran.completed === report.plan.trials)
    parts.push(
      'wall: every trial had finished before this sweep was submitted (an earlier sweep holding the same trials ran them)',
    );
  else if (ran.wallSeconds !== undefined && ran.completed === report.plan.trials)
    parts.push(
      `wall ${human(report.oneProcess.wallSeconds)} on 1 worker process, ${human(report.estimate.wallSeconds)} on ${report.estimate.processes}, vs ${human(ran.wallSeconds)} from submission to the last trial`,
    );
  return `estimate vs ran (${ran.completed} of ${report.plan.trials} trials completed): ${parts.join('; ')}`;
}
