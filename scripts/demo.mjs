#!/usr/bin/env node
// `npm run demo`: from a fresh clone to a running stack and a completed workflow. Until the demo
// sweep exists, the workflow is the smoke workflow (Temporal worker + MongoDB round trip).
import { join } from 'node:path';
import { build, ensureBinaries, ensureDeps, root, sh } from './setup.mjs';

ensureDeps();
build();
await ensureBinaries();
const cli = join(root, 'dist', 'cli', 'main.js');
for (const args of [['infra', 'up'], ['smoke'], ['infra', 'status']]) {
  const code = sh(process.execPath, [cli, ...args]);
  if (code !== 0) process.exit(code);
}
console.log(
  '\nThe stack keeps running: Temporal Web UI at http://127.0.0.1:%s, stop it with "npx robustsbi infra down".',
  process.env.ROBUSTSBI_TEMPORAL_UI_PORT || '8233',
);
