#!/usr/bin/env node
// `npm run test:faults`: the slow fault-injection suite. Builds, then runs every
// dist/test/faults/**/*.test.js one file at a time. Unlike `npm test` it starts no stack: each test
// file starts its own (it must kill and restart the servers) under .data/faults/<name>, on free
// loopback ports, and stops it however it ends. Afterwards any process still running with its cwd
// under .data/faults (a server or worker a test failed to stop) is reported, killed, and fails the run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build, ensureBinaries, ensureDeps, root } from './setup.mjs';

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

/** Live processes whose working directory is under .data/faults (Linux /proc; none elsewhere). */
function faultProcesses() {
  const dir = join(root, '.data', 'faults');
  if (!existsSync('/proc/self/cwd')) return [];
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      if (cwd === dir || cwd.startsWith(dir + '/')) out.push(Number(name));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return out;
}

ensureDeps();
build();
await ensureBinaries();

const env = { ...process.env };
// Each test configures its own stack: a user's servers must not redirect it.
for (const k of Object.keys(env)) {
  if (k.startsWith('TEMPORAL_') || k === 'MONGODB_URI' || k === 'ROBUSTSBI_LOG_FILE') delete env[k];
}

const files = collect(join(root, 'dist', 'test', 'faults'));
let failed;
if (files.length === 0) {
  console.error('test-faults: no fault test files found under dist/test/faults');
  failed = 1;
} else {
  console.error(`test-faults: ${files.length} files, one at a time`);
  const args = [
    '--test',
    '--test-concurrency=1',
    // A hung test fails instead of holding CI; the after hooks still stop its stack.
    '--test-timeout=600000',
    ...files.map((f) => relative(root, f)),
  ];
  const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
  failed = r.status ?? 1;
}

const left = faultProcesses();
if (left.length > 0) {
  console.error(`test-faults: processes left running by the tests, now killed: ${left.join(', ')}`);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  failed = 1;
}
process.exitCode = failed ? 1 : 0;
