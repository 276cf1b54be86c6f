// FerretDB 1.24's SQLite backend builds its `_id_` index on the expression `_ferretdb_sjson->"_id"`
// but looks documents up by `_ferretdb_sjson->'$._id' = ?`. SQLite uses an index on an expression
// only for the same expression, so every find, update or delete by _id scans the whole table and
// parses each document's JSON: 30 ms for a findOne and 95 ms for an updateOne among 1,000 trial
// documents, growing with the collection. An index on the exact expression of the queries turns
// them into index searches (2.1 and 3.3 ms; BENCHMARKS.md). FerretDB opens its files in WAL mode
// with a busy timeout, so Debian's sqlite3 may add the index beside the running server; SQLite then
// keeps it up to date on every write, and FerretDB never reads or drops it by name (dropping a
// collection drops its table, and the index with it).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { mongoHosts } from './connections.js';
import { stackPaths } from './stack.js';

/** FerretDB's table of collections and their tables (internal/backends/sqlite/metadata). */
const COLLECTIONS_TABLE = '_ferretdb_collections';
/** The expression FerretDB's _id lookups evaluate (metadata.IDColumn). */
const ID_EXPRESSION = `_ferretdb_sjson->'$._id'`;
const INDEX_SUFFIX = '_robustsbi_id';

export type IdIndexResult =
  | { status: 'indexed'; file: string; tables: string[]; created: string[] }
  | {
      status: 'unavailable';
      /** external: another server than the embedded FerretDB, which needs no such index. */
      cause: 'external' | 'no-database' | 'no-sqlite3' | 'sqlite3-failed';
      reason: string;
    };

class Sqlite3Missing extends Error {}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

function sqlite3(file: string, sql: string, sqlite3Path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      sqlite3Path,
      // A busy timeout: FerretDB may hold the write lock for a moment.
      ['-batch', '-noheader', '-cmd', '.timeout 10000', file, sql],
      { timeout: 60_000 },
      (err, stdout, stderr) => {
        if (!err) resolve(stdout);
        else if ((err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Sqlite3Missing());
        else reject(new Error(`sqlite3 failed on ${file}: ${stderr.trim() || err.message}`));
      },
    );
  });
}

/**
 * Adds the `_id` index FerretDB's lookups can use to every collection of database `dbName` in
 * FerretDB's SQLite directory `dataDir`. Idempotent; run it again after new collections appear.
 * 'unavailable' (with the reason) where the database file or sqlite3 is missing or sqlite3 fails
 * (a lock held past its timeout): FerretDB then answers the same, only slower.
 */
export async function indexFerretIds(
  dataDir: string,
  dbName: string,
  sqlite3Path = 'sqlite3',
): Promise<IdIndexResult> {
  const file = join(dataDir, `${dbName}.sqlite`);
  if (!existsSync(file))
    return { status: 'unavailable', cause: 'no-database', reason: `${file} does not exist` };
  try {
    const lines = async (sql: string) =>
      (await sqlite3(file, sql, sqlite3Path)).split('\n').filter((t) => t.length > 0);
    const tables = await lines(`SELECT table_name FROM ${COLLECTIONS_TABLE};`);
    const before = new Set(
      await lines(
        `SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%${INDEX_SUFFIX}';`,
      ),
    );
    const missing = tables.filter((t) => !before.has(t + INDEX_SUFFIX));
    if (missing.length > 0) {
      const sql = missing
        .map(
          (t) =>
            `CREATE INDEX IF NOT EXISTS ${quoteIdent(t + INDEX_SUFFIX)} ON ${quoteIdent(t)} (${ID_EXPRESSION});`,
        )
        .join('\n');
      await sqlite3(file, `BEGIN; ${sql} COMMIT;`, sqlite3Path);
    }
    return { status: 'indexed', file, tables, created: missing };
  } catch (err) {
    if (err instanceof Sqlite3Missing)
      return {
        status: 'unavailable',
        cause: 'no-sqlite3',
        reason: `${sqlite3Path} is not installed`,
      };
    return { status: 'unavailable', cause: 'sqlite3-failed', reason: (err as Error).message };
  }
}

/**
 * indexFerretIds for the embedded stack's results database; 'unavailable' when MONGODB_URI names
 * another server than the embedded one (which keeps its own indexes).
 */
export function indexEmbeddedIds(config: Config, sqlite3Path?: string): Promise<IdIndexResult> {
  const embedded = `127.0.0.1:${config.embedded.mongoPort}`;
  if (config.mongo.external && mongoHosts(config.mongo.uri) !== embedded)
    return Promise.resolve({
      status: 'unavailable',
      cause: 'external',
      reason: 'MONGODB_URI names a server other than the embedded FerretDB',
    });
  return indexFerretIds(stackPaths(config).ferretData, config.mongo.db, sqlite3Path);
}
