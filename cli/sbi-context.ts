// What the science commands share once their options are checked: the tensor backend, task lookup
// and the translation of file-format errors into one-sentence user errors. Loads tfjs, so commands
// import this lazily, inside run().
import { initBackend, type BackendReport } from '../sbi/backend.js';
import { FileFormatError } from '../sbi/atomic-file.js';
import { BackendUnavailableError, InvalidSettingError } from '../sbi/errors.js';
import { TASK_NAMES, getTask, isTaskName } from '../sbi/tasks/index.js';
import type { Task } from '../sbi/types.js';
import { UserError } from './errors.js';

/** The backend `name` (or auto); an unknown or unloadable one is the user's, in one sentence. */
export async function startBackend(name: string | undefined): Promise<BackendReport> {
  try {
    return await initBackend(name);
  } catch (e) {
    if (e instanceof InvalidSettingError || e instanceof BackendUnavailableError)
      throw new UserError(e.message);
    throw e;
  }
}

export function taskByName(name: string): Task {
  if (!isTaskName(name))
    throw new UserError(`Unknown task "${name}"; use one of ${TASK_NAMES.join(', ')}.`);
  return getTask(name);
}

/** Runs a file load, turning its FileFormatError into a UserError with the same sentence. */
export function loadOrFail<T>(load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof FileFormatError) throw new UserError(e.message);
    throw e;
  }
}
