// A sweep's accuracy diagnostics (spec evaluation.metrics: SBC and C2ST, sbi/diagnostics.ts) for the
// report and the dashboard: read from the evaluations that carry them (one trial's first
// (attack, eps)), one row per trial, and as a table with one row per trial and theta dimension whose
// rank histogram is written as counts and as a bar of block characters.
import type { Diagnostics } from '../sbi/diagnostics.js';
import type { TrialDoc } from './documents.js';
import { escapeHtml } from './html.js';
import { decodeDocument } from './nonfinite.js';
import type { ResultStore } from './store.js';

export interface TrialDiagnostics {
  trialId: string;
  task: string;
  estimator: string;
  defense: string;
  beta: number;
  trainEps?: number;
  budget: number;
  seed: number;
  diagnostics: Diagnostics;
}

type TrialKey = Pick<TrialDoc, '_id' | 'config'>;

/** One row per trial that has diagnostics, in the order of `trials`. */
export function trialDiagnostics(
  trials: readonly TrialKey[],
  evaluations: readonly { trialId: string; diagnostics?: Diagnostics }[],
): TrialDiagnostics[] {
  const byTrial = new Map<string, Diagnostics>();
  for (const e of evaluations)
    if (e.diagnostics && !byTrial.has(e.trialId)) byTrial.set(e.trialId, e.diagnostics);
  return trials.flatMap((t) => {
    const d = byTrial.get(t._id);
    if (!d) return [];
    return [
      {
        trialId: t._id,
        task: t.config.task,
        estimator: t.config.estimator,
        defense: t.config.defense,
        beta: t.config.beta,
        ...(t.config.trainEps !== undefined ? { trainEps: t.config.trainEps } : {}),
        budget: t.config.budget,
        seed: t.config.seed,
        diagnostics: d,
      },
    ];
  });
}

/** The sweep's diagnostics, read from MongoDB (only the evaluations that carry them). */
export async function loadDiagnostics(
  store: ResultStore,
  sweepId: string,
): Promise<TrialDiagnostics[]> {
  const trials = await store.listTrials(sweepId);
  if (trials.length === 0) return [];
  const docs = await store.evaluations
    .find(
      { trialId: { $in: trials.map((t) => t._id) }, diagnostics: { $exists: true } },
      { projection: { trialId: 1, diagnostics: 1, nonFinite: 1 } },
    )
    .toArray();
  const evaluations = docs.map((d) =>
    decodeDocument<{ trialId: string; diagnostics?: Diagnostics }>(d),
  );
  return trialDiagnostics(trials, evaluations);
}

const BARS = '▁▂▃▄▅▆▇█';

/** A histogram as block characters scaled to its largest bin ("▁▃█▅"). */
export function sparkline(counts: readonly number[]): string {
  const max = Math.max(...counts, 0);
  return counts
    .map((c) => (max > 0 ? BARS[Math.min(7, Math.floor((c / max) * 7.999))]! : BARS[0]!))
    .join('');
}

/** report.ts' Table, spelled out here so that report.ts can import this module without a cycle. */
export interface DiagnosticsTable {
  name: 'diagnostics';
  title: string;
  columns: string[];
  rows: (string | number | boolean | null)[][];
}

/** One row per (trial, theta dimension); C2ST repeated on each row of its trial. */
export function diagnosticsTable(rows: readonly TrialDiagnostics[]): DiagnosticsTable {
  const table: DiagnosticsTable = {
    name: 'diagnostics',
    title:
      'Diagnostics on the clean test set: C2ST (0.5 = indistinguishable from the reference posterior) and SBC per theta dimension (chi-square p-value of the ranks; a U shape = over-confident, a hump = under-confident)',
    columns: [
      'task',
      'defense',
      'beta',
      'trainEps',
      'estimator',
      'budget',
      'seed',
      'c2st',
      'c2stMethod',
      'dim',
      'sbcP',
      'sbcRanks',
      'sbcHistogram',
      'trialId',
    ],
    rows: [],
  };
  for (const r of rows) {
    const key = [
      r.task,
      r.defense,
      r.beta,
      r.trainEps ?? null,
      r.estimator,
      r.budget,
      r.seed,
      r.diagnostics.c2st?.value ?? null,
      r.diagnostics.c2st?.method ?? null,
    ];
    const s = r.diagnostics.sbc;
    if (!s) {
      table.rows.push([...key, null, null, null, null, r.trialId]);
      continue;
    }
    s.pValues.forEach((p, d) => {
      const counts = s.histogram.slice(d * s.bins, (d + 1) * s.bins);
      table.rows.push([...key, d, p, sparkline(counts), counts.join(' '), r.trialId]);
    });
  }
  return table;
}

/** One trial's SBC rank histograms as inline SVG bars (no script), for the dashboard's page. */
export function histogramSvg(counts: readonly number[], width = 120, height = 32): string {
  const max = Math.max(...counts, 1);
  const w = width / counts.length;
  const bars = counts
    .map((c, i) => {
      const h = (c / max) * (height - 2);
      return `<rect x="${(i * w + 0.5).toFixed(1)}" y="${(height - h).toFixed(1)}" width="${Math.max(1, w - 1).toFixed(1)}" height="${h.toFixed(1)}"/>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(counts.join(' '))}" fill="#4c78a8">${bars}</svg>`;
}
