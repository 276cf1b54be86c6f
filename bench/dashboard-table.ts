// The dashboard's trial table on a large sweep, on a private stack (bench/private-stack.ts): the
// first page of /api/sweeps/ID/table (rows built from the trials and evaluations), later pages
// (filtered and sorted on the server from the rows kept per sweep state), against the baseline of
// /api/sweeps/ID/trials, which sends every trial at once. Times are medians of `repeats` requests.
//
//   node --import tsx bench/dashboard-table.ts [--trials 2000] [--evals 2] [--repeats 15]
import type { Config } from '../infra/config.js';
import { mongoClient } from '../infra/connections.js';
import { startDashboard } from '../results/dashboard/server.js';
import { trialInputFromSweep } from '../results/documents.js';
import { encodeDocument } from '../results/nonfinite.js';
import { ResultStore } from '../results/store.js';
import { expandSweep, sweepIdOf } from '../sweeps/expand.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { withPrivateStack } from './private-stack.js';
import { syntheticEvaluation, trivialSpec } from './synthetic-results.js';

export interface DashboardTableFigures {
  trials: number;
  evaluations: number;
  /** GET /api/sweeps/ID/trials: every trial in one answer. */
  allTrials: { ms: number; bytes: number };
  /** The first table page after the sweep's state changed (rows rebuilt). */
  firstPage: { ms: number; bytes: number };
  /** Later pages, each with another filter and sort (rows reused). */
  laterPage: { ms: number; bytes: number };
  /** laterPage.ms / allTrials.ms. */
  laterOverAll: number;
}

async function get(url: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const r = await fetch(url);
  const body = await r.arrayBuffer();
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  return { ms: performance.now() - t0, bytes: body.byteLength };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runDashboardTableOn(
  config: Config,
  opts: { trials: number; evals: number; repeats: number },
): Promise<DashboardTableFigures> {
  const client = mongoClient(config);
  await client.connect();
  try {
    const store = new ResultStore(client.db(config.mongo.db));
    await store.ensureIndexes();
    const spec = trivialSpec(opts.trials, 1);
    const sweepId = sweepIdOf(spec);
    await store.createSweep({
      _id: sweepId,
      name: spec.name,
      spec: spec as unknown as Record<string, unknown>,
      specHash: sweepId,
      codeVersion: 'bench',
    });
    const trials = expandSweep(spec).slice(0, opts.trials);
    const now = new Date();
    // Completed trials written whole (the bench measures reads, not the fenced transitions).
    const docs = trials.map((t, i) => {
      const input = trialInputFromSweep(sweepId, t, 'bench');
      return encodeDocument({
        _id: input._id,
        sweepIds: [sweepId],
        positions: [{ sweepId, index: input.index }],
        config: input.config,
        status: 'completed',
        attempt: 1,
        summary: {
          testNll: 1 + (i % 97) / 10,
          valLoss: 1,
          epochs: 1,
          trainSeconds: 1,
          droppedSims: 0,
        },
        codeVersion: 'bench',
        createdAt: now,
        updatedAt: now,
        startedAt: now,
        endedAt: now,
      });
    });
    for (let i = 0; i < docs.length; i += 500)
      await store.trials.insertMany(docs.slice(i, i + 500) as never[]);
    const evals = trials.flatMap((t) =>
      Array.from({ length: opts.evals }, (_, k) =>
        syntheticEvaluation(t.trialId, 'noise', 'rkl', k + 1),
      ),
    );
    for (let i = 0; i < evals.length; i += 200) await store.putEvaluations(evals.slice(i, i + 200));
    await store.setSweepStatus(sweepId, 'completed');

    const dash = await startDashboard({ store, port: 0 });
    try {
      const base = `${dash.url}api/sweeps/${sweepId}`;
      const all: number[] = [];
      let allBytes = 0;
      for (let r = 0; r < opts.repeats; r++) {
        const g = await get(`${base}/trials`);
        all.push(g.ms);
        allBytes = g.bytes;
      }
      const first = await get(`${base}/table?size=50`);
      const sorts = ['testNll', 'config.seed', 'config.budget', 'kl.noise.rkl@1'];
      const later: number[] = [];
      let laterBytes = 0;
      for (let r = 0; r < opts.repeats; r++) {
        const g = await get(
          `${base}/table?size=50&page=${1 + (r % 5)}&sort=${sorts[r % sorts.length]}&dir=${r % 2 ? 'desc' : 'asc'}&f=${encodeURIComponent(`testNll>${(r % 5) + 1}`)}`,
        );
        later.push(g.ms);
        laterBytes = g.bytes;
      }
      const allMs = median(all);
      const laterMs = median(later);
      return {
        trials: trials.length,
        evaluations: evals.length,
        allTrials: { ms: allMs, bytes: allBytes },
        firstPage: first,
        laterPage: { ms: laterMs, bytes: laterBytes },
        laterOverAll: laterMs / allMs,
      };
    } finally {
      await dash.close();
    }
  } finally {
    await client.close();
  }
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const opts = {
    trials: numberArg(a, 'trials', 2000),
    evals: numberArg(a, 'evals', 2),
    repeats: numberArg(a, 'repeats', 15),
  };
  const f = await withPrivateStack('dashboard-table', (config) =>
    runDashboardTableOn(config, opts),
  );
  const kb = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  console.log(
    `dashboard table, ${f.trials} trials, ${f.evaluations} evaluations (medians of ${opts.repeats}):`,
  );
  console.log(
    `  all trials (/trials)       ${f.allTrials.ms.toFixed(0)} ms, ${kb(f.allTrials.bytes)}`,
  );
  console.log(
    `  first table page (build)   ${f.firstPage.ms.toFixed(0)} ms, ${kb(f.firstPage.bytes)}`,
  );
  console.log(
    `  later pages (filter, sort) ${f.laterPage.ms.toFixed(0)} ms, ${kb(f.laterPage.bytes)}`,
  );
  console.log(`  later page / all trials    ${f.laterOverAll.toFixed(3)}`);
}

if (isMain(import.meta.url)) await runMain(cli);
