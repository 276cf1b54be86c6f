#!/usr/bin/env node
// `npm run demo`: from a fresh clone to a finished sweep. Sets up (npm ci, tsc, the two server
// binaries), starts the embedded stack, starts a cpu worker, runs sweeps/demo.json to the end with
// progress, prints the accuracy-robustness trade-off table, then stops the worker (the stack keeps
// running so the results can be looked at).
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { build, ensureBinaries, ensureDeps, root, sh } from './setup.mjs';

ensureDeps();
build();
await ensureBinaries();
const cli = join(root, 'dist', 'cli', 'main.js');
for (const args of [
  ['infra', 'up'],
  ['infra', 'status'],
]) {
  const code = sh(process.execPath, [cli, ...args]);
  if (code !== 0) process.exit(code);
}

// The worker's log goes to a file so the sweep's progress bar owns the terminal.
const dataDir = process.env.ROBUSTSBI_DATA_DIR || join(root, '.data');
mkdirSync(join(dataDir, 'logs'), { recursive: true });
const workerLog = join(dataDir, 'logs', 'demo-worker.log');
const worker = spawn(process.execPath, [cli, 'worker', '--queue', 'cpu'], {
  cwd: root,
  stdio: ['ignore', 'ignore', openSync(workerLog, 'a')],
});
let workerExited = false;
const workerExit = new Promise((resolve) =>
  worker.once('exit', (code, signal) => {
    workerExited = true;
    resolve(signal ?? code);
  }),
);
const stopWorker = async () => {
  if (!workerExited) worker.kill('SIGTERM');
  await workerExit;
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    // The sweep survives: its workflow is durable, and a new worker or demo run picks it up.
    console.error(
      '\ndemo: interrupted; the sweep goes on once a worker runs again ("npx robustsbi worker --queue cpu").',
    );
    void stopWorker().then(() => process.exit(130));
  });
}
console.error(`demo: worker started (pid ${worker.pid}), log in ${workerLog}`);

const spec = join(root, 'sweeps', 'demo.json');
const sweep = spawn(process.execPath, [cli, 'sweep', 'run', spec, '--wait'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
sweep.stdout.on('data', (d) => {
  out += d.toString();
  process.stdout.write(d);
});
const code = await new Promise((resolve) => sweep.once('exit', (c) => resolve(c ?? 1)));
await stopWorker();
const sweepId = out.split('\n')[0]?.trim();
const has = (name) => existsSync(join(root, 'dist', 'cli', 'commands', `${name}.js`));
const ui = process.env.ROBUSTSBI_TEMPORAL_UI_PORT || '8233';
console.log(
  [
    '',
    `The results are in MongoDB (database ${process.env.MONGODB_DB || 'robustsbi'}); the stack keeps running.`,
    `  table again:   npx robustsbi sweep status ${sweepId} --table`,
    has('report') ? `  report:        npx robustsbi report ${sweepId}` : undefined,
    has('dashboard') ? '  dashboard:     npx robustsbi dashboard' : undefined,
    `  workflows:     Temporal Web UI at http://127.0.0.1:${ui}/namespaces/default/workflows`,
    '  stop it all:   npx robustsbi infra down',
  ]
    .filter((l) => l !== undefined)
    .join('\n'),
);
process.exit(code);
