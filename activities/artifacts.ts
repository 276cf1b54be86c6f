// Artifact names and encodings of what the activities keep in the artifact store (GridFS): training
// and test simulations, per-epoch training checkpoints, trained models, the per-point values of an
// evaluation's chunks. Temporal payloads never
// carry any of these; activities pass their names (derived from content IDs) instead.
import { fromJsonText, toJsonText } from '../sbi/json-numbers.js';
import { modelFromJson, modelToJson, type SavedModel } from '../sbi/model-file.js';
import type { ChunkPoints } from '../sbi/evaluation.js';
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
  /** The per-point values of one chunk of a trial's evaluation at (attack, eps), every objective. */
  evaluationChunk: (trialId: string, attack: string, eps: number, chunk: number) =>
    `points/${trialId}/${attack}/${eps}/chunk-${chunk}`,
};

// Training and test simulations: sbi/simulation-file.ts' bytes (encodeSimulations / decodeSimulations).

/** A checkpoint is JSON text; non-finite numbers (clipNorm off, a NaN loss) as sbi/json-numbers.ts says. */
export function encodeCheckpoint(state: TrainingState): Uint8Array {
  return new TextEncoder().encode(toJsonText(state));
}

export function decodeCheckpoint(bytes: Uint8Array): TrainingState {
  const state = fromJsonText(new TextDecoder().decode(bytes)) as TrainingState;
  if (state?.format !== 'robustsbi-npe-checkpoint' || !Number.isInteger(state.epoch))
    throw new Error('The stored checkpoint is not a robustsbi NPE checkpoint.');
  return state;
}

/** A model artifact is the model file's JSON, so it is exactly what `robustsbi train` writes. */
export function encodeModel(model: SavedModel): Uint8Array {
  return new TextEncoder().encode(modelToJson(model));
}

/** Rebuilds the model of an artifact (the caller disposes its estimator). */
export function decodeModel(bytes: Uint8Array, name: string): SavedModel {
  return modelFromJson(new TextDecoder().decode(bytes), `model artifact ${name}`);
}

const CHUNK_FORMAT = 'robustsbi-evaluation-chunk/1';

/** A chunk's per-point values as JSON text (exact: every float64 prints and parses back to itself). */
export function encodeChunkPoints(c: ChunkPoints): Uint8Array {
  return new TextEncoder().encode(
    toJsonText({
      format: CHUNK_FORMAT,
      chunk: c.chunk,
      from: c.from,
      to: c.to,
      nllClean: [...c.nllClean],
      cleanCoverageRank: [...c.cleanCoverageRank],
      ...(c.groundTruth
        ? {
            groundTruth: {
              c2st: [...c.groundTruth.c2st],
              klQP: [...c.groundTruth.klQP],
              klPQ: [...c.groundTruth.klPQ],
              samples: c.groundTruth.samples,
            },
          }
        : {}),
      records: c.records.map((r) => ({
        ...r,
        kl: [...r.kl],
        nllAttacked: [...r.nllAttacked],
        coverageRank: [...r.coverageRank],
      })),
    }),
  );
}

export function decodeChunkPoints(bytes: Uint8Array, name: string): ChunkPoints {
  type Stored = Omit<ChunkPoints, 'nllClean' | 'cleanCoverageRank' | 'groundTruth' | 'records'> & {
    format: string;
    nllClean: number[];
    cleanCoverageRank: number[];
    /** Absent in chunks kept before the ground-truth metrics were computed. */
    groundTruth?: { c2st: number[]; klQP: number[]; klPQ: number[]; samples: number };
    records: (Omit<ChunkPoints['records'][number], 'kl' | 'nllAttacked' | 'coverageRank'> & {
      kl: number[];
      nllAttacked: number[];
      coverageRank: number[];
    })[];
  };
  const s = fromJsonText(new TextDecoder().decode(bytes)) as Stored;
  if (s?.format !== CHUNK_FORMAT)
    throw new Error(`The artifact ${name} is not an evaluation chunk.`);
  return {
    chunk: s.chunk,
    from: s.from,
    to: s.to,
    nllClean: Float64Array.from(s.nllClean),
    cleanCoverageRank: Int32Array.from(s.cleanCoverageRank),
    ...(s.groundTruth
      ? {
          groundTruth: {
            c2st: Float64Array.from(s.groundTruth.c2st),
            klQP: Float64Array.from(s.groundTruth.klQP),
            klPQ: Float64Array.from(s.groundTruth.klPQ),
            samples: s.groundTruth.samples,
          },
        }
      : {}),
    records: s.records.map((r) => ({
      ...r,
      kl: Float64Array.from(r.kl),
      nllAttacked: Float64Array.from(r.nllAttacked),
      coverageRank: Int32Array.from(r.coverageRank),
    })),
  };
}
