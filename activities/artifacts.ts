// Artifact names and encodings of what the activities keep in the artifact store (GridFS): training
// and test simulations, per-epoch training checkpoints, trained models. Temporal payloads never
// carry any of these; activities pass their names (derived from content IDs) instead.
import { fromJsonText, toJsonText } from '../sbi/json-numbers.js';
import { modelFromJson, modelToJson, type SavedModel } from '../sbi/model-file.js';
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
