// Per-trial, per-evaluation and per-test-point data of a sweep as CSV or JSON lines, for pandas, R
// or a spreadsheet. Rows stream from an async iterable (a MongoDB cursor, results/export-source.ts)
// to a sink that waits while the output is full, so a sweep of any size exports in the memory of
// one row (plus the cursor's batch). Pure: no MongoDB, no fs.
import { toJsonText } from '../sbi/json-numbers.js';

export const EXPORT_KINDS = ['trials', 'evaluations', 'points'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];
export const EXPORT_FORMATS = ['csv', 'jsonl', 'arrow'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Where the output goes (text, or Arrow's bytes); `write` resolves once the destination can take more. */
export interface ExportSink {
  write(chunk: string | Uint8Array): Promise<void>;
}

/** A cell of a flattened row: a scalar, or an array written as JSON text in one cell. */
export type FlatValue = string | number | boolean | null | readonly unknown[];
export type FlatRow = Record<string, FlatValue>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * A document as one row: nested objects become dotted columns (`config.defense`,
 * `summary.testNll`), Dates ISO text, arrays stay arrays (one cell, JSON text in CSV), undefined
 * is left out. Keys never contain '.' (MongoDB field names here never do), so a dotted name maps
 * back to exactly one path.
 */
export function flattenDocument(
  doc: Record<string, unknown>,
  prefix = '',
  out: FlatRow = {},
): FlatRow {
  for (const [k, v] of Object.entries(doc)) {
    if (v === undefined) continue;
    const key = prefix ? `${prefix}.${k}` : k;
    if (v instanceof Date) out[key] = v.toISOString();
    else if (isPlainObject(v)) flattenDocument(v, key, out);
    else if (Array.isArray(v)) out[key] = v.map((x) => (x instanceof Date ? x.toISOString() : x));
    else out[key] = v as FlatValue;
  }
  return out;
}

/** The columns of a points export: one row per (trial, attack, objective, eps, test point). */
export const POINT_COLUMNS: readonly string[] = [
  'trialId',
  'attack',
  'objective',
  'eps',
  'point',
  'kl',
  'nllAttacked',
  'coverageRank',
  'nllClean',
  'cleanCoverageRank',
  'c2stTruth',
  'klQPTruth',
  'klPQTruth',
];

/** The first top-level fields of each kind, in this order; the rest follow sorted by name. */
const LEADING: Record<ExportKind, readonly string[]> = {
  trials: [
    '_id',
    'status',
    'attempt',
    'config',
    'summary',
    'error',
    'backend',
    'modelArtifact',
    'codeVersion',
    'sweepIds',
    'positions',
    'createdAt',
    'updatedAt',
    'startedAt',
    'endedAt',
  ],
  evaluations: [
    '_id',
    'trialId',
    'attack',
    'objective',
    'eps',
    'epsAbs',
    'epsScale',
    'nTest',
    'kl',
    'nllClean',
    'nllAttacked',
    'nllAttackedSummary',
    'groundTruth',
    'coverageAbsArea',
    'coverage',
    'seconds',
    'createdAt',
    'updatedAt',
  ],
  points: POINT_COLUMNS,
};

/**
 * A stable column order for a set of dotted names: by the rank of the top-level field in the
 * kind's list (unknown fields after, by name), then by the full name. The same set gives the same
 * order whatever order the documents came in.
 */
export function orderColumns(kind: ExportKind, names: Iterable<string>): string[] {
  const lead = LEADING[kind];
  const rank = (n: string) => {
    const i = lead.indexOf(n.split('.')[0]!);
    return i < 0 ? lead.length : i;
  };
  if (kind === 'points') {
    const set = new Set(names);
    return POINT_COLUMNS.filter((c) => set.has(c)).concat(
      [...set].filter((c) => !POINT_COLUMNS.includes(c)).sort(),
    );
  }
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, quotes doubled. Values
 * are written exactly (no spreadsheet-formula guard: the export is data for analysis tools);
 * non-finite numbers as NaN, Infinity, -Infinity (pandas and R read them), null and absent as
 * empty, arrays as JSON text.
 */
export function csvField(v: FlatValue | undefined): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (typeof v === 'number') s = String(v);
  else if (typeof v === 'boolean') s = v ? 'true' : 'false';
  else if (typeof v === 'string') s = v;
  else s = toJsonText(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(columns: readonly string[], row: FlatRow): string {
  return columns.map((c) => csvField(row[c])).join(',') + '\r\n';
}

export interface ExportStats {
  rows: number;
  columns: number;
}

/**
 * Writes rows as JSON lines: each document whole (nested, as stored and decoded), Dates as ISO
 * text, non-finite numbers as "NaN" / "Infinity" / "-Infinity" (sbi/json-numbers.ts' convention).
 */
export async function writeJsonLines(
  rows: AsyncIterable<Record<string, unknown>>,
  sink: ExportSink,
): Promise<ExportStats> {
  let n = 0;
  for await (const doc of rows) {
    await sink.write(toJsonText(doc) + '\n');
    n++;
  }
  return { rows: n, columns: 0 };
}

/**
 * Writes rows as CSV with a header. The columns must be known before the first row, so unless
 * `columns` are given, `rows` is read twice: once for the set of dotted names, once to write.
 * Either pass holds one row at a time.
 */
export async function writeCsv(
  kind: ExportKind,
  rows: () => AsyncIterable<Record<string, unknown>>,
  sink: ExportSink,
  columns?: readonly string[],
): Promise<ExportStats> {
  let cols = columns;
  if (!cols) {
    const names = new Set<string>();
    for await (const doc of rows()) for (const k of Object.keys(flattenDocument(doc))) names.add(k);
    cols = orderColumns(kind, names);
  }
  await sink.write(cols.map((c) => csvField(c)).join(',') + '\r\n');
  let n = 0;
  for await (const doc of rows()) {
    await sink.write(csvLine(cols, flattenDocument(doc)));
    n++;
  }
  return { rows: n, columns: cols.length };
}

/**
 * Reads CSV text back into rows of strings (RFC 4180: quoted fields may hold commas, quotes and
 * line breaks). For tests and round trips; the export itself never parses.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else if (ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
    i++;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
