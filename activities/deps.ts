// What every sweep activity needs from the worker that hosts it. The worker builds this once; the
// activities stay thin adapters between Temporal and sbi/ + results/.
import type { Logger } from '../infra/logger.js';
import type { ArtifactStore } from '../results/artifacts.js';
import type { ResultStore } from '../results/store.js';
import type { Task } from '../sbi/types.js';

export interface ActivityDeps {
  store: ResultStore;
  artifacts: ArtifactStore;
  logger: Logger;
  /** Recorded on sweeps, trials and models (package version and commit). */
  codeVersion: string;
  /** The tensor backend this worker runs (sbi/backend.ts name), recorded on trials. */
  backend: string;
  /** Where the simulate activity finds a task by name: sbi's registry unless a test gives its own. */
  getTask?: (name: string) => Task;
}
