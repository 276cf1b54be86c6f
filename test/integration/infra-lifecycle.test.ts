// `robustsbi infra up | down | status` on a private embedded stack (own ports and data dir), checked
// from the outside: processes, pid files, and a workflow that must survive a restart.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { loadConfig, projectRoot } from '../../infra/config.js';
import { isAlive } from '../../infra/stack.js';
import { pidsMentioning, privateStackEnv, robustsbi } from './harness.js';

const dataDir = join(projectRoot(), '.data', 'test', `lifecycle-${process.pid}`);
let env: NodeJS.ProcessEnv;

function pidOf(service: string): number {
  return (
    JSON.parse(readFileSync(join(dataDir, 'run', `${service}.pid`), 'utf8')) as { pid: number }
  ).pid;
}

describe('infra lifecycle on a private stack', () => {
  let firstPids: number[] = [];
  let workflowId = '';

  before(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    env = await privateStackEnv(dataDir);
  });

  after(() => {
    robustsbi(['infra', 'down'], env);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('up twice gives one stack', () => {
    const first = robustsbi(['infra', 'up'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /temporal: started/);
    assert.match(first.stdout, /mongodb: started/);
    firstPids = [pidOf('temporal'), pidOf('mongodb')];

    const second = robustsbi(['infra', 'up'], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /temporal: already running/);
    assert.match(second.stdout, /mongodb: already running/);
    assert.deepEqual([pidOf('temporal'), pidOf('mongodb')], firstPids);
    // Exactly the two servers run on this data dir.
    assert.deepEqual(pidsMentioning(dataDir).sort(), [...firstPids].sort());
  });

  test('status names both servers and exits 0 when both answer', () => {
    const r = robustsbi(['infra', 'status'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `temporal +127\\.0\\.0\\.1:${env.ROBUSTSBI_TEMPORAL_PORT}.*embedded, pid ${firstPids[0]}.*answers`,
      ),
    );
    assert.match(
      r.stdout,
      new RegExp(
        `mongodb +127\\.0\\.0\\.1:${env.ROBUSTSBI_MONGODB_PORT}.*embedded, pid ${firstPids[1]}.*answers, FerretDB`,
      ),
    );
  });

  test('the smoke workflow completes on it', () => {
    const r = robustsbi(['smoke'], env);
    assert.equal(r.code, 0, r.stderr);
    const m = /workflow (smoke-\S+) completed/.exec(r.stdout);
    assert.ok(m, r.stdout);
    workflowId = m[1]!;
  });

  test('down stops exactly what up started', () => {
    const r = robustsbi(['infra', 'down'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`temporal: stopped \\(pid ${firstPids[0]}\\)`));
    assert.match(r.stdout, new RegExp(`mongodb: stopped \\(pid ${firstPids[1]}\\)`));
    for (const pid of firstPids) assert.equal(isAlive(pid), false, `pid ${pid} still runs`);
    assert.deepEqual(pidsMentioning(dataDir), []);
    assert.equal(existsSync(join(dataDir, 'run', 'temporal.pid')), false);
    assert.equal(existsSync(join(dataDir, 'run', 'mongodb.pid')), false);

    const s = robustsbi(['infra', 'status'], env);
    assert.notEqual(s.code, 0);
    assert.match(s.stderr, /The Temporal server at .* does not answer/);
    assert.match(s.stderr, /The MongoDB server at .* does not answer/);
  });

  test('a workflow that finished before down is still listed after up', async () => {
    assert.ok(workflowId, 'the smoke test must have produced a workflow id');
    const r = robustsbi(['infra', 'up'], env);
    assert.equal(r.code, 0, r.stderr);
    const config = loadConfig(env);
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace });
      const listed: { workflowId: string; status: string }[] = [];
      // Visibility is rebuilt from SQLite at start; give it a few seconds.
      for (let i = 0; i < 40 && listed.length === 0; i++) {
        for await (const wf of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
          listed.push({ workflowId: wf.workflowId, status: wf.status.name });
        }
        if (listed.length === 0) await new Promise((res) => setTimeout(res, 250));
      }
      assert.deepEqual(listed, [{ workflowId, status: 'COMPLETED' }]);
    } finally {
      await connection.close();
    }
    // The document its activity wrote survived too (FerretDB's SQLite files).
    const mongo = new MongoClient(config.mongo.uri, { serverSelectionTimeoutMS: 5000 });
    try {
      const doc = await mongo
        .db(config.mongo.db)
        .collection<{ _id: string }>('smoke')
        .findOne({ _id: workflowId });
      assert.equal(doc?._id, workflowId);
    } finally {
      await mongo.close();
    }
  });
});

describe('down leaves processes it did not start alone', () => {
  const otherDir = join(projectRoot(), '.data', 'test', `decoy-${process.pid}`);
  after(() => rmSync(otherDir, { recursive: true, force: true }));

  test('a pid file pointing at an unrelated process does not get it killed', async () => {
    const decoy = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], {
      stdio: 'ignore',
    });
    try {
      assert.ok(decoy.pid);
      mkdirSync(join(otherDir, 'run'), { recursive: true });
      const binary = process.execPath;
      writeFileSync(
        join(otherDir, 'run', 'temporal.pid'),
        JSON.stringify({
          service: 'temporal',
          pid: decoy.pid,
          binary,
          args: [],
          startedAt: new Date().toISOString(),
        }),
      );
      const denv = await privateStackEnv(otherDir);
      const r = robustsbi(['infra', 'down'], denv);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`temporal: pid ${decoy.pid} is no longer our server \\(left alone`),
      );
      assert.equal(isAlive(decoy.pid), true);
      assert.equal(existsSync(join(otherDir, 'run', 'temporal.pid')), false);
    } finally {
      decoy.kill('SIGKILL');
    }
  });
});

describe('up refuses a port another program holds', () => {
  const dir = join(projectRoot(), '.data', 'test', `busy-${process.pid}`);
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the port and the variable that moves it are named, and nothing is left running', async () => {
    const env = await privateStackEnv(dir);
    const blocker = createServer().listen(Number(env.ROBUSTSBI_TEMPORAL_PORT), '127.0.0.1');
    await once(blocker, 'listening');
    try {
      const r = robustsbi(['infra', 'up'], env);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        new RegExp(
          `Port ${env.ROBUSTSBI_TEMPORAL_PORT} on 127\\.0\\.0\\.1 is already taken by another program.*ROBUSTSBI_TEMPORAL_PORT\\.`,
        ),
      );
      assert.deepEqual(pidsMentioning(dir), []);
      assert.equal(existsSync(join(dir, 'run', 'temporal.pid')), false);
    } finally {
      blocker.close();
    }
  });
});
