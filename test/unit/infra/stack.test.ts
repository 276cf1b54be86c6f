import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { loadConfig } from '../../../infra/config.js';
import { isAlive, processCommandLine, serviceArgs, stackPaths } from '../../../infra/stack.js';

const config = loadConfig(
  {
    ROBUSTSBI_DATA_DIR: '/d',
    ROBUSTSBI_TEMPORAL_PORT: '1111',
    ROBUSTSBI_TEMPORAL_UI_PORT: '2222',
    ROBUSTSBI_MONGODB_PORT: '3333',
  },
  '/r',
);

describe('stack commands', () => {
  test('Temporal keeps its state in SQLite under the data dir, on loopback, UI on', () => {
    const a = serviceArgs('temporal', config);
    assert.deepEqual(a.slice(0, 2), ['server', 'start-dev']);
    const flag = (f: string) => a[a.indexOf(f) + 1];
    assert.equal(flag('--db-filename'), '/d/temporal.sqlite');
    assert.equal(flag('--ip'), '127.0.0.1');
    assert.equal(flag('--port'), '1111');
    assert.equal(flag('--ui-port'), '2222');
    assert.equal(a.includes('--headless'), false);
  });

  test('FerretDB uses SQLite under the data dir, on loopback, without telemetry or debug port', () => {
    const a = serviceArgs('mongodb', config);
    assert.ok(a.includes('--handler=sqlite'));
    assert.ok(a.includes('--sqlite-url=file:/d/ferretdb/data/'));
    assert.ok(a.includes('--listen-addr=127.0.0.1:3333'));
    assert.ok(a.includes('--telemetry=disable'));
    assert.ok(a.includes('--debug-addr=-'));
    assert.equal(stackPaths(config).pidFile('mongodb'), '/d/run/mongodb.pid');
  });

  test('process command lines are read for live processes only', async () => {
    assert.ok(processCommandLine(process.pid)?.[0]?.endsWith('node'));
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'marker-arg'], {
      stdio: 'ignore',
    });
    await new Promise((r) => child.once('spawn', r));
    assert.ok(processCommandLine(child.pid!)?.includes('marker-arg'));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.equal(isAlive(child.pid!), false);
  });
});
