// The Arrow export reads back with apache-arrow itself: the CSV's columns in its order, typed
// float64 / bool / utf8, nulls where a document lacks a field, arrays as JSON text, and record
// batches of at most the batch size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeArrow } from '../../../results/export-arrow.js';
import { flattenDocument, orderColumns } from '../../../results/export.js';

async function* fromArray<T>(xs: readonly T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

test('an Arrow IPC stream of typed columns, read back by apache-arrow', async () => {
  const docs = Array.from({ length: 25 }, (_, i) => ({
    _id: `e${i}`,
    trialId: i % 2 ? 'a,"b"\nc' : 't',
    eps: i / 4,
    kl: { mean: i === 3 ? NaN : i * 1.5, median: i },
    ...(i % 5 === 0 ? { groundTruth: { c2st: 0.5 + i / 100 } } : {}),
    coverage: { levels: [0, 0.5, 1] },
    guarded: i % 3 === 0,
  }));
  const chunks: Uint8Array[] = [];
  const stats = await writeArrow(
    'evaluations',
    () => fromArray(docs),
    { write: async (c) => void chunks.push(c as Uint8Array) },
    10,
  );
  assert.equal(stats.rows, 25);
  const arrow = (await import('apache-arrow' as string)) as {
    tableFromIPC(bytes: Uint8Array): {
      numRows: number;
      batches: { numRows: number }[];
      schema: { fields: { name: string; type: { toString(): string } }[] };
      getChild(name: string): { toArray(): ArrayLike<unknown>; get(i: number): unknown } | null;
    };
  };
  const table = arrow.tableFromIPC(Buffer.concat(chunks));
  assert.equal(table.numRows, 25);
  assert.deepEqual(
    table.batches.map((b) => b.numRows),
    [10, 10, 5],
  );
  const names = new Set(docs.flatMap((d) => Object.keys(flattenDocument(d))));
  assert.deepEqual(
    table.schema.fields.map((f) => f.name),
    orderColumns('evaluations', names),
  );
  const type = (n: string) => table.schema.fields.find((f) => f.name === n)!.type.toString();
  assert.equal(type('eps'), 'Float64');
  assert.equal(type('guarded'), 'Bool');
  assert.equal(type('trialId'), 'Utf8');
  assert.equal(type('coverage.levels'), 'Utf8');
  assert.equal(table.getChild('trialId')!.get(1), 'a,"b"\nc');
  assert.ok(Number.isNaN(table.getChild('kl.mean')!.get(3)));
  assert.equal(table.getChild('groundTruth.c2st')!.get(1), null);
  assert.equal(table.getChild('groundTruth.c2st')!.get(5), 0.55);
  assert.equal(table.getChild('coverage.levels')!.get(0), '[0,0.5,1]');
  assert.equal(table.getChild('guarded')!.get(3), true);
});
