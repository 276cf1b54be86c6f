// The names under which a failure crosses layers: the type of a Temporal ApplicationFailure an
// activity throws, the `name` of a results/ error a retry cannot fix, the `type` a failed trial or
// sweep records in MongoDB. One vocabulary for activities/, results/, workflows/ and cli/; this
// module imports nothing, so workflows may bundle it.

export const FAILURE_TYPES = {
  /** A setting that cannot work: sbi/'s InvalidSettingError or RangeError (activities/failures.ts). */
  invalidConfig: 'InvalidConfig',
  /** Training lost to NaN beyond its resets: sbi/'s DivergedError (activities/failures.ts). */
  diverged: 'Diverged',
  /** A document results/ refuses to store (results/errors.ts SchemaError). */
  schema: 'SchemaError',
  /** An _id that already holds a document with other identity fields (results/errors.ts). */
  conflict: 'ConflictError',
  /** A sweep or trial the store does not hold (results/errors.ts). */
  notFound: 'NotFoundError',
  /** A trial that another sweep's workflow is running at the moment (workflows/sweep.ts). */
  alreadyRunning: 'AlreadyRunning',
} as const;

export type FailureType = (typeof FAILURE_TYPES)[keyof typeof FAILURE_TYPES];

/**
 * The failure types no retry can fix: an activity failing with one of them fails for good (its
 * Temporal retry policy lists them as non-retryable, a pack records it as the item's outcome).
 * AlreadyRunning is not among them: the trial can run once the other sweep is done with it.
 */
export const FINAL_FAILURE_TYPES: readonly FailureType[] = [
  FAILURE_TYPES.invalidConfig,
  FAILURE_TYPES.diverged,
  FAILURE_TYPES.schema,
  FAILURE_TYPES.conflict,
  FAILURE_TYPES.notFound,
];
