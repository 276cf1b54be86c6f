// The dashboard's diagnostics of a sweep (SBC rank histograms and p-values, C2ST), kept apart from
// page.ts and server.ts: GET /api/sweeps/<id>/diagnostics answers JSON, and
// GET /sweeps/<id>/diagnostics a page of its own (server-rendered, no script, every database
// string escaped) with each trial's rank histograms as inline SVG bars.
import { loadDiagnostics, histogramSvg, type TrialDiagnostics } from '../diagnostics.js';
import { escapeHtml } from '../html.js';
import type { ResultStore } from '../store.js';

export type DiagnosticsAnswer =
  { kind: 'json'; status: number; body: unknown } | { kind: 'html'; status: number; body: string };

const ROUTE = /^\/(api\/)?sweeps\/([^/]+)\/diagnostics$/;
const SWEEP_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The answer for `path`, or undefined when the path is not this module's. */
export async function diagnosticsRoute(
  store: ResultStore,
  path: string,
): Promise<DiagnosticsAnswer | undefined> {
  const m = ROUTE.exec(path);
  if (!m) return undefined;
  const api = m[1] !== undefined;
  let id: string;
  try {
    id = decodeURIComponent(m[2]!);
  } catch {
    id = '';
  }
  const sweep = SWEEP_ID.test(id) ? await store.getSweep(id) : null;
  if (!sweep)
    return api
      ? { kind: 'json', status: 404, body: { error: 'No sweep with this ID.' } }
      : { kind: 'html', status: 404, body: page('Not found', '<p>No sweep with this ID.</p>') };
  const rows = await loadDiagnostics(store, id);
  if (api) return { kind: 'json', status: 200, body: { sweep: id, trials: rows } };
  return { kind: 'html', status: 200, body: page(`Diagnostics of ${sweep.name}`, section(rows)) };
}

const fmt = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined || !Number.isFinite(v)
    ? '-'
    : Math.abs(v) < 1e-3 && v !== 0
      ? v.toExponential(1)
      : v.toFixed(digits);

function section(rows: readonly TrialDiagnostics[]): string {
  if (rows.length === 0)
    return '<p>No diagnostics are stored for this sweep: its spec lists no evaluation.metrics (c2st, sbc), or no trial has been evaluated yet.</p>';
  const body = rows
    .map((r) => {
      const s = r.diagnostics.sbc;
      const hists = s
        ? s.pValues
            .map(
              (p, d) =>
                `<figure><figcaption>θ${d} p=${escapeHtml(fmt(p))}</figcaption>${histogramSvg(s.histogram.slice(d * s.bins, (d + 1) * s.bins))}</figure>`,
            )
            .join('')
        : '-';
      return `<tr data-trial="${escapeHtml(r.trialId)}"><td class="s">${escapeHtml(r.task)}</td><td class="s">${escapeHtml(r.defense)}</td><td>${escapeHtml(String(r.beta))}</td><td class="s">${escapeHtml(r.estimator)}</td><td>${escapeHtml(String(r.budget))}</td><td>${escapeHtml(String(r.seed))}</td><td>${escapeHtml(fmt(r.diagnostics.c2st?.value))}</td><td>${escapeHtml(fmt(s?.minPValue))}</td><td class="h">${hists}</td><td class="s">${escapeHtml(r.trialId)}</td></tr>`;
    })
    .join('\n');
  return `<p>C2ST: 0.5 is indistinguishable from the reference posterior. SBC: the rank of the true θ among the posterior draws, per dimension; uniform when calibrated (p is the chi-square test's), a U shape when over-confident, a hump when under-confident.</p>
<table><thead><tr><th>task</th><th>defense</th><th>beta</th><th>estimator</th><th>N</th><th>seed</th><th>C2ST</th><th>min SBC p</th><th>SBC rank histograms</th><th>trial</th></tr></thead>
<tbody>${body}</tbody></table>`;
}

function page(title: string, content: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}td.s{text-align:left}
td.h{text-align:left}figure{display:inline-block;margin:0 6px 4px 0}figcaption{font-size:11px;color:#555}</style>
</head><body><h1>${escapeHtml(title)}</h1>
<p><a href="/">Dashboard</a></p>
${content}
</body></html>
`;
}
