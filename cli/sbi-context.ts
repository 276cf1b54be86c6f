// What the science commands share once their options are checked: the tensor backend, task lookup
// and the translation of file-format errors into one-sentence user errors. Loads tfjs, so commands
// import this lazily, inside run().
import { initBackend, type BackendReport } from '../sbi/backend.js';
import { FileFormatError } from '../sbi/atomic-file.js';
import { BackendUnavailableError, InvalidSettingError } from '../sbi/errors.js';
import type { SavedModel } from '../sbi/model-file.js';
import { simulateDataset } from '../sbi/simulate.js';
import { TASK_NAMES, getTask, isTaskName } from '../sbi/tasks/index.js';
import type { Prior, RandomStream, Task } from '../sbi/types.js';
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

/** A saved model's task, checked against the model's dimensions. */
export function modelTask(saved: SavedModel, modelPath: string): Task {
  const task = taskByName(saved.task);
  const model = saved.estimator;
  if (task.thetaDim !== model.thetaDim || task.xDim !== model.xDim) {
    throw new UserError(
      `The model ${modelPath} has ${model.thetaDim}->${model.xDim} dimensions, but its task ${task.name} has ${task.thetaDim}->${task.xDim}.`,
    );
  }
  return task;
}

/** The prior of a saved model's task, whose support `sample` and `logprob` restrict q to. */
export function modelPrior(saved: SavedModel, modelPath: string): Prior {
  if (!isTaskName(saved.task))
    throw new UserError(
      `The model ${modelPath} is of the task "${saved.task}", which robustsbi does not know, so the support of its prior is unknown; use --leakage keep to take q as it is.`,
    );
  return modelTask(saved, modelPath).prior;
}

/**
 * A saved model's task, checked against the model's dimensions, and fresh test simulations of it
 * from a fork of its own (so they differ from a training set simulated with the same seed): what
 * `evaluate` and `adversarial-example` attack, the same points for the same seed.
 */
export function modelTestSet(
  saved: SavedModel,
  modelPath: string,
  nTest: number,
  rng: RandomStream,
): { task: Task; test: ReturnType<typeof simulateDataset> } {
  const task = modelTask(saved, modelPath);
  const test = simulateDataset(task, nTest, rng.fork('evaluate/test-set'));
  if (test.n === 0) throw new UserError(`All ${nTest} test simulations of ${task.name} failed.`);
  return { task, test };
}
