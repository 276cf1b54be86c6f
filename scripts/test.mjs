#!/usr/bin/env node
// `npm test`: unit tests, then integration tests against a real embedded stack (Temporal dev server
// + FerretDB) that this script starts on free loopback ports with its own data dir under .data/test,
// so a user's own stack is never touched; the stack is stopped whatever happens.
// `--unit` runs the unit tests only.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { build, ensureBinaries, ensureDeps, root } from './setup.mjs';

const unitOnly = process.argv.includes('--unit');

function collect(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...collect(p));
    else if (ent.isFile() && ent.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

function runTests(label, files, env = process.env) {
  if (files.length === 0) {
    console.error(`test: no ${label} test files found`);
    return 0;
  }
  console.error(`test: ${label} tests (${files.length} files)`);
  const args = ['--test', '--test-concurrency=1', ...files.map((f) => relative(root, f))];
  const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
  return r.status ?? 1;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

ensureDeps();
// Compile, unless `npm test` has just done so in a pretest step.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pretestBuilt =
  process.env.npm_lifecycle_event === 'test' && /\bbuild\b/.test(pkg.scripts?.pretest ?? '');
if (!pretestBuilt || !existsSync(join(root, 'dist'))) build();

let failed = runTests('unit', collect(join(root, 'dist', 'test', 'unit')));

if (!unitOnly) {
  await ensureBinaries();
  const [tp, up, mp] = await freePorts(3);
  const dataDir = join(root, '.data', 'test', 'stack');
  const stackEnv = { ...process.env };
  // The test stack is always embedded: a user's TEMPORAL_ADDRESS / MONGODB_URI must not redirect it.
  for (const k of [
    'TEMPORAL_ADDRESS',
    'TEMPORAL_NAMESPACE',
    'TEMPORAL_TLS_CERT',
    'TEMPORAL_TLS_KEY',
    'TEMPORAL_TLS_CA',
    'TEMPORAL_TLS_SERVER_NAME',
    'TEMPORAL_API_KEY',
    'MONGODB_URI',
    'ROBUSTSBI_LOG_FILE',
  ]) {
    delete stackEnv[k];
  }
  Object.assign(stackEnv, {
    ROBUSTSBI_DATA_DIR: dataDir,
    ROBUSTSBI_TEMPORAL_PORT: String(process.env.ROBUSTSBI_TEST_TEMPORAL_PORT || tp),
    ROBUSTSBI_TEMPORAL_UI_PORT: String(process.env.ROBUSTSBI_TEST_TEMPORAL_UI_PORT || up),
    ROBUSTSBI_MONGODB_PORT: String(process.env.ROBUSTSBI_TEST_MONGODB_PORT || mp),
    MONGODB_DB: 'robustsbi_test',
  });
  const cli = join(root, 'dist', 'cli', 'main.js');
  const infra = (cmd) =>
    spawnSync(process.execPath, [cli, 'infra', cmd], { cwd: root, env: stackEnv, stdio: 'inherit' })
      .status ?? 1;
  const stop = () => infra('down');
  const onSignal = (sig) => {
    stop();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // A stack left by an interrupted run is stopped, and every run starts from empty state.
  stop();
  rmSync(dataDir, { recursive: true, force: true });
  try {
    if (infra('up') !== 0) {
      console.error('test: the embedded stack for the integration tests did not start.');
      failed = 1;
    } else {
      const testEnv = {
        ...stackEnv,
        TEMPORAL_ADDRESS: `127.0.0.1:${stackEnv.ROBUSTSBI_TEMPORAL_PORT}`,
        MONGODB_URI: `mongodb://127.0.0.1:${stackEnv.ROBUSTSBI_MONGODB_PORT}/?directConnection=true&retryWrites=false`,
      };
      // Run even when unit tests failed: both results matter to the reader.
      const code = runTests(
        'integration',
        collect(join(root, 'dist', 'test', 'integration')),
        testEnv,
      );
      failed ||= code;
    }
  } finally {
    stop();
  }
}
process.exitCode = failed ? 1 : 0;
