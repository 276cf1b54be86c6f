// The workflows a sweep worker registers (this file is the bundle's entry point). trialWorkflow
// only replays histories recorded before every trial became a pack of one.
export { sweepWorkflow } from './sweep.js';
export { trialPackWorkflow } from './pack.js';
export { trialWorkflow } from './legacy-trial.js';
