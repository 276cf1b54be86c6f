// Plotly figures of a sweep's curves (paper.md section 5), as plain JSON: the HTML report embeds
// them and the dashboard serves them, so both draw the same plots from the same code. Every string
// from the database is HTML-escaped before it reaches Plotly, whose text fields accept a few tags.
import type {
  CoverageCurveDoc,
  CurveDoc,
  CurveKind,
  KlVsEpsCurveDoc,
  SeriesKey,
  TradeoffCurveDoc,
  TradeoffPoint,
} from './documents.js';
import { tradeoffGap } from './curves.js';
import { escapeHtml } from './html.js';

export type Trace = Record<string, unknown>;

/**
 * One plot. Traces whose meta is 'data' carry the measured points (`points` counts them); the
 * others (Pareto line, quantile bands, diagonal) are drawn from those.
 */
export interface Figure {
  id: string;
  task: string;
  /** A curve's kind, or one of a search sweep's own plots (results/search-report.ts). */
  kind:
    CurveKind | 'search_front' | 'search_hypervolume' | 'example_marginals' | 'example_predictive';
  title: string;
  points: number;
  data: Trace[];
  layout: Record<string, unknown>;
}

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f',
];
const SYMBOLS = ['circle', 'diamond', 'square', 'triangle-up', 'cross', 'x', 'star', 'hexagon'];

/** Plotly reads JSON null as a gap; NaN and Infinity are not JSON. */
function num(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

const t = (s: string) => escapeHtml(s);

export function settingLabel(k: Pick<SeriesKey, 'defense' | 'beta' | 'trainEps'>): string {
  let s = k.defense;
  if (k.beta !== 0 || k.defense !== 'none') s += ` β=${k.beta}`;
  if (k.trainEps !== undefined) s += ` ε_train=${k.trainEps}`;
  return s;
}

/** Estimator and budget join the label only when the sweep varies them. */
function seriesLabel(k: SeriesKey, all: readonly SeriesKey[]): string {
  let s = settingLabel(k);
  if (new Set(all.map((x) => x.estimator)).size > 1) s += ` ${k.estimator}`;
  if (new Set(all.map((x) => x.budget)).size > 1) s += ` N=${k.budget}`;
  return s;
}

const baseLayout = (title: string) => ({
  title: { text: title, x: 0.02, xanchor: 'left' },
  margin: { l: 70, r: 30, t: 60, b: 60 },
  paper_bgcolor: '#ffffff',
  plot_bgcolor: '#ffffff',
  font: { family: 'system-ui, sans-serif', size: 13 },
  hovermode: 'closest',
});

const axis = (title: string, extra: Record<string, unknown> = {}) => ({
  title: { text: title },
  showline: true,
  linecolor: '#444',
  gridcolor: '#e5e5e5',
  zeroline: false,
  ...extra,
});

/** A ground-truth figure as the hover shows it (null: stored non-finite). */
const truthNumber = (v: number | null): string =>
  typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(4)).toString() : String(v);

function pointHover(p: TradeoffPoint): string {
  const g = p.groundTruth;
  return [
    settingLabel(p),
    `seed ${p.seed}, ${p.estimator}, N=${p.budget}`,
    ...(g
      ? [
          `vs. true posterior: C2ST ${truthNumber(g.c2st)}, KL(q||p) ${truthNumber(g.klQP)}, KL(p||q) ${truthNumber(g.klPQ)}`,
        ]
      : []),
    ...(p.trainSeconds !== undefined
      ? [
          `trained ${Number(p.trainSeconds.toPrecision(3))} s${p.epochs !== undefined ? `, ${p.epochs} epochs` : ''}`,
        ]
      : []),
    `trial ${p.trialId.slice(0, 12)}`,
  ]
    .map(t)
    .join('<br>');
}

/** Trade-off: x = mean KL at the chosen eps, y = mean test NLL, color = log10 beta. */
/** Plotly annotations do not wrap; break a sentence into lines of about `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function tradeoffFigure(c: TradeoffCurveDoc, id: string): Figure {
  const pts = c.points;
  const logBetas = pts.filter((p) => p.beta > 0).map((p) => Math.log10(p.beta));
  const cmin = logBetas.length ? Math.min(...logBetas) : 0;
  const cmax = logBetas.length ? Math.max(...logBetas) : 1;
  const defenses = [...new Set(pts.map((p) => p.defense))].sort();
  const data: Trace[] = [];
  let scaleShown = false;
  defenses.forEach((defense, di) => {
    const mine = pts.filter((p) => p.defense === defense);
    const zero = mine.filter((p) => !(p.beta > 0));
    const pos = mine.filter((p) => p.beta > 0);
    const common = (group: TradeoffPoint[]) => ({
      type: 'scatter',
      mode: 'markers',
      meta: 'data',
      x: group.map((p) => num(p.x)),
      y: group.map((p) => num(p.y)),
      text: group.map(pointHover),
      hovertemplate: '%{text}<br>KL %{x:.4g}, NLL %{y:.4g}<extra></extra>',
    });
    if (zero.length > 0) {
      data.push({
        ...common(zero),
        name: t(`${defense} (β = 0)`),
        marker: { size: 11, color: '#555555', symbol: SYMBOLS[di % SYMBOLS.length] },
      });
    }
    if (pos.length > 0) {
      data.push({
        ...common(pos),
        name: t(defense),
        marker: {
          size: 11,
          symbol: SYMBOLS[di % SYMBOLS.length],
          color: pos.map((p) => Math.log10(p.beta)),
          colorscale: 'Viridis',
          cmin,
          cmax: cmax > cmin ? cmax : cmin + 1,
          showscale: !scaleShown,
          colorbar: { title: { text: 'log10 β' }, thickness: 14 },
          line: { width: 0.5, color: '#222' },
        },
      });
      scaleShown = true;
    }
  });
  const front = c.front
    .map((id) => pts.find((p) => p.trialId === id))
    .filter((p): p is TradeoffPoint => p !== undefined);
  if (front.length > 0) {
    data.push({
      type: 'scatter',
      mode: 'lines',
      meta: 'front',
      name: 'Pareto front',
      x: front.map((p) => num(p.x)),
      y: front.map((p) => num(p.y)),
      line: { color: '#d62728', dash: 'dash', width: 1.5 },
      hoverinfo: 'skip',
    });
  }
  const xs = pts.map((p) => p.x).filter((x) => Number.isFinite(x));
  const logX = xs.length > 1 && Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) > 50;
  const title = `${c.task}: accuracy vs robustness`;
  return {
    id,
    task: c.task,
    kind: 'tradeoff',
    title,
    points: pts.length,
    data,
    layout: {
      ...baseLayout(t(title)),
      height: 460,
      xaxis: axis(t(`mean ${c.objective.toUpperCase()} at ε = ${c.eps} (${c.attack})`), {
        type: logX ? 'log' : 'linear',
      }),
      yaxis: axis('mean test NLL'),
      legend: { orientation: 'h', y: -0.18 },
      // An empty plot says why, in the words of the text report.
      ...(pts.length === 0 && tradeoffGap(c) !== undefined
        ? {
            annotations: [
              {
                text: wrap(tradeoffGap(c)!, 90).map(t).join('<br>'),
                xref: 'paper',
                yref: 'paper',
                x: 0.5,
                y: 0.5,
                showarrow: false,
                align: 'left',
              },
            ],
          }
        : {}),
    },
  };
}

interface Grid {
  axes: Record<string, unknown>;
  /** Plotly axis ids ('x', 'x2', ...) of panel i. */
  ref: (i: number) => { xaxis: string; yaxis: string };
  annotations: Record<string, unknown>[];
  height: number;
}

/** Panels in rows of at most `cols`, each with its own axes and a title annotation. */
function grid(
  titles: readonly string[],
  cols: number,
  xTitle: string,
  yTitle: string,
  yExtra: Record<string, unknown>,
  xExtra: Record<string, unknown> = {},
): Grid {
  const n = Math.max(1, titles.length);
  const c = Math.min(cols, n);
  const r = Math.ceil(n / c);
  const gx = 0.06 / c + 0.02;
  const gy = 0.1 / r + 0.03;
  const axes: Record<string, unknown> = {};
  const annotations: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const col = i % c;
    const row = Math.floor(i / c);
    const sfx = i === 0 ? '' : String(i + 1);
    const x0 = col / c + (col > 0 ? gx : 0);
    const x1 = (col + 1) / c - (col < c - 1 ? gx : 0);
    const y1 = 1 - row / r - (row > 0 ? gy : 0);
    const y0 = 1 - (row + 1) / r + (row < r - 1 ? gy : 0);
    axes[`xaxis${sfx}`] = axis(row === r - 1 ? xTitle : '', {
      domain: [x0, x1],
      anchor: `y${sfx}`,
      ...xExtra,
    });
    axes[`yaxis${sfx}`] = axis(col === 0 ? yTitle : '', {
      domain: [y0, y1],
      anchor: `x${sfx}`,
      ...yExtra,
    });
    annotations.push({
      text: `<b>${titles[i] ?? ''}</b>`,
      xref: 'paper',
      yref: 'paper',
      x: (x0 + x1) / 2,
      y: y1,
      xanchor: 'center',
      yanchor: 'bottom',
      showarrow: false,
      font: { size: 12 },
    });
  }
  return {
    axes,
    annotations,
    height: 300 * r + 130,
    ref: (i) => ({ xaxis: `x${i === 0 ? '' : i + 1}`, yaxis: `y${i === 0 ? '' : i + 1}` }),
  };
}

function hexToRgba(hex: string, alpha: number): string {
  const v = parseInt(hex.slice(1), 16);
  return `rgba(${(v >> 16) & 255},${(v >> 8) & 255},${v & 255},${alpha})`;
}

/** KL against eps, one panel per attack and objective: median line, 15-85 % band, log y. */
export function klVsEpsFigure(c: KlVsEpsCurveDoc, id: string): Figure {
  const panels = [...new Set(c.series.map((s) => `${s.attack}|${s.objective}`))];
  const labels = c.series.map((s) => seriesLabel(s, c.series));
  const labelOrder = [...new Set(labels)];
  const g = grid(
    panels.map((p) => {
      const [attack, objective] = p.split('|') as [string, string];
      return t(`${attack}, ${objective.toUpperCase()}`);
    }),
    3,
    'ε (relative to the test set std)',
    'KL (median, 15–85 %)',
    { type: 'log' },
  );
  const data: Trace[] = [];
  let points = 0;
  c.series.forEach((s, i) => {
    const panel = panels.indexOf(`${s.attack}|${s.objective}`);
    const label = labels[i]!;
    const color = PALETTE[labelOrder.indexOf(label) % PALETTE.length]!;
    const ref = g.ref(panel);
    data.push({
      type: 'scatter',
      mode: 'lines',
      meta: 'band',
      ...ref,
      x: [...s.eps, ...[...s.eps].reverse()].map(num),
      y: [...s.q85, ...[...s.q15].reverse()].map(num),
      fill: 'toself',
      fillcolor: hexToRgba(color, 0.15),
      line: { width: 0 },
      legendgroup: t(label),
      showlegend: false,
      hoverinfo: 'skip',
    });
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      meta: 'data',
      ...ref,
      name: t(label),
      legendgroup: t(label),
      showlegend: labels.indexOf(label) === i,
      x: s.eps.map(num),
      y: s.median.map(num),
      line: { color, width: 2 },
      marker: { color, size: 6 },
      hovertemplate: `${t(label)}<br>ε %{x}<br>median KL %{y:.4g}<extra></extra>`,
    });
    points += s.eps.length;
  });
  const title = `${c.task}: KL against ε`;
  return {
    id,
    task: c.task,
    kind: 'kl_vs_eps',
    title,
    points,
    data,
    layout: {
      ...baseLayout(t(title)),
      ...g.axes,
      annotations: g.annotations,
      height: g.height,
      ...SIDE_LEGEND,
    },
  };
}

/** Coverage: one panel per series, the diagonal, the clean curve in black, one line per eps. */
export function coverageFigure(c: CoverageCurveDoc, id: string): Figure {
  const g = grid(
    c.series.map((s) => t(`${s.attack}: ${seriesLabel(s, c.series)}`)),
    4,
    'credibility level',
    'expected coverage',
    { range: [0, 1] },
    { range: [0, 1] },
  );
  const allEps = [...new Set(c.series.flatMap((s) => s.curves.map((k) => k.eps)))].sort(
    (a, b) => a - b,
  );
  // Sequential colors by eps: light (small) to dark red (large).
  const epsColor = (eps: number) => {
    const f = allEps.length > 1 ? allEps.indexOf(eps) / (allEps.length - 1) : 1;
    return `rgb(${Math.round(250 - 80 * f)},${Math.round(170 - 150 * f)},${Math.round(60 - 40 * f)})`;
  };
  const data: Trace[] = [];
  let points = 0;
  c.series.forEach((s, i) => {
    const ref = g.ref(i);
    const first = i === 0;
    data.push({
      type: 'scatter',
      mode: 'lines',
      meta: 'diagonal',
      ...ref,
      x: [0, 1],
      y: [0, 1],
      name: 'ideal',
      legendgroup: 'ideal',
      showlegend: first,
      line: { color: '#999999', dash: 'dot', width: 1 },
      hoverinfo: 'skip',
    });
    for (const k of s.curves) {
      data.push({
        type: 'scatter',
        mode: 'lines',
        meta: 'data',
        ...ref,
        name: `ε = ${k.eps}`,
        legendgroup: `eps${k.eps}`,
        showlegend: first,
        x: s.levels.map(num),
        y: k.observed.map(num),
        line: { color: epsColor(k.eps), width: 2 },
        hovertemplate: `ε = ${k.eps}<br>level %{x:.2f}<br>coverage %{y:.3f}<extra></extra>`,
      });
      points += s.levels.length;
    }
    data.push({
      type: 'scatter',
      mode: 'lines',
      meta: 'data',
      ...ref,
      name: 'clean',
      legendgroup: 'clean',
      showlegend: first,
      x: s.levels.map(num),
      y: s.clean.map(num),
      line: { color: '#000000', width: 2 },
      hovertemplate: 'clean<br>level %{x:.2f}<br>coverage %{y:.3f}<extra></extra>',
    });
    points += s.levels.length;
  });
  const title = `${c.task}: expected coverage`;
  return {
    id,
    task: c.task,
    kind: 'coverage',
    title,
    points,
    data,
    layout: {
      ...baseLayout(t(title)),
      ...g.axes,
      annotations: g.annotations,
      height: g.height,
      ...SIDE_LEGEND,
    },
  };
}

/** Panel grids keep their legend to the right, clear of the axis titles below. */
const SIDE_LEGEND = {
  legend: { x: 1.01, y: 1, xanchor: 'left', yanchor: 'top' },
  margin: { l: 70, r: 170, t: 60, b: 60 },
};

const ORDER: Record<CurveKind, number> = { tradeoff: 0, kl_vs_eps: 1, coverage: 2 };

/** The figures of a sweep's curves: per task, trade-off, KL vs eps, coverage. */
export function figuresOf(curves: readonly CurveDoc[]): Figure[] {
  const sorted = [...curves].sort(
    (a, b) => (a.task < b.task ? -1 : a.task > b.task ? 1 : 0) || ORDER[a.kind] - ORDER[b.kind],
  );
  return sorted.map((c, i) => {
    const id = `fig-${i}-${c.kind}`;
    if (c.kind === 'tradeoff') return tradeoffFigure(c, id);
    if (c.kind === 'kl_vs_eps') return klVsEpsFigure(c, id);
    return coverageFigure(c, id);
  });
}
