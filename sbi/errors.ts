// Errors sbi/ throws for what its caller asked of it, as classes so that callers (activities, CLI)
// tell them apart by type, never by the words of their messages. Imports nothing.

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
