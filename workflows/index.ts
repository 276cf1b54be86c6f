// The workflows a sweep worker registers (this file is the bundle's entry point).
export { sweepWorkflow } from './sweep.js';
export { trialWorkflow } from './trial.js';
export { trialPackWorkflow } from './pack.js';
