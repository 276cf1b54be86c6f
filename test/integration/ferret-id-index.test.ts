// The `_id` index added to the embedded FerretDB's SQLite tables (infra/ferret-id-index.ts), on the
// test stack's own server: lookups by _id become index searches, and every answer stays the same.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { Db, MongoClient } from 'mongodb';
import { loadConfig, type Config } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import { indexEmbeddedIds, indexFerretIds } from '../../infra/ferret-id-index.js';
import { stackPaths } from '../../infra/stack.js';
import { sharedStackEnv } from './harness.js';

let config: Config;
let client: MongoClient;
let db: Db;
const dbName = `ferret_ids_${process.pid}_${Date.now()}`;

before(async () => {
  config = loadConfig({ ...sharedStackEnv(), MONGODB_DB: dbName });
  client = mongoClient(config);
  await client.connect();
  db = client.db(dbName);
});

after(async () => {
  await db?.dropDatabase();
  await client?.close();
});

const file = () => `${stackPaths(config).ferretData}/${dbName}.sqlite`;
const plan = (table: string) =>
  execFileSync('sqlite3', [
    file(),
    `EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM "${table}" WHERE _ferretdb_sjson->'$._id' = '"x"'`,
  ]).toString();

describe('FerretDB _id index', () => {
  test('turns _id lookups into index searches and changes no answer', async () => {
    const docs = Array.from({ length: 300 }, (_, i) => ({ _id: `t${i}`, n: i, nested: { i } }));
    await db.collection<{ _id: string; n: number }>('things').insertMany(docs);
    const r = await indexEmbeddedIds(config);
    assert.equal(r.status, 'indexed', JSON.stringify(r));
    if (r.status !== 'indexed') return;
    const table = execFileSync('sqlite3', [
      file(),
      "SELECT table_name FROM _ferretdb_collections WHERE name = 'things'",
    ])
      .toString()
      .trim();
    assert.ok(r.created.includes(table), `created ${r.created.join(', ')}`);
    assert.match(plan(table), /SEARCH .* USING INDEX .*_robustsbi_id/);

    // Idempotent: a second run finds the index and creates nothing.
    const again = await indexFerretIds(stackPaths(config).ferretData, dbName);
    assert.deepEqual(again.status === 'indexed' ? again.created : again, []);

    const things = db.collection<{ _id: string; n: number }>('things');
    assert.deepEqual(await things.findOne({ _id: 't123' }), {
      _id: 't123',
      n: 123,
      nested: { i: 123 },
    });
    assert.equal(await things.findOne({ _id: 'missing' }), null);
    const u = await things.updateOne({ _id: 't7' }, { $set: { n: -7 } });
    assert.equal(u.matchedCount, 1);
    assert.equal((await things.findOne({ _id: 't7' }))?.n, -7);
    // New documents are indexed as they are written; duplicates are still refused.
    await things.insertOne({ _id: 'late', n: 1000 });
    assert.equal((await things.findOne({ _id: 'late' }))?.n, 1000);
    await assert.rejects(
      things.insertOne({ _id: 'late', n: 1 }),
      (e: { code?: number }) => e.code === 11000,
    );
    assert.equal((await things.deleteOne({ _id: 't8' })).deletedCount, 1);
    assert.equal(await things.countDocuments({}), 300);
    // An _id of another type is not pushed down to SQL by FerretDB and still answers.
    await things.insertOne({ _id: 42 as unknown as string, n: 42 });
    assert.equal((await things.findOne({ _id: 42 as unknown as string }))?.n, 42);
  });

  test('says why where it cannot index', async () => {
    const dir = stackPaths(config).ferretData;
    assert.deepEqual(await indexFerretIds(dir, dbName, '/nonexistent/sqlite3'), {
      status: 'unavailable',
      cause: 'no-sqlite3',
      reason: '/nonexistent/sqlite3 is not installed',
    });
    // A sqlite3 that fails (as one would on a lock held past its timeout) is no error either.
    const failing = await indexFerretIds(dir, dbName, '/bin/false');
    assert.equal(failing.status === 'unavailable' && failing.cause, 'sqlite3-failed');
    const noDb = await indexFerretIds(dir, 'no_such_db');
    assert.equal(noDb.status === 'unavailable' && noDb.cause, 'no-database');
    const external = await indexEmbeddedIds(
      loadConfig({ ...sharedStackEnv(), MONGODB_URI: 'mongodb://db.example:27017/' }),
    );
    assert.deepEqual(external, {
      status: 'unavailable',
      cause: 'external',
      reason: 'MONGODB_URI names a server other than the embedded FerretDB',
    });
  });
});
