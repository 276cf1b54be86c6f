// Whole-file writes that never leave a half-written file behind: write a temporary sibling, then
// rename it over the target (rename is atomic within one file system).
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Reads and parses a JSON file. Errors name the file and the problem in one sentence; `what` says
 * what the file should be ("model file", "simulation file").
 */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${code ?? (e as Error).message})`;
    throw new FileFormatError(`The ${what} ${path} ${reason}.`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FileFormatError(`The ${what} ${path} is not valid JSON (${(e as Error).message}).`);
  }
}

/** A file that is missing, unreadable or not in the expected format; the message is one sentence. */
export class FileFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileFormatError';
  }
}
