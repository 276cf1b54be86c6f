// The errors sbi/ throws on purpose, as classes, so callers tell them apart with instanceof rather
// than by reading messages. Imports nothing: any layer may import it.

/**
 * Training blew up: the validation loss stayed NaN through every allowed reset, or training ended
 * without a single finite one. Not retryable.
 */
export class DivergedError extends Error {
  readonly retryable = false;
  constructor(
    readonly epoch: number,
    readonly nanResets: number,
    /** Runs started again at a lower learning rate before this one (the rabi preset's rule). */
    readonly restarts = 0,
  ) {
    super(
      `Training diverged: the validation loss was NaN at epoch ${epoch} after ${nanResets - 1} reloads of the best state${
        restarts > 0 ? `, in the last of ${restarts + 1} runs (learning rate x 0.1 each)` : ''
      }.`,
    );
    this.name = 'DivergedError';
  }
}

/**
 * The checkpoint given to resume from belongs to another run (other data, hyperparameters, seed or
 * format). A RangeError, as sbi's other refusals of a setting; the caller may discard the checkpoint
 * and start afresh.
 */
export class CheckpointMismatchError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointMismatchError';
  }
}

/**
 * A setting sbi cannot work with: an unknown task, estimator, defense or backend name, or an
 * estimator setting that is unknown or out of range. No retry can fix it. The message is one
 * sentence naming the setting and what would be accepted.
 */
export class InvalidSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidSettingError';
  }
}

/** A known tensor backend that cannot be loaded on this machine (its package or library is absent). */
export class BackendUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendUnavailableError';
  }
}
