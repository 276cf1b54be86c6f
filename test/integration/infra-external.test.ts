// When TEMPORAL_ADDRESS / MONGODB_URI point at servers (here: the stack scripts/test.mjs started),
// infra starts and stops nothing, and status reports what it is connected to.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { projectRoot } from '../../infra/config.js';
import { robustsbi, sharedStackEnv } from './harness.js';

describe('infra with external servers', () => {
  const dataDir = join(projectRoot(), '.data', 'test', `external-${process.pid}`);
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('up starts nothing local and status answers for both', () => {
    const env: NodeJS.ProcessEnv = { ...sharedStackEnv(), ROBUSTSBI_DATA_DIR: dataDir };
    const r = robustsbi(['infra', 'up'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`temporal: external \\(${env.TEMPORAL_ADDRESS}`));
    assert.match(r.stdout, /mongodb: external \(/);
    const run = join(dataDir, 'run');
    assert.deepEqual(existsSync(run) ? readdirSync(run).filter((f) => f.endsWith('.pid')) : [], []);

    const s = robustsbi(['infra', 'status'], env);
    assert.equal(s.code, 0, s.stderr);
    assert.match(
      s.stdout,
      new RegExp(`temporal +${env.TEMPORAL_ADDRESS}, namespace default \\(external\\): answers`),
    );
    assert.match(
      s.stdout,
      /mongodb +127\.0\.0\.1:\d+, database robustsbi_test \(external\): answers/,
    );
  });

  test('down with external servers stops nothing', () => {
    const env: NodeJS.ProcessEnv = { ...sharedStackEnv(), ROBUSTSBI_DATA_DIR: dataDir };
    const r = robustsbi(['infra', 'down'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /temporal: external .*nothing to stop/);
    assert.equal(robustsbi(['infra', 'status'], env).code, 0);
  });

  test('an unreachable MongoDB is named in one sentence and status exits non-zero', () => {
    const env: NodeJS.ProcessEnv = {
      ...sharedStackEnv(),
      ROBUSTSBI_DATA_DIR: dataDir,
      MONGODB_URI: 'mongodb://127.0.0.1:1',
    };
    const r = robustsbi(['infra', 'status'], env);
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      /^robustsbi: The MongoDB server at 127\.0\.0\.1:1 does not answer \([^()]*\)\.$/,
    );
    // Temporal still answers and is reported as such.
    assert.match(r.stdout, /temporal .*answers/);
  });

  test('credentials in an unreachable URI are not printed', () => {
    const env: NodeJS.ProcessEnv = {
      ...sharedStackEnv(),
      ROBUSTSBI_DATA_DIR: dataDir,
      MONGODB_URI: 'mongodb://alice:s3cr3t-pw@127.0.0.1:1/?authSource=admin',
    };
    const r = robustsbi(['infra', 'status'], env);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout + r.stderr, /s3cr3t-pw/);
    assert.match(r.stderr, /MongoDB server at 127\.0\.0\.1:1 does not answer/);
  });
});
