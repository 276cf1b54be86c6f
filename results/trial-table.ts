// The dashboard's trial table, pure: a trial and its evaluations become one flat row of cells
// (every config field, status, attempts, duration, summary metrics, mean KL at each attack x
// objective x eps, tags), and a query parsed from the URL (filters, sort, page) is applied to the
// rows on the server, so a sweep of thousands of trials sends one page at a time.
import type { EvaluationDoc, TrialDoc } from './documents.js';

export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

export interface Column {
  key: string;
  /** Whether its cells are numbers (sorted and compared as numbers). */
  numeric: boolean;
  /** Whether it takes more than one value over the sweep (the page hides constant config columns). */
  varies: boolean;
}

export const FILTER_OPS = ['!=', '<=', '>=', '=', '<', '>', '~'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export interface Filter {
  column: string;
  op: FilterOp;
  value: string;
}

export interface TableQuery {
  filters: Filter[];
  sort: string;
  dir: 'asc' | 'desc';
  page: number;
  size: number;
}

export const MAX_PAGE_SIZE = 5000;
export const DEFAULT_PAGE_SIZE = 50;

/** The column of the mean KL under one attack x objective x eps. */
export function klColumn(attack: string, objective: string, eps: number): string {
  return `kl.${attack}.${objective}@${eps}`;
}

/** Nested config objects become dotted keys; arrays become their JSON text. */
export function flattenConfig(value: Record<string, unknown>, prefix = 'config.'): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(value)) {
    const key = prefix + k;
    if (v === null || v === undefined) out[key] = null;
    else if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[key] = v;
    else if (Array.isArray(v)) out[key] = JSON.stringify(v);
    else if (typeof v === 'object')
      Object.assign(out, flattenConfig(v as Record<string, unknown>, `${key}.`));
    else out[key] = String(v);
  }
  return out;
}

const finite = (x: number | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;

/** One trial's row (without tags: those are merged per request, see withTags). */
export function trialRow(
  trial: TrialDoc,
  evaluations: readonly Pick<EvaluationDoc, 'attack' | 'objective' | 'eps' | 'kl'>[],
  index: number,
): Row {
  const s = trial.summary;
  const duration =
    trial.startedAt && trial.endedAt
      ? (trial.endedAt.getTime() - trial.startedAt.getTime()) / 1000
      : null;
  const row: Row = {
    id: trial._id,
    index,
    status: trial.status,
    attempt: trial.attempt,
    duration,
    ...flattenConfig(trial.config),
    testNll: finite(s?.testNll),
    valLoss: finite(s?.valLoss),
    epochs: finite(s?.epochs),
    trainSeconds: finite(s?.trainSeconds),
    error: trial.error ? `${trial.error.type}: ${trial.error.message}` : null,
  };
  for (const [k, v] of Object.entries(s ?? {})) {
    if (!(k in row) && typeof v === 'number') row[k] = finite(v);
  }
  for (const e of evaluations) row[klColumn(e.attack, e.objective, e.eps)] = finite(e.kl.mean);
  return row;
}

/** The rows with each trial's tags as `tag.KEY` cells. */
export function withTags(
  rows: readonly Row[],
  tags: ReadonlyMap<string, Record<string, string>>,
): Row[] {
  return rows.map((r) => {
    const t = tags.get(String(r.id));
    if (!t) return r;
    const out = { ...r };
    for (const [k, v] of Object.entries(t)) out[`tag.${k}`] = v;
    return out;
  });
}

const FIRST = ['id', 'index', 'status', 'attempt', 'duration'];

/** Every column any row has: identity first, then config, metrics, KL, tags; numeric when no cell is text. */
export function columnsOf(rows: readonly Row[]): Column[] {
  const seen = new Map<string, { numeric: boolean; values: Set<string> }>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      let c = seen.get(k);
      if (!c) seen.set(k, (c = { numeric: true, values: new Set() }));
      if (v !== null && typeof v !== 'number') c.numeric = false;
      if (c.values.size < 2) c.values.add(JSON.stringify(v));
    }
  }
  // Columns missing from some rows vary too (an empty cell against a value).
  for (const [k, c] of seen) if (rows.some((r) => !(k in r))) c.values.add('missing');
  const group = (k: string) =>
    FIRST.includes(k)
      ? 0
      : k.startsWith('config.')
        ? 1
        : k.startsWith('kl.')
          ? 3
          : k.startsWith('tag.')
            ? 4
            : k === 'error'
              ? 5
              : 2;
  return [...seen.entries()]
    .map(([key, c]) => ({ key, numeric: c.numeric, varies: c.values.size > 1 }))
    .sort((a, b) => {
      const g = group(a.key) - group(b.key);
      if (g !== 0) return g;
      if (group(a.key) === 0) return FIRST.indexOf(a.key) - FIRST.indexOf(b.key);
      return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    });
}

export class QueryError extends Error {}

/** One filter from its URL form COLUMN OP VALUE, e.g. `config.defense=fim`, `testNll<3`, `tag.note~x`. */
export function parseFilter(text: string): Filter {
  const m = /^([A-Za-z0-9_.@:/-]+?)(!=|<=|>=|=|<|>|~)(.*)$/s.exec(text);
  if (!m)
    throw new QueryError(
      `The filter "${text}" is not COLUMN OP VALUE with OP one of ${FILTER_OPS.join(' ')}.`,
    );
  return { column: m[1]!, op: m[2] as FilterOp, value: m[3]! };
}

function positiveInt(name: string, text: string | null, fallback: number, max: number): number {
  if (text === null || text === '') return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new QueryError(`${name} must be a positive integer (got "${text}").`);
  return Math.min(Number(text), max);
}

/** The query of `?f=...&f=...&sort=COL&dir=asc|desc&page=N&size=N`. */
export function parseTableQuery(params: URLSearchParams): TableQuery {
  const dir = params.get('dir') ?? 'asc';
  if (dir !== 'asc' && dir !== 'desc')
    throw new QueryError(`dir must be asc or desc (got "${dir}").`);
  const sort = params.get('sort') || 'index';
  if (!/^[A-Za-z0-9_.@:/-]{1,200}$/.test(sort))
    throw new QueryError(`sort must name a column (got "${sort}").`);
  return {
    filters: params
      .getAll('f')
      .filter((f) => f !== '')
      .map(parseFilter),
    sort,
    dir,
    page: positiveInt('page', params.get('page'), 1, 1_000_000),
    size: positiveInt('size', params.get('size'), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
  };
}

function asNumber(v: Cell): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/** Whether a cell passes a filter: numbers compare as numbers when both sides are numbers. */
export function matches(cell: Cell | undefined, f: Filter): boolean {
  const text = cell === null || cell === undefined ? '' : String(cell);
  if (f.op === '~') return text.toLowerCase().includes(f.value.toLowerCase());
  const a = asNumber(cell ?? null);
  const b = asNumber(f.value);
  const numeric = a !== null && b !== null;
  const cmp = numeric ? a - b : text < f.value ? -1 : text > f.value ? 1 : 0;
  switch (f.op) {
    case '=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '<':
      return (numeric || text !== '') && cmp < 0;
    case '<=':
      return (numeric || text !== '') && cmp <= 0;
    case '>':
      return cmp > 0;
    case '>=':
      return cmp >= 0;
  }
}

/** Empty cells sort last in either direction; numbers before text. */
export function compareCells(a: Cell | undefined, b: Cell | undefined): number {
  const ea = a === null || a === undefined;
  const eb = b === null || b === undefined;
  if (ea || eb) return ea === eb ? 0 : ea ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

export interface TablePage {
  /** Rows in the sweep. */
  total: number;
  /** Rows passing the filters. */
  matched: number;
  page: number;
  pages: number;
  size: number;
  rows: Row[];
}

/** Filters, sorts (stably, ties by index) and cuts one page. */
export function applyTableQuery(rows: readonly Row[], q: TableQuery): TablePage {
  const kept = rows.filter((r) => q.filters.every((f) => matches(r[f.column], f)));
  const sign = q.dir === 'desc' ? -1 : 1;
  const sorted = kept
    .map((r, i) => ({ r, i }))
    .sort((x, y) => {
      const ex = x.r[q.sort] === null || x.r[q.sort] === undefined;
      const ey = y.r[q.sort] === null || y.r[q.sort] === undefined;
      // Empty cells stay last whatever the direction.
      const c =
        ex || ey
          ? compareCells(x.r[q.sort], y.r[q.sort])
          : sign * compareCells(x.r[q.sort], y.r[q.sort]);
      return c !== 0 ? c : x.i - y.i;
    })
    .map((x) => x.r);
  const pages = Math.max(1, Math.ceil(sorted.length / q.size));
  const page = Math.min(q.page, pages);
  return {
    total: rows.length,
    matched: sorted.length,
    page,
    pages,
    size: q.size,
    rows: sorted.slice((page - 1) * q.size, page * q.size),
  };
}
