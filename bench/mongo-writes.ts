// Result writes per second through the ResultStore (results/store.ts) to the embedded FerretDB, on a
// private stack (bench/private-stack.ts): evaluation documents one per putEvaluations call (single,
// what one evaluate activity of one objective does) and many per call (batched), and the fenced
// trial transitions (claim: queued -> running; complete: running -> completed) that every trial
// makes twice, with the trials collection holding `trials` documents.
//
//   node --import tsx bench/mongo-writes.ts [--single 1000] [--batched 5000] [--batch 100]
//        [--trials 1000]
import { randomBytes } from 'node:crypto';
import type { Config } from '../infra/config.js';
import { mongoClient } from '../infra/connections.js';
import { indexFerretIds } from '../infra/ferret-id-index.js';
import { stackPaths } from '../infra/stack.js';
import { trialInputFromSweep, type TrialSummary } from '../results/documents.js';
import { ResultStore } from '../results/store.js';
import { expandSweep, sweepIdOf } from '../sweeps/expand.js';
import { isMain, numberArg, parseArgs, runMain, timed as timedHere } from './args.js';
import { serverCpuSeconds, withPrivateStack } from './private-stack.js';
import { syntheticEvaluation, trivialSpec } from './synthetic-results.js';

export interface MongoWriteOptions {
  /** Evaluations written one per call. */
  single: number;
  /** Evaluations written `batch` per call. */
  batched: number;
  batch: number;
  /** Trials registered, then claimed and completed one by one. */
  trials: number;
}

export const MONGO_WRITE_DEFAULTS: MongoWriteOptions = {
  single: 1000,
  batched: 5000,
  batch: 100,
  trials: 1000,
};

export interface WriteRate {
  docs: number;
  /** Documents per call. */
  perCall: number;
  wallS: number;
  perSecond: number;
  /** CPU seconds of this process (validation, encoding, driver) and of FerretDB during the writes. */
  cpuS: { bench: number; ferretdb?: number };
}

export interface MongoWriteFigures {
  /** Evaluations per second, one document per putEvaluations call. */
  single: WriteRate;
  /** Evaluations per second, `batch` documents per putEvaluations call (one bulkWrite each). */
  batched: WriteRate;
  /** Trials registered per second (upsertTrials, pages of 500 as registerSweep writes them). */
  trialRegistration: WriteRate;
  /** Trial transitions per second (transitionTrial, one per call), claim and complete alike. */
  trialTransitions: WriteRate;
  /** 'indexed': FerretDB's _id lookups were indexed as a worker indexes them; else why not. */
  idLookups: string;
}

function rate(
  docs: number,
  perCall: number,
  t: { wallS: number; cpuS: number; ferretS?: number },
): WriteRate {
  return {
    docs,
    perCall,
    wallS: t.wallS,
    perSecond: docs / t.wallS,
    cpuS: { bench: t.cpuS, ...(t.ferretS !== undefined ? { ferretdb: t.ferretS } : {}) },
  };
}

export async function runMongoWritesOn(
  config: Config,
  opts: MongoWriteOptions,
): Promise<MongoWriteFigures> {
  const client = mongoClient(config);
  await client.connect();
  try {
    const db = client.db(`bench_writes_${randomBytes(3).toString('hex')}`);
    const store = new ResultStore(db);
    await store.ensureIndexes();
    // As a worker does on the embedded stack (infra/ferret-id-index.ts).
    const ids = await indexFerretIds(stackPaths(config).ferretData, db.databaseName);
    store.idLookupsIndexed = ids.status === 'indexed';
    // Wall and CPU time here, and FerretDB's CPU time meanwhile.
    const timed = async (f: () => Promise<void>) => {
      const f0 = serverCpuSeconds(config).mongodb;
      const t = await timedHere(f);
      const f1 = serverCpuSeconds(config).mongodb;
      return { ...t, ...(f0 !== undefined && f1 !== undefined ? { ferretS: f1 - f0 } : {}) };
    };
    const tag = randomBytes(4).toString('hex');
    const evals = (n: number, prefix: string) =>
      Array.from({ length: n }, (_, i) =>
        syntheticEvaluation(`${prefix}${tag}${String(i).padStart(8, '0')}`, 'l2pgd', 'rkl', 1),
      );
    // Warm-up: connection pool, collection and index creation.
    await store.putEvaluations(evals(5, 'w'));

    console.error(`mongo-writes: ${opts.single} evaluations one per call...`);
    const one = evals(opts.single, 's');
    const s = await timed(async () => {
      for (const e of one) await store.putEvaluations([e]);
    });

    console.error(`mongo-writes: ${opts.batched} evaluations ${opts.batch} per call...`);
    const many = evals(opts.batched, 'b');
    const b = await timed(async () => {
      for (let i = 0; i < many.length; i += opts.batch)
        await store.putEvaluations(many.slice(i, i + opts.batch));
    });

    console.error(`mongo-writes: ${opts.trials} trials registered, claimed and completed...`);
    const spec = trivialSpec(opts.trials, 1);
    const sweepId = sweepIdOf(spec);
    const trials = expandSweep(spec).map((t) => trialInputFromSweep(sweepId, t, 'bench'));
    await store.createSweep({
      _id: sweepId,
      name: spec.name,
      spec: spec as unknown as Record<string, unknown>,
      specHash: sweepId,
      codeVersion: 'bench',
    });
    const reg = await timed(async () => {
      for (let i = 0; i < trials.length; i += 500)
        await store.upsertTrials(trials.slice(i, i + 500));
    });
    const summary = { testNll: 1, valLoss: 1, epochs: 1, trainSeconds: 0, droppedSims: 0 };
    const tr = await timed(async () => {
      for (const t of trials) {
        await store.transitionTrial(t._id, 'running', { attempt: 1 });
        await store.transitionTrial(t._id, 'completed', {
          attempt: 1,
          summary: summary as TrialSummary,
        });
      }
    });
    await db.dropDatabase();
    return {
      single: rate(one.length, 1, s),
      batched: rate(many.length, opts.batch, b),
      trialRegistration: rate(trials.length, 500, reg),
      trialTransitions: rate(2 * trials.length, 1, tr),
      idLookups: ids.status === 'indexed' ? 'indexed' : ids.reason,
    };
  } finally {
    await client.close();
  }
}

export function runMongoWrites(opts: MongoWriteOptions): Promise<MongoWriteFigures> {
  return withPrivateStack('mongo-writes', (config) => runMongoWritesOn(config, opts));
}

export function mongoWriteOptions(a: Map<string, string>): MongoWriteOptions {
  const d = MONGO_WRITE_DEFAULTS;
  return {
    single: numberArg(a, 'single', d.single),
    batched: numberArg(a, 'batched', d.batched),
    batch: numberArg(a, 'batch', d.batch),
    trials: numberArg(a, 'trials', d.trials),
  };
}

export function mongoWritesTable(f: MongoWriteFigures): string {
  const row = (what: string, r: WriteRate) =>
    `| ${what} | ${r.docs} | ${r.perCall} | ${r.wallS.toFixed(2)} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.cpuS.bench.toFixed(2)} / ${r.cpuS.ferretdb?.toFixed(2) ?? '-'} |`;
  return [
    '| write (ResultStore) | documents | per call | wall s | documents/s | CPU s: bench / ferretdb |',
    '|---|---|---|---|---|---|',
    row('evaluations, single (putEvaluations of 1)', f.single),
    row(`evaluations, batched (putEvaluations of ${f.batched.perCall})`, f.batched),
    row('trials registered (upsertTrials pages)', f.trialRegistration),
    row('trial transitions (claim + complete, one per call)', f.trialTransitions),
    '',
    `FerretDB _id lookups: ${f.idLookups}.`,
  ].join('\n');
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const f = await runMongoWrites(mongoWriteOptions(a));
  if (a.has('json')) console.log(JSON.stringify(f));
  else console.log(mongoWritesTable(f));
}

if (isMain(import.meta.url)) await runMain(cli);
