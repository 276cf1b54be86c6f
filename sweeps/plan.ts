// What a sweep will run, before it runs: the activities of each pipeline step (workflows/pipeline.ts)
// and the distinct work in them, reduced to the sizes that set their cost, and the estimate of that
// work from measured per-unit rates (a calibration: seconds per simulation, per epoch-row, per attack
// step, per metric sample). Pure, so that the activity structure lives in one function,
// planActivities, to adapt when the pipeline changes how it cuts its steps into activities.
import { canonicalJson } from './canonical.js';
import { blockRanges, countTrials, defenseVariants, evaluationShardCount } from './expand.js';
import type { AttackName, Objective } from './names.js';
import { gridPoints } from './search.js';
import type { ArchitectureOverrides, DefenseSpec, SweepSpec } from './types.js';

export const PLAN_STEPS = ['simulate-train', 'train', 'simulate-test', 'evaluate'] as const;
export type PlanStep = (typeof PLAN_STEPS)[number];

/** sbi/attacks/pgd.ts L2_PGD_STEPS and LINF_PGD_STEPS: a spec without `steps` uses these. */
export const DEFAULT_ATTACK_STEPS: Record<AttackName, number> = {
  l2pgd: 200,
  linfpgd: 120,
  nll: 200,
  noise: 1,
  'fim-eigen': 1,
};

export interface SimulateUnit {
  task: string;
  /** Simulations drawn. */
  n: number;
  /** Blocks the set is drawn in, one activity each when more than one (sbi/simulate.ts). */
  blocks: number;
}

/** What sets the cost of one training: the model, the defense's kind and sample counts, the sizes. */
export interface TrainUnit {
  task: string;
  kind: string;
  architecture: ArchitectureOverrides;
  /** The defense's cost-relevant part: beta and training eps do not change the work. */
  defense: { name: string; mcSamples?: number; probes?: number };
  batchSize: number;
  /** Rows of an epoch: the simulation budget times the task's kept share. */
  rows: number;
  maxEpochs: number;
}

/** One evaluate activity: one attack at one eps, every objective of the trial. */
export interface EvaluateUnit {
  task: string;
  kind: string;
  architecture: ArchitectureOverrides;
  attack: AttackName;
  objectives: Objective[];
  /** Attack iterations (1 for noise and fim-eigen, which do not iterate). */
  steps: number;
  mcSamples: number;
  /** Test points: the test simulations times the task's kept share. */
  nTest: number;
  evalSamples: number;
  coverageSamples: number;
  /** Shards of nTest points, one activity each when more than one (sbi/evaluation.ts chunks). */
  shards: number;
}

export type PlanUnit =
  | { step: 'simulate-train' | 'simulate-test'; unit: SimulateUnit }
  | { step: 'train'; unit: TrainUnit }
  | { step: 'evaluate'; unit: EvaluateUnit };

export interface StepPlan<U> {
  /** Activities the step schedules over the whole sweep. */
  activities: number;
  /** Most work items one activity carries (a pack of trials shares one activity per step). */
  itemsPerActivity: number;
  /** Distinct work, each with how often it is computed. */
  units: { unit: U; count: number }[];
}

export interface SweepPlan {
  trials: number;
  /** Evaluate items of one trial per attack (its eps), all in the trial's evaluate activity. */
  evaluationsPerAttack: number;
  /** Workflows that run trials: one per pack. */
  workflows: number;
  pack: number;
  steps: {
    'simulate-train': StepPlan<SimulateUnit>;
    train: StepPlan<TrainUnit>;
    'simulate-test': StepPlan<SimulateUnit>;
    evaluate: StepPlan<EvaluateUnit>;
  };
}

function addUnit<U>(map: Map<string, { unit: U; count: number }>, unit: U, times = 1): void {
  const k = canonicalJson(unit);
  const got = map.get(k);
  if (got) got.count += times;
  else map.set(k, { unit, count: times });
}

/**
 * A search sweep planned at its full budget: its grid, then the rest of the budget laid out as the
 * grid method would (the points proposed are not known in advance; their cost is a defense's cost).
 */
function asSearchBudget(spec: SweepSpec): SweepSpec {
  const search = spec.search!;
  const points = gridPoints(search.space, Math.max(0, search.budget - countTrials(spec)));
  const defenses: DefenseSpec[] = [
    ...spec.defenses,
    ...points.map(({ name, beta, trainEps, mcSamples, probes }) => ({
      name,
      ...(beta !== undefined ? { betas: [beta] } : {}),
      ...(trainEps !== undefined ? { trainEps: [trainEps] } : {}),
      ...(mcSamples !== undefined ? { mcSamples } : {}),
      ...(probes !== undefined ? { probes } : {}),
    })),
  ];
  return { ...spec, defenses };
}

/**
 * The activities a sweep runs, as workflows/pipeline.ts cuts them: per pack (spec.pack trials), one
 * activity per step and queue; a training set or test set is drawn once per distinct (task, n, seed)
 * (later activities find it stored), and a set of several blocks as one activity per block plus one
 * to join them; a training per trial; an evaluation per trial, attack and eps, and one shard
 * activity per chunk of test points where there are several. Counts are the sweep's full size, as
 * if nothing had run yet. `blockRows` gives a task's rows per block (sbi/simulate.ts; the caller
 * asks sbi/, which this pure module cannot).
 */
export function planActivities(
  given: SweepSpec,
  blockRows: (task: string) => number = () => Infinity,
  keptShare: (task: string) => number = () => 1,
): SweepPlan {
  const spec = given.search ? asSearchBudget(given) : given;
  const trials = countTrials(spec);
  const pack = Math.max(1, spec.pack);
  const workflows = Math.ceil(trials / pack);
  const ev = spec.evaluation;
  const variants = defenseVariants(spec);
  const trainSets = new Map<string, { unit: SimulateUnit; count: number }>();
  const testSets = new Map<string, { unit: SimulateUnit; count: number }>();
  const trains = new Map<string, { unit: TrainUnit; count: number }>();
  const evals = new Map<string, { unit: EvaluateUnit; count: number }>();
  const seeds = spec.seeds.length;
  for (const task of spec.tasks) {
    // Draws are per seed; their cost depends only on the task and n.
    const set = (n: number): SimulateUnit => ({
      task,
      n,
      blocks: Math.max(1, Math.ceil(n / blockRows(task))),
    });
    // Simulations are priced per simulation, training and evaluation per row kept (pyloric keeps
    // only valid simulations, about 1 in 10).
    const kept = (n: number): number => Math.max(1, Math.round(n * keptShare(task)));
    addUnit(testSets, set(ev.nTest), seeds);
    for (const budget of spec.budgets) addUnit(trainSets, set(budget), seeds);
    for (const est of spec.estimators) {
      for (const v of variants) {
        const defense: TrainUnit['defense'] = { name: v.name };
        if (v.mcSamples !== undefined) defense.mcSamples = v.mcSamples;
        if (v.probes !== undefined) defense.probes = v.probes;
        for (const budget of spec.budgets)
          addUnit(
            trains,
            {
              task,
              kind: est.kind,
              architecture: est.architecture,
              defense,
              batchSize: spec.training.batchSize,
              rows: kept(budget),
              maxEpochs: spec.training.maxEpochs,
            },
            seeds,
          );
      }
      const perModel = variants.length * spec.budgets.length * seeds;
      for (const attack of ev.attacks)
        addUnit(
          evals,
          {
            task,
            kind: est.kind,
            architecture: est.architecture,
            attack,
            objectives: ev.objectives,
            steps:
              attack === 'noise' || attack === 'fim-eigen'
                ? 1
                : (ev.steps ?? DEFAULT_ATTACK_STEPS[attack]),
            mcSamples: ev.mcSamples,
            nTest: kept(ev.nTest),
            evalSamples: ev.evalSamples,
            coverageSamples: ev.coverageSamples,
            shards: evaluationShardCount(ev),
          },
          perModel * ev.eps.length,
        );
    }
  }
  const evalsPerTrial = ev.attacks.length * ev.eps.length;
  // With a pack of one, every trial runs each simulate step (finding the set stored, or drawing it);
  // a pack runs it once for the distinct sets of its trials. A set of several blocks adds an
  // activity per block (per run of blocks, past MAX_BLOCK_ACTIVITIES) and one to join them (counted
  // once per set: the blocks are kept).
  const blockActivities = (sets: Map<string, { unit: SimulateUnit; count: number }>) =>
    [...sets.values()].reduce(
      (a, { unit, count }) =>
        a + (unit.blocks > 1 ? (blockRanges(unit.blocks).length + 1) * count : 0),
      0,
    );
  const shards = evaluationShardCount(ev);
  const shardActivities = shards > 1 ? trials * evalsPerTrial * shards : 0;
  return {
    trials,
    evaluationsPerAttack: ev.eps.length,
    workflows,
    pack,
    steps: {
      'simulate-train': {
        activities: workflows + blockActivities(trainSets),
        itemsPerActivity: Math.min(pack, spec.budgets.length * seeds),
        units: [...trainSets.values()],
      },
      train: { activities: workflows, itemsPerActivity: pack, units: [...trains.values()] },
      'simulate-test': {
        activities: workflows + blockActivities(testSets),
        itemsPerActivity: Math.min(pack, seeds),
        units: [...testSets.values()],
      },
      evaluate: {
        activities: workflows + shardActivities,
        itemsPerActivity: pack * evalsPerTrial,
        units: [...evals.values()],
      },
    },
  };
}

// ---- rates and the estimate ------------------------------------------------------------------

/** The part of a training unit whose per-epoch-row cost a calibration measures. */
export function trainRateKey(u: TrainUnit): string {
  return canonicalJson({
    task: u.task,
    kind: u.kind,
    architecture: u.architecture,
    defense: u.defense,
    batchSize: u.batchSize,
  });
}

/** The part of an evaluation whose per-point attack-step cost a calibration measures. */
export function attackRateKey(
  u: Pick<EvaluateUnit, 'task' | 'kind' | 'architecture' | 'attack' | 'mcSamples'>,
  objective: Objective,
): string {
  return canonicalJson({
    task: u.task,
    kind: u.kind,
    architecture: u.architecture,
    attack: u.attack,
    objective,
    mcSamples: u.mcSamples,
  });
}

/** The part of an evaluation whose per-sample metric cost (KL, coverage) a calibration measures. */
export function metricRateKey(
  u: Pick<EvaluateUnit, 'task' | 'kind' | 'architecture'>,
  objective: Objective,
): string {
  return canonicalJson({ task: u.task, kind: u.kind, architecture: u.architecture, objective });
}

/** Measured seconds per unit of work, by the keys above. */
export interface Rates {
  /** task -> seconds per simulation. */
  simulate: Record<string, number>;
  /** trainRateKey -> seconds per epoch and row. */
  train: Record<string, number>;
  /** attackRateKey -> seconds per test point and attack step. */
  attack: Record<string, number>;
  /** metricRateKey -> seconds per test point and sample, for the KL and for coverage. */
  metric: Record<string, { kl: number; coverage: number }>;
}

/** What a calibration must measure for `plan` that `rates` lacks (a unit of each missing key). */
export interface MissingRates {
  simulate: string[];
  train: TrainUnit[];
  attack: { unit: EvaluateUnit; objective: Objective }[];
  metric: { unit: EvaluateUnit; objective: Objective }[];
}

export function missingRates(plan: SweepPlan, rates: Rates): MissingRates {
  const out: MissingRates = { simulate: [], train: [], attack: [], metric: [] };
  const seen = new Set<string>();
  const once = (k: string) => !seen.has(k) && (seen.add(k), true);
  for (const s of [plan.steps['simulate-train'], plan.steps['simulate-test']])
    for (const { unit } of s.units)
      if (rates.simulate[unit.task] === undefined && once(`s${unit.task}`))
        out.simulate.push(unit.task);
  for (const { unit } of plan.steps.train.units) {
    const k = trainRateKey(unit);
    if (rates.train[k] === undefined && once(`t${k}`)) out.train.push(unit);
  }
  for (const { unit } of plan.steps.evaluate.units)
    for (const o of unit.objectives) {
      const a = attackRateKey(unit, o);
      if (rates.attack[a] === undefined && once(`a${a}`)) out.attack.push({ unit, objective: o });
      const m = metricRateKey(unit, o);
      if (rates.metric[m] === undefined && once(`m${m}`)) out.metric.push({ unit, objective: o });
    }
  return out;
}

export function simulateSeconds(u: SimulateUnit, rates: Rates): number {
  return u.n * (rates.simulate[u.task] ?? NaN);
}

/** The most one simulate activity draws between heartbeats: the whole set, or one block of it. */
export function simulateActivitySeconds(u: SimulateUnit, rates: Rates): number {
  return simulateSeconds(u, rates) / u.blocks;
}

/** One training at `epochs` epochs (maxEpochs: the upper bound, early stopping can only end it sooner). */
export function trainSeconds(u: TrainUnit, rates: Rates, epochs = u.maxEpochs): number {
  return epochs * u.rows * (rates.train[trainRateKey(u)] ?? NaN);
}

/**
 * One evaluate activity (sbi/evaluation.ts evaluateRobustness): the clean coverage once, then per
 * objective the attack (steps x points), the KL (evalSamples per point) and the attacked coverage
 * (coverageSamples per point). The NLLs (one density evaluation per point) are left out.
 */
export function evaluateSeconds(u: EvaluateUnit, rates: Rates): number {
  let s = 0;
  u.objectives.forEach((o, i) => {
    const m = rates.metric[metricRateKey(u, o)];
    const a = rates.attack[attackRateKey(u, o)];
    if (!m || a === undefined) {
      s = NaN;
      return;
    }
    if (i === 0) s += u.nTest * u.coverageSamples * m.coverage;
    s += u.nTest * (u.steps * a + u.evalSamples * m.kl + u.coverageSamples * m.coverage);
  });
  return s;
}

export interface StepEstimate {
  step: PlanStep;
  activities: number;
  /** CPU seconds of the step over the whole sweep (each distinct unit counted `count` times). */
  cpuSeconds: number;
  /**
   * The longest work of one trial in the step (for evaluate: all its attack x eps), and how long one
   * activity of a full pack can take.
   */
  longestItemSeconds: number;
  longestActivitySeconds: number;
}

export interface SweepEstimate {
  steps: StepEstimate[];
  cpuSeconds: number;
  /**
   * Wall seconds on `processes` worker processes (one core each): the CPU seconds spread over them,
   * but never less than the longest chain of one trial (its steps run one after another).
   */
  wallSeconds: number;
  processes: number;
}

/**
 * The estimate of `plan` from `rates`. `epochsFraction` scales every training's maxEpochs (1: the
 * upper bound). The simulation steps count each distinct set once, as the artifact store keeps it.
 */
export function estimatePlan(
  plan: SweepPlan,
  rates: Rates,
  opts: { processes: number; concurrency: number; epochsFraction?: number },
): SweepEstimate {
  const f = opts.epochsFraction ?? 1;
  const per: Record<PlanStep, (u: never) => number> = {
    'simulate-train': (u: SimulateUnit) => simulateSeconds(u, rates),
    'simulate-test': (u: SimulateUnit) => simulateSeconds(u, rates),
    train: (u: TrainUnit) => trainSeconds(u, rates, Math.max(1, Math.round(u.maxEpochs * f))),
    evaluate: (u: EvaluateUnit) => evaluateSeconds(u, rates),
  };
  // A trial's evaluate activity runs every attack x eps of it in turn: its work item is their sum.
  // Sharded, each activity holds one chunk of one (attack, eps), and the pooling one computes nothing.
  const evalPerTrial = new Map<string, number>();
  let longestShard = 0;
  for (const { unit } of plan.steps.evaluate.units) {
    if (unit.shards > 1) {
      const t = evaluateSeconds(unit, rates) / unit.shards;
      if (Number.isFinite(t)) longestShard = Math.max(longestShard, t);
      continue;
    }
    const k = canonicalJson([unit.task, unit.kind, unit.architecture]);
    const t = evaluateSeconds(unit, rates) * plan.evaluationsPerAttack;
    evalPerTrial.set(k, (evalPerTrial.get(k) ?? 0) + t);
  }
  const steps: StepEstimate[] = PLAN_STEPS.map((step) => {
    const s = plan.steps[step] as StepPlan<never>;
    let cpu = 0;
    let longest = 0;
    let longestBlock = 0;
    for (const { unit, count } of s.units) {
      const t = per[step](unit);
      cpu += t * count;
      if (Number.isFinite(t)) longest = Math.max(longest, t);
      if (step === 'simulate-train' || step === 'simulate-test') {
        const b = simulateActivitySeconds(unit as SimulateUnit, rates);
        if (Number.isFinite(b)) longestBlock = Math.max(longestBlock, b);
      }
    }
    let activity = longest * s.itemsPerActivity;
    if (step === 'evaluate') {
      const packed = Math.max(0, ...evalPerTrial.values());
      longest = Math.max(packed, longestShard);
      activity = Math.max(packed * plan.pack, longestShard);
    } else if (step !== 'train') {
      longest = longestBlock;
      activity = longestBlock * s.itemsPerActivity;
    }
    return {
      step,
      activities: s.activities,
      cpuSeconds: cpu,
      longestItemSeconds: longest,
      longestActivitySeconds: activity,
    };
  });
  const cpuSeconds = steps.reduce((a, s) => a + s.cpuSeconds, 0);
  // One trial's steps run one after another: the longest trial bounds the wall time from below.
  const chain = steps.reduce((a, s) => a + s.longestItemSeconds, 0);
  // `concurrency` counts trials in flight; a pack's trials run one after another in its activities.
  const lanes = Math.max(
    1,
    Math.min(opts.processes, Math.floor(opts.concurrency / plan.pack), plan.workflows),
  );
  return {
    steps,
    cpuSeconds,
    wallSeconds: Math.max(cpuSeconds / lanes, chain),
    processes: opts.processes,
  };
}
