// The NPE checkpoint format (JSON-serializable: float arrays as base64 float32, Infinity/NaN as
// null): what trainNPE writes after an epoch (every epoch, or as throttled), and the checks that a
// checkpoint belongs to the run resuming from it.
import type { AdamSnapshot } from './adam.js';
import { CheckpointMismatchError } from './errors.js';
import { decodeFloat32, encodeFloat32 } from './float32-base64.js';
import type { StoppedBy } from './early-stopping.js';
import type { NPEHyperparameters } from './npe-hyperparameters.js';
import type { RandomStream, SerializedWeights } from './types.js';

// Checkpoint state (JSON-serializable: float arrays as base64 float32, Infinity/NaN as null)

export interface EncodedWeights {
  name: string;
  shape: number[];
  data: string;
}

export interface EncodedAdam {
  step: number;
  m: string[];
  v: string[];
}

export interface TrainingState {
  format: 'robustsbi-npe-checkpoint';
  version: 1;
  /** Epochs completed. */
  epoch: number;
  /** True once training has stopped; resuming from it only restores the best weights. */
  finished: boolean;
  stoppedBy: StoppedBy | null;
  thetaDim: number;
  xDim: number;
  nTrain: number;
  nVal: number;
  dropped: number;
  hyperparameters: NPEHyperparameters;
  weights: EncodedWeights[];
  adam: EncodedAdam;
  best: { weights: EncodedWeights[]; adam: EncodedAdam };
  earlyStopping: {
    bestValLoss: number | null;
    bestEpoch: number;
    counter: number;
    nanResets: number;
    /** Absent until the first anneal. */
    anneals?: number;
  };
  /**
   * The random state. Every epoch draws from rng.fork(`npe/epoch/<k>`) and rng.fork(`npe/defense/<k>`)
   * of the caller's stream, so the stream's seed plus `epoch` above is the whole state; resume with
   * a stream of the same seed.
   */
  rng: { scheme: 'fork-per-epoch'; nextEpoch: number; path?: string[] };
  trainLosses: (number | null)[];
  valLosses: (number | null)[];
  defense?: { name: string; state: unknown };
}

export function encodeWeights(ws: SerializedWeights[]): EncodedWeights[] {
  return ws.map((w) => ({ name: w.name, shape: [...w.shape], data: encodeFloat32(w.values) }));
}

export function decodeWeights(ws: EncodedWeights[]): SerializedWeights[] {
  return ws.map((w) => ({
    name: w.name,
    shape: [...w.shape],
    values: Array.from(
      decodeFloat32(
        w.data,
        w.shape.reduce((a, b) => a * b, 1),
      ),
    ),
  }));
}

export function encodeAdam(s: AdamSnapshot): EncodedAdam {
  return { step: s.step, m: s.m.map((a) => encodeFloat32(a)), v: s.v.map((a) => encodeFloat32(a)) };
}

export function decodeAdam(s: EncodedAdam): AdamSnapshot {
  return { step: s.step, m: s.m.map((a) => decodeFloat32(a)), v: s.v.map((a) => decodeFloat32(a)) };
}

/**
 * Refuses a checkpoint of another run: another format, other data (sizes), other hyperparameters
 * (maxEpochs may grow, to extend a run) or another random stream.
 */
export function checkResumable(
  r: TrainingState,
  expect: { thetaDim: number; xDim: number; nTrain: number; nVal: number; dropped: number },
  hp: NPEHyperparameters,
  rng: RandomStream,
): void {
  if (r?.format !== 'robustsbi-npe-checkpoint' || r.version !== 1) {
    throw new CheckpointMismatchError(
      'The checkpoint to resume from is not a version-1 robustsbi NPE checkpoint.',
    );
  }
  for (const k of ['thetaDim', 'xDim', 'nTrain', 'nVal', 'dropped'] as const) {
    if (r[k] !== expect[k]) {
      throw new CheckpointMismatchError(
        `The checkpoint to resume from has ${k} = ${r[k]} but this run has ${expect[k]}; it belongs to other data.`,
      );
    }
  }
  const before = JSON.parse(
    JSON.stringify({ ...r.hyperparameters, valSize: expect.nVal }),
  ) as Record<string, unknown>;
  const now = JSON.parse(JSON.stringify({ ...hp, valSize: expect.nVal })) as Record<
    string,
    unknown
  >;
  // A resume may run longer, or anneal more than the run had (trainNPE goes on from its early
  // stop); the annealing factor and patience matter only once an anneal was taken.
  const taken = r.earlyStopping.anneals ?? 0;
  const mayDiffer = (k: string): boolean =>
    k === 'maxEpochs' ||
    (k === 'anneals' && Number(now[k] ?? 0) >= taken) ||
    ((k === 'annealFactor' || k === 'annealPatience') && taken === 0);
  const changed = Object.keys({ ...before, ...now }).filter(
    (k) => !mayDiffer(k) && before[k] !== now[k],
  );
  if (changed.length > 0) {
    const list = changed.map((k) => `${k} ${String(before[k])} -> ${String(now[k])}`).join(', ');
    throw new CheckpointMismatchError(
      `The checkpoint to resume from was trained with other hyperparameters (${list}).`,
    );
  }
  const path = streamPath(rng).path;
  if (r.rng.path && path && JSON.stringify(r.rng.path) !== JSON.stringify(path)) {
    throw new CheckpointMismatchError(
      `The checkpoint to resume from was trained with the random stream ${r.rng.path.join('/')}, not ${path.join('/')}.`,
    );
  }
}

/** The seed path of an sbi/rng.ts stream (other RandomStreams have none), to refuse a resume with another seed. */
export function streamPath(rng: RandomStream): { path?: string[] } {
  const withState = rng as RandomStream & { state?: () => { path?: unknown } };
  const path = typeof withState.state === 'function' ? withState.state().path : undefined;
  return Array.isArray(path) ? { path: path.map(String) } : {};
}
