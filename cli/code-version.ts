// The code version recorded in model and simulation files: package.json's version and, when this runs
// from a git checkout, the commit. Found here (not in sbi/, which never runs git).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CodeVersion } from '../sbi/model-file.js';

let cached: CodeVersion | undefined;

function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'robustsbi')
          return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

export function codeVersion(): CodeVersion {
  if (cached) return cached;
  const root = packageRoot();
  let version = 'unknown';
  let commit: string | undefined;
  if (root) {
    version =
      (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string })
        .version ?? 'unknown';
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 3000,
      })
        .toString()
        .trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 3000,
      })
        .toString()
        .trim();
      if (dirty !== '') commit += '-dirty';
    } catch {
      commit = undefined; // no git, or not a checkout
    }
  }
  cached = commit ? { version, commit } : { version };
  return cached;
}

/** The label workers record on sweeps, trials and calibrations: version, and +commit (12 digits). */
export function codeVersionLabel(): string {
  const cv = codeVersion();
  return cv.commit ? `${cv.version}+${cv.commit.slice(0, 12)}` : cv.version;
}
