// Finds (or creates) the Python virtual environment with PyTorch that the speed bench compares
// against. It lives outside the repository (several GB of wheels); when it cannot be had, callers
// print "torch: unavailable (<reason>)" instead of failing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const TORCH_VENV =
  process.env.ROBUSTSBI_TORCH_VENV ?? join(homedir(), '.cache', 'robustsbi', 'torch-venv');

export type TorchPython =
  { ok: true; python: string; note?: string } | { ok: false; reason: string };

function torchImports(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import torch, numpy'], { stdio: 'ignore', timeout: 120_000 });
  return r.status === 0;
}

/** How the suite is asked to create the venv: the words a user reads when it is missing. */
export const SUITE_INSTALL_HINT = 'npm run bench -- --install-torch creates it';

/**
 * The venv's python if torch imports there; else tries to create it (unless install is false).
 * `installHint` says, in the missing venv's reason, how the caller's command creates it.
 */
export function torchPython(install: boolean, installHint = SUITE_INSTALL_HINT): TorchPython {
  const python = join(TORCH_VENV, 'bin', 'python');
  if (existsSync(python) && torchImports(python)) return { ok: true, python };
  if (!install) return { ok: false, reason: `no torch venv at ${TORCH_VENV}; ${installHint}` };
  console.error(
    `torch: creating ${TORCH_VENV} and installing torch from PyPI (several GB, minutes)...`,
  );
  const mk = spawnSync('python3', ['-m', 'venv', TORCH_VENV], { encoding: 'utf8' });
  if (mk.status !== 0)
    return {
      ok: false,
      reason: `python3 -m venv failed: ${firstLine(mk.stderr || mk.error?.message)}`,
    };
  const pip = spawnSync(join(TORCH_VENV, 'bin', 'pip'), ['install', '--quiet', 'torch', 'numpy'], {
    encoding: 'utf8',
    timeout: 3_600_000,
  });
  if (pip.status !== 0)
    return {
      ok: false,
      reason: `pip install torch failed: ${firstLine(pip.stderr || pip.error?.message)}`,
    };
  if (!torchImports(python)) return { ok: false, reason: 'torch installed but does not import' };
  return { ok: true, python, note: `created ${TORCH_VENV}` };
}

function firstLine(s: string | undefined): string {
  return (s ?? 'unknown error').trim().split('\n').pop() ?? 'unknown error';
}
