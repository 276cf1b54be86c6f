// `robustsbi export --format arrow`: the rows as an Apache Arrow IPC stream (pyarrow.ipc.open_stream,
// pandas via pyarrow, R's arrow::read_ipc_stream), written a record batch at a time through the
// npm package apache-arrow. Columns as in the CSV (dotted names, the same order), typed from the
// values: float64 for numbers, bool, utf8 for text and for arrays (JSON text); a column whose values
// disagree is utf8. Like the CSV, the rows are read twice: once for the columns and their types.
import { toJsonText } from '../sbi/json-numbers.js';
import {
  flattenDocument,
  orderColumns,
  type ExportKind,
  type ExportSink,
  type ExportStats,
  type FlatValue,
} from './export.js';

/** The part of apache-arrow's API used here (loaded at run time, so nothing else needs it). */
interface ArrowType {
  readonly typeId: number;
}
interface ArrowApi {
  Field: new (name: string, type: ArrowType, nullable: boolean) => unknown;
  Schema: new (fields: unknown[]) => { fields: unknown[] };
  Float64: new () => ArrowType;
  Bool: new () => ArrowType;
  Utf8: new () => ArrowType;
  Struct: new (fields: unknown[]) => ArrowType;
  vectorFromArray(values: unknown[], type: ArrowType): { data: unknown[] };
  makeData(props: {
    type: ArrowType;
    length: number;
    nullCount: number;
    children: unknown[];
  }): unknown;
  RecordBatch: new (schema: unknown, data?: unknown) => unknown;
  RecordBatchStreamWriter: new () => {
    write(batch: unknown): void;
    finish(): unknown;
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
  };
}

const PACKAGE = 'apache-arrow';

/** apache-arrow, or one sentence saying how to get it. */
export async function loadArrow(): Promise<ArrowApi> {
  try {
    return (await import(PACKAGE)) as ArrowApi;
  } catch {
    throw new Error(
      'The arrow format needs the npm package apache-arrow, which is not installed here; run "npm install" in the robustsbi folder.',
    );
  }
}

type CellType = 'number' | 'boolean' | 'string';

function cellType(v: FlatValue): CellType | undefined {
  if (v === null) return undefined;
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'boolean';
  return 'string';
}

function cellValue(v: FlatValue | undefined, type: CellType): unknown {
  if (v === null || v === undefined) return null;
  if (type === 'string') {
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return toJsonText(v);
    return String(v);
  }
  return v;
}

/** Rows per record batch: big enough for columnar speed, small enough to keep memory flat. */
export const ARROW_BATCH_ROWS = 8192;

export async function writeArrow(
  kind: ExportKind,
  rows: () => AsyncIterable<Record<string, unknown>>,
  sink: ExportSink,
  batchRows = ARROW_BATCH_ROWS,
): Promise<ExportStats> {
  const arrow = await loadArrow();
  const types = new Map<string, CellType | undefined>();
  for await (const doc of rows()) {
    for (const [k, v] of Object.entries(flattenDocument(doc))) {
      const t = cellType(v);
      const prev = types.get(k);
      types.set(k, prev === undefined ? t : t === undefined || t === prev ? prev : 'string');
    }
  }
  const columns = orderColumns(kind, types.keys());
  const colTypes = columns.map((c) => types.get(c) ?? 'string');
  const arrowType = (t: CellType) =>
    t === 'number' ? new arrow.Float64() : t === 'boolean' ? new arrow.Bool() : new arrow.Utf8();
  const fields = columns.map((c, i) => new arrow.Field(c, arrowType(colTypes[i]!), true));
  const schema = new arrow.Schema(fields);

  const writer = new arrow.RecordBatchStreamWriter();
  // The writer's bytes go to the sink as they come, so at most a batch is held.
  const pump = (async () => {
    for await (const chunk of writer) await sink.write(chunk);
  })();
  const buffers = columns.map(() => [] as unknown[]);
  let pending = 0;
  let n = 0;
  let batches = 0;
  const flush = () => {
    const children = columns.map(
      (_, i) => arrow.vectorFromArray(buffers[i]!, arrowType(colTypes[i]!)).data[0],
    );
    const data = arrow.makeData({
      type: new arrow.Struct(schema.fields),
      length: pending,
      nullCount: 0,
      children,
    });
    writer.write(new arrow.RecordBatch(schema, data));
    for (const b of buffers) b.length = 0;
    pending = 0;
    batches++;
  };
  try {
    for await (const doc of rows()) {
      const flat = flattenDocument(doc);
      columns.forEach((c, i) => buffers[i]!.push(cellValue(flat[c], colTypes[i]!)));
      pending++;
      n++;
      if (pending >= batchRows) {
        flush();
        // Let the pump hand the batch's bytes to the sink before reading on.
        await new Promise((r) => setImmediate(r));
      }
    }
    if (pending > 0 || batches === 0) flush();
  } finally {
    writer.finish();
    await pump;
  }
  return { rows: n, columns: columns.length };
}
