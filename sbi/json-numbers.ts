// Non-finite numbers in JSON, one convention. JSON has no NaN or +-Infinity (JSON.stringify writes
// null, losing which it was), yet losses diverge and clipNorm is Infinity when clipping is off.
//  - JSON text robustsbi writes and reads back (model files, training checkpoints): the strings
//    "NaN", "Infinity" and "-Infinity", which read back as the numbers.
//  - Summaries that travel in Temporal payloads: null (what Temporal's JSON would make of them),
//    typed `number | null` so that readers see it.
//  - MongoDB documents: null plus a marker of what it was (results/nonfinite.ts), because there the
//    fields are numbers to queries and to the schemas.
// Imports nothing.

const NON_FINITE_TEXT: ReadonlySet<string> = new Set(['NaN', 'Infinity', '-Infinity']);

/** JSON.stringify replacer: a non-finite number becomes its string. */
export function nonFiniteToText(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

/** JSON.parse reviver, the inverse of nonFiniteToText. */
export function nonFiniteFromText(_key: string, value: unknown): unknown {
  return typeof value === 'string' && NON_FINITE_TEXT.has(value) ? Number(value) : value;
}

/** `value` as JSON text, non-finite numbers as strings; `indent` as JSON.stringify's. */
export function toJsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, nonFiniteToText, indent);
}

/** Parses JSON text, reading the strings of non-finite numbers as the numbers. */
export function fromJsonText(text: string): unknown {
  return JSON.parse(text, nonFiniteFromText) as unknown;
}

/** An already parsed value with the strings of non-finite numbers read as the numbers (a copy). */
export function reviveNonFinite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reviveNonFinite);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reviveNonFinite(v)]));
  return nonFiniteFromText('', value);
}

/** The payload convention: a non-finite number as null. */
export function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
