// Finds sbi 0.27.0 in the torch venv (bench/torch-venv.ts), for the parity bench that runs sbi's
// NPE() beside robustsbi's default. When sbi is missing the caller prints
// "sbi: unavailable (<reason>)" with the one command that installs it, instead of failing.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TORCH_VENV, torchPython } from './torch-venv.js';

/** The sbi release whose NPE() defaults issue 19 compares against. */
export const SBI_VERSION = '0.27.0';

export const SBI_INSTALL_COMMAND = `${join(TORCH_VENV, 'bin', 'pip')} install sbi==${SBI_VERSION}`;

export type SbiPython = { ok: true; python: string } | { ok: false; reason: string };

function sbiVersion(python: string): string | null {
  const r = spawnSync(python, ['-c', 'import sbi; print(sbi.__version__)'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The torch venv's python if sbi SBI_VERSION imports there; with `install`, pip installs it first. */
export function sbiPython(install: boolean): SbiPython {
  const torch = torchPython(false, `create it first (npm run bench -- --install-torch)`);
  if (!torch.ok) return { ok: false, reason: torch.reason };
  let version = sbiVersion(torch.python);
  if (version !== SBI_VERSION && install) {
    console.error(`sbi: installing sbi ${SBI_VERSION} into ${TORCH_VENV} (minutes)...`);
    const pip = spawnSync(join(TORCH_VENV, 'bin', 'pip'), ['install', `sbi==${SBI_VERSION}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 3_600_000,
    });
    if (pip.status !== 0) return { ok: false, reason: `${SBI_INSTALL_COMMAND} failed` };
    version = sbiVersion(torch.python);
  }
  if (version === SBI_VERSION) return { ok: true, python: torch.python };
  return {
    ok: false,
    reason: `${version === null ? 'no sbi' : `sbi ${version}, not ${SBI_VERSION},`} in ${TORCH_VENV}; \`${SBI_INSTALL_COMMAND}\` or --install-sbi installs it`,
  };
}
