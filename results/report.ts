// `robustsbi report`: a sweep's curves as tables (text, CSV, JSON) and as a self-contained HTML page
// whose plots Plotly draws offline (its bundle is inlined). Curves are the stored ones for a
// completed sweep, and computed from the raw trials and evaluations otherwise, so a running sweep
// reports what it has so far.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { computeCurves, tradeoffGap, tradeoffOptionsOfSpec } from './curves.js';
import { diagnosticsTable, loadDiagnostics, type TrialDiagnostics } from './diagnostics.js';
import type { CurveDoc, SweepDoc, SweepStatus, TrialCounts } from './documents.js';
import { figuresOf, type Figure } from './figures.js';
import { escapeHtml, inlineScriptSource, jsonForScript } from './html.js';
import { loadExamples } from './example-figures.js';
import { loadSearchReport, type SearchReport } from './search-report.js';
import type { ResultStore } from './store.js';

export type Cell = string | number | boolean | null;

export interface Table {
  /** A curve's table, the diagnostics, or a search sweep's points and rounds (results/search-report.ts). */
  name:
    'tradeoff' | 'kl_vs_eps' | 'coverage' | 'diagnostics' | 'search' | 'search_rounds' | 'examples';
  title: string;
  columns: string[];
  rows: Cell[][];
  /** Sentences under the table: why rows are missing and what to change. */
  notes?: string[];
}

export interface SweepInfo {
  id: string;
  name: string;
  status: SweepStatus;
  counts: TrialCounts;
  createdAt: string;
  completedAt?: string;
}

export interface SweepReport {
  sweep: SweepInfo;
  /** 'stored': the curves collection (completed sweep); 'computed': from the raw results now. */
  source: 'stored' | 'computed';
  curves: CurveDoc[];
  tables: Table[];
  figures: Figure[];
  /** Search sweeps: the points by round and the hypervolume per round (also in tables and figures). */
  search?: SearchReport;
}

/** The tables of every report; `diagnostics` follows them where the spec asked for diagnostics. */
export const TABLE_NAMES = ['tradeoff', 'kl_vs_eps', 'coverage'] as const;

/**
 * The sweep's curves: stored ones once it completed (the aggregate step wrote them), otherwise
 * computed now from its trials and evaluations with the same code the aggregate step runs.
 */
export async function sweepCurves(
  store: ResultStore,
  sweep: SweepDoc,
): Promise<{ curves: CurveDoc[]; source: SweepReport['source'] }> {
  if (sweep.status === 'completed') {
    const stored = await store.listCurves(sweep._id);
    if (stored.length > 0) return { curves: stored, source: 'stored' };
  }
  const trials = await store.listTrials(sweep._id);
  const evaluations = await store.listEvaluations({ sweepId: sweep._id });
  return {
    curves: computeCurves(sweep._id, trials, evaluations, tradeoffOptionsOfSpec(sweep.spec)),
    source: 'computed',
  };
}

const SERIES_COLUMNS = [
  'attack',
  'objective',
  'defense',
  'beta',
  'trainEps',
  'estimator',
  'budget',
];

/** The three tables of a sweep's curves, rows in curve order. */
export function reportTables(curves: readonly CurveDoc[]): Table[] {
  const tradeoff: Table = {
    name: 'tradeoff',
    title:
      'Accuracy-robustness trade-off (one point per trial; *Truth: against the analytic posterior, gaussian_linear only)',
    columns: [
      'task',
      'defense',
      'beta',
      'trainEps',
      'estimator',
      'budget',
      'seed',
      'attack',
      'objective',
      'eps',
      'meanKl',
      'meanNll',
      // Against the analytic posterior (gaussian_linear; blank for other tasks).
      'c2stTruth',
      'klQPTruth',
      'klPQTruth',
      // The trial's training cost: what its place on the trade-off cost.
      'trainSeconds',
      'epochs',
      'pareto',
      'trialId',
    ],
    rows: [],
  };
  const kl: Table = {
    name: 'kl_vs_eps',
    title: 'KL against eps (median and 15 % / 85 % quantiles over test points, mean over seeds)',
    columns: ['task', ...SERIES_COLUMNS, 'eps', 'median', 'q15', 'q85', 'mean', 'trials'],
    rows: [],
  };
  const coverage: Table = {
    name: 'coverage',
    title: 'Expected coverage: mean |coverage - level| area per eps ("clean" is unattacked)',
    columns: ['task', ...SERIES_COLUMNS, 'eps', 'absArea', 'trials'],
    rows: [],
  };
  const sorted = [...curves].sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  for (const c of sorted) {
    if (c.kind === 'tradeoff') {
      const gap = tradeoffGap(c);
      if (gap !== undefined) (tradeoff.notes ??= []).push(gap);
      const points = [...c.points].sort(
        (a, b) =>
          (a.defense < b.defense ? -1 : a.defense > b.defense ? 1 : 0) ||
          a.beta - b.beta ||
          (a.trainEps ?? -1) - (b.trainEps ?? -1) ||
          (a.estimator < b.estimator ? -1 : a.estimator > b.estimator ? 1 : 0) ||
          a.budget - b.budget ||
          a.seed - b.seed,
      );
      for (const p of points) {
        tradeoff.rows.push([
          c.task,
          p.defense,
          p.beta,
          p.trainEps ?? null,
          p.estimator,
          p.budget,
          p.seed,
          c.attack,
          c.objective,
          c.eps,
          p.x,
          p.y,
          p.groundTruth?.c2st ?? null,
          p.groundTruth?.klQP ?? null,
          p.groundTruth?.klPQ ?? null,
          p.trainSeconds ?? null,
          p.epochs ?? null,
          p.pareto,
          p.trialId,
        ]);
      }
    } else if (c.kind === 'kl_vs_eps') {
      for (const s of c.series) {
        const key = [
          s.attack,
          s.objective,
          s.defense,
          s.beta,
          s.trainEps ?? null,
          s.estimator,
          s.budget,
        ];
        s.eps.forEach((eps, i) => {
          kl.rows.push([
            c.task,
            ...key,
            eps,
            s.median[i]!,
            s.q15[i]!,
            s.q85[i]!,
            s.mean[i]!,
            s.trials[i]!,
          ]);
        });
      }
    } else {
      for (const s of c.series) {
        const key = [
          s.attack,
          s.objective,
          s.defense,
          s.beta,
          s.trainEps ?? null,
          s.estimator,
          s.budget,
        ];
        coverage.rows.push([c.task, ...key, 'clean', s.cleanAbsArea, s.trials]);
        for (const k of s.curves) coverage.rows.push([c.task, ...key, k.eps, k.absArea, k.trials]);
      }
    }
  }
  return [tradeoff, kl, coverage];
}

function sweepInfo(sweep: SweepDoc, counts: TrialCounts): SweepInfo {
  return {
    id: sweep._id,
    name: sweep.name,
    status: sweep.status,
    counts,
    createdAt: sweep.createdAt.toISOString(),
    ...(sweep.completedAt ? { completedAt: sweep.completedAt.toISOString() } : {}),
  };
}

export function buildReport(
  sweep: SweepDoc,
  counts: TrialCounts,
  curves: CurveDoc[],
  source: SweepReport['source'],
  diagnostics: readonly TrialDiagnostics[] = [],
): SweepReport {
  return {
    sweep: sweepInfo(sweep, counts),
    source,
    curves,
    tables: [
      ...reportTables(curves),
      ...(diagnostics.length > 0 ? [diagnosticsTable(diagnostics)] : []),
    ],
    figures: figuresOf(curves),
  };
}

/** The report of one sweep, or null when no sweep has that ID. */
export async function loadReport(store: ResultStore, sweepId: string): Promise<SweepReport | null> {
  const sweep = await store.getSweep(sweepId);
  if (!sweep) return null;
  const { curves, source } = await sweepCurves(store, sweep);
  const counts = await store.trialCounts(sweepId);
  const report = buildReport(sweep, counts, curves, source, await loadDiagnostics(store, sweepId));
  const search = await loadSearchReport(store, sweep);
  if (search) {
    report.search = search.search;
    report.tables.push(...search.tables);
    report.figures.push(...search.figures);
  }
  const asked = (sweep.spec as { evaluation?: { examples?: unknown } }).evaluation?.examples;
  const examples = await loadExamples(store, sweepId, asked !== undefined);
  if (examples) {
    report.tables.push(examples.table);
    report.figures.push(...examples.figures);
  }
  return report;
}

// ---- text formats ----

function isControl(ch: string): boolean {
  const code = ch.codePointAt(0)!;
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

/** A number as the text table shows it: 4 significant digits (CSV and JSON keep every digit). */
function short(c: Cell): string {
  if (c === null) return '';
  if (typeof c === 'number') {
    if (!Number.isFinite(c)) return String(c);
    if (Number.isInteger(c) && Math.abs(c) < 1e6) return String(c);
    return Number(c.toPrecision(4)).toString();
  }
  if (typeof c === 'boolean') return c ? 'yes' : '';
  // Control characters from the database must not move the terminal's cursor.
  return [...c].map((ch) => (isControl(ch) ? '?' : ch)).join('');
}

function header(r: SweepReport): string[] {
  const c = r.sweep.counts;
  return [
    `Sweep ${short(r.sweep.name)} (${r.sweep.id}), ${r.sweep.status}`,
    `Trials: ${c.completed} completed, ${c.running} running, ${c.queued} queued, ${c.failed} failed, ${c.cancelled} cancelled of ${c.trials}`,
    `Curves: ${r.source === 'stored' ? 'stored by the sweep' : 'computed from the results so far'}`,
  ];
}

export function renderText(r: SweepReport): string {
  const out = header(r);
  for (const t of r.tables) {
    out.push('', `${t.title}:`);
    const notes = (t.notes ?? []).map((n) => `  ${short(n)}`);
    if (t.rows.length === 0) {
      out.push(...(notes.length > 0 ? notes : ['  (no rows yet)']));
      continue;
    }
    const cells = [t.columns, ...t.rows.map((row) => row.map(short))];
    const widths = t.columns.map((_, j) => Math.max(...cells.map((row) => row[j]!.length)));
    for (const row of cells) {
      out.push(
        row
          .map((cell, j) => (j < row.length - 1 ? cell.padEnd(widths[j]!) : cell))
          .join('  ')
          .trimEnd(),
      );
    }
    out.push(...notes);
  }
  return out.join('\n') + '\n';
}

/** RFC 4180 field; a text starting like a spreadsheet formula is prefixed with ' (CSV injection). */
function csvField(c: Cell): string {
  if (c === null) return '';
  if (typeof c === 'number') return Number.isFinite(c) ? String(c) : String(c);
  if (typeof c === 'boolean') return c ? 'true' : 'false';
  const s = /^[=+\-@\t\r]/.test(c) ? `'${c}` : c;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One table as CSV, or all three, each after a line with its name and separated by a blank line. */
export function renderCsv(r: SweepReport, table?: Table['name']): string {
  const toCsv = (t: Table) =>
    [t.columns, ...t.rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
  // A sweep without diagnostics has no such table: its header alone.
  if (table) return toCsv(r.tables.find((t) => t.name === table) ?? diagnosticsTable([]));
  return r.tables.map((t) => `${t.name}\r\n${toCsv(t)}`).join('\r\n');
}

/** Non-finite numbers are written as null (JSON has no NaN); the tables keep them as text. */
export function renderJson(r: SweepReport): string {
  return (
    JSON.stringify(
      { sweep: r.sweep, source: r.source, tables: r.tables, curves: r.curves },
      null,
      2,
    ) + '\n'
  );
}

// ---- HTML ----

/** The Plotly bundle this package depends on (plotly.js-dist-min), read from node_modules. */
export function plotlyBundlePath(): string {
  return createRequire(import.meta.url).resolve('plotly.js-dist-min/plotly.min.js');
}

let plotlyCache: string | undefined;
export function plotlySource(): string {
  return (plotlyCache ??= readFileSync(plotlyBundlePath(), 'utf8'));
}

const REPORT_CSS = `
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:1.5em;margin-bottom:4px}h2{margin-top:32px;border-bottom:1px solid #ddd}
.meta{color:#555;margin:2px 0}.plot{margin:16px 0;border:1px solid #eee}
table{border-collapse:collapse;font-size:13px;margin:8px 0 24px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td.s{text-align:left}caption{text-align:left;font-weight:600;padding:4px 0}
`;

// Draws each figure into its div; figures are data (JSON), never code.
const DRAW_SCRIPT = `(function(){
var d=JSON.parse(document.getElementById('report-data').textContent);
d.figures.forEach(function(f){var el=document.getElementById(f.id);
if(el&&window.Plotly){Plotly.newPlot(el,f.data,f.layout,{displaylogo:false,responsive:true});}});
})();`;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64');
}

function htmlTable(t: Table): string {
  const head = `<tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`;
  const body = t.rows
    .map(
      (row) =>
        `<tr>${row
          .map((c) =>
            typeof c === 'string'
              ? `<td class="s">${escapeHtml(c)}</td>`
              : `<td>${escapeHtml(short(c))}</td>`,
          )
          .join('')}</tr>`,
    )
    .join('\n');
  const notes = (t.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('\n');
  return `<table><caption>${escapeHtml(t.title)}</caption>\n<thead>${head}</thead>\n<tbody>${body}</tbody></table>${notes ? `\n${notes}` : ''}`;
}

/**
 * One HTML file that works offline: Plotly inlined, the figures as JSON in a
 * <script type="application/json"> block, every database string escaped, and a
 * Content-Security-Policy that allows only these two scripts (by hash).
 */
export function renderHtml(r: SweepReport, plotly: string = plotlySource()): string {
  const plotlyInline = inlineScriptSource(plotly);
  const data = jsonForScript({ sweep: r.sweep, figures: r.figures });
  const csp = [
    "default-src 'none'",
    `script-src 'sha256-${sha256(plotlyInline)}' 'sha256-${sha256(DRAW_SCRIPT)}'`,
    "style-src 'unsafe-inline'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  const c = r.sweep.counts;
  const byTask = new Map<string, Figure[]>();
  for (const f of r.figures) byTask.set(f.task, [...(byTask.get(f.task) ?? []), f]);
  const sections = [...byTask.entries()]
    .map(
      ([task, figs]) =>
        `<h2>${escapeHtml(task)}</h2>\n` +
        figs
          .map((f) => `<div class="plot" id="${escapeHtml(f.id)}" data-kind="${f.kind}"></div>`)
          .join('\n'),
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>robustsbi report: ${escapeHtml(r.sweep.name)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<h1>Sweep ${escapeHtml(r.sweep.name)}</h1>
<p class="meta">ID ${escapeHtml(r.sweep.id)} · status ${escapeHtml(r.sweep.status)} · created ${escapeHtml(r.sweep.createdAt)}</p>
<p class="meta">Trials: ${c.completed} completed, ${c.running} running, ${c.queued} queued, ${c.failed} failed, ${c.cancelled} cancelled of ${c.trials} · curves ${r.source === 'stored' ? 'stored by the sweep' : 'computed from the results so far'}</p>
${sections || '<p>No completed trials yet: no curves to plot.</p>'}
<h2>Tables</h2>
${r.tables.map(htmlTable).join('\n')}
<script type="application/json" id="report-data">${data}</script>
<script>${plotlyInline}</script>
<script>${DRAW_SCRIPT}</script>
</body>
</html>
`;
}

export const REPORT_FORMATS = ['table', 'csv', 'json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export function renderReport(r: SweepReport, format: ReportFormat, table?: Table['name']): string {
  if (format === 'csv') return renderCsv(r, table);
  if (format === 'json') return renderJson(r);
  if (format === 'html') return renderHtml(r);
  return renderText(r);
}
