#!/usr/bin/env node
// Set-up shared by `npm test` and `npm run demo`: each step is skipped when already done, so both
// commands work on a fresh clone and stay fast on a warm one. Run alone, it does all three steps.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a command in the project root with inherited output; exits the script if it fails. */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function must(what, code) {
  if (code !== 0) {
    console.error(`setup: ${what} failed (exit ${code}).`);
    process.exit(code || 1);
  }
}

/** npm ci when node_modules is missing (a fresh clone). */
export function ensureDeps() {
  if (existsSync(join(root, 'node_modules', '.package-lock.json'))) return;
  console.error('setup: installing npm dependencies (npm ci)');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  must('npm ci', sh(npm, ['ci', '--no-audit', '--no-fund']));
}

/** Compiles TypeScript to dist/. */
export function build() {
  console.error('setup: compiling TypeScript (tsc)');
  must(
    'tsc',
    sh(process.execPath, [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'tsconfig.json',
    ]),
  );
}

/** The Temporal CLI and FerretDB: PATH, the per-user cache, or a one-time Go build. */
export async function ensureBinaries() {
  const mod = await import(pathToFileURL(join(root, 'dist', 'infra', 'binaries.js')).href);
  try {
    return await mod.ensureBinaries({ say: (m) => console.error(`setup: ${m}`) });
  } catch (err) {
    console.error(`setup: ${err.message}`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureDeps();
  build();
  const paths = await ensureBinaries();
  for (const [name, p] of Object.entries(paths)) console.log(`${name}: ${p}`);
}
