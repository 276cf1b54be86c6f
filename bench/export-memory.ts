// Peak memory of `robustsbi export` against the size of the sweep: two synthetic sweeps of `small`
// and `large` evaluations (raw documents inserted into a throwaway database), each exported to CSV
// and to JSON lines in a fresh process whose peak RSS (process.resourceUsage().maxRSS) is reported.
// A streaming export has about the same peak for both; one that held the rows would grow with them.
//
//   node dist/bench/export-memory.js [--small 10000] [--large 100000] [--heap-mb M] [--existing]
//
// --heap-mb caps the children's V8 old space (--max-old-space-size): an export that held its rows
// would die of it, a streaming one completes.
//
// Without --existing it starts a private stack (bench/private-stack.ts); with it, it uses the stack
// that MONGODB_URI names.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Config } from '../infra/config.js';
import { loadConfig } from '../infra/config.js';
import { mongoClient } from '../infra/connections.js';
import { evaluationRows } from '../results/export-source.js';
import { writeCsv, writeJsonLines, type ExportSink } from '../results/export.js';
import { ResultStore } from '../results/store.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { withPrivateStack } from './private-stack.js';
import { syntheticEvaluation } from './synthetic-results.js';

const TRIALS_PER_SWEEP = 100;

/** A sweep of `n` evaluations over 100 trials, inserted as raw documents. */
async function seed(store: ResultStore, sweepId: string, n: number): Promise<void> {
  const now = new Date();
  await store.trials.insertMany(
    Array.from({ length: TRIALS_PER_SWEEP }, (_, i) => ({
      _id: `${sweepId}-t${i}`,
      sweepIds: [sweepId],
      status: 'completed',
      config: { task: 'gaussian_linear', defense: 'none', beta: 0, seed: i },
    })),
  );
  const batch = 2000;
  for (let from = 0; from < n; from += batch) {
    const docs = Array.from({ length: Math.min(batch, n - from) }, (_, k) => {
      const i = from + k;
      const e = syntheticEvaluation(`${sweepId}-t${i % TRIALS_PER_SWEEP}`, 'l2pgd', 'rkl', i);
      return { ...e, createdAt: now, updatedAt: now };
    });
    await store.evaluations.insertMany(docs);
  }
}

interface ChildFigures {
  rows: number;
  bytes: number;
  maxRssMb: number;
  seconds: number;
}

/** Run in a fresh process: export one sweep, print the figures as JSON. */
async function child(config: Config, sweepId: string, format: string): Promise<void> {
  const client = mongoClient(config);
  await client.connect();
  try {
    const store = new ResultStore(client.db(config.mongo.db));
    let bytes = 0;
    const sink: ExportSink = { write: async (c) => void (bytes += c.length) };
    const t0 = performance.now();
    const rows = () => evaluationRows(store, sweepId);
    const stats =
      format === 'csv'
        ? await writeCsv('evaluations', rows, sink)
        : await writeJsonLines(rows(), sink);
    const out: ChildFigures = {
      rows: stats.rows,
      bytes,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      seconds: (performance.now() - t0) / 1000,
    };
    console.log(JSON.stringify(out));
  } finally {
    await client.close();
  }
}

async function measure(config: Config, small: number, large: number, heapMb?: number) {
  const client = mongoClient(config);
  await client.connect();
  const db = client.db(config.mongo.db);
  try {
    const store = new ResultStore(db);
    const t0 = performance.now();
    await seed(store, 'small', small);
    await seed(store, 'large', large);
    console.error(
      `seeded ${small + large} evaluations in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    const env = {
      ...process.env,
      MONGODB_URI: config.mongo.uri,
      MONGODB_DB: config.mongo.db,
    };
    const run = (sweepId: string, format: string): ChildFigures => {
      const r = spawnSync(
        process.execPath,
        [
          ...(heapMb !== undefined ? [`--max-old-space-size=${heapMb}`] : []),
          fileURLToPath(import.meta.url),
          '--child',
          sweepId,
          '--format',
          format,
        ],
        { env, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`export child failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildFigures;
    };
    const out: Record<string, { small: ChildFigures; large: ChildFigures; rssRatio: number }> = {};
    for (const format of ['csv', 'jsonl']) {
      const s = run('small', format);
      const l = run('large', format);
      out[format] = { small: s, large: l, rssRatio: l.maxRssMb / s.maxRssMb };
    }
    return out;
  } finally {
    await db.dropDatabase();
    await client.close();
  }
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  if (a.has('child')) {
    await child(loadConfig(process.env), a.get('child')!, a.get('format') ?? 'csv');
    return;
  }
  const small = numberArg(a, 'small', 10_000);
  const large = numberArg(a, 'large', 100_000);
  const heapMb = a.has('heap-mb') ? numberArg(a, 'heap-mb', 64) : undefined;
  const figures = a.has('existing')
    ? await measure(
        {
          ...loadConfig(process.env),
          mongo: { ...loadConfig(process.env).mongo, db: `export_bench_${Date.now()}` },
        },
        small,
        large,
        heapMb,
      )
    : await withPrivateStack('export-memory', (config) => measure(config, small, large, heapMb));
  console.log(JSON.stringify(figures, null, 2));
}

if (isMain(import.meta.url)) await runMain(cli);
