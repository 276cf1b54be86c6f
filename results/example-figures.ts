// The adversarial examples of a sweep (results/examples.ts) as Plotly figures and a table, for the
// report and the dashboard: per completed trial, the marginals of its clean and attacked posteriors
// at its most damaging test point with the true parameters, and posterior-predictive simulations
// from both beside x and x~ (one panel per named trace of x, e.g. per pyloric neuron).
import type { ExampleDoc } from './examples.js';
import { ExampleStore } from './examples.js';
import { settingLabel, type Figure, type Trace } from './figures.js';
import { escapeHtml } from './html.js';
import type { ResultStore } from './store.js';

type Cell = string | number | boolean | null;

/** report.ts' Table, spelled out here so that report.ts can import this module without a cycle. */
export interface ExamplesTable {
  name: 'examples';
  title: string;
  columns: string[];
  rows: Cell[][];
  notes?: string[];
}

const CLEAN = '#1f77b4';
const ATTACKED = '#d62728';
const X_CLEAN = '#222222';
const X_ADV = '#ff7f0e';
const COLUMNS = 6;

const t = (s: string) => escapeHtml(s);

/** The trial's defense setting, as the other figures label it. */
export interface ExampleTrial {
  trialId: string;
  label: string;
}

const axisKey = (name: 'x' | 'y', k: number) => (k === 1 ? `${name}axis` : `${name}axis${k}`);
const axisRef = (name: 'x' | 'y', k: number) => (k === 1 ? name : `${name}${k}`);

const fmt = (v: number | null) =>
  v === null || !Number.isFinite(v) ? 'non-finite' : Number(v.toPrecision(3)).toString();

function heading(d: ExampleDoc, label: string): string {
  return (
    `${d.task} · ${label}: test point ${d.index} of ${d.nTest}, ${d.attack} ${d.objective} ` +
    `ε=${d.eps} (KL ${fmt(d.klEvaluation)} in the evaluation, mean ${fmt(d.klMeanEvaluation)})`
  );
}

function marginalsFigure(d: ExampleDoc, label: string): Figure {
  const dims = d.marginals.length;
  const columns = Math.min(COLUMNS, dims);
  const rows = Math.ceil(dims / columns);
  const data: Trace[] = [];
  const shapes: Record<string, unknown>[] = [];
  const layout: Record<string, unknown> = {
    title: {
      text: t(`Posterior marginals, clean vs attacked — ${heading(d, label)}`),
      x: 0.02,
      xanchor: 'left',
      font: { size: 13 },
    },
    grid: { rows, columns, pattern: 'independent', xgap: 0.25, ygap: 0.45 },
    height: 150 * rows + 120,
    margin: { l: 40, r: 20, t: 70, b: 40 },
    paper_bgcolor: '#ffffff',
    plot_bgcolor: '#ffffff',
    font: { family: 'system-ui, sans-serif', size: 10 },
    legend: { orientation: 'h', y: 1.0, yanchor: 'bottom', x: 1, xanchor: 'right' },
    showlegend: true,
  };
  d.marginals.forEach((m, i) => {
    const k = i + 1;
    const bins = m.clean.length;
    const width = (m.hi - m.lo) / bins;
    const centers = Array.from({ length: bins }, (_, b) => m.lo + (b + 0.5) * width);
    const density = (counts: number[]) => {
      const n = counts.reduce((a, b) => a + b, 0);
      return counts.map((c) => (n > 0 ? c / (n * width) : 0));
    };
    for (const [name, counts, color] of [
      ['clean posterior', m.clean, CLEAN],
      ['attacked posterior', m.attacked, ATTACKED],
    ] as const)
      data.push({
        type: 'scatter',
        mode: 'lines',
        name,
        legendgroup: name,
        showlegend: i === 0,
        x: centers,
        y: density(counts),
        line: { shape: 'hvh', color, width: 1.2 },
        xaxis: axisRef('x', k),
        yaxis: axisRef('y', k),
        meta: 'data',
      });
    const truth = d.theta[i]!;
    shapes.push({
      type: 'line',
      xref: axisRef('x', k),
      yref: `${axisRef('y', k)} domain`,
      x0: truth,
      x1: truth,
      y0: 0,
      y1: 1,
      line: { color: '#2ca02c', width: 1.5, dash: 'dot' },
    });
    layout[axisKey('x', k)] = {
      title: { text: t(d.paramNames[i] ?? `θ${k}`), standoff: 2 },
      showline: true,
      linecolor: '#444',
      ticks: 'outside',
      nticks: 4,
      zeroline: false,
    };
    layout[axisKey('y', k)] = { showticklabels: false, showline: false, zeroline: false };
  });
  // The true value's line has no trace of its own: a legend entry says what the dotted line is.
  data.push({
    type: 'scatter',
    mode: 'lines',
    name: 'true parameter',
    x: [null],
    y: [null],
    line: { color: '#2ca02c', dash: 'dot' },
    xaxis: 'x',
    yaxis: 'y',
    hoverinfo: 'skip',
  });
  layout.shapes = shapes;
  return {
    id: `example-marginals-${d._id.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    task: d.task,
    kind: 'example_marginals',
    title: `Posterior marginals at the adversarial example (${label})`,
    points: d.samples,
    data,
    layout,
  };
}

function predictiveFigure(d: ExampleDoc, label: string): Figure {
  const names =
    d.xTraces && d.xTraces.length > 0 && d.x.length % d.xTraces.length === 0 ? d.xTraces : ['x'];
  const len = d.x.length / names.length;
  const index = Array.from({ length: len }, (_, i) => i);
  const data: Trace[] = [];
  const layout: Record<string, unknown> = {
    title: {
      text: t(`Posterior predictives, clean vs attacked — ${heading(d, label)}`),
      x: 0.02,
      xanchor: 'left',
      font: { size: 13 },
    },
    grid: { rows: names.length, columns: 1, pattern: 'independent', ygap: 0.25 },
    height: 170 * names.length + 130,
    margin: { l: 60, r: 20, t: 70, b: 40 },
    paper_bgcolor: '#ffffff',
    plot_bgcolor: '#ffffff',
    font: { family: 'system-ui, sans-serif', size: 11 },
    legend: { orientation: 'h', y: 1.0, yanchor: 'bottom', x: 1, xanchor: 'right' },
  };
  const markers = len <= 40;
  names.forEach((segment, s) => {
    const k = s + 1;
    const part = (x: readonly (number | null)[]) => x.slice(s * len, (s + 1) * len);
    const line = (
      name: string,
      y: readonly (number | null)[],
      color: string,
      width: number,
      opacity: number,
      first: boolean,
    ): Trace => ({
      type: 'scatter',
      mode: markers ? 'lines+markers' : 'lines',
      name,
      legendgroup: name,
      showlegend: s === 0 && first,
      x: index,
      y: part(y),
      line: { color, width },
      opacity,
      xaxis: axisRef('x', k),
      yaxis: axisRef('y', k),
      meta: 'data',
    });
    d.predictive
      .filter((p) => p.from === 'clean')
      .forEach((p, i) =>
        data.push(line('predictive, clean posterior', p.x, CLEAN, 0.8, 0.45, i === 0)),
      );
    d.predictive
      .filter((p) => p.from === 'attacked')
      .forEach((p, i) =>
        data.push(line('predictive, attacked posterior', p.x, ATTACKED, 0.8, 0.45, i === 0)),
      );
    data.push(line('observed x', d.x, X_CLEAN, 1.4, 1, true));
    data.push(line('attacked x~', d.xAdv, X_ADV, 1.2, 0.9, true));
    layout[axisKey('x', k)] = {
      title: { text: k === names.length ? 'feature index' : '' },
      showline: true,
      linecolor: '#444',
    };
    layout[axisKey('y', k)] = { title: { text: t(segment) }, showline: true, linecolor: '#444' };
  });
  return {
    id: `example-predictive-${d._id.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    task: d.task,
    kind: 'example_predictive',
    title: `Posterior predictives at the adversarial example (${label})`,
    points: d.predictive.length,
    data,
    layout,
  };
}

/** Mean over dimensions of |attacked mean - clean mean| / clean std: how far the attack moved it. */
export function meanShift(d: ExampleDoc): number {
  const shifts = d.marginals
    .filter((m) => m.cleanStd > 0)
    .map((m) => Math.abs(m.attackedMean - m.cleanMean) / m.cleanStd);
  return shifts.length > 0 ? shifts.reduce((a, b) => a + b, 0) / shifts.length : NaN;
}

/** Median over dimensions of attacked std / clean std (above 1: the attack widened the posterior). */
export function widthRatio(d: ExampleDoc): number {
  const r = d.marginals
    .filter((m) => m.cleanStd > 0)
    .map((m) => m.attackedStd / m.cleanStd)
    .sort((a, b) => a - b);
  if (r.length === 0) return NaN;
  const h = r.length >> 1;
  return r.length % 2 === 1 ? r[h]! : (r[h - 1]! + r[h]!) / 2;
}

export function exampleFigures(
  docs: readonly ExampleDoc[],
  trials: readonly ExampleTrial[],
): Figure[] {
  const label = new Map(trials.map((x) => [x.trialId, x.label]));
  return docs.flatMap((d) => {
    const l = label.get(d.trialId) ?? d.trialId.slice(0, 12);
    return [marginalsFigure(d, l), predictiveFigure(d, l)];
  });
}

export function examplesTable(
  docs: readonly ExampleDoc[],
  trials: readonly ExampleTrial[],
): ExamplesTable {
  const label = new Map(trials.map((x) => [x.trialId, x.label]));
  const num = (v: number | null): Cell => (v === null || !Number.isFinite(v) ? null : v);
  const rows: Cell[][] = docs.map((d) => [
    d.task,
    label.get(d.trialId) ?? '',
    d.trialId,
    d.index,
    d.attack,
    d.objective,
    d.eps,
    num(d.klEvaluation),
    num(d.klMeanEvaluation),
    num(d.kl),
    num(meanShift(d)),
    num(widthRatio(d)),
    `${d.predictiveFinite.clean}/${d.predictiveFinite.drawn}`,
    `${d.predictiveFinite.attacked}/${d.predictiveFinite.drawn}`,
  ]);
  const have = new Set(docs.map((d) => d.trialId));
  const missing = trials.filter((x) => !have.has(x.trialId));
  return {
    name: 'examples',
    title: 'Adversarial examples: the most damaging test point of each trial',
    columns: [
      'task',
      'setting',
      'trial',
      'test point',
      'attack',
      'objective',
      'eps',
      'KL at point (evaluation)',
      'mean KL (evaluation)',
      'KL at point (re-attacked)',
      'mean shift / clean std',
      'attacked / clean std',
      'finite predictives, clean',
      'finite predictives, attacked',
    ],
    rows,
    ...(missing.length > 0
      ? {
          notes: [
            `${missing.length} completed trial(s) have no example yet (the sweep computes them after its trials; see the worker log for any that failed): ${missing
              .slice(0, 5)
              .map((x) => x.trialId)
              .join(', ')}${missing.length > 5 ? ', ...' : ''}.`,
          ],
        }
      : {}),
  };
}

/** The examples of a sweep's completed trials, as figures and a table; undefined when it has none and asked for none. */
export async function loadExamples(
  store: ResultStore,
  sweepId: string,
  asked: boolean,
): Promise<{ figures: Figure[]; table: ExamplesTable } | undefined> {
  const completed = await store.listTrials(sweepId, 'completed');
  const trials: ExampleTrial[] = completed.map((d) => ({
    trialId: d._id,
    label: settingLabel({
      defense: d.config.defense,
      beta: d.config.beta,
      ...(d.config.trainEps !== undefined ? { trainEps: d.config.trainEps } : {}),
    }),
  }));
  const docs = await new ExampleStore(store.db).ofTrials(trials.map((x) => x.trialId));
  if (docs.length === 0 && !asked) return undefined;
  return { figures: exampleFigures(docs, trials), table: examplesTable(docs, trials) };
}
