// The one error a bad sweep spec raises. Its message is one sentence that starts with the JSON path
// of the problem (`spec/defenses/1/betas/0: must be >= 0`), so the CLI can print it as is.

export class SpecError extends Error {
  constructor(
    /** Where the problem is: `spec` for the whole spec, then JSON-pointer segments. */
    readonly path: string,
    /** What is wrong there. */
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'SpecError';
  }
}

/** `spec` followed by the given segments, JSON-pointer style (`~` and `/` escaped). */
export function specPath(segments: readonly (string | number)[]): string {
  return ['spec', ...segments.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1'))].join(
    '/',
  );
}
