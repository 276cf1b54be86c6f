// Validation of a document before it is written, in the application because FerretDB 1.24 has no
// server-side validators: the JSON Schema of its collection (results/schemas.ts), then a walk for
// what FerretDB itself rejects (keys with '.' or a leading '$', nested arrays, non-finite numbers,
// NUL in strings) in the free-form parts (a sweep spec, a trial config), then the checks across
// fields. A failure is a SchemaError naming the first offending field.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { CURVE_KINDS, type CollectionName, type CurveKind } from './documents.js';
import { SchemaError } from './errors.js';
import { decodeNonFinite, type NonFiniteMarker } from './nonfinite.js';
import {
  coverageCurveSchema,
  evaluationSchema,
  klVsEpsCurveSchema,
  sweepPatchSchema,
  sweepSchema,
  tradeoffCurveSchema,
  trialPatchSchema,
  trialSchema,
} from './schemas.js';

const ajv = new Ajv({ allErrors: false, strict: true, strictNumbers: true, allowUnionTypes: true });
ajv.addKeyword({
  keyword: 'bsonDate',
  schemaType: 'boolean',
  errors: false,
  validate: (_schema: boolean, data: unknown) =>
    data instanceof Date && !Number.isNaN(data.getTime()),
});

const validators: Record<CollectionName, ValidateFunction> & {
  trialPatch: ValidateFunction;
  sweepPatch: ValidateFunction;
  curve: Record<CurveKind, ValidateFunction>;
} = {
  sweeps: ajv.compile(sweepSchema),
  trials: ajv.compile(trialSchema),
  trialPatch: ajv.compile(trialPatchSchema),
  sweepPatch: ajv.compile(sweepPatchSchema),
  evaluations: ajv.compile(evaluationSchema),
  // Picked by `kind` so that errors name the real field instead of a oneOf branch.
  curves: ajv.compile({
    type: 'object',
    required: ['kind'],
    properties: { kind: { enum: [...CURVE_KINDS] } },
  }),
  curve: {
    tradeoff: ajv.compile(tradeoffCurveSchema),
    kl_vs_eps: ajv.compile(klVsEpsCurveSchema),
    coverage: ajv.compile(coverageCurveSchema),
  },
};

/**
 * JSON pointer -> the form a reader expects: /kl/q2_5 -> kl.q2_5, /coverage/clean/3 ->
 * coverage.clean[3], /spec/optimizer.lr -> spec["optimizer.lr"].
 */
export function fieldName(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const t = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(t)) out += `[${t}]`;
    else if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(t)) out += `[${JSON.stringify(t)}]`;
    else out += out === '' ? t : `.${t}`;
  }
  return out;
}

function describe(err: ErrorObject): { field: string; problem: string } {
  let pointer = err.instancePath;
  let problem = err.message ?? 'is invalid';
  if (err.keyword === 'required') {
    pointer += `/${(err.params as { missingProperty: string }).missingProperty}`;
    problem = 'is required';
  } else if (err.keyword === 'additionalProperties') {
    pointer += `/${(err.params as { additionalProperty: string }).additionalProperty}`;
    problem = 'is not a known field';
  } else if (err.keyword === 'bsonDate') {
    problem = 'must be a Date';
  } else if (err.keyword === 'enum') {
    const allowed = (err.params as { allowedValues: unknown[] }).allowedValues;
    problem = `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
  } else {
    problem = problem.replace(/^must /, 'must ');
  }
  return { field: fieldName(pointer), problem };
}

/** The first thing FerretDB would refuse in `value`, as a JSON pointer and a reason. */
export function storabilityProblem(
  value: unknown,
  pointer = '',
): { pointer: string; problem: string } | undefined {
  if (value === undefined) return { pointer, problem: 'is undefined (not storable)' };
  if (typeof value === 'number') {
    return Number.isFinite(value)
      ? undefined
      : { pointer, problem: `is ${value} (not storable; encode it)` };
  }
  if (typeof value === 'string') {
    return value.includes('\u0000') ? { pointer, problem: 'contains a NUL character' } : undefined;
  }
  if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') {
    return { pointer, problem: `is a ${typeof value} (not storable)` };
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (Array.isArray(value[i]))
        return {
          pointer: `${pointer}/${i}`,
          problem: 'is an array inside an array (not storable)',
        };
      const p = storabilityProblem(value[i], `${pointer}/${i}`);
      if (p) return p;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return undefined; // Date, ObjectId, Binary
  for (const [k, v] of Object.entries(value)) {
    const child = `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (k.includes('.')) return { pointer: child, problem: "has a '.' in its key (not storable)" };
    if (k.startsWith('$'))
      return { pointer: child, problem: "has a key starting with '$' (not storable)" };
    if (k === '') return { pointer: child, problem: 'has an empty key (not storable)' };
    const p = storabilityProblem(v, child);
    if (p) return p;
  }
  return undefined;
}

/** Every nonFinite marker must point at a stored null (so decoding cannot fail later). */
function markerProblem(
  doc: Record<string, unknown>,
): { field: string; problem: string } | undefined {
  const map = doc.nonFinite as Record<string, NonFiniteMarker[]> | undefined;
  if (!map) return undefined;
  for (const [field, markers] of Object.entries(map)) {
    try {
      decodeNonFinite(structuredClone(doc[field]), markers);
    } catch (e) {
      return { field: `nonFinite.${field}`, problem: `is inconsistent: ${(e as Error).message}` };
    }
  }
  return undefined;
}

/** Checks that hold across fields, which JSON Schema cannot say. */
function crossFieldProblem(
  collection: CollectionName,
  doc: Record<string, unknown>,
): { field: string; problem: string } | undefined {
  if (collection === 'evaluations') {
    const c = doc.coverage as { levels: unknown[]; clean: unknown[]; attacked: unknown[] };
    if (c.clean.length !== c.levels.length)
      return {
        field: 'coverage.clean',
        problem: `must have one value per level (${c.levels.length})`,
      };
    if (c.attacked.length !== c.levels.length)
      return {
        field: 'coverage.attacked',
        problem: `must have one value per level (${c.levels.length})`,
      };
  }
  if (collection === 'trials' && doc.status === 'completed' && doc.summary === undefined) {
    return { field: 'summary', problem: 'is required when status is "completed"' };
  }
  if (collection === 'curves' && doc.kind === 'kl_vs_eps') {
    const series = doc.series as {
      eps: unknown[];
      median: unknown[];
      q15: unknown[];
      q85: unknown[];
      mean: unknown[];
      trials: unknown[];
    }[];
    for (let i = 0; i < series.length; i++) {
      const s = series[i]!;
      for (const k of ['median', 'q15', 'q85', 'mean', 'trials'] as const) {
        if (s[k].length !== s.eps.length)
          return {
            field: `series[${i}].${k}`,
            problem: `must have one value per eps (${s.eps.length})`,
          };
      }
    }
  }
  if (collection === 'curves' && doc.kind === 'coverage') {
    const series = doc.series as {
      levels: unknown[];
      clean: unknown[];
      curves: { observed: unknown[] }[];
    }[];
    for (let i = 0; i < series.length; i++) {
      const s = series[i]!;
      if (s.clean.length !== s.levels.length)
        return {
          field: `series[${i}].clean`,
          problem: `must have one value per level (${s.levels.length})`,
        };
      for (let j = 0; j < s.curves.length; j++) {
        if (s.curves[j]!.observed.length !== s.levels.length)
          return {
            field: `series[${i}].curves[${j}].observed`,
            problem: `must have one value per level (${s.levels.length})`,
          };
      }
    }
  }
  return undefined;
}

/**
 * Throws SchemaError naming the first offending field of a stored-form document of `collection`.
 * `index` places it in a batch for the message.
 */
export function validateDocument(collection: CollectionName, doc: unknown, index?: number): void {
  const docId =
    doc !== null && typeof doc === 'object' && typeof (doc as { _id?: unknown })._id === 'string'
      ? (doc as { _id: string })._id
      : undefined;
  const fail = (field: string, problem: string): never => {
    throw new SchemaError(collection, field, problem, docId, index);
  };
  let v: ValidateFunction = validators[collection];
  if (!v(doc)) {
    const d = describe(v.errors![0]!);
    fail(d.field, d.problem);
  }
  if (collection === 'curves') {
    v = validators.curve[(doc as { kind: CurveKind }).kind];
    if (!v(doc)) {
      const d = describe(v.errors![0]!);
      fail(d.field, d.problem);
    }
  }
  const s = storabilityProblem(doc);
  if (s) fail(fieldName(s.pointer), s.problem);
  const record = doc as Record<string, unknown>;
  const m = markerProblem(record);
  if (m) fail(m.field, m.problem);
  const c = crossFieldProblem(collection, record);
  if (c) fail(c.field, c.problem);
}

/**
 * Validates the fields an update sets on an existing document (stored form, without the
 * 'nonFinite.<field>' entries): the trial fields of a status transition, or the sweep fields of a
 * status or counts update.
 */
export function validatePatch(
  collection: 'trials' | 'sweeps',
  patch: Record<string, unknown>,
  docId: string,
): void {
  const v = collection === 'trials' ? validators.trialPatch : validators.sweepPatch;
  if (!v(patch)) {
    const d = describe(v.errors![0]!);
    throw new SchemaError(collection, d.field, d.problem, docId);
  }
  const s = storabilityProblem(patch);
  if (s) throw new SchemaError(collection, fieldName(s.pointer), s.problem, docId);
}

/** Validates a batch: each document, and no _id twice. */
export function validateAll(
  collection: CollectionName,
  docs: readonly Record<string, unknown>[],
): void {
  docs.forEach((d, i) => validateDocument(collection, d, docs.length > 1 ? i : undefined));
  const seen = new Set<string>();
  docs.forEach((d, i) => {
    const id = d._id as string;
    if (seen.has(id)) {
      throw new SchemaError(collection, '_id', 'appears twice in one batch', id, i);
    }
    seen.add(id);
  });
}

/**
 * A validator for a collection outside the core ones (its schema kept beside its store): the same
 * ajv and date keyword, and it throws SchemaError naming the first offending field, storability too.
 */
export function documentValidator(collection: string, schema: object): (doc: unknown) => void {
  const v = ajv.compile(schema);
  return (doc) => {
    const id = (doc as { _id?: unknown } | null)?._id;
    const docId = typeof id === 'string' ? id : undefined;
    if (!v(doc)) {
      const d = describe(v.errors![0]!);
      throw new SchemaError(collection, d.field, d.problem, docId);
    }
    const s = storabilityProblem(doc);
    if (s) throw new SchemaError(collection, fieldName(s.pointer), s.problem, docId);
  };
}
