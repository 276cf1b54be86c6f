#!/usr/bin/env node
// Thin launcher: the CLI lives in cli/ and is compiled to dist/ by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'cli', 'main.js');
if (!existsSync(entry)) {
  console.error(`robustsbi is not built yet: run "npm run build" in ${root}.`);
  process.exit(1);
}
await import(entry);
