// How an activity error becomes a Temporal failure: a bad configuration and a diverged training can
// never succeed on a retry, so they fail non-retryably under the failure types of sweeps/failures.ts;
// everything else (a lost connection, a killed worker) is left to Temporal's retries.
import { ApplicationFailure } from '@temporalio/common';
import { InvalidSettingError } from '../sbi/errors.js';
import { DivergedError } from '../sbi/errors.js';
import { FAILURE_TYPES } from '../sweeps/failures.js';

export function invalidConfig(message: string, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    message,
    type: FAILURE_TYPES.invalidConfig,
    nonRetryable: true,
    ...(cause instanceof Error ? { cause } : {}),
  });
}

/**
 * DivergedError -> Diverged; InvalidSettingError (an unknown name or setting in sbi's registries) and
 * RangeError (sbi's way of rejecting a value) -> InvalidConfig; anything else is returned unchanged.
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
  if (err instanceof InvalidSettingError || err instanceof RangeError)
    return invalidConfig(err.message, err);
  return err;
}
