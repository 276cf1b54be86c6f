// `robustsbi train --x-transform`: what each mode trains on, and the line that says so. Loaded
// only when train runs, since the transforms pull in tfjs.
import type { RandomStream } from '../sbi/types.js';
import { chooseXTransform, describeLogged, describeXChoice } from '../sbi/x-transform-choice.js';
import { positiveLogTransform, type XTransformSpec } from '../sbi/x-transform.js';
import { UserError } from './errors.js';

/**
 * The x transform of `--x-transform MODE` for these training rows, with a line saying what the
 * probe measured where it ran; undefined: x as simulated.
 */
export function chooseTrainXTransform(
  mode: string,
  theta: Float32Array,
  x: Float32Array,
  n: number,
  thetaDim: number,
  xDim: number,
  rng: RandomStream,
): XTransformSpec | undefined {
  if (mode === 'none') return undefined;
  if (mode === 'log') {
    const log = positiveLogTransform(x, n, xDim);
    if (log === undefined)
      throw new UserError(
        '--x-transform log needs a dimension of x that is positive in every training row, and none is.',
      );
    console.log(`train: x -> log x on ${describeLogged(log)}`);
    return log;
  }
  const choice = chooseXTransform(theta, x, n, thetaDim, xDim, rng);
  const line = describeXChoice(choice, thetaDim);
  if (line !== undefined) console.log(`train: ${line}`);
  return choice.transform;
}
