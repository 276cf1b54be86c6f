// The curves of the paper, computed from raw trials and evaluations by pure functions (FerretDB has
// no $avg/$push, and one implementation for the store, the report and the tests keeps them equal).
// Only completed trials count. Every reduction runs in a fixed order (trials by ID), so recomputing
// from the same inputs gives bit-identical documents.
import {
  curveId,
  type CoverageAtEps,
  type CoverageCurveDoc,
  type CoverageSeries,
  type CurveDoc,
  type EvaluationDoc,
  type KlSeries,
  type KlVsEpsCurveDoc,
  type SeriesKey,
  type TradeoffCurveDoc,
  type TradeoffPoint,
  type TrialDoc,
  type TrialSummary,
} from './documents.js';

/** The evaluation fields the curves read (the stored document has more). */
export type CurveEvaluation = Pick<
  EvaluationDoc,
  'trialId' | 'attack' | 'objective' | 'eps' | 'kl' | 'coverage' | 'coverageAbsArea' | 'groundTruth'
>;
export type CurveTrial = Pick<TrialDoc, '_id' | 'status' | 'config' | 'summary'>;

export interface TradeoffOptions {
  attack?: string;
  objective?: string;
  /** Relative eps at which x is read (paper: 2.0). */
  eps?: number;
}

/** Used only where no spec says otherwise (tests, and sweeps whose spec lists no attacks). */
export const TRADEOFF_DEFAULTS = { attack: 'l2pgd', objective: 'rkl', eps: 2 } as const;

/**
 * Where a sweep's spec reads its trade-off: evaluation.tradeoffAttack / tradeoffObjective /
 * tradeoffEps, the first attack and objective it evaluates when those are absent. Reads the stored
 * spec defensively: a document written by older code may lack any of these fields.
 */
export function tradeoffOptionsOfSpec(spec: unknown): TradeoffOptions {
  const ev = (spec as { evaluation?: Record<string, unknown> } | null | undefined)?.evaluation;
  if (!ev || typeof ev !== 'object') return {};
  const first = (list: unknown): string | undefined =>
    Array.isArray(list) && typeof list[0] === 'string' ? list[0] : undefined;
  const attack = typeof ev.tradeoffAttack === 'string' ? ev.tradeoffAttack : first(ev.attacks);
  const objective =
    typeof ev.tradeoffObjective === 'string' ? ev.tradeoffObjective : first(ev.objectives);
  return {
    ...(attack !== undefined ? { attack } : {}),
    ...(objective !== undefined ? { objective } : {}),
    ...(typeof ev.tradeoffEps === 'number' ? { eps: ev.tradeoffEps } : {}),
  };
}

/** Distinct values in ascending order, eps equal up to float noise merged. */
function distinct<T extends string | number>(xs: Iterable<T>): T[] {
  const sorted = [...new Set(xs)].sort((a, b) =>
    typeof a === 'number' ? a - (b as number) : a < b ? -1 : a > b ? 1 : 0,
  );
  return sorted.filter(
    (x, i) => i === 0 || typeof x !== 'number' || !sameEps(sorted[i - 1] as number, x),
  );
}

/**
 * Why some completed trials have no trade-off point, in words a user acts on; undefined when every
 * completed trial has one. Curves stored by older code have no `evaluated` and get a shorter text.
 */
export function tradeoffGap(c: TradeoffCurveDoc): string | undefined {
  if (c.missing.length === 0) return undefined;
  const total = c.missing.length + c.points.length;
  const what = `attack ${c.attack} with objective ${c.objective} at eps ${c.eps}`;
  const head =
    c.points.length === 0
      ? `No completed trial of ${c.task} evaluated ${what}`
      : `${c.missing.length} of ${total} completed trials of ${c.task} have no evaluation of ${what}`;
  const ev = c.evaluated;
  if (!ev) return `${head}.`;
  if (ev.attacks.length === 0)
    return `${head}: ${c.points.length === 0 ? 'they have' : 'those have'} no evaluations stored yet.`;
  const off: string[] = [];
  if (!ev.attacks.includes(c.attack)) off.push('evaluation.tradeoffAttack');
  if (!ev.objectives.includes(c.objective)) off.push('evaluation.tradeoffObjective');
  if (!ev.eps.some((e) => sameEps(e, c.eps))) off.push('evaluation.tradeoffEps');
  const have = `the evaluations stored cover attacks ${ev.attacks.join(', ')}; objectives ${ev.objectives.join(', ')}; eps ${ev.eps.join(', ')}`;
  const act =
    off.length > 0
      ? `set ${off.join(' and ')} in the spec to one of those`
      : 'those trials have not finished evaluating it yet (or it failed): see their evaluations';
  return `${head}; ${have}: ${act}.`;
}

/** Evaluations store eps as given; equal up to float noise counts as the same budget. */
export function sameEps(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

/**
 * Indices of the points not dominated when minimizing both x and y, by increasing x. A point is
 * dominated when another is no worse in both and better in one; exact duplicates of a front point
 * stay on the front. Points with a non-finite coordinate are never on it.
 */
export function paretoFront(points: readonly { x: number; y: number }[]): number[] {
  const idx = points
    .map((_, i) => i)
    .filter((i) => Number.isFinite(points[i]!.x) && Number.isFinite(points[i]!.y))
    .sort((a, b) => points[a]!.x - points[b]!.x || points[a]!.y - points[b]!.y || a - b);
  const front: number[] = [];
  let bestY = Infinity;
  let last: { x: number; y: number } | undefined;
  for (const i of idx) {
    const p = points[i]!;
    if (p.y < bestY || (last !== undefined && p.x === last.x && p.y === last.y)) {
      front.push(i);
      bestY = Math.min(bestY, p.y);
      last = p;
    }
  }
  return front;
}

function byId<T extends { _id: string }>(a: T, b: T): number {
  return a._id < b._id ? -1 : a._id > b._id ? 1 : 0;
}

function completedTrialsOf(trials: readonly CurveTrial[], task: string): CurveTrial[] {
  return trials.filter((t) => t.status === 'completed' && t.config.task === task).sort(byId);
}

function evaluationsByTrial(evals: readonly CurveEvaluation[]): Map<string, CurveEvaluation[]> {
  const m = new Map<string, CurveEvaluation[]>();
  for (const e of evals) {
    const list = m.get(e.trialId);
    if (list) list.push(e);
    else m.set(e.trialId, [e]);
  }
  return m;
}

/** A summary's training seconds and epochs, each where it is a finite number (older documents). */
export function trainingCostOf(
  s: Partial<Pick<TrialSummary, 'trainSeconds' | 'epochs'>>,
): Pick<TradeoffPoint, 'trainSeconds' | 'epochs'> {
  const { trainSeconds, epochs } = s;
  return {
    ...(typeof trainSeconds === 'number' && Number.isFinite(trainSeconds) ? { trainSeconds } : {}),
    ...(typeof epochs === 'number' && Number.isFinite(epochs) ? { epochs } : {}),
  };
}

/** One point per completed trial of the task: x = mean KL at (attack, objective, eps), y = test NLL. */
export function tradeoffCurve(
  sweepId: string,
  task: string,
  trials: readonly CurveTrial[],
  evals: readonly CurveEvaluation[],
  opts: TradeoffOptions = {},
): TradeoffCurveDoc {
  const attack = opts.attack ?? TRADEOFF_DEFAULTS.attack;
  const objective = opts.objective ?? TRADEOFF_DEFAULTS.objective;
  const eps = opts.eps ?? TRADEOFF_DEFAULTS.eps;
  const byTrial = evaluationsByTrial(evals);
  const points: TradeoffPoint[] = [];
  const missing: string[] = [];
  for (const t of completedTrialsOf(trials, task)) {
    const e = (byTrial.get(t._id) ?? []).find(
      (v) => v.attack === attack && v.objective === objective && sameEps(v.eps, eps),
    );
    if (!e || !t.summary) {
      missing.push(t._id);
      continue;
    }
    points.push({
      trialId: t._id,
      defense: t.config.defense,
      beta: t.config.beta,
      ...(t.config.trainEps !== undefined ? { trainEps: t.config.trainEps } : {}),
      estimator: t.config.estimator,
      budget: t.config.budget,
      seed: t.config.seed,
      x: e.kl.mean,
      y: t.summary.testNll,
      ...(e.groundTruth
        ? {
            groundTruth: {
              c2st: e.groundTruth.c2st,
              klQP: e.groundTruth.klQP,
              klPQ: e.groundTruth.klPQ,
            },
          }
        : {}),
      ...trainingCostOf(t.summary),
      pareto: false,
    });
  }
  const front = paretoFront(points);
  for (const i of front) points[i]!.pareto = true;
  // What the task's completed trials did evaluate, so an empty front can say what to ask for.
  const completed = new Set(completedTrialsOf(trials, task).map((t) => t._id));
  const mine = evals.filter((e) => completed.has(e.trialId));
  return {
    _id: curveId(sweepId, task, 'tradeoff'),
    sweepId,
    task,
    kind: 'tradeoff',
    attack,
    objective,
    eps,
    points,
    front: front.map((i) => points[i]!.trialId),
    missing,
    evaluated: {
      attacks: distinct(mine.map((e) => e.attack)),
      objectives: distinct(mine.map((e) => e.objective)),
      eps: distinct(mine.map((e) => e.eps)),
    },
  };
}

function seriesKeyOf(t: CurveTrial, e: CurveEvaluation): SeriesKey {
  return {
    attack: e.attack,
    objective: e.objective,
    defense: t.config.defense,
    beta: t.config.beta,
    ...(t.config.trainEps !== undefined ? { trainEps: t.config.trainEps } : {}),
    estimator: t.config.estimator,
    budget: t.config.budget,
  };
}

function keyString(k: SeriesKey): string {
  return JSON.stringify([
    k.attack,
    k.objective,
    k.defense,
    k.beta,
    k.trainEps ?? null,
    k.estimator,
    k.budget,
  ]);
}

function compareKeys(a: SeriesKey, b: SeriesKey): number {
  const s = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return (
    s(a.attack, b.attack) ||
    s(a.objective, b.objective) ||
    s(a.defense, b.defense) ||
    a.beta - b.beta ||
    (a.trainEps ?? -1) - (b.trainEps ?? -1) ||
    s(a.estimator, b.estimator) ||
    a.budget - b.budget
  );
}

interface Group {
  key: SeriesKey;
  /** Per trial (in trial-ID order), its evaluations in this group. */
  rows: { trial: CurveTrial; evals: CurveEvaluation[] }[];
}

/** Evaluations of the task's completed trials, grouped by series key, groups in key order. */
function groupBySeries(
  trials: readonly CurveTrial[],
  task: string,
  evals: readonly CurveEvaluation[],
  extraKey: (e: CurveEvaluation) => string = () => '',
): Group[] {
  const byTrial = evaluationsByTrial(evals);
  const groups = new Map<string, Group>();
  for (const t of completedTrialsOf(trials, task)) {
    const perGroup = new Map<string, CurveEvaluation[]>();
    for (const e of byTrial.get(t._id) ?? []) {
      const k = keyString(seriesKeyOf(t, e)) + extraKey(e);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { key: seriesKeyOf(t, e), rows: [] }));
      const list = perGroup.get(k);
      if (list) list.push(e);
      else {
        const fresh = [e];
        perGroup.set(k, fresh);
        g.rows.push({ trial: t, evals: fresh });
      }
    }
  }
  return [...groups.entries()]
    .sort(([ka, a], [kb, b]) => compareKeys(a.key, b.key) || (ka < kb ? -1 : ka > kb ? 1 : 0))
    .map(([, g]) => g);
}

/** Distinct eps values of a group, ascending (equal up to float noise merged). */
function epsGrid(evals: Iterable<CurveEvaluation>): number[] {
  const all = [...evals].map((e) => e.eps).sort((a, b) => a - b);
  const out: number[] = [];
  for (const x of all) if (out.length === 0 || !sameEps(out[out.length - 1]!, x)) out.push(x);
  return out;
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length > 0 ? s / xs.length : NaN;
}

/**
 * KL against eps per (attack, objective, defense, beta, trainEps, estimator, budget): each trial's median and
 * 15 % / 85 % quantiles over its test points (RABI's plot), averaged over the group's trials (seeds).
 */
export function klVsEpsCurve(
  sweepId: string,
  task: string,
  trials: readonly CurveTrial[],
  evals: readonly CurveEvaluation[],
): KlVsEpsCurveDoc {
  const series: KlSeries[] = groupBySeries(trials, task, evals).map((g) => {
    const grid = epsGrid(g.rows.flatMap((r) => r.evals));
    const s: KlSeries = { ...g.key, eps: grid, median: [], q15: [], q85: [], mean: [], trials: [] };
    for (const eps of grid) {
      const at = g.rows
        .map((r) => r.evals.find((e) => sameEps(e.eps, eps)))
        .filter((e): e is CurveEvaluation => e !== undefined);
      s.median.push(mean(at.map((e) => e.kl.median)));
      s.q15.push(mean(at.map((e) => e.kl.q15)));
      s.q85.push(mean(at.map((e) => e.kl.q85)));
      s.mean.push(mean(at.map((e) => e.kl.mean)));
      s.trials.push(at.length);
    }
    return s;
  });
  return { _id: curveId(sweepId, task, 'kl_vs_eps'), sweepId, task, kind: 'kl_vs_eps', series };
}

function pointwiseMean(curves: readonly number[][]): number[] {
  const n = curves[0]?.length ?? 0;
  return Array.from({ length: n }, (_, k) => mean(curves.map((c) => c[k]!)));
}

/**
 * Expected-coverage curves per series key: the clean curve and one attacked curve per eps, each the
 * pointwise mean over the group's trials, with the mean |coverage - alpha| area.
 */
export function coverageCurve(
  sweepId: string,
  task: string,
  trials: readonly CurveTrial[],
  evals: readonly CurveEvaluation[],
): CoverageCurveDoc {
  // Curves on different level grids cannot be averaged; they form separate series.
  const groups = groupBySeries(trials, task, evals, (e) => `|${e.coverage.levels.length}`);
  const series: CoverageSeries[] = groups.map((g) => {
    const levels = [...g.rows[0]!.evals[0]!.coverage.levels];
    // Each evaluation of a trial carries the same clean curve; read it from the smallest eps.
    const firstOf = g.rows.map((r) => [...r.evals].sort((a, b) => a.eps - b.eps)[0]!);
    const curves: CoverageAtEps[] = epsGrid(g.rows.flatMap((r) => r.evals)).map((eps) => {
      const at = g.rows
        .map((r) => r.evals.find((e) => sameEps(e.eps, eps)))
        .filter((e): e is CurveEvaluation => e !== undefined);
      return {
        eps,
        observed: pointwiseMean(at.map((e) => e.coverage.attacked)),
        absArea: mean(at.map((e) => e.coverageAbsArea.attacked)),
        trials: at.length,
      };
    });
    return {
      ...g.key,
      levels,
      clean: pointwiseMean(firstOf.map((e) => e.coverage.clean)),
      cleanAbsArea: mean(firstOf.map((e) => e.coverageAbsArea.clean)),
      trials: g.rows.length,
      curves,
    };
  });
  return { _id: curveId(sweepId, task, 'coverage'), sweepId, task, kind: 'coverage', series };
}

/** The tasks of a sweep's trials, sorted. */
export function tasksOf(trials: readonly CurveTrial[]): string[] {
  return [...new Set(trials.map((t) => t.config.task))].sort();
}

/** All curve documents of a sweep: tradeoff, kl_vs_eps and coverage for every task. */
export function computeCurves(
  sweepId: string,
  trials: readonly CurveTrial[],
  evals: readonly CurveEvaluation[],
  opts: TradeoffOptions = {},
): CurveDoc[] {
  return tasksOf(trials).flatMap((task) => [
    tradeoffCurve(sweepId, task, trials, evals, opts),
    klVsEpsCurve(sweepId, task, trials, evals),
    coverageCurve(sweepId, task, trials, evals),
  ]);
}
