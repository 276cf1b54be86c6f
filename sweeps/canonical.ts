// Canonical JSON (RFC 8785 style) so that equal configurations hash equally whatever their key
// order or number spelling: keys sorted by UTF-16 code units, no whitespace, numbers in
// ECMAScript's shortest round-trip form (1e-3, 0.001 and 1.0e-3 all print as 0.001; -0 prints as
// 0), strings escaped as JSON.stringify does.

export class CanonicalJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalJsonError';
  }
}

function write(value: unknown, path: string, out: string[], depth: number): void {
  if (depth > 100) throw new CanonicalJsonError(`${path}: nested too deeply for canonical JSON`);
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value))
        throw new CanonicalJsonError(`${path}: ${value} has no JSON form`);
      // String(-0) is "0"; otherwise this is ECMAScript Number::toString, which JCS adopts.
      out.push(String(value));
      return;
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'object':
      break;
    default:
      throw new CanonicalJsonError(`${path}: a ${typeof value} has no JSON form`);
  }
  if (Array.isArray(value)) {
    out.push('[');
    value.forEach((v, i) => {
      if (i > 0) out.push(',');
      if (v === undefined) throw new CanonicalJsonError(`${path}/${i}: undefined has no JSON form`);
      write(v, `${path}/${i}`, out, depth + 1);
    });
    out.push(']');
    return;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null)
    throw new CanonicalJsonError(`${path}: only plain objects have a canonical JSON form`);
  const keys = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  out.push('{');
  keys.forEach((k, i) => {
    if (i > 0) out.push(',');
    out.push(JSON.stringify(k), ':');
    write((value as Record<string, unknown>)[k], `${path}/${k}`, out, depth + 1);
  });
  out.push('}');
}

/** The canonical JSON text of a JSON value; properties whose value is undefined are left out. */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, '', out, 0);
  return out.join('');
}
