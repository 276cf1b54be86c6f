// The baseline every attack is compared with (RABI L2UniformNoiseAttack): x plus a point uniform in
// the L2 ball of radius eps_abs, clipped to the box.
import { tf } from '../backend.js';
import { uniformL2Ball } from './ball.js';
import type { AttackSetup } from './setup.js';

export function uniformNoise(setup: AttackSetup): tf.Tensor2D {
  const { x, epsAbs, box, rng } = setup;
  return tf.tidy(() => {
    const delta = uniformL2Ball(x.shape[0], x.shape[1], epsAbs, rng);
    return tf.clipByValue(tf.add(x, delta), box.min, box.max) as tf.Tensor2D;
  });
}
