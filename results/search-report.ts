// What the report and the dashboard add for a search sweep (sweeps/search.ts): every point with the
// round that proposed it, the front as it grew round by round, and the normalized hypervolume after
// each round (sweeps/hypervolume.ts, the same numbers the stop rule used). Pure but for
// loadSearchReport, which reads the sweep's trials and evaluations.
import { frontIndices, hypervolumeByRound } from '../sweeps/hypervolume.js';
import { objectivePoint } from '../sweeps/search.js';
import type { SweepSpec } from '../sweeps/types.js';
import { sameEps, type CurveEvaluation } from './curves.js';
import type { SweepDoc, TrialDoc } from './documents.js';
import type { Figure, Trace } from './figures.js';
import { escapeHtml } from './html.js';
import type { ResultStore } from './store.js';

export interface SearchReportPoint {
  trialId: string;
  round: number;
  status: string;
  defense: string;
  beta: number;
  trainEps?: number;
  /** Mean KL at the search's attack (null: not measured). */
  kl: number | null;
  testNll: number | null;
  /** On the front of every measured point. */
  pareto: boolean;
}

export interface SearchReport {
  task: string;
  attack: string;
  objective: string;
  eps: number;
  klScale: 'linear' | 'log';
  points: SearchReportPoint[];
  /** Normalized hypervolume after rounds 0..last. */
  hypervolume: number[];
}

/** A table as report.ts's Table (declared here: report.ts imports this module). */
export interface SearchTable {
  name: 'search' | 'search_rounds';
  title: string;
  columns: string[];
  rows: (string | number | boolean | null)[][];
}

type SearchTrial = Pick<TrialDoc, '_id' | 'status' | 'config' | 'summary' | 'positions'>;

/** The search's points and hypervolumes from its trials and evaluations; undefined for a grid sweep. */
export function searchReport(
  sweepId: string,
  spec: SweepSpec,
  trials: readonly SearchTrial[],
  evaluations: readonly CurveEvaluation[],
): SearchReport | undefined {
  const search = spec.search;
  const kl = search?.objectives.find((o) => o.metric === 'kl');
  if (!search || !kl || kl.metric !== 'kl') return undefined;
  const points: SearchReportPoint[] = [];
  for (const t of trials) {
    const pos = t.positions?.find((p) => p.sweepId === sweepId);
    if (!pos) continue;
    const e = evaluations.find(
      (v) =>
        v.trialId === t._id &&
        v.attack === kl.attack &&
        v.objective === kl.objective &&
        sameEps(v.eps, kl.eps),
    );
    const done = t.status === 'completed' && e !== undefined && t.summary !== undefined;
    points.push({
      trialId: t._id,
      round: pos.round ?? 0,
      status: t.status,
      defense: t.config.defense,
      beta: t.config.beta,
      ...(t.config.trainEps !== undefined ? { trainEps: t.config.trainEps } : {}),
      kl: done && Number.isFinite(e.kl.mean) ? e.kl.mean : null,
      testNll: done && Number.isFinite(t.summary!.testNll) ? t.summary!.testNll : null,
      pareto: false,
    });
  }
  points.sort((a, b) => a.round - b.round || (a.trialId < b.trialId ? -1 : 1));
  const measured = points.filter((p) => p.kl !== null && p.testNll !== null);
  const plane = measured.map((p) => ({
    ...objectivePoint(search, { kl: p.kl!, nll: p.testNll! }),
    round: p.round,
  }));
  for (const i of frontIndices(plane)) measured[i]!.pareto = true;
  return {
    task: spec.tasks[0]!,
    attack: kl.attack,
    objective: kl.objective,
    eps: kl.eps,
    klScale: kl.scale,
    points,
    hypervolume: hypervolumeByRound(plane),
  };
}

/** The two tables: every point by round, and each round's size and hypervolume. */
export function searchTables(s: SearchReport): SearchTable[] {
  const rounds = Math.max(s.hypervolume.length, ...s.points.map((p) => p.round + 1));
  return [
    {
      name: 'search',
      title: `search points (${s.task}; KL: ${s.attack}, ${s.objective}, eps ${s.eps})`,
      columns: [
        'round',
        'defense',
        'beta',
        'trainEps',
        'status',
        'kl',
        'testNll',
        'pareto',
        'trialId',
      ],
      rows: s.points.map((p) => [
        p.round,
        p.defense,
        p.beta,
        p.trainEps ?? null,
        p.status,
        p.kl,
        p.testNll,
        p.pareto,
        p.trialId,
      ]),
    },
    {
      name: 'search_rounds',
      title: 'search rounds (hypervolume normalized by the first round, reference 1.1, 1.1)',
      columns: ['round', 'points', 'measured', 'hypervolume'],
      rows: Array.from({ length: rounds }, (_, r) => {
        const mine = s.points.filter((p) => p.round === r);
        return [r, mine.length, mine.filter((p) => p.kl !== null).length, s.hypervolume[r] ?? null];
      }),
    },
  ];
}

const layout = (title: string, x: string, y: string, extra: Record<string, unknown> = {}) => ({
  title: { text: escapeHtml(title), x: 0.02, xanchor: 'left' },
  margin: { l: 70, r: 30, t: 60, b: 60 },
  paper_bgcolor: '#ffffff',
  plot_bgcolor: '#ffffff',
  font: { family: 'system-ui, sans-serif', size: 13 },
  hovermode: 'closest',
  xaxis: {
    title: { text: escapeHtml(x) },
    showline: true,
    linecolor: '#444',
    gridcolor: '#e5e5e5',
  },
  yaxis: {
    title: { text: escapeHtml(y) },
    showline: true,
    linecolor: '#444',
    gridcolor: '#e5e5e5',
  },
  ...extra,
});

/** The front as it grew (one staircase per round, the last in red; points colored by round) and the hypervolume per round. */
export function searchFigures(s: SearchReport): Figure[] {
  const measured = s.points.filter((p) => p.kl !== null && p.testNll !== null);
  const last = Math.max(0, ...s.points.map((p) => p.round));
  const data: Trace[] = [
    {
      type: 'scatter',
      mode: 'markers',
      meta: 'data',
      name: 'trials',
      x: measured.map((p) => p.kl),
      y: measured.map((p) => p.testNll),
      text: measured.map((p) =>
        escapeHtml(
          `round ${p.round}: ${p.defense}${p.beta ? ` β=${p.beta}` : ''}${p.trainEps !== undefined ? ` ε=${p.trainEps}` : ''}`,
        ),
      ),
      hovertemplate: '%{text}<br>KL %{x:.4g}, NLL %{y:.4g}<extra></extra>',
      marker: {
        size: 11,
        color: measured.map((p) => p.round),
        colorscale: 'Viridis',
        cmin: 0,
        cmax: Math.max(1, last),
        showscale: true,
        colorbar: { title: { text: 'round' }, thickness: 14 },
        line: { width: 0.5, color: '#222' },
      },
    },
  ];
  for (let r = 0; r <= last; r++) {
    const upto = measured.filter((p) => p.round <= r);
    const front = frontIndices(upto.map((p) => ({ x: p.kl!, y: p.testNll! }))).map((i) => upto[i]!);
    if (front.length === 0) continue;
    data.push({
      type: 'scatter',
      mode: 'lines',
      meta: 'front',
      name: `front after round ${r}`,
      x: front.map((p) => p.kl),
      y: front.map((p) => p.testNll),
      line: {
        shape: 'hv',
        width: r === last ? 2 : 1,
        color:
          r === last
            ? '#d62728'
            : `rgba(31,119,180,${(0.25 + (0.6 * (r + 1)) / (last + 1)).toFixed(2)})`,
      },
      hoverinfo: 'skip',
    });
  }
  const front: Figure = {
    id: `search-front-${s.task}`,
    task: s.task,
    kind: 'search_front',
    title: `${s.task}: the search's front, round by round`,
    points: measured.length,
    data,
    layout: layout(
      `${s.task}: the search's front, round by round`,
      `mean ${s.objective.toUpperCase()} at ε = ${s.eps} (${s.attack})`,
      'mean test NLL',
      {
        height: 460,
        xaxis: {
          title: {
            text: escapeHtml(`mean ${s.objective.toUpperCase()} at ε = ${s.eps} (${s.attack})`),
          },
          type: s.klScale === 'log' ? 'log' : 'linear',
          showline: true,
          linecolor: '#444',
          gridcolor: '#e5e5e5',
        },
        legend: { orientation: 'h', y: -0.18 },
      },
    ),
  };
  const hv: Figure = {
    id: `search-hypervolume-${s.task}`,
    task: s.task,
    kind: 'search_hypervolume',
    title: `${s.task}: hypervolume per round`,
    points: s.hypervolume.length,
    data: [
      {
        type: 'scatter',
        mode: 'lines+markers',
        meta: 'data',
        name: 'hypervolume',
        x: s.hypervolume.map((_, r) => r),
        y: s.hypervolume,
        hovertemplate: 'round %{x}: %{y:.4f}<extra></extra>',
      },
    ],
    layout: layout(`${s.task}: hypervolume per round`, 'round', 'normalized hypervolume', {
      height: 320,
    }),
  };
  return [front, hv];
}

/** The search's tables and figures of a sweep, read from the store; undefined for a grid sweep. */
export async function loadSearchReport(
  store: ResultStore,
  sweep: Pick<SweepDoc, '_id' | 'spec'>,
): Promise<{ search: SearchReport; tables: SearchTable[]; figures: Figure[] } | undefined> {
  const spec = sweep.spec as unknown as SweepSpec;
  if (!spec.search) return undefined;
  const trials = await store.listTrials(sweep._id);
  const evaluations = await store.listEvaluations({ sweepId: sweep._id });
  const search = searchReport(sweep._id, spec, trials, evaluations);
  if (!search) return undefined;
  return { search, tables: searchTables(search), figures: searchFigures(search) };
}
