// Finds (or creates) the Python venv that runs the pyloric reference (bench/pyloric/reference.py),
// outside the repository. The package itself, mackelab/pyloric, is not on PyPI (the name there is an
// empty placeholder), so its source is a checkout at PYLORIC_SRC (commit 89dd27d, the one
// research/pyloric.md read); the venv holds only its PyPI dependencies. When either is missing,
// callers print "reference: unavailable (<reason>)" instead of failing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE = join(homedir(), '.cache', 'robustsbi');
export const PYLORIC_VENV = process.env.ROBUSTSBI_PYLORIC_VENV ?? join(CACHE, 'pyloric-venv');
export const PYLORIC_SRC = process.env.ROBUSTSBI_PYLORIC_SRC ?? join(CACHE, 'pyloric-src');
/** pandas 3 rejects the package's .loc writes; cython compiles simulator.pyx on first import. */
const REQUIREMENTS = ['numpy', 'pandas<2.3', 'scipy', 'cython', 'setuptools', 'matplotlib', 'tqdm'];

export type PyloricPython =
  { ok: true; python: string; src: string } | { ok: false; reason: string };

function imports(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import numpy, pandas, scipy, Cython, matplotlib'], {
    stdio: 'ignore',
    timeout: 120_000,
  });
  return r.status === 0;
}

/** The venv's python and the package source, creating the venv when `install` is set. */
export function pyloricPython(install: boolean): PyloricPython {
  if (!existsSync(join(PYLORIC_SRC, 'pyloric', 'simulator.pyx')))
    return {
      ok: false,
      reason: `no mackelab/pyloric checkout at ${PYLORIC_SRC} (commit 89dd27d; set ROBUSTSBI_PYLORIC_SRC)`,
    };
  const python = join(PYLORIC_VENV, 'bin', 'python');
  if (existsSync(python) && imports(python)) return { ok: true, python, src: PYLORIC_SRC };
  if (!install)
    return { ok: false, reason: `no venv at ${PYLORIC_VENV}; --install-reference creates it` };
  console.error(`reference: creating ${PYLORIC_VENV} (${REQUIREMENTS.join(', ')})...`);
  const mk = spawnSync('python3', ['-m', 'venv', PYLORIC_VENV], { encoding: 'utf8' });
  if (mk.status !== 0) return { ok: false, reason: `python3 -m venv failed: ${mk.stderr}` };
  const pip = spawnSync(join(PYLORIC_VENV, 'bin', 'pip'), ['install', '--quiet', ...REQUIREMENTS], {
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  if (pip.status !== 0) return { ok: false, reason: `pip install failed: ${pip.stderr}` };
  return imports(python)
    ? { ok: true, python, src: PYLORIC_SRC }
    : { ok: false, reason: 'the venv was made but its packages do not import' };
}

/** `python bench/pyloric/reference.py <args>` on one core (taskset where present); its stdout. */
export function runReference(
  py: { python: string; src: string },
  args: string[],
  core: number | undefined,
  timeoutMs: number,
): string {
  const script = referenceScript();
  const cmd = [py.python, script, '--src', py.src, ...args];
  const pinned = core !== undefined && hasTaskset() ? ['taskset', '-c', String(core), ...cmd] : cmd;
  const r = spawnSync(pinned[0]!, pinned.slice(1), {
    encoding: 'utf8',
    timeout: timeoutMs,
    // One thread: numpy's BLAS would otherwise spread over the cores.
    env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(
      `reference.py ${args[0]} failed: ${(r.stderr || r.error?.message || '').slice(-2000)}`,
    );
  return r.stdout;
}

/** bench/pyloric/reference.py, found above this module (it runs from bench/ or from dist/bench/). */
function referenceScript(): string {
  const rel = join('bench', 'pyloric', 'reference.py');
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, rel))) return join(dir, rel);
    if (dirname(dir) === dir) throw new Error(`${rel} not found above ${import.meta.url}`);
  }
}

export function hasTaskset(): boolean {
  return spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0;
}
