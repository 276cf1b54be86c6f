// The two server binaries of the embedded stack. Taken from PATH when present, otherwise built once
// with Go into a per-user cache keyed by version, so every clone on the machine reuses them.
// Runnable on its own: `node dist/infra/binaries.js` installs both and prints their paths.
import { spawn } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type BinaryName = 'temporal' | 'ferretdb';

export const PINNED: Record<BinaryName, { module: string; version: string }> = {
  temporal: { module: 'github.com/temporalio/cli', version: 'v1.5.1' },
  ferretdb: { module: 'github.com/FerretDB/FerretDB', version: 'v1.24.2' },
};

export const TOOLS_DIR_VAR = 'ROBUSTSBI_TOOLS_DIR';

/** A binary could not be found or built; the message is one sentence saying what to do. */
export class BinaryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BinaryError';
  }
}

type Env = NodeJS.ProcessEnv;
type Say = (message: string) => void;

/** ${ROBUSTSBI_TOOLS_DIR} or ${XDG_CACHE_HOME:-~/.cache}/robustsbi/tools */
export function toolsDir(env: Env = process.env): string {
  if (env[TOOLS_DIR_VAR]) return env[TOOLS_DIR_VAR]!;
  const cache = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(cache, 'robustsbi', 'tools');
}

/** Where the built binary lives: one folder per name and version. */
export function cachedPath(name: BinaryName, env: Env = process.env): string {
  return join(toolsDir(env), `${name}-${PINNED[name].version}`, name);
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable called `name` on PATH, or undefined. */
export function findOnPath(name: string, env: Env = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** The binary if it is already available (PATH, then cache); never builds. */
export function locateBinary(name: BinaryName, env: Env = process.env): string | undefined {
  const onPath = findOnPath(name, env);
  if (onPath) return onPath;
  const cached = cachedPath(name, env);
  return isExecutable(cached) ? cached : undefined;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env: Env },
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (b: Buffer) => {
      output = (output + b.toString()).slice(-20000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

function goOrThrow(env: Env): string {
  const go = findOnPath('go', env);
  if (!go) {
    throw new BinaryError(
      'The Go toolchain (1.25 or newer, https://go.dev/dl/) is needed once to build the Temporal CLI and FerretDB; install it and put `go` on PATH, or put `temporal` and `ferretdb` binaries on PATH.',
    );
  }
  return go;
}

async function mustRun(
  go: string,
  args: string[],
  what: string,
  opts: { cwd?: string; env: Env },
): Promise<string> {
  const r = await run(go, args, opts);
  if (r.code !== 0) {
    const tail = r.output.trim().split('\n').slice(-15).join('\n');
    throw new BinaryError(
      `Building ${what} with "go ${args.join(' ')}" failed (exit ${r.code}):\n${tail}`,
    );
  }
  return r.output;
}

async function buildTemporal(go: string, outDir: string, env: Env): Promise<string> {
  const { module, version } = PINNED.temporal;
  // Without the ldflag, `temporal --version` reports 0.0.0-DEV.
  const ldflags = `-X ${module}/temporalcli.Version=${version.slice(1)}`;
  await mustRun(
    go,
    ['install', '-ldflags', ldflags, `${module}/cmd/temporal@${version}`],
    `temporal ${version}`,
    {
      env: { ...env, GOBIN: outDir },
    },
  );
  return join(outDir, 'temporal');
}

async function buildFerretdb(go: string, outDir: string, env: Env): Promise<string> {
  const { module, version } = PINNED.ferretdb;
  // `go install` would give a binary that panics at start: build/version/version.txt is written only
  // by FerretDB's release process. So build from a writable copy of the module with that file filled in.
  const json = await mustRun(
    go,
    ['mod', 'download', '-json', `${module}@${version}`],
    `ferretdb ${version}`,
    { env },
  );
  const dir = (JSON.parse(json) as { Dir?: string }).Dir;
  if (!dir || !existsSync(dir))
    throw new BinaryError(
      `"go mod download" did not return a source folder for ${module}@${version}.`,
    );
  const src = join(outDir, 'src');
  cpSync(dir, src, { recursive: true });
  makeWritable(src);
  writeFileSync(join(src, 'build', 'version', 'version.txt'), `${version}\n`);
  const out = join(outDir, 'ferretdb');
  await mustRun(go, ['build', '-o', out, './cmd/ferretdb'], `ferretdb ${version}`, {
    cwd: src,
    env: { ...env, GOFLAGS: `${env.GOFLAGS ?? ''} -buildvcs=false`.trim() },
  });
  return out;
}

function makeWritable(dir: string): void {
  // The module cache is read-only; the copy must be writable to add version.txt and to be deleted.
  chmodSync(dir, 0o755);
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) makeWritable(p);
    else if (ent.isFile()) chmodSync(p, 0o644);
  }
}

const inFlight = new Map<string, Promise<string>>();

/**
 * The path of a working binary: PATH, then the cache, else built with Go into the cache. The build
 * goes to a private temp folder and is renamed into place, so concurrent installers never see half a file.
 */
export function ensureBinary(
  name: BinaryName,
  opts: { env?: Env; say?: Say } = {},
): Promise<string> {
  const env = opts.env ?? process.env;
  const found = locateBinary(name, env);
  if (found) return Promise.resolve(found);
  const target = cachedPath(name, env);
  const pending = inFlight.get(target);
  if (pending) return pending;
  const p = (async () => {
    const go = goOrThrow(env);
    const { version } = PINNED[name];
    const say = opts.say ?? (() => {});
    say(
      `Building ${name} ${version} with Go into ${target} (first run on this machine only; it can take a few minutes).`,
    );
    mkdirSync(join(target, '..'), { recursive: true });
    const work = mkdtempSync(join(target, '..', '.build-'));
    try {
      const t0 = Date.now();
      const built =
        name === 'temporal'
          ? await buildTemporal(go, work, env)
          : await buildFerretdb(go, work, env);
      renameSync(built, target);
      say(`Built ${name} ${version} in ${Math.round((Date.now() - t0) / 1000)} s.`);
      return target;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  })();
  inFlight.set(target, p);
  p.catch(() => {}).finally(() => inFlight.delete(target));
  return p;
}

export async function ensureBinaries(
  opts: { env?: Env; say?: Say } = {},
): Promise<Record<BinaryName, string>> {
  // Sequential: two Go builds at once only fight for the same cores.
  const temporal = await ensureBinary('temporal', opts);
  const ferretdb = await ensureBinary('ferretdb', opts);
  return { temporal, ferretdb };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureBinaries({ say: (m) => console.error(m) }).then(
    (paths) => {
      for (const [n, p] of Object.entries(paths)) console.log(`${n}: ${p}`);
    },
    (err: Error) => {
      console.error(err.message);
      process.exitCode = 1;
    },
  );
}
