// Exports on the real stack: a tiny sweep that attacks with noise only and scores fkl only (its
// trade-off is read under those), exported as trials, evaluations and points in CSV and JSON lines
// that read back equal to the stored documents; `robustsbi model get` writes the trial's model,
// which `robustsbi sample` takes. Then the cursors: an export of 2,000 evaluations reads them in
// batches (getMore commands seen on the wire), never all at once.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { flattenDocument, parseCsv, POINT_COLUMNS } from '../../results/export.js';
import { evaluationRows } from '../../results/export-source.js';
import { startDashboard } from '../../results/dashboard/server.js';
import type { EvaluationDoc, TrialDoc } from '../../results/documents.js';
import { ResultStore } from '../../results/store.js';
import { fromJsonText, toJsonText } from '../../sbi/json-numbers.js';
import { expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { robustsbi } from './harness.js';
import {
  NOISE_EVALUATION,
  openSweepTestContext,
  startWorker,
  tinySpec,
  type RunningWorker,
  type SweepTestContext,
} from './sweep-harness.js';

let ctx: SweepTestContext;
let worker: RunningWorker;
let dir: string;

before(async () => {
  ctx = await openSweepTestContext();
  worker = await startWorker(ctx, 2);
  dir = mkdtempSync(join(tmpdir(), 'robustsbi-export-'));
});

after(async () => {
  await worker?.stop();
  await ctx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A value as its CSV cell reads back. */
function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return toJsonText(v);
  return String(v);
}

/** A stored document as a JSON line reads back: Dates as ISO text, non-finite numbers kept. */
function withIsoDates(doc: unknown): unknown {
  return fromJsonText(toJsonText(doc));
}

function cli(args: string[]) {
  const r = robustsbi(args, process.env);
  assert.equal(r.code, 0, `robustsbi ${args.join(' ')}: ${r.stderr}`);
  return r;
}

describe('robustsbi export and model get', () => {
  test(
    'a noise/fkl sweep: its front, every export kind, and its model sampled',
    { timeout: 300_000 },
    async () => {
      const spec = tinySpec({
        name: 'export "quoted", with commas <script>alert(1)</script>',
        defenses: [{ name: 'none' }],
        evaluation: {
          ...NOISE_EVALUATION,
          objectives: ['fkl'],
          eps: [0.5, 1],
          metrics: ['sbc', 'c2st'],
          sbc: { pairs: 20, samples: 19, bins: 4 },
        },
      });
      const [trial] = expandSweep(spec);
      const sweepId = sweepIdOf(spec);
      await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
      const final = await waitForSweep(ctx.client, sweepId, () => {}, 500);
      assert.equal(final.state, 'completed');

      // The front is read under the attack and objective the spec evaluates.
      const tradeoff = (await ctx.store.listCurves(sweepId)).find((c) => c.kind === 'tradeoff');
      assert.ok(tradeoff && tradeoff.kind === 'tradeoff');
      assert.deepEqual([tradeoff.attack, tradeoff.objective, tradeoff.eps], ['noise', 'fkl', 1]);
      assert.equal(tradeoff.points.length, 1);
      assert.deepEqual(tradeoff.missing, []);

      const storedTrials = (await ctx.store.listTrials(sweepId)) as unknown as Record<
        string,
        unknown
      >[];
      const storedEvals = (await ctx.store.listEvaluations({ sweepId })) as unknown as Record<
        string,
        unknown
      >[];
      assert.equal(storedEvals.length, 2);

      // Diagnostics: on the evaluation of the first (attack, eps) only; the summary has their numbers.
      const first = storedEvals.find((e) => e.eps === 0.5) as unknown as EvaluationDoc;
      const other = storedEvals.find((e) => e.eps === 1) as unknown as EvaluationDoc;
      assert.equal(other.diagnostics, undefined);
      const d = first.diagnostics!;
      assert.deepEqual([d.sbc!.pairs, d.sbc!.samples, d.sbc!.bins], [20, 19, 4]);
      assert.equal(d.sbc!.pValues.length, 10);
      assert.equal(d.sbc!.histogram.length, 40);
      assert.equal(
        d.sbc!.histogram.slice(0, 4).reduce((a, b) => a + b, 0),
        20,
      );
      // gaussian_linear: the evaluation's Bayes-optimal C2ST, not a classifier's.
      assert.deepEqual([d.c2st!.method, d.c2st!.value], ['bayes-optimal', first.groundTruth!.c2st]);
      const summary = (storedTrials[0] as unknown as TrialDoc).summary!;
      assert.equal(summary.c2st, d.c2st!.value);
      assert.equal(summary.sbcMinP, d.sbc!.minPValue);
      // The report's diagnostics table: one row per theta dimension.
      const table = parseCsv(
        cli(['report', sweepId, '--format', 'csv', '--table', 'diagnostics']).stdout,
      );
      assert.equal(table.length, 1 + 10);
      const pCol = table[0]!.indexOf('sbcP');
      assert.equal(Number(table[1]![pCol]), d.sbc!.pValues[0]);
      // The dashboard: JSON, and a page of its own with the sweep's name escaped.
      const dash = await startDashboard({ store: ctx.store, port: 0 });
      try {
        const api = (await (
          await fetch(`${dash.url}api/sweeps/${sweepId}/diagnostics`)
        ).json()) as { trials: { trialId: string }[] };
        assert.deepEqual(
          api.trials.map((t) => t.trialId),
          [trial!.trialId],
        );
        const html = await (await fetch(`${dash.url}sweeps/${sweepId}/diagnostics`)).text();
        assert.ok(!html.includes('<script>'), 'the hostile name is escaped');
        assert.match(html, /&lt;script&gt;/);
        assert.equal((html.match(/<figure>/g) ?? []).length, 10);
        assert.equal((await fetch(`${dash.url}sweeps/nope/diagnostics`)).status, 404);
      } finally {
        await dash.close();
      }

      for (const [what, stored] of [
        ['trials', storedTrials],
        ['evaluations', storedEvals],
      ] as const) {
        // JSON lines: each line is the stored document, Dates as ISO text.
        const jsonl = cli(['export', sweepId, '--what', what, '--format', 'jsonl']).stdout;
        // Rows come in the server's order: compare by _id.
        const byId = (a: unknown, b: unknown) =>
          String((a as { _id: string })._id) < String((b as { _id: string })._id) ? -1 : 1;
        const docs = jsonl
          .trimEnd()
          .split('\n')
          .map((l) => fromJsonText(l))
          .sort(byId);
        assert.deepEqual(docs, stored.map((d) => withIsoDates(d)).sort(byId), what);
        // CSV to a file: one row per document, each cell the flattened stored value.
        const out = join(dir, `${what}.csv`);
        cli(['export', sweepId, '--what', what, '--out', out]);
        const [header, ...rows] = parseCsv(readFileSync(out, 'utf8'));
        assert.equal(rows.length, stored.length, what);
        const idCol = header!.indexOf('_id');
        for (const d of stored) {
          const i = rows.findIndex((r) => r[idCol] === d._id);
          assert.ok(i >= 0, `${what} ${String(d._id)} exported`);
          const flat = flattenDocument(d);
          for (const [j, col] of header!.entries())
            assert.equal(rows[i]![j], cellText(flat[col]), `${what} ${col}`);
        }
        assert.ok(header!.includes(what === 'trials' ? 'config.defense' : 'kl.mean'));
      }

      // Arrow: the evaluations as an IPC stream that apache-arrow reads back.
      const arrowFile = join(dir, 'evaluations.arrow');
      cli(['export', sweepId, '--what', 'evaluations', '--format', 'arrow', '--out', arrowFile]);
      const arrow = (await import('apache-arrow' as string)) as {
        tableFromIPC(b: Uint8Array): {
          numRows: number;
          getChild(n: string): { get(i: number): unknown } | null;
        };
      };
      const t = arrow.tableFromIPC(readFileSync(arrowFile));
      assert.equal(t.numRows, storedEvals.length);
      assert.deepEqual(
        [0, 1].map((i) => t.getChild('kl.mean')!.get(i) as number).sort(),
        storedEvals.map((e) => (e as { kl: { mean: number } }).kl.mean).sort(),
      );

      // Points: 20 test points x 2 eps x 1 objective, each row's KL among the stored chunk values.
      const points = parseCsv(cli(['export', sweepId, '--what', 'points']).stdout);
      assert.deepEqual(points[0], [...POINT_COLUMNS]);
      assert.equal(points.length - 1, 2 * NOISE_EVALUATION.nTest);
      const col = (c: string) => POINT_COLUMNS.indexOf(c);
      const at1 = points.slice(1).filter((r) => r[col('eps')] === '1');
      assert.deepEqual(
        at1.map((r) => Number(r[col('point')])),
        Array.from({ length: 20 }, (_, i) => i),
      );
      // The mean of the exported per-point KL is the stored evaluation's mean KL.
      const e1 = storedEvals.find((e) => e.eps === 1) as { kl: { mean: number } };
      const meanKl = at1.reduce((s, r) => s + Number(r[col('kl')]), 0) / at1.length;
      assert.ok(Math.abs(meanKl - e1.kl.mean) <= 1e-9 * Math.max(1, Math.abs(e1.kl.mean)));
      // gaussian_linear has an analytic posterior: each point carries its ground-truth C2ST.
      assert.ok(at1.every((r) => Number(r[col('c2stTruth')]) >= 0));

      // model get, then sample: the file is the stored model, and sampling it is seeded.
      const model = join(dir, 'm.json');
      cli(['model', 'get', trial!.trialId, '--out', model]);
      const doc = await ctx.store.getTrial(trial!.trialId);
      assert.deepEqual(
        new Uint8Array(readFileSync(model)),
        await ctx.artifacts.get(doc!.modelArtifact!),
      );
      const x = '[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0]';
      const sample = (seed: string) =>
        cli(['sample', '--model', model, '--x', x, '--n', '5', '--seed', seed]).stdout;
      const a = sample('3');
      assert.equal(a, sample('3'));
      assert.notEqual(a, sample('4'));
      const lines = a.trimEnd().split('\n');
      assert.equal(lines.length, 6);
      assert.equal(lines[1]!.split(',').length, 10);

      // Mistakes are one sentence and a non-zero exit.
      const bad = robustsbi(['export', sweepId, '--what', 'nope'], process.env);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /--what must be one of trials, evaluations, points/);
      const none = robustsbi(['model', 'get', 'no-such-trial', '--out', model], process.env);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /No trial with ID no-such-trial/);
    },
  );

  test(
    'an export of 2,000 evaluations reads them in cursor batches',
    { timeout: 120_000 },
    async () => {
      // A database of its own with raw documents: only the reading side is under test.
      const client = new MongoClient(ctx.config.mongo.uri, { monitorCommands: true });
      await client.connect();
      const db = client.db(`${ctx.config.mongo.db}_export_${Date.now()}`);
      try {
        const store = new ResultStore(db);
        const trials = Array.from({ length: 10 }, (_, i) => ({ _id: `t${i}`, sweepIds: ['s'] }));
        await store.trials.insertMany(trials);
        const evals = Array.from({ length: 2000 }, (_, i) => ({
          _id: `e${String(i).padStart(5, '0')}`,
          trialId: `t${i % 10}`,
          attack: 'noise',
          eps: i,
          kl: { mean: i / 7 },
        }));
        for (let i = 0; i < evals.length; i += 500)
          await store.evaluations.insertMany(evals.slice(i, i + 500));
        let getMores = 0;
        let largestBatch = 0;
        client.on('commandStarted', (e) => {
          if (e.commandName === 'getMore') getMores++;
        });
        client.on('commandSucceeded', (e) => {
          const c = (e.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } })
            .cursor;
          const n = (c?.firstBatch ?? c?.nextBatch ?? []).length;
          largestBatch = Math.max(largestBatch, n);
        });
        let n = 0;
        for await (const d of evaluationRows(store, 's', { batchSize: 100, idBatch: 5 })) {
          assert.equal(typeof d._id, 'string');
          n++;
        }
        assert.equal(n, 2000);
        assert.ok(largestBatch <= 100, `a batch of ${largestBatch} documents`);
        // Two $in queries of 1,000 evaluations each, read 100 at a time.
        assert.ok(getMores >= 18, `${getMores} getMore commands`);
      } finally {
        await db.dropDatabase();
        await client.close();
      }
    },
  );
});
