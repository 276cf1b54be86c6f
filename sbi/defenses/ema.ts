// RABI's ExponentialMovingAverageEstimator as its "ema" FIM algorithm uses it (paper.md 2.2): the
// decay is the weight on the NEW value, with Adam-style bias correction,
//   m_t = d g_t + (1 - d) m_{t-1},  g_hat_t = m_t / (1 - (1 - d)^t),
// so g_hat_1 = g_1. Non-finite entries of g_t become finite first (torch.nan_to_num). One moment per
// variable name; the state round-trips through JSON for checkpoints.
import { tf } from '../backend.js';
import { decodeFloat32, encodeFloat32 } from '../float32-base64.js';

export const RABI_EMA_DECAY = 0.85;

/** float32 max, what torch.nan_to_num puts in place of +-Infinity. */
const F32_MAX = 3.4028234663852886e38;

export interface EmaState {
  decay: number;
  t: number;
  /** key (the variable's position, for the FIM defenses) -> shape and base64 float32 values. */
  moments: { name: string; shape: number[]; data: string }[];
}

/** NaN -> 0, +-Infinity -> +-float32 max (torch.nan_to_num defaults). */
export function nanToNum(g: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const clipped = tf.clipByValue(g, -F32_MAX, F32_MAX);
    return tf.where(tf.isNaN(g), tf.zerosLike(g), clipped);
  });
}

export class GradientEma {
  t = 0;
  private readonly m = new Map<string, tf.Tensor>();

  constructor(readonly decay: number = RABI_EMA_DECAY) {
    if (!(decay > 0 && decay <= 1))
      throw new RangeError(`EMA decay must lie in (0, 1], got ${decay}.`);
  }

  /**
   * Folds in one gradient per name and returns the bias-corrected averages (owned by the caller's
   * tidy scope). The moments themselves are kept across steps.
   */
  update(grads: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
    this.t += 1;
    const keepOld = 1 - this.decay;
    const correction = 1 - keepOld ** this.t;
    const out: Record<string, tf.Tensor> = {};
    for (const [name, g] of Object.entries(grads)) {
      const prev = this.m.get(name);
      const next = tf.keep(
        tf.tidy(() => {
          const fresh = tf.mul(nanToNum(g), this.decay);
          return prev ? tf.add(fresh, tf.mul(prev, keepOld)) : fresh;
        }),
      );
      prev?.dispose();
      this.m.set(name, next);
      out[name] = tf.div(next, correction);
    }
    return out;
  }

  /** Steps so far and copies of the moments, for a fused trainer that runs the EMA itself. */
  exportHost(): { t: number; moments: Map<string, Float32Array> } {
    const moments = new Map<string, Float32Array>();
    for (const [name, v] of this.m) moments.set(name, (v.dataSync() as Float32Array).slice());
    return { t: this.t, moments };
  }

  /** Replaces the step count and moments (what exportHost gave, advanced by a fused trainer). */
  importHost(t: number, moments: { name: string; shape: number[]; values: Float32Array }[]): void {
    this.dispose();
    this.t = t;
    for (const mo of moments) this.m.set(mo.name, tf.tensor(mo.values, mo.shape, 'float32'));
  }

  getState(): EmaState {
    return {
      decay: this.decay,
      t: this.t,
      moments: [...this.m].map(([name, v]) => ({
        name,
        shape: [...v.shape],
        data: encodeFloat32(v.dataSync() as Float32Array),
      })),
    };
  }

  setState(state: EmaState): void {
    if (
      state?.decay !== this.decay ||
      !Number.isInteger(state.t) ||
      !Array.isArray(state.moments)
    ) {
      throw new RangeError(`Gradient EMA state does not match this EMA (decay ${this.decay}).`);
    }
    this.dispose();
    this.t = state.t;
    for (const mo of state.moments) {
      const size = mo.shape.reduce((a, b) => a * b, 1);
      this.m.set(mo.name, tf.tensor(decodeFloat32(mo.data, size), mo.shape));
    }
  }

  dispose(): void {
    for (const v of this.m.values()) v.dispose();
    this.m.clear();
  }
}
