// How an activity error becomes a Temporal failure: a bad configuration and a diverged training can
// never succeed on a retry, so they fail non-retryably under types the workflows and tests know;
// everything else (a lost connection, a killed worker) is left to Temporal's retries.
import { ApplicationFailure } from '@temporalio/common';
import { DivergedError } from '../sbi/npe.js';

export const FAILURE_TYPES = {
  invalidConfig: 'InvalidConfig',
  diverged: 'Diverged',
} as const;
export const NON_RETRYABLE_TYPES: string[] = Object.values(FAILURE_TYPES);

export function invalidConfig(message: string, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    message,
    type: FAILURE_TYPES.invalidConfig,
    nonRetryable: true,
    ...(cause instanceof Error ? { cause } : {}),
  });
}

/** The sentences sbi's registries throw (as plain Errors) for a setting that cannot work. */
const CONFIG_MESSAGES = [
  /^Unknown (task|estimator|defense|backend)\b/,
  /^Unknown [a-z]+ setting\b/,
  /^[a-z]+ hidden sizes must be\b/,
  /^[a-z]+ setting "[^"]+" must be\b/,
];

/**
 * DivergedError -> Diverged, RangeError (sbi's way of rejecting a setting) and the estimator and
 * defense registries' "Unknown ..." errors -> InvalidConfig; anything else is returned unchanged.
 */
export function classify(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof DivergedError) {
    return ApplicationFailure.create({
      message: err.message,
      type: FAILURE_TYPES.diverged,
      nonRetryable: true,
      details: [{ epoch: err.epoch, nanResets: err.nanResets }],
    });
  }
  if (err instanceof RangeError) return invalidConfig(err.message, err);
  if (err instanceof Error && CONFIG_MESSAGES.some((re) => re.test(err.message)))
    return invalidConfig(err.message, err);
  return err;
}

/** Runs `fn`, rethrowing its error classified. */
export async function classified<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classify(err);
  }
}
