// Whole-file writes that never leave a half-written file behind (write a temporary sibling, then
// rename it over the target: rename is atomic within one file system), and reads whose errors are
// one sentence naming the file.
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
 * Reads a text file. Errors name the file and the problem in one sentence; `what` says what the file
 * should be ("model file", "simulation file").
 */
export function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
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
}

/** Parses JSON text; `subject` names it in the error ("model file m.json", "model artifact models/a"). */
export function parseJsonText(text: string, subject: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FileFormatError(`The ${subject} is not valid JSON (${(e as Error).message}).`);
  }
}

/** A file that is missing, unreadable or not in the expected format; the message is one sentence. */
export class FileFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileFormatError';
  }
}
