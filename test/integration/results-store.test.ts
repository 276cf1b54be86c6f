// The result store and artifact store against the real MongoDB-protocol server of the test stack
// (FerretDB 1.24 under `npm test`), in a database of its own that is dropped at the end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Binary, ObjectId, type Db, type MongoClient } from 'mongodb';
import { loadConfig } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import { aggregateSweep } from '../../results/aggregate.js';
import { ArtifactStore } from '../../results/artifacts.js';
import { computeCurves, type CurveTrial } from '../../results/curves.js';
import { ConflictError, NotFoundError, SchemaError } from '../../results/errors.js';
import { ResultStore } from '../../results/store.js';
import { syntheticSweep } from '../unit/results/fixtures.js';

let client: MongoClient;
let db: Db;
let store: ResultStore;

before(async () => {
  if (!process.env.MONGODB_URI) {
    throw new Error('This test needs MONGODB_URI of a running server; run it with "npm test".');
  }
  const config = loadConfig(process.env);
  client = mongoClient(config);
  await client.connect();
  db = client.db(`results_test_${process.pid}_${Date.now()}`);
  store = new ResultStore(db);
  await store.ensureIndexes();
});

after(async () => {
  await db?.dropDatabase();
  await client?.close();
});

const spec = { tasks: ['gaussian_linear', 'two_moons'], seeds: [0, 1] };

describe('results store on the real server', () => {
  test('indexes are idempotent and the evaluation identity is unique', async () => {
    await store.ensureIndexes();
    const idx = await store.evaluations.indexes();
    const identity = idx.find((i) => i.name === 'identity');
    assert.deepEqual(identity?.key, { trialId: 1, attack: 1, objective: 1, eps: 1 });
    assert.equal(identity?.unique, true);
    assert.ok((await store.trials.indexes()).some((i) => i.name === 'sweep_status'));
  });

  test('writing the same sweep, trials and evaluations twice leaves one document each', async () => {
    const s = syntheticSweep('sw-twice');
    const sweep = {
      _id: s.sweepId,
      name: 'twice',
      spec,
      specHash: 'aa11bb22',
      codeVersion: 'test',
    };
    assert.deepEqual(await store.createSweep(sweep), { created: true });
    assert.deepEqual(await store.createSweep(sweep), { created: false });
    assert.deepEqual(await store.upsertTrials(s.trials), { inserted: s.trials.length, matched: 0 });
    assert.deepEqual(await store.upsertTrials(s.trials), { inserted: 0, matched: s.trials.length });
    const first = await store.putEvaluations(s.evaluations);
    assert.equal(first.inserted, s.evaluations.length);
    const second = await store.putEvaluations(s.evaluations);
    assert.deepEqual(second, { inserted: 0, matched: s.evaluations.length });

    assert.equal(await store.sweeps.countDocuments({ _id: s.sweepId }), 1);
    assert.equal(await store.trials.countDocuments({ sweepIds: s.sweepId }), s.trials.length);
    assert.equal(
      await store.evaluations.countDocuments({ trialId: { $in: s.trials.map((t) => t._id) } }),
      s.evaluations.length,
    );
    // Read back, they are what was written.
    const back = await store.listEvaluations({ trialId: s.trials[0]!._id });
    const sent = s.evaluations.filter((e) => e.trialId === s.trials[0]!._id);
    assert.equal(back.length, sent.length);
    for (const b of back) {
      const e = sent.find((x) => x._id === b._id)!;
      const { createdAt, updatedAt, ...rest } = b;
      assert.ok(createdAt instanceof Date && updatedAt instanceof Date);
      assert.deepEqual(rest, e);
    }
    // A resubmitted sweep does not reset a trial that moved on.
    await store.transitionTrial(s.trials[0]!._id, 'running', { attempt: 1 });
    await store.upsertTrials(s.trials);
    assert.equal((await store.getTrial(s.trials[0]!._id))?.status, 'running');
  });

  test('a sweep _id with another specHash is a conflict, not an overwrite', async () => {
    const sweep = {
      _id: 'sw-conflict',
      name: 'c',
      spec,
      specHash: 'cc11cc11',
      codeVersion: 'test',
    };
    await store.createSweep(sweep);
    await assert.rejects(
      store.createSweep({ ...sweep, specHash: 'dd22dd22' }),
      (e: unknown) => e instanceof ConflictError && /specHash "cc11cc11"/.test(e.message),
    );
    assert.equal((await store.getSweep('sw-conflict'))?.specHash, 'cc11cc11');
  });

  test('sweep status moves only from the states given, and counts are absolute', async () => {
    const id = 'sw-status';
    await store.createSweep({
      _id: id,
      name: 's',
      spec,
      specHash: 'ff44ff44',
      codeVersion: 'test',
    });
    assert.equal(await store.setSweepStatus(id, 'running', { from: ['queued', 'paused'] }), true);
    assert.equal(
      await store.setSweepStatus(id, 'cancelled', { from: ['queued', 'running'] }),
      true,
    );
    // A late 'completed' from the aggregate step does not revive a cancelled sweep.
    assert.equal(await store.setSweepStatus(id, 'completed', { from: ['running'] }), false);
    const doc = (await store.getSweep(id))!;
    assert.equal(doc.status, 'cancelled');
    assert.equal(doc.completedAt, undefined);
    // A failed sweep rerun to completion drops the failure of its earlier run.
    const error = {
      type: 'X',
      message: '1 of 1 trials failed; the last: boom',
      nonRetryable: false,
    };
    assert.equal(await store.setSweepStatus(id, 'failed', { error }), true);
    assert.deepEqual((await store.getSweep(id))!.error, error);
    assert.equal(await store.setSweepStatus(id, 'completed'), true);
    assert.equal((await store.getSweep(id))!.error, undefined);
    await store.setSweepStatus(id, 'cancelled');
    await assert.rejects(store.setSweepStatus('sw-missing', 'running'), NotFoundError);
    await assert.rejects(
      store.setSweepStatus(id, 'done' as never),
      (e: unknown) => e instanceof SchemaError && e.field === 'status',
    );
    assert.deepEqual(await store.refreshSweepCounts(id), {
      trials: 0,
      queued: 0,
      running: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
    });
    assert.equal(
      (await store.listSweeps()).some((x) => x._id === id),
      true,
    );
  });

  test('a trial shared by two sweeps is one document; the second sweep sees its results and never resets it', async () => {
    const s = syntheticSweep('sw-shared');
    const a = 'sw-shared-a';
    const b = 'sw-shared-b';
    const shared = s.trials.slice(0, 3);
    await store.upsertTrials(shared.map((t, i) => ({ ...t, sweepId: a, index: i })));
    const done = shared[0]!._id;
    await store.transitionTrial(done, 'running', { attempt: 1 });
    await store.transitionTrial(done, 'completed', { attempt: 1, summary: s.summaries.get(done)! });
    await store.putEvaluations(s.evaluations.filter((e) => e.trialId === done));
    // Sweep b holds the same trials in another order, plus one of its own.
    const own = s.trials[3]!;
    const r = await store.upsertTrials([
      ...[...shared].reverse().map((t, i) => ({ ...t, sweepId: b, index: i })),
      { ...own, sweepId: b, index: 3 },
    ]);
    assert.deepEqual(r, { inserted: 1, matched: 3 });
    assert.equal(await store.trials.countDocuments({ _id: { $in: shared.map((t) => t._id) } }), 3);
    const doc = (await store.getTrial(done))!;
    assert.deepEqual(doc.sweepIds, [a, b]);
    assert.deepEqual(doc.positions, [
      { sweepId: a, index: 0 },
      { sweepId: b, index: 2 },
    ]);
    assert.equal(doc.status, 'completed');
    assert.deepEqual(
      (await store.listTrials(b)).map((t) => t._id),
      [shared[2]!._id, shared[1]!._id, shared[0]!._id, own._id],
    );
    assert.deepEqual(
      (await store.listTrials(a)).map((t) => t._id),
      shared.map((t) => t._id),
    );
    assert.deepEqual(
      (await store.listTrials(b, 'completed')).map((t) => t._id),
      [done],
    );
    assert.equal((await store.listEvaluations({ sweepId: b })).length, 6);
    assert.equal((await store.listEvaluations({ sweepId: 'sw-none' })).length, 0);
    await store.createSweep({ _id: b, name: 'b', spec, specHash: 'bb22bb22', codeVersion: 'test' });
    const counts = await store.refreshSweepCounts(b);
    assert.deepEqual(counts, {
      trials: 4,
      queued: 3,
      running: 0,
      completed: 1,
      failed: 0,
      cancelled: 0,
    });
    // Live counts: a trial shared by two sweeps counts in both; a sweep without trials has zeros.
    const live = await store.trialCountsBySweep([a, b, 'sw-none']);
    assert.deepEqual(live.get(b), counts);
    assert.deepEqual(live.get(a), { ...counts, trials: 3, queued: 2 });
    assert.deepEqual(live.get('sw-none'), { ...counts, trials: 0, queued: 0, completed: 0 });
    assert.deepEqual(await store.trialCounts(a), live.get(a));
    assert.deepEqual((await store.trialCountsBySweep()).get(b), counts);
    // Registering again changes nothing.
    await store.upsertTrials(shared.map((t, i) => ({ ...t, sweepId: a, index: i })));
    assert.deepEqual((await store.getTrial(done))!.sweepIds, [a, b]);
  });

  test('a batch whose new documents come before an existing one stores all, counted right', async () => {
    // The store inserts a batch first and upserts it when an _id exists: the insert stops at the
    // existing trial after storing the two new ones, and the upserts must neither reset the
    // existing trial nor duplicate the new ones.
    const s = syntheticSweep('sw-mixed');
    const [t0, t1, t2] = s.trials;
    await store.upsertTrials([{ ...t2!, sweepId: 'sw-mixed-a', index: 0 }]);
    await store.transitionTrial(t2!._id, 'running', { attempt: 1 });
    const r = await store.upsertTrials(
      [t0!, t1!, t2!].map((t, i) => ({ ...t, sweepId: 'sw-mixed-b', index: i })),
    );
    assert.deepEqual(r, { inserted: 2, matched: 1 });
    const kept = (await store.getTrial(t2!._id))!;
    assert.equal(kept.status, 'running');
    assert.equal(kept.attempt, 1);
    assert.deepEqual(kept.sweepIds, ['sw-mixed-a', 'sw-mixed-b']);
    assert.deepEqual(
      (await store.listTrials('sw-mixed-b')).map((t) => [t._id, t.status, t.sweepIds.length]),
      [
        [t0!._id, 'queued', 1],
        [t1!._id, 'queued', 1],
        [t2!._id, 'running', 2],
      ],
    );
    // Evaluations: a rerun's new measurements replace the stored ones; new ones are added.
    const evs = s.evaluations.filter((e) => e.trialId === t0!._id);
    assert.ok(evs.length >= 2);
    await store.putEvaluations([evs[1]!]);
    const again = evs.map((e) => ({ ...e, nllClean: 7.5 }));
    assert.deepEqual(await store.putEvaluations(again), { inserted: evs.length - 1, matched: 1 });
    const stored = await store.listEvaluations({ trialId: t0!._id });
    assert.equal(stored.length, evs.length);
    assert.ok(stored.every((e) => e.nllClean === 7.5));
  });

  test('concurrent writers of the same new documents both succeed and leave one of each', async () => {
    const s = syntheticSweep('sw-race');
    for (let round = 0; round < 3; round++) {
      const ts = s.trials.slice(round * 4, round * 4 + 4);
      const es = s.evaluations.filter((e) => ts.some((t) => t._id === e.trialId));
      const results = await Promise.all([
        store.upsertTrials(ts),
        store.upsertTrials(ts),
        store.putEvaluations(es),
        store.putEvaluations(es),
      ]);
      // Every operation of both writers was applied, as an insert or as a match.
      for (const [r, n] of results.map((r, i) => [r, i < 2 ? ts.length : es.length] as const)) {
        assert.equal(r.inserted + r.matched, n);
      }
    }
    assert.equal(await store.trials.countDocuments({ sweepIds: s.sweepId }), s.trials.length);
    assert.equal(
      await store.evaluations.countDocuments({ trialId: { $in: s.trials.map((t) => t._id) } }),
      s.evaluations.length,
    );
  });

  test('a batch with one invalid document stores nothing and names the field', async () => {
    const s = syntheticSweep('sw-invalid');
    const evals = s.evaluations.slice(0, 5).map((e) => structuredClone(e));
    (evals[3]!.kl as unknown as Record<string, unknown>).q2_5 = 'high';
    await assert.rejects(store.putEvaluations(evals), (e: unknown) => {
      assert.ok(e instanceof SchemaError);
      assert.equal(e.field, 'kl.q2_5');
      assert.equal(e.index, 3);
      assert.match(e.message, /kl\.q2_5 must be number/);
      return true;
    });
    assert.equal(
      await store.evaluations.countDocuments({ trialId: { $in: s.trials.map((t) => t._id) } }),
      0,
    );

    const trials = s.trials.slice(0, 4).map((t) => structuredClone(t));
    trials[2]!.config.budget = 0;
    await assert.rejects(
      store.upsertTrials(trials),
      (e: unknown) => e instanceof SchemaError && e.field === 'config.budget' && e.index === 2,
    );
    assert.equal(await store.trials.countDocuments({ sweepIds: s.sweepId }), 0);

    // An _id that is not the composed identity is refused before anything is written.
    const wrongId = [{ ...s.evaluations[0]!, _id: 'made-up' }];
    await assert.rejects(
      store.putEvaluations(wrongId),
      (e: unknown) => e instanceof SchemaError && e.field === '_id',
    );
    assert.equal(await store.evaluations.countDocuments({ trialId: s.trials[0]!._id }), 0);
  });

  test('the fence mode follows the server: read-check-write on FerretDB, atomic elsewhere', async () => {
    const info = await db.admin().command({ buildInfo: 1 });
    const expected = typeof info.ferretdbVersion === 'string' ? 'read-check-write' : 'atomic';
    assert.equal(await store.fenceMode(), expected);
    assert.equal(await new ResultStore(db, { fence: 'atomic' }).fenceMode(), 'atomic');
  });

  for (const fence of ['atomic', 'read-check-write'] as const) {
    test(`completedAmong names the completed trials, by $in or _id by _id (${fence})`, async () => {
      const s = syntheticSweep(`sw-done-${fence}`);
      const store = new ResultStore(db, { fence });
      await store.upsertTrials(s.trials.slice(0, 4));
      const ids = s.trials.slice(0, 4).map((t) => t._id);
      for (const id of [ids[1]!, ids[3]!]) {
        const { attempt } = (await store.claimTrial(id)) as { attempt: number };
        await store.transitionTrial(id, 'completed', { attempt, summary: s.summaries.get(id)! });
      }
      await store.claimTrial(ids[2]!);
      const asked = [...ids, `${ids[0]}-unregistered`];
      for (const indexed of [false, true]) {
        store.idLookupsIndexed = indexed;
        assert.deepEqual(await store.completedAmong(asked), [ids[1], ids[3]], `indexed ${indexed}`);
      }
      assert.deepEqual(await store.completedAmong([]), []);
    });

    test(`claiming takes the next fencing token and skips a completed trial (${fence})`, async () => {
      const store = new ResultStore(db, { fence });
      const s = syntheticSweep(`sw-claim-${fence}`);
      await store.upsertTrials(s.trials.slice(0, 1));
      const a = s.trials[0]!._id;
      assert.deepEqual(await store.claimTrial(a, { backend: 'wasm' }), { skip: false, attempt: 1 });
      // A retried activity takes the trial over under a newer token; the older one is then stale.
      assert.deepEqual(await store.claimTrial(a), { skip: false, attempt: 2 });
      const summary = s.summaries.get(a)!;
      assert.equal(
        (await store.transitionTrial(a, 'completed', { attempt: 1, summary })).outcome,
        'refused',
      );
      assert.equal(
        (await store.transitionTrial(a, 'completed', { attempt: 2, summary })).outcome,
        'applied',
      );
      assert.deepEqual(await store.claimTrial(a), { skip: true });
      const done = (await store.getTrial(a))!;
      assert.equal(done.status, 'completed');
      assert.equal(done.attempt, 2);
      assert.equal(done.backend, 'wasm');
      await assert.rejects(
        store.claimTrial(`${a}-missing`),
        (e: unknown) => e instanceof NotFoundError,
      );
    });

    test(`status transitions are fenced (${fence}): a completed trial never runs again, stale attempts are refused`, async () => {
      const store = new ResultStore(db, { fence });
      const s = syntheticSweep(`sw-fence-${fence}`);
      await store.upsertTrials(s.trials.slice(0, 2));
      const [a, b] = [s.trials[0]!._id, s.trials[1]!._id];
      const summary = s.summaries.get(a)!;

      assert.equal(
        (await store.transitionTrial(a, 'running', { attempt: 1, backend: 'wasm' })).outcome,
        'applied',
      );
      assert.equal(
        (
          await store.transitionTrial(a, 'completed', {
            attempt: 1,
            summary,
            modelArtifact: `models/${a}`,
          })
        ).outcome,
        'applied',
      );
      // Completing again (a retried persist) is recognised as done.
      assert.equal(
        (await store.transitionTrial(a, 'completed', { attempt: 1, summary })).outcome,
        'already',
      );
      const back = await store.transitionTrial(a, 'running', { attempt: 2 });
      assert.deepEqual(back, { outcome: 'refused', status: 'completed', attempt: 1 });
      assert.equal((await store.transitionTrial(a, 'queued', { attempt: 3 })).outcome, 'refused');
      assert.equal(
        (
          await store.transitionTrial(a, 'failed', {
            attempt: 3,
            error: { type: 'X', message: 'late', nonRetryable: false },
          })
        ).outcome,
        'refused',
      );
      const done = (await store.getTrial(a))!;
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.summary, summary);
      assert.equal(done.modelArtifact, `models/${a}`);
      assert.equal(done.backend, 'wasm');
      assert.equal(done.error, undefined);

      // Attempt 2 took over trial b; attempt 1 finishing late cannot complete it.
      await store.transitionTrial(b, 'running', { attempt: 1 });
      await store.transitionTrial(b, 'running', { attempt: 2 });
      assert.deepEqual(await store.transitionTrial(b, 'completed', { attempt: 1, summary }), {
        outcome: 'refused',
        status: 'running',
        attempt: 2,
      });
      // A diverged run fails with a non-finite loss and its reason, then a rerun starts clean.
      const diverged = { ...summary, valLoss: NaN, testNll: Infinity };
      const error = {
        type: 'TrainingDiverged',
        message: 'loss is NaN at epoch 3',
        nonRetryable: true,
      };
      assert.equal(
        (await store.transitionTrial(b, 'failed', { attempt: 2, summary: diverged, error }))
          .outcome,
        'applied',
      );
      const raw = await store.trials.findOne({ _id: b });
      assert.equal(raw?.summary.valLoss, null);
      assert.deepEqual(raw?.nonFinite.summary, [
        { path: '/testNll', value: 'inf' },
        { path: '/valLoss', value: 'nan' },
      ]);
      const failed = (await store.getTrial(b))!;
      assert.ok(Number.isNaN(failed.summary!.valLoss));
      assert.equal(failed.summary!.testNll, Infinity);
      assert.deepEqual(failed.error, error);
      assert.equal((await store.transitionTrial(b, 'queued', { attempt: 3 })).outcome, 'applied');
      const rerun = (await store.getTrial(b))!;
      assert.equal(rerun.status, 'queued');
      assert.equal(rerun.error, undefined);
      assert.equal(rerun.summary, undefined);
      await assert.rejects(
        store.transitionTrial(b, 'completed', { attempt: 3 }),
        (e: unknown) => e instanceof SchemaError && e.field === 'summary',
      );
      await assert.rejects(
        store.transitionTrial(`${a}-missing`, 'running', { attempt: 1 }),
        (e: unknown) => e instanceof NotFoundError,
      );
    });
  }

  test('the curves stored by aggregation equal a recomputation from the raw evaluations, and recomputing changes nothing', async () => {
    const s = syntheticSweep('sw-agg');
    // An overflowed KL tail and a diverged trial, to cross the non-finite encoding both ways.
    s.evaluations[0]!.kl.max = Infinity;
    const diverged = s.trials[1]!._id;
    s.summaries.get(diverged)!.testNll = NaN;
    await store.createSweep({
      _id: s.sweepId,
      name: 'agg',
      spec,
      specHash: 'ee33ee33',
      codeVersion: 'test',
    });
    await store.upsertTrials(s.trials);
    await store.putEvaluations(s.evaluations);
    for (const t of s.trials.slice(0, -1)) {
      await store.transitionTrial(t._id, 'running', { attempt: 1 });
      await store.transitionTrial(t._id, 'completed', {
        attempt: 1,
        summary: s.summaries.get(t._id)!,
      });
    }
    const first = await aggregateSweep(store, s.sweepId);
    assert.deepEqual(first.counts, {
      trials: 12,
      queued: 1,
      running: 0,
      completed: 11,
      failed: 0,
      cancelled: 0,
    });
    assert.deepEqual((await store.getSweep(s.sweepId))?.counts, first.counts);

    const rawTrials: CurveTrial[] = s.trials.map((t, i) =>
      i < s.trials.length - 1
        ? { ...t, status: 'completed', summary: s.summaries.get(t._id)! }
        : { ...t, status: 'queued' },
    );
    const expected = computeCurves(s.sweepId, rawTrials, s.evaluations);
    const stored = await store.listCurves(s.sweepId);
    assert.equal(stored.length, 6);
    assert.deepEqual(
      stored,
      [...expected].sort((a, b) => (a._id < b._id ? -1 : 1)),
    );
    const glTradeoff = stored.find((c) => c.kind === 'tradeoff' && c.task === 'gaussian_linear');
    const point =
      glTradeoff?.kind === 'tradeoff'
        ? glTradeoff.points.find((p) => p.trialId === diverged)
        : undefined;
    assert.ok(point && Number.isNaN(point.y) && !point.pareto);
    const rawTradeoff = await store.curves.findOne({ _id: glTradeoff!._id });
    assert.ok(rawTradeoff?.nonFinite.points.some((m: { value: string }) => m.value === 'nan'));
    const tradeoff = stored.find((c) => c.kind === 'tradeoff' && c.task === 'two_moons');
    assert.equal(tradeoff?.kind === 'tradeoff' && tradeoff.points.length, 5);

    const rawBefore = await store.curves.find({ sweepId: s.sweepId }).sort({ _id: 1 }).toArray();
    await aggregateSweep(store, s.sweepId);
    const rawAfter = await store.curves.find({ sweepId: s.sweepId }).sort({ _id: 1 }).toArray();
    assert.deepEqual(rawAfter, rawBefore);
    assert.equal(await store.curves.countDocuments({ sweepId: s.sweepId }), 6);
  });
});

describe('artifact store on the real server (GridFS)', () => {
  test('a 3 MB artifact round-trips; putting it again writes nothing; replacing keeps one version', async () => {
    const artifacts = new ArtifactStore(db);
    const name = 'checkpoints/trial-x/latest';
    const data = new Uint8Array(randomBytes(3 * 1024 * 1024));
    const put = await artifacts.put(name, data, { epoch: 4 });
    assert.equal(put.written, true);
    assert.equal(put.length, data.length);
    assert.deepEqual(put.metadata, { epoch: 4 });
    const back = await artifacts.get(name);
    assert.ok(back);
    assert.equal(back.length, data.length);
    assert.ok(Buffer.from(back).equals(Buffer.from(data)));

    const again = await artifacts.put(name, data, { epoch: 4 });
    assert.equal(again.written, false);
    assert.equal(again.id.toHexString(), put.id.toHexString());

    const next = new Uint8Array(randomBytes(1000));
    const replaced = await artifacts.put(name, next, { epoch: 5 });
    assert.equal(replaced.written, true);
    assert.ok(Buffer.from((await artifacts.get(name))!).equals(Buffer.from(next)));
    assert.equal(await db.collection('artifacts.files').countDocuments({ filename: name }), 1);
    assert.equal(await db.collection('artifacts.chunks').countDocuments({ files_id: put.id }), 0);
    assert.equal((await artifacts.info(name))?.metadata.epoch, 5);

    // Non-finite metadata (a diverged model's result) is stored as FerretDB allows and reads back.
    await artifacts.put('models/trial-x', new Uint8Array([1, 2, 3]), {
      result: { bestValLoss: NaN, losses: [1, Infinity] },
    });
    const result = (await artifacts.info('models/trial-x'))?.metadata.result as {
      bestValLoss: number;
      losses: number[];
    };
    assert.ok(Number.isNaN(result.bestValLoss));
    assert.deepEqual(result.losses, [1, Infinity]);
    assert.deepEqual(
      (await artifacts.list('checkpoints/')).map((a) => a.name),
      [name],
    );
    assert.equal(await artifacts.exists(name), true);
    assert.equal(await artifacts.delete(name), 1);
    assert.equal(await artifacts.exists(name), false);
    assert.equal(await artifacts.get(name), null);
    assert.equal(await artifacts.delete(name), 0);
    assert.deepEqual(await artifacts.get('models/trial-x'), new Uint8Array([1, 2, 3]));
    await assert.rejects(artifacts.put('../etc/passwd', data), /not valid/);

    // An upload killed before its file document leaves chunks; old ones are removed, fresh ones kept.
    const chunks = db.collection('artifacts.chunks');
    const old = ObjectId.createFromTime(Math.floor(Date.now() / 1000) - 7200);
    const fresh = new ObjectId();
    await chunks.insertMany([
      { files_id: old, n: 0, data: new Binary(Buffer.from([1])) },
      { files_id: fresh, n: 0, data: new Binary(Buffer.from([2])) },
    ]);
    assert.equal(await artifacts.removeOrphanChunks(), 1);
    assert.equal(await chunks.countDocuments({ files_id: old }), 0);
    assert.equal(await chunks.countDocuments({ files_id: fresh }), 1);
    assert.deepEqual(await artifacts.get('models/trial-x'), new Uint8Array([1, 2, 3]));
  });

  test('reads while another writer replaces the version (a checkpoint per epoch) get a whole version', async () => {
    const artifacts = new ArtifactStore(db);
    const name = 'checkpoints/trial-race/latest';
    // Payloads of several chunks (GridFS chunks are 255 kB), each filled with its version number.
    const SIZE = 2_000_000;
    const payload = (v: number): Uint8Array => new Uint8Array(SIZE).fill(v);
    await artifacts.put(name, payload(1));
    let writing = true;
    const writer = (async () => {
      for (let v = 2; v <= 40; v++) await artifacts.put(name, payload(v));
      writing = false;
    })();
    let reads = 0;
    // Three readers at once, so some read overlaps a put's deletion of the version it is reading.
    await Promise.all(
      [0, 1, 2].map(async () => {
        while (writing) {
          const got = await artifacts.get(name);
          assert.ok(got, 'a version is always there');
          assert.equal(got.length, SIZE);
          assert.ok(
            got.every((b) => b === got[0]),
            'one version, not a mix',
          );
          reads++;
        }
      }),
    );
    await writer;
    assert.ok(reads > 0);
    assert.equal(await db.collection('artifacts.files').countDocuments({ filename: name }), 1);
    assert.deepEqual((await artifacts.get(name))![0], 40);
  });
});
