// FerretDB rejects NaN and +-Infinity, yet losses diverge and KL estimates overflow. A non-finite
// number is stored as null, and the document's `nonFinite` map records what it was:
//   nonFinite: { <top-level field>: [{ path: <RFC 6901 pointer inside that field>, value }] }
// Keyed by top-level field so that an update which $sets one field (a trial's summary) can $set its
// markers too ('nonFinite.summary') without touching the markers of other fields.

export type NonFiniteKind = 'nan' | 'inf' | '-inf';

export interface NonFiniteMarker {
  /** JSON pointer relative to the top-level field ('' when the field itself is the number). */
  path: string;
  value: NonFiniteKind;
}

export type NonFiniteMap = Record<string, NonFiniteMarker[]>;

export const NON_FINITE_KEY = 'nonFinite';

export function nonFiniteKind(x: number): NonFiniteKind {
  if (Number.isNaN(x)) return 'nan';
  return x > 0 ? 'inf' : '-inf';
}

export function nonFiniteValue(kind: NonFiniteKind): number {
  return kind === 'nan' ? NaN : kind === 'inf' ? Infinity : -Infinity;
}

function escapeToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapeToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function encodeValue(value: unknown, path: string, markers: NonFiniteMarker[]): unknown {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    markers.push({ path, value: nonFiniteKind(value) });
    return null;
  }
  if (Array.isArray(value)) return value.map((v, i) => encodeValue(v, `${path}/${i}`, markers));
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    // Typed arrays (Float64Array of a metric) are stored as plain arrays.
    return Array.from(value as unknown as ArrayLike<number>, (v, i) =>
      encodeValue(v, `${path}/${i}`, markers),
    );
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // As in JSON, an absent optional field is left out rather than stored as null.
      if (v === undefined) continue;
      out[k] = encodeValue(v, `${path}/${escapeToken(k)}`, markers);
    }
    return out;
  }
  // Dates, ObjectIds, Buffers and the like pass through untouched.
  return value;
}

/** A copy of `value` with every non-finite number replaced by null, and where each one was. */
export function encodeNonFinite(value: unknown): { value: unknown; markers: NonFiniteMarker[] } {
  const markers: NonFiniteMarker[] = [];
  return { value: encodeValue(value, '', markers), markers };
}

/** Puts the non-finite numbers back; throws when a marker does not point at a stored null. */
export function decodeNonFinite(value: unknown, markers: readonly NonFiniteMarker[]): unknown {
  let root = value;
  for (const m of markers) {
    if (m.path === '') {
      if (root !== null) throw new Error(`nonFinite marker '' points at a non-null value.`);
      root = nonFiniteValue(m.value);
      continue;
    }
    const tokens = m.path.split('/').slice(1).map(unescapeToken);
    let parent: unknown = root;
    for (const t of tokens.slice(0, -1)) {
      parent = (parent as Record<string, unknown> | undefined)?.[t];
    }
    const last = tokens[tokens.length - 1]!;
    if (parent === null || typeof parent !== 'object' || !(last in parent)) {
      throw new Error(`nonFinite marker ${m.path} points nowhere.`);
    }
    const holder = parent as Record<string, unknown>;
    if (holder[last] !== null)
      throw new Error(`nonFinite marker ${m.path} points at a non-null value.`);
    holder[last] = nonFiniteValue(m.value);
  }
  return root;
}

/**
 * Encodes the top-level fields of a document (all but _id) and returns it with its `nonFinite` map,
 * which is left out when every number is finite.
 */
export function encodeDocument<T extends object>(doc: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const map: NonFiniteMap = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === NON_FINITE_KEY || v === undefined) continue;
    if (k === '_id') {
      out[k] = v;
      continue;
    }
    const e = encodeNonFinite(v);
    out[k] = e.value;
    if (e.markers.length > 0) map[k] = e.markers;
  }
  if (Object.keys(map).length > 0) out[NON_FINITE_KEY] = map;
  return out;
}

/**
 * The $set fields for an update of some top-level fields: each field encoded, plus
 * 'nonFinite.<field>' with its markers (an empty list clears markers a previous value left).
 */
export function encodeSetFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const e = encodeNonFinite(v);
    out[k] = e.value;
    out[`${NON_FINITE_KEY}.${k}`] = e.markers;
  }
  return out;
}

/** A stored document with its non-finite numbers restored and the `nonFinite` map removed. */
export function decodeDocument<T>(doc: Record<string, unknown>): T {
  const out: Record<string, unknown> = structuredCloneDoc(doc);
  const map = out[NON_FINITE_KEY] as NonFiniteMap | undefined;
  delete out[NON_FINITE_KEY];
  if (map) {
    for (const [field, markers] of Object.entries(map)) {
      if (markers.length === 0) continue;
      out[field] = decodeNonFinite(out[field], markers);
    }
  }
  return out as T;
}

/** Deep copy of plain objects and arrays; other values (Date, ObjectId) are shared. */
function structuredCloneDoc(doc: Record<string, unknown>): Record<string, unknown> {
  const copy = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(copy);
    if (isPlainObject(v)) {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) o[k] = copy(x);
      return o;
    }
    return v;
  };
  return copy(doc) as Record<string, unknown>;
}
