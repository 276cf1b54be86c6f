// Simulations as one self-describing JSON file (robustsbi simulate --out): theta and x as base64
// float32, with the task, seed and counts needed to check and reuse them. Written atomically.
import { FileFormatError, readJsonFile, writeFileAtomic } from './atomic-file.js';
import { decodeFloat32, encodeFloat32 } from './float32-base64.js';

export const SIMULATION_FORMAT = 'robustsbi-simulations';
export const SIMULATION_FORMAT_VERSION = 1;

export interface SimulationRecord {
  task: string;
  seed: number;
  /** Finite rows stored. */
  n: number;
  /** Rows the simulator returned non-finite, dropped before writing. */
  dropped: number;
  thetaDim: number;
  xDim: number;
  paramNames: string[];
  theta: Float32Array;
  x: Float32Array;
  code?: { version: string; commit?: string };
  createdAt: string;
}

export function saveSimulations(path: string, rec: SimulationRecord): void {
  if (rec.theta.length !== rec.n * rec.thetaDim || rec.x.length !== rec.n * rec.xDim) {
    throw new RangeError(
      `Simulations for ${rec.task} hold ${rec.theta.length} theta and ${rec.x.length} x values, not ${rec.n} rows.`,
    );
  }
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
  writeFileAtomic(path, `${JSON.stringify(doc, null, 1)}\n`);
}

export function loadSimulations(path: string): SimulationRecord {
  const raw = readJsonFile(path, 'simulation file');
  const fail = (problem: string): never => {
    throw new FileFormatError(`The simulation file ${path} ${problem}.`);
  };
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
  if (typeof d.task !== 'string' || d.task === '') fail('has no "task" name');
  for (const k of ['n', 'thetaDim', 'xDim']) {
    if (!Number.isInteger(d[k]) || (d[k] as number) < 1)
      fail(`has an invalid "${k}" (${String(d[k])})`);
  }
  for (const k of ['seed', 'dropped']) if (!Number.isInteger(d[k])) fail(`has no integer "${k}"`);
  const n = d.n as number;
  const thetaDim = d.thetaDim as number;
  const xDim = d.xDim as number;
  const paramNames =
    Array.isArray(d.paramNames) && d.paramNames.every((s) => typeof s === 'string')
      ? (d.paramNames as string[])
      : [];
  if (paramNames.length !== thetaDim) fail(`has no list of ${thetaDim} "paramNames"`);
  const decode = (k: 'theta' | 'x', len: number): Float32Array => {
    try {
      return decodeFloat32(d[k], len);
    } catch (e) {
      return fail(`has "${k}" data that ${(e as Error).message}`);
    }
  };
  return {
    task: d.task as string,
    seed: d.seed as number,
    n,
    dropped: d.dropped as number,
    thetaDim,
    xDim,
    paramNames,
    theta: decode('theta', n * thetaDim),
    x: decode('x', n * xDim),
    code: d.code as SimulationRecord['code'],
    createdAt: typeof d.createdAt === 'string' ? d.createdAt : '',
  };
}
