// The task registry: every task by its name.
import { InvalidSettingError } from '../errors.js';
import type { Task } from '../types.js';
import { gaussianLinear } from './gaussian_linear.js';
import { hodgkinHuxley } from './hodgkin_huxley.js';
import { lotkaVolterra } from './lotka_volterra.js';
import { pyloric } from './pyloric.js';
import { sir } from './sir.js';
import { slcp } from './slcp.js';
import { spatialSir } from './spatial_sir.js';
import { twoMoons } from './two_moons.js';
import { vae } from './vae.js';

const FACTORIES = {
  gaussian_linear: gaussianLinear,
  lotka_volterra: lotkaVolterra,
  sir,
  two_moons: twoMoons,
  slcp,
  hodgkin_huxley: hodgkinHuxley,
  spatial_sir: spatialSir,
  vae,
  pyloric,
} as const satisfies Record<string, () => Task>;

export type TaskName = keyof typeof FACTORIES;
export const TASK_NAMES = Object.keys(FACTORIES) as TaskName[];

export function isTaskName(name: string): name is TaskName {
  return Object.prototype.hasOwnProperty.call(FACTORIES, name);
}

/** A fresh task object (the ODE tasks hold solver work buffers, so do not share one across threads). */
export function getTask(name: string): Task {
  if (!isTaskName(name)) {
    throw new InvalidSettingError(`Unknown task "${name}"; known tasks: ${TASK_NAMES.join(', ')}`);
  }
  return FACTORIES[name]();
}
