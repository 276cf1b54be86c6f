// Simulated (theta, x) rows of a task, one record in two encodings from this one module:
//  - JSON text, the file `robustsbi simulate --out` writes and `robustsbi train --sims` reads: self-
//    describing (task, seed, counts, parameter names, code version), theta and x as base64 float32;
//  - bytes, the sweep's artifacts (GridFS): a 4-byte header length, a JSON header padded to 4 bytes,
//    then theta and x as little-endian float32. No base64 or JSON number overhead for the largest
//    things a sweep stores, and the bytes artifacts already hold keep their meaning (and content hash).
// Both check the same header fields the same way; a bad file or artifact is a FileFormatError of one
// sentence naming it.
import { FileFormatError, parseJsonText, readTextFile, writeFileAtomic } from './atomic-file.js';
import { decodeFloat32, encodeFloat32 } from './float32-base64.js';
import type { SimulatedDataset } from './simulate.js';

export const SIMULATION_FORMAT = 'robustsbi-simulations';
export const SIMULATION_FORMAT_VERSION = 1;
/** The `format` of the bytes' header. */
export const SIMULATION_BYTES_FORMAT = 'robustsbi-dataset/1';

/** Simulations of one task and seed: theta and x row-major, non-finite rows already dropped. */
export interface SimulationSet extends SimulatedDataset {
  task: string;
  seed: number;
  thetaDim: number;
  xDim: number;
}

/** What the JSON file records besides the rows. */
export interface SimulationRecord extends SimulationSet {
  paramNames: string[];
  code?: { version: string; commit?: string };
  createdAt: string;
}

type Fail = (problem: string) => never;

function failing(subject: string): Fail {
  return (problem) => {
    throw new FileFormatError(`The ${subject} ${problem}.`);
  };
}

function checkRows(s: SimulationSet): void {
  if (s.theta.length !== s.n * s.thetaDim || s.x.length !== s.n * s.xDim) {
    throw new RangeError(
      `Simulations for ${s.task} hold ${s.theta.length} theta and ${s.x.length} x values, not ${s.n} rows.`,
    );
  }
}

/** The header fields both encodings share, checked; the rows are left to the caller. */
function readHeader(d: Record<string, unknown>, fail: Fail): Omit<SimulationSet, 'theta' | 'x'> {
  if (typeof d.task !== 'string' || d.task === '') fail('has no "task" name');
  for (const k of ['n', 'thetaDim', 'xDim']) {
    if (!Number.isInteger(d[k]) || (d[k] as number) < 1)
      fail(`has an invalid "${k}" (${String(d[k])})`);
  }
  for (const k of ['seed', 'dropped']) if (!Number.isInteger(d[k])) fail(`has no integer "${k}"`);
  const { task, seed, n, dropped, thetaDim, xDim } = d as unknown as SimulationSet;
  return { task, seed, n, dropped, thetaDim, xDim };
}

// ---- JSON text ----

export function simulationsToJson(rec: SimulationRecord): string {
  checkRows(rec);
  const doc = {
    format: SIMULATION_FORMAT,
    version: SIMULATION_FORMAT_VERSION,
    task: rec.task,
    seed: rec.seed,
    n: rec.n,
    dropped: rec.dropped,
    thetaDim: rec.thetaDim,
    xDim: rec.xDim,
    paramNames: rec.paramNames,
    code: rec.code,
    createdAt: rec.createdAt,
    theta: encodeFloat32(rec.theta),
    x: encodeFloat32(rec.x),
  };
  return `${JSON.stringify(doc, null, 1)}\n`;
}

/** `subject` names the text in errors ("simulation file sims.json"). */
export function simulationsFromJson(text: string, subject = 'simulation JSON'): SimulationRecord {
  const raw = parseJsonText(text, subject);
  const fail = failing(subject);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail('does not hold a JSON object');
  const d = raw as Record<string, unknown>;
  if (d.format !== SIMULATION_FORMAT) {
    fail(
      d.format === undefined
        ? `is not a robustsbi simulation file (it has no "format": "${SIMULATION_FORMAT}" field)`
        : `is a "${String(d.format)}" file, not robustsbi simulations`,
    );
  }
  if (d.version !== SIMULATION_FORMAT_VERSION)
    fail(
      `has format version ${String(d.version)}, but this robustsbi reads version ${SIMULATION_FORMAT_VERSION}`,
    );
  const header = readHeader(d, fail);
  const paramNames =
    Array.isArray(d.paramNames) && d.paramNames.every((s) => typeof s === 'string')
      ? (d.paramNames as string[])
      : [];
  if (paramNames.length !== header.thetaDim) fail(`has no list of ${header.thetaDim} "paramNames"`);
  const decode = (k: 'theta' | 'x', len: number): Float32Array => {
    try {
      return decodeFloat32(d[k], len);
    } catch (e) {
      return fail(`has "${k}" data that ${(e as Error).message}`);
    }
  };
  return {
    ...header,
    paramNames,
    theta: decode('theta', header.n * header.thetaDim),
    x: decode('x', header.n * header.xDim),
    code: d.code as SimulationRecord['code'],
    createdAt: typeof d.createdAt === 'string' ? d.createdAt : '',
  };
}

export function saveSimulations(path: string, rec: SimulationRecord): void {
  writeFileAtomic(path, simulationsToJson(rec));
}

export function loadSimulations(path: string): SimulationRecord {
  return simulationsFromJson(readTextFile(path, 'simulation file'), `simulation file ${path}`);
}

// ---- bytes ----

export function encodeSimulations(s: SimulationSet): Uint8Array {
  checkRows(s);
  const { task, seed, n, dropped, thetaDim, xDim, theta, x } = s;
  const header = new TextEncoder().encode(
    JSON.stringify({ format: SIMULATION_BYTES_FORMAT, task, seed, n, dropped, thetaDim, xDim }),
  );
  const padded = Math.ceil(header.length / 4) * 4;
  const out = new Uint8Array(4 + padded + 4 * (theta.length + x.length));
  const view = new DataView(out.buffer);
  view.setUint32(0, padded, true);
  out.fill(0x20, 4, 4 + padded);
  out.set(header, 4);
  let off = 4 + padded;
  for (const arr of [theta, x]) {
    for (let i = 0; i < arr.length; i++, off += 4) view.setFloat32(off, arr[i]!, true);
  }
  return out;
}

/** `subject` names the bytes in errors ("artifact sims/abc"). */
export function decodeSimulations(bytes: Uint8Array, subject: string): SimulationSet {
  const fail = failing(subject);
  if (bytes.length < 4) fail('is too short to hold simulations');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint32(0, true);
  if (4 + len > bytes.length) fail('has a header longer than itself');
  let meta: Record<string, unknown> = {};
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + len))) as Record<
      string,
      unknown
    >;
  } catch {
    fail('has an unreadable header');
  }
  if (meta?.format !== SIMULATION_BYTES_FORMAT)
    fail(`is not a ${SIMULATION_BYTES_FORMAT} artifact`);
  const header = readHeader(meta, fail);
  const { n, thetaDim, xDim } = header;
  if (bytes.length !== 4 + len + 4 * n * (thetaDim + xDim))
    fail('does not hold the rows its header promises');
  const read = (start: number, count: number): Float32Array => {
    const a = new Float32Array(count);
    for (let i = 0; i < count; i++) a[i] = view.getFloat32(start + 4 * i, true);
    return a;
  };
  const base = 4 + len;
  return {
    ...header,
    theta: read(base, n * thetaDim),
    x: read(base + 4 * n * thetaDim, n * xDim),
  };
}
