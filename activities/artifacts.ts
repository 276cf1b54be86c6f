// Artifact names and encodings of what the activities keep in the artifact store (GridFS): training
// and test simulations, per-epoch training checkpoints, trained models. Temporal payloads never
// carry any of these; activities pass their names (derived from content IDs) instead.
import type { TrainingState } from '../sbi/npe-checkpoint.js';

export const artifactNames = {
  /** The training simulations of (task, budget, seed): sweeps/' simulationId. */
  simulations: (simulationId: string) => `sims/${simulationId}`,
  /** The test set of (task, nTest, seed): sweeps/' testSetId. */
  testSet: (testSetId: string) => `testsets/${testSetId}`,
  /** The newest checkpoint of a model being trained (modelId: trials differing only in evaluation share it). */
  checkpoint: (modelId: string) => `checkpoints/${modelId}/latest`,
  /** The trained model file (sbi/model-file.ts JSON). */
  model: (modelId: string) => `models/${modelId}`,
};

export interface Dataset {
  task: string;
  seed: number;
  /** Finite rows kept. */
  n: number;
  /** Rows dropped as non-finite. */
  dropped: number;
  thetaDim: number;
  xDim: number;
  theta: Float32Array;
  x: Float32Array;
}

const MAGIC = 'robustsbi-dataset/1';

/** A 4-byte header length, a JSON header padded to 4 bytes, then theta and x as little-endian float32. */
export function encodeDataset(d: Dataset): Uint8Array {
  if (d.theta.length !== d.n * d.thetaDim || d.x.length !== d.n * d.xDim)
    throw new RangeError(
      `A dataset of ${d.n} rows holds ${d.theta.length} theta and ${d.x.length} x values.`,
    );
  const { theta, x, ...meta } = d;
  const header = new TextEncoder().encode(JSON.stringify({ format: MAGIC, ...meta }));
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

export function decodeDataset(bytes: Uint8Array, what: string): Dataset {
  const fail = (problem: string): never => {
    throw new Error(`The artifact ${what} ${problem}.`);
  };
  if (bytes.length < 4) fail('is too short to be a dataset');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint32(0, true);
  if (4 + len > bytes.length) fail('has a header longer than itself');
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + len))) as Record<
      string,
      unknown
    >;
  } catch {
    return fail('has an unreadable header');
  }
  if (meta.format !== MAGIC) fail(`is not a ${MAGIC} artifact`);
  const n = meta.n as number;
  const thetaDim = meta.thetaDim as number;
  const xDim = meta.xDim as number;
  if (![n, thetaDim, xDim].every((v) => Number.isInteger(v) && v >= 0)) fail('has bad dimensions');
  if (bytes.length !== 4 + len + 4 * n * (thetaDim + xDim))
    fail('does not hold the rows its header promises');
  const read = (start: number, count: number): Float32Array => {
    const a = new Float32Array(count);
    for (let i = 0; i < count; i++) a[i] = view.getFloat32(start + 4 * i, true);
    return a;
  };
  const base = 4 + len;
  return {
    task: meta.task as string,
    seed: meta.seed as number,
    n,
    dropped: meta.dropped as number,
    thetaDim,
    xDim,
    theta: read(base, n * thetaDim),
    x: read(base + 4 * n * thetaDim, n * xDim),
  };
}

// JSON has no Infinity or NaN, and a checkpoint's hyperparameters hold clipNorm = Infinity when
// clipping is off; keep them as strings so that a resume compares equal settings as equal.
const NON_FINITE = new Set(['Infinity', '-Infinity', 'NaN']);

export function encodeCheckpoint(state: TrainingState): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(state, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? String(v) : v,
    ),
  );
}

export function decodeCheckpoint(bytes: Uint8Array): TrainingState {
  const state = JSON.parse(new TextDecoder().decode(bytes), (_k, v: unknown) =>
    typeof v === 'string' && NON_FINITE.has(v) ? Number(v) : v,
  ) as TrainingState;
  if (state?.format !== 'robustsbi-npe-checkpoint' || !Number.isInteger(state.epoch))
    throw new Error('The stored checkpoint is not a robustsbi NPE checkpoint.');
  return state;
}
