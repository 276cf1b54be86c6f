// What every sweep activity needs from the worker that hosts it. The worker builds this once; the
// activities stay thin adapters between Temporal and sbi/ + results/.
import type { Logger } from '../infra/logger.js';
import type { ArtifactStore } from '../results/artifacts.js';
import type { ResultStore } from '../results/store.js';
import type { Task } from '../sbi/types.js';

/**
 * Storing a checkpoint (encoding weights, Adam's moments and the best state, and a GridFS write with
 * its reads and deletes) costs more than an epoch of a small training (BENCHMARKS.md, "Checkpoints
 * of the train activity"); one per 10 s bounds both that share and the work a hard kill loses.
 */
export const DEFAULT_CHECKPOINT_SECONDS = 10;

export interface ActivityDeps {
  store: ResultStore;
  artifacts: ArtifactStore;
  logger: Logger;
  /** Recorded on sweeps, trials and models (package version and commit). */
  codeVersion: string;
  /** The tensor backend this worker runs (sbi/backend.ts name), recorded on trials. */
  backend: string;
  /**
   * The train activity stores a checkpoint at most once per this many seconds (default
   * DEFAULT_CHECKPOINT_SECONDS; 0: after every epoch). A retry after a hard kill redoes at most
   * this long of training; a cancelled or drained attempt stores its last epoch first.
   */
  checkpointSeconds?: number;
  /** Where the simulate activity finds a task by name: sbi's registry unless a test gives its own. */
  getTask?: (name: string) => Task;
}
