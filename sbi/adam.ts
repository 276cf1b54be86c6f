// Adam as torch.optim.Adam and global gradient-norm clipping as torch's clip_grad_norm_, the
// optimizer of NPE training (research/paper.md section 7). Snapshots serve checkpoints; the host
// moments serve fused trainers.
import { onHostBackend, tf } from './backend.js';
import type { AdamHostState } from './types.js';

export interface AdamHyperparameters {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

// Gradient clipping and Adam

/**
 * Scales all gradients by min(1, maxNorm / (norm + 1e-6)) where norm is the L2 norm of all of them
 * together, as torch.nn.utils.clip_grad_norm_. Null entries (no gradient) stay null.
 */
export function clipByGlobalNorm(
  grads: (tf.Tensor | null)[],
  maxNorm: number,
): { grads: (tf.Tensor | null)[]; norm: tf.Scalar } {
  const present = grads.filter((g): g is tf.Tensor => g !== null);
  const [norm, ...scaled] = tf.tidy(() => {
    const sq = present.map((g) => tf.sum(tf.square(g)));
    const total = tf.sqrt(sq.length === 0 ? tf.scalar(0) : tf.addN(sq)) as tf.Scalar;
    if (!Number.isFinite(maxNorm)) return [total, ...present.map((g) => tf.clone(g))];
    const coef = tf.minimum(
      tf.div(tf.scalar(maxNorm), tf.add(total, tf.scalar(1e-6))),
      tf.scalar(1),
    );
    return [total, ...present.map((g) => tf.mul(g, coef))];
  });
  let k = 0;
  return { grads: grads.map((g) => (g === null ? null : scaled[k++]!)), norm: norm as tf.Scalar };
}

/** One Adam update of p in place (torch.optim.Adam's formula), gradient scaled by coef first. */
function adamUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  coef: number,
  b1: number,
  b2: number,
  stepSize: number,
  sqrtBc2: number,
  eps: number,
): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const n = p.length;
  for (let k = 0; k < n; k++) {
    const gk = g[k]! * coef;
    const mk = b1 * m[k]! + c1 * gk;
    const vk = b2 * v[k]! + c2 * gk * gk;
    m[k] = mk;
    v[k] = vk;
    p[k] = p[k]! - (stepSize * mk) / (Math.sqrt(vk) / sqrtBc2 + eps);
  }
}

export interface AdamSnapshot {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * Adam exactly as torch.optim.Adam (no weight decay, no amsgrad), with readable moments for
 * checkpoints. On host backends the moments are Float32Arrays and the update runs in JavaScript
 * (float64 intermediates, float32 storage); elsewhere they are tf.Variables updated by tensor ops.
 */
export class Adam {
  step = 0;
  private readonly m: tf.Variable[] | Float32Array[];
  private readonly v: tf.Variable[] | Float32Array[];
  private readonly host: boolean;

  private readonly hp: AdamHyperparameters;

  /** `mode` picks the implementation; 'auto' (the default) takes 'host' on host backends. */
  constructor(
    private readonly vars: tf.Variable[],
    hp: AdamHyperparameters,
    mode: 'auto' | 'host' | 'tensor' = 'auto',
  ) {
    this.hp = { ...hp };
    // On host backends reading a gradient is a copy, not a device round trip, and Adam runs as one
    // loop over plain arrays: on wasm each of its ~13 elementwise ops per variable costs ~15-20 us
    // of tfjs dispatch, far more than the arithmetic.
    this.host = mode === 'auto' ? onHostBackend() : mode === 'host';
    if (this.host) {
      this.m = vars.map((w) => new Float32Array(w.size));
      this.v = vars.map((w) => new Float32Array(w.size));
    } else {
      // tidy frees the zeros tensors; the variables keep their own reference to the data.
      this.m = vars.map((w) => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
      this.v = vars.map((w) => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
    }
  }

  /** Later updates step at lr (an annealed run's cut); the moments are kept. */
  setLearningRate(lr: number): void {
    this.hp.learningRate = lr;
  }

  /** One update; grads align with the variables, null meaning no gradient (the variable is skipped). */
  apply(grads: (tf.Tensor | null)[]): void {
    if (this.host) {
      this.applyHost(
        grads.map((g) => (g === null ? null : (g.dataSync() as Float32Array))),
        1,
      );
      return;
    }
    this.step += 1;
    const { learningRate: lr, beta1: b1, beta2: b2, epsilon: eps } = this.hp;
    const stepSize = lr / (1 - b1 ** this.step);
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.step);
    const m = this.m as tf.Variable[];
    const v = this.v as tf.Variable[];
    tf.tidy(() => {
      grads.forEach((g, i) => {
        if (g === null) return;
        m[i]!.assign(tf.add(tf.mul(m[i]!, b1), tf.mul(g, 1 - b1)));
        v[i]!.assign(tf.add(tf.mul(v[i]!, b2), tf.mul(tf.square(g), 1 - b2)));
        const denom = tf.add(tf.div(tf.sqrt(v[i]!), sqrtBc2), eps);
        this.vars[i]!.assign(tf.sub(this.vars[i]!, tf.mul(tf.div(m[i]!, denom), stepSize)));
      });
    });
  }

  /**
   * clipByGlobalNorm(grads, maxNorm) followed by apply, reading each gradient once on host
   * backends. Returns the norm before clipping.
   */
  applyClipped(grads: (tf.Tensor | null)[], maxNorm: number): number {
    if (!this.host) {
      const { grads: clipped, norm } = clipByGlobalNorm(grads, maxNorm);
      this.apply(clipped);
      const n = norm.dataSync()[0]!;
      tf.dispose([norm, ...clipped.filter((g): g is tf.Tensor => g !== null)]);
      return n;
    }
    const g = grads.map((t) => (t === null ? null : (t.dataSync() as Float32Array)));
    let sq = 0;
    for (const a of g) if (a !== null) for (let k = 0; k < a.length; k++) sq += a[k]! * a[k]!;
    const norm = Math.sqrt(sq);
    // As torch's clip_grad_norm_ and clipByGlobalNorm: scale by min(1, maxNorm / (norm + 1e-6)).
    const coef = Number.isFinite(maxNorm) ? Math.min(maxNorm / (norm + 1e-6), 1) : 1;
    this.applyHost(g, coef);
    return norm;
  }

  private applyHost(grads: (Float32Array | null)[], coef: number): void {
    this.step += 1;
    const { learningRate: lr, beta1: b1, beta2: b2, epsilon: eps } = this.hp;
    const stepSize = lr / (1 - b1 ** this.step);
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.step);
    const ms = this.m as Float32Array[];
    const vs = this.v as Float32Array[];
    grads.forEach((g, i) => {
      if (g === null) return;
      const w = this.vars[i]!;
      const p = (w.dataSync() as Float32Array).slice();
      adamUpdate(p, g, ms[i]!, vs[i]!, coef, b1, b2, stepSize, sqrtBc2, eps);
      tf.tidy(() => w.assign(tf.tensor(p, w.shape, 'float32')));
    });
  }

  /** The host moments and a view of the step count, for fused trainers; null off host backends. */
  hostState(): AdamHostState | null {
    if (!this.host) return null;
    const state = { m: this.m as Float32Array[], v: this.v as Float32Array[] } as AdamHostState;
    Object.defineProperty(state, 'step', {
      get: () => this.step,
      set: (s: number) => {
        this.step = s;
      },
      enumerable: true,
    });
    return state;
  }

  snapshot(): AdamSnapshot {
    const read = (t: tf.Variable | Float32Array): Float32Array =>
      t instanceof Float32Array ? t.slice() : (t.dataSync() as Float32Array).slice();
    return { step: this.step, m: this.m.map(read), v: this.v.map(read) };
  }

  restore(s: AdamSnapshot): void {
    if (s.m.length !== this.m.length || s.v.length !== this.v.length) {
      throw new RangeError(
        `Adam state has ${s.m.length} moments, the model ${this.m.length} variables.`,
      );
    }
    const check = (src: Float32Array[]): void =>
      src.forEach((a, i) => {
        if (a.length !== this.vars[i]!.size)
          throw new RangeError(
            `Adam moment ${i} has ${a.length} values, expected ${this.vars[i]!.size}.`,
          );
      });
    check(s.m);
    check(s.v);
    this.step = s.step;
    const put = (dst: tf.Variable[] | Float32Array[], src: Float32Array[]): void =>
      dst.forEach((d, i) => {
        if (d instanceof Float32Array) d.set(src[i]!);
        else tf.tidy(() => d.assign(tf.tensor(src[i]!, d.shape)));
      });
    put(this.m, s.m);
    put(this.v, s.v);
  }

  dispose(): void {
    if (this.host) return;
    for (const t of [...(this.m as tf.Variable[]), ...(this.v as tf.Variable[])]) t.dispose();
  }
}
