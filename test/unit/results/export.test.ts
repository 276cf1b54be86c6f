// The export's pure part: documents flattened to dotted columns in a stable order, CSV quoting that
// reads back exactly, JSON lines with non-finite numbers, and streaming that never reads ahead of
// what it has written (so 100,000 rows cost the memory of one).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  flattenDocument,
  orderColumns,
  parseCsv,
  writeCsv,
  writeJsonLines,
  type ExportSink,
} from '../../../results/export.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fromJsonText, toJsonText } from '../../../sbi/json-numbers.js';

/** What a cell should read back as: the value's text, arrays as JSON, null and absent empty. */
function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return toJsonText(v);
  return String(v);
}

/** A full garbage collection, so heap figures count live objects only. */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const HOSTILE = ['a,b', 'say "hi"', 'two\nlines', 'cr\r\nlf', '=1+1', '', ' padded '];

function trialDoc(i: number, name: string): Record<string, unknown> {
  return {
    _id: `t${String(i).padStart(6, '0')}`,
    status: 'completed',
    attempt: 1,
    sweepIds: ['s1', 's2'],
    config: {
      task: 'gaussian_linear',
      estimator: 'maf',
      defense: name,
      beta: 0.01 * i,
      architecture: { hidden: [16, 16] },
      training: { maxEpochs: 3, clipNorm: null },
    },
    summary: { testNll: i === 1 ? NaN : 1.5 + i, epochs: 3 },
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
  };
}

function collect(): ExportSink & { text: () => string } {
  const parts: string[] = [];
  return { write: async (t) => void parts.push(String(t)), text: () => parts.join('') };
}

async function* fromArray<T>(xs: readonly T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

describe('flattening and columns', () => {
  test('nested objects become dotted columns, arrays and Dates stay one cell', () => {
    const row = flattenDocument(trialDoc(2, 'none'));
    assert.equal(row['config.defense'], 'none');
    assert.equal(row['config.training.maxEpochs'], 3);
    assert.equal(row['config.training.clipNorm'], null);
    assert.deepEqual(row['config.architecture.hidden'], [16, 16]);
    assert.equal(row.createdAt, '2026-01-01T00:00:02.000Z');
    assert.ok(!('config' in row));
  });

  test('the column order is fixed by the kind and does not depend on document order', () => {
    const names = Object.keys(flattenDocument(trialDoc(0, 'x')));
    const a = orderColumns('trials', names);
    const b = orderColumns('trials', [...names].reverse());
    assert.deepEqual(a, b);
    assert.deepEqual(a.slice(0, 3), ['_id', 'status', 'attempt']);
    assert.ok(a.indexOf('config.beta') < a.indexOf('summary.testNll'));
    assert.ok(a.indexOf('summary.testNll') < a.indexOf('createdAt'));
  });
});

describe('CSV', () => {
  test('commas, quotes, line breaks and empty strings read back exactly', async () => {
    const docs = HOSTILE.map((name, i) => trialDoc(i, name));
    const sink = collect();
    const stats = await writeCsv('trials', () => fromArray(docs), sink);
    assert.equal(stats.rows, docs.length);
    const [header, ...rows] = parseCsv(sink.text());
    assert.equal(rows.length, docs.length);
    for (const [i, doc] of docs.entries()) {
      const flat = flattenDocument(doc);
      for (const [j, col] of header!.entries()) assert.equal(rows[i]![j], cellText(flat[col]), col);
      assert.equal(rows[i]![header!.indexOf('config.defense')], HOSTILE[i]);
    }
    // NaN is text pandas reads as NaN; arrays are JSON text.
    assert.equal(rows[1]![header!.indexOf('summary.testNll')], 'NaN');
    assert.deepEqual(JSON.parse(rows[0]![header!.indexOf('sweepIds')]!), ['s1', 's2']);
  });

  test('documents with different fields share one header (the union), absent cells empty', async () => {
    const docs = [
      { _id: 'a', x: 1 },
      { _id: 'b', y: { z: 'q' } },
    ];
    const sink = collect();
    await writeCsv('evaluations', () => fromArray(docs), sink);
    assert.deepEqual(parseCsv(sink.text()), [
      ['_id', 'x', 'y.z'],
      ['a', '1', ''],
      ['b', '', 'q'],
    ]);
  });
});

describe('JSON lines', () => {
  test('each document whole, non-finite numbers and Dates as text that reads back', async () => {
    const docs = [trialDoc(1, 'a"b\nc'), trialDoc(2, 'none')];
    const sink = collect();
    await writeJsonLines(fromArray(docs), sink);
    const lines = sink.text().split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 2);
    const back = lines.map((l) => fromJsonText(l) as Record<string, unknown>);
    assert.deepEqual(back[0], {
      ...docs[0],
      createdAt: (docs[0]!.createdAt as Date).toISOString(),
    });
    const summary = (back[0] as Record<string, unknown>).summary as { testNll: number };
    assert.ok(Number.isNaN(summary.testNll));
  });
});

describe('streaming', () => {
  test('100,000 rows: each written before the next is read, the source read twice (header, rows)', async () => {
    const N = 100_000;
    let made = 0;
    let passes = 0;
    async function* source() {
      passes++;
      made = 0;
      for (let i = 0; i < N; i++) {
        made++;
        yield { _id: `e${i}`, trialId: `t${i % 97}`, eps: i / N, kl: { mean: i, median: i / 2 } };
      }
    }
    let written = 0;
    let maxAhead = 0;
    let bytes = 0;
    const sink: ExportSink = {
      write: async (text) => {
        if (written > 0) maxAhead = Math.max(maxAhead, made - written);
        written++;
        bytes += (text as string).length;
      },
    };
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const stats = await writeCsv('evaluations', source, sink);
    gc();
    assert.equal(stats.rows, N);
    assert.equal(passes, 2);
    // The header counts as one write; every row is written as soon as it is read.
    assert.equal(written, N + 1);
    assert.ok(maxAhead <= 1, `read ${maxAhead} rows ahead of the writes`);
    // Nothing accumulates: after a collection the heap holds less than the text written (keeping
    // the rows, as objects or as text, would hold several times more).
    const growth = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(bytes > 3_000_000, `${bytes} bytes`);
    assert.ok(growth < bytes, `heap grew ${growth} bytes for ${bytes} bytes written`);
  });
});
