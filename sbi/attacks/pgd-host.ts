// The PGD loop of pgd.ts on host arrays, for estimators with fused inference (types.ts
// FusedInference): the objective's gradient comes from the kernels, and the step, the clip to the
// box and the projection are a few floats per row. The same draws in the same order as the tfjs
// loop (the start in the ball, then each step's samples), the same arithmetic in float32 up to
// rounding; no tensor exists until the result.
import { tf } from '../backend.js';
import type { FusedInference } from '../types.js';
import { GRAD_NORM_FLOOR, TINY, uniformL2BallHost } from './ball.js';
import type { AttackObjective } from './objectives.js';
import type { AttackSetup } from './setup.js';

export interface HostPgdOptions {
  /** The objectives the fused kernels know (pgd.ts runs the MMD on tfjs). */
  objective: Exclude<AttackObjective, 'mmd'>;
  steps: number;
  stepSize: number;
  mcSamples: number;
  onIterate?: (xAdv: tf.Tensor2D, step: number) => void;
  onGradientPoint?: (xAdv: tf.Tensor2D, step: number) => void;
}

const f32 = Math.fround;

export function hostPgd(
  fused: FusedInference,
  setup: AttackSetup,
  o: HostPgdOptions,
  norm: 'l2' | 'linf',
): tf.Tensor2D {
  const { x: xT, epsAbs: eps, box, rng } = setup;
  const [B, d] = xT.shape;
  const x = xT.dataSync() as Float32Array;
  const theta = setup.theta ? (setup.theta.dataSync() as Float32Array) : null;
  const clip = (v: number): number => Math.min(Math.max(v, box.min), box.max);
  // delta, kept in float32 as the tfjs loop keeps it.
  const delta = new Float32Array(B * d);
  if (norm === 'l2') delta.set(uniformL2BallHost(B, d, eps, rng));
  else {
    rng.fillUniform(delta);
    for (let i = 0; i < delta.length; i++) delta[i] = f32(f32(f32(delta[i]! * 2) - 1) * eps);
  }
  const xAdv = new Float32Array(B * d);
  const clipDelta = (): void => {
    for (let i = 0; i < delta.length; i++) delta[i] = f32(clip(f32(x[i]! + delta[i]!)) - x[i]!);
  };
  clipDelta();
  for (let step = 0; step < o.steps; step++) {
    for (let i = 0; i < xAdv.length; i++) xAdv[i] = f32(x[i]! + delta[i]!);
    if (o.onGradientPoint) {
      const at = tf.tensor2d(xAdv, [B, d]);
      o.onGradientPoint(at, step);
      at.dispose();
    }
    const g = fused.objectiveGradient(o.objective, xAdv, x, theta, B, rng, o.mcSamples);
    if (norm === 'l2') {
      for (let r = 0; r < B; r++) {
        let sq = 0;
        for (let j = 0; j < d; j++) sq += g[r * d + j]! ** 2;
        const scale = o.stepSize / Math.max(Math.sqrt(sq), GRAD_NORM_FLOOR);
        for (let j = 0; j < d; j++)
          delta[r * d + j] = f32(delta[r * d + j]! + g[r * d + j]! * scale);
      }
      clipDelta();
      for (let r = 0; r < B; r++) {
        let sq = 0;
        for (let j = 0; j < d; j++) sq += delta[r * d + j]! ** 2;
        const factor = Math.min(1, eps / Math.max(Math.sqrt(sq), TINY));
        for (let j = 0; j < d; j++) delta[r * d + j] = f32(delta[r * d + j]! * factor);
      }
    } else {
      for (let i = 0; i < delta.length; i++)
        delta[i] = Math.min(Math.max(f32(delta[i]! + Math.sign(g[i]!) * o.stepSize), -eps), eps);
      clipDelta();
    }
    if (o.onIterate) {
      const it = tf.tensor2d(
        Float32Array.from(x, (v, i) => f32(v + delta[i]!)),
        [B, d],
      );
      o.onIterate(it, step);
      it.dispose();
    }
  }
  return tf.tensor2d(
    Float32Array.from(x, (v, i) => clip(f32(v + delta[i]!))),
    [B, d],
  );
}
