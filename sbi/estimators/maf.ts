// Masked autoregressive flow as RABI runs it (pyro AffineAutoregressive(...).inv): T affine
// autoregressive transforms of the z-scored theta, density in one MADE pass per transform,
//   z_i = (u_i - mu_i(u_<i, x)) * exp(-s_i(u_<i, x)),  s clipped to [logScaleMin, logScaleMax],
// base N(0, I). Each transform has its own variable order, drawn from the seed (RABI: pyro's random
// order per layer; no permutation layers, since RABI runs with shuffle: false). The orders are part of
// the config, so a saved model rebuilds with the same ones.
import { onHostBackend, tf, tidyData } from '../backend.js';
import { clip, clipPassingGradient, exp, softplus } from '../ops.js';
import type { FusedInference, FusedPlan, FusedTrainer, RandomStream, ZScore } from '../types.js';
import { MafKernels } from '../wasm/maf-kernels.js';
import { AutoregressiveFlow, type ElementwiseBijection } from './autoregressive.js';
import {
  hiddenDegrees,
  madeMasks,
  type BiasInit,
  type ContextLayer,
  type InputFanIn,
  type MadeActivation,
  type MadeDegrees,
} from './made.js';
import { FusedMafTrainer } from './maf-fused.js';
import { FusedMafInference } from './maf-fused-inference.js';
import { FusedMafMemory } from './maf-fused-layout.js';

export interface MafConfig {
  hidden: number[];
  numTransforms: number;
  orders: number[][];
  logScaleMin: number;
  logScaleMax: number;
  /** RABI's choices where they differ (see sbi/presets.ts); absent in configs saved before them. */
  affine?: AffineDirection;
  clampGradient?: ClampGradient;
  degrees?: MadeDegrees;
  biasInit?: BiasInit;
  inputFanIn?: InputFanIn;
  /** nflows' context layer ('tanh'); absent: 'linear'. */
  contextLayer?: ContextLayer;
  /** The MADEs' hidden nonlinearity; absent (every config saved before it): 'relu'. */
  activation?: MadeActivation;
  [key: string]: unknown;
}

/** Rows the fused inference holds at once (larger calls run in chunks): ~22 MB of kernel memory. */
const FUSED_INFERENCE_ROWS = 2048;

export const MAF_DEFAULTS = {
  hidden: [100, 100],
  numTransforms: 3,
  logScaleMin: -7,
  logScaleMax: 5,
};

/**
 * The affine transform's direction, theta -> z: 'robustsbi' z = (u - mu) exp(-s) (log det -sum s),
 * 'pyro' z = exp(s) u + mu (log det +sum s; pyro's AffineAutoregressive(...).inv, RABI's MAF),
 * 'nflows' z = c u + mu with c = softplus(r) + 1e-3 (nflows 0.14's MaskedAffineAutoregressiveTransform,
 * sbi 0.27's MAF), no clip (the log-scale bounds do not apply). nflows' older sigmoid(r + 2) + 1e-3
 * caps c near 1, so no transform can widen the density direction: it trained two_moons to a
 * validation NLL of +0.7 against -3.2 (BENCHMARKS.md), and is not offered.
 */
export const AFFINE_DIRECTIONS = ['robustsbi', 'pyro', 'nflows'] as const;
export type AffineDirection = (typeof AFFINE_DIRECTIONS)[number];

/** nflows' floor on the scale (its epsilon). */
const NFLOWS_SCALE_FLOOR = 1e-3;
/** What the log-scale clip does to the gradient: 'zero' outside the range, or 'pass' it (pyro's clamp). */
export type ClampGradient = 'zero' | 'pass';

/** params (paramMajor, [B, 2D]): columns 0..D-1 are mu, D..2D-1 the log-scale s. */
export class AffineBijection implements ElementwiseBijection {
  readonly paramsPerDim = 2;
  readonly layout = 'paramMajor' as const;

  constructor(
    private readonly dim: number,
    private readonly sMin: number,
    private readonly sMax: number,
    private readonly direction: AffineDirection = 'robustsbi',
    private readonly clampGradient: ClampGradient = 'zero',
  ) {
    if (!(sMin < sMax))
      throw new Error(`logScaleMin (${sMin}) must be below logScaleMax (${sMax})`);
  }

  private split(params: tf.Tensor2D): { mu: tf.Tensor2D; s: tf.Tensor2D } {
    const B = params.shape[0];
    const D = this.dim;
    const mu = tf.slice(params, [0, 0], [B, D]);
    // ops' clips, not tf.clipByValue: the latter's gradient cannot be differentiated again.
    const raw = tf.slice(params, [0, D], [B, D]);
    const s =
      this.clampGradient === 'pass'
        ? clipPassingGradient(raw, this.sMin, this.sMax)
        : clip(raw, this.sMin, this.sMax);
    return { mu, s };
  }

  /** nflows' mu and scale c = softplus(r) + 1e-3 (no clip: c > 1e-3). */
  private nflowsScale(params: tf.Tensor2D): { mu: tf.Tensor2D; c: tf.Tensor2D } {
    const B = params.shape[0];
    const D = this.dim;
    const raw = tf.slice(params, [0, D], [B, D]);
    return {
      mu: tf.slice(params, [0, 0], [B, D]),
      c: tf.add(softplus(raw), NFLOWS_SCALE_FLOOR) as tf.Tensor2D,
    };
  }

  forward(u: tf.Tensor2D, params: tf.Tensor2D): { z: tf.Tensor2D; logDet: tf.Tensor1D } {
    if (this.direction === 'nflows') {
      const { mu, c } = this.nflowsScale(params);
      return {
        z: tf.add(tf.mul(u, c), mu) as tf.Tensor2D,
        logDet: tf.sum(tf.log(c), 1) as tf.Tensor1D,
      };
    }
    const { mu, s } = this.split(params);
    if (this.direction === 'pyro')
      return {
        z: tf.add(tf.mul(u, exp(s)), mu) as tf.Tensor2D,
        logDet: tf.sum(s, 1) as tf.Tensor1D,
      };
    const z = tf.mul(tf.sub(u, mu), exp(tf.neg(s))) as tf.Tensor2D;
    return { z, logDet: tf.neg(tf.sum(s, 1)) as tf.Tensor1D };
  }

  inverse(z: tf.Tensor2D, params: tf.Tensor2D): tf.Tensor2D {
    if (this.direction === 'nflows') {
      const { mu, c } = this.nflowsScale(params);
      return tf.div(tf.sub(z, mu), c) as tf.Tensor2D;
    }
    const { mu, s } = this.split(params);
    if (this.direction === 'pyro') return tf.mul(tf.sub(z, mu), exp(tf.neg(s))) as tf.Tensor2D;
    return tf.add(tf.mul(z, exp(s)), mu) as tf.Tensor2D;
  }
}

/**
 * The fused wasm kernels (sbi/wasm/maf-step.as.ts) run every MADE in the plain training step; tanh
 * MADEs, nflows' scale and nflows' context layer only there (not in the incremental sampler, the
 * exact FIM or a defense's plan, whose passes are written for ReLU, the exp scale and x taken
 * linearly). tfjs runs the rest.
 */
function fusedKernelsRun(cfg: MafConfig, use: 'train' | 'other'): boolean {
  if (use === 'train') return true;
  return (
    (cfg.activation ?? 'relu') === 'relu' &&
    cfg.affine !== 'nflows' &&
    (cfg.contextLayer ?? 'linear') === 'linear'
  );
}

export class Maf extends AutoregressiveFlow {
  readonly kind = 'maf' as const;
  private inference: FusedMafInference | undefined;

  constructor(
    thetaDim: number,
    xDim: number,
    config: MafConfig,
    zscore: ZScore,
    rng: RandomStream,
  ) {
    super(
      thetaDim,
      xDim,
      config,
      zscore,
      rng,
      new AffineBijection(
        thetaDim,
        config.logScaleMin,
        config.logScaleMax,
        config.affine ?? 'robustsbi',
        config.clampGradient ?? 'zero',
      ),
    );
  }

  /** What the fused kernels' memory needs to know of the flow. */
  private fusedShape() {
    const cfg = this.config as MafConfig;
    return {
      thetaDim: this.thetaDim,
      ctxDim: this.xDim,
      hidden: cfg.hidden,
      degrees: hiddenDegrees({ thetaDim: this.thetaDim, hidden: cfg.hidden, degrees: cfg.degrees }),
      logScaleMin: cfg.logScaleMin,
      logScaleMax: cfg.logScaleMax,
      affine: cfg.affine ?? 'robustsbi',
      clampGradient: cfg.clampGradient ?? 'zero',
      activation: cfg.activation ?? 'relu',
      contextLayer: cfg.contextLayer ?? 'linear',
      mades: this.mades.map((made) => ({
        parts: made.parts(),
        masks: madeMasks(made.spec),
        order: made.spec.order,
      })),
    };
  }

  /**
   * Sampling, density and attack gradients on the fused kernels (maf-fused-inference.ts), on host
   * backends, for x as it is and two hidden layers (the incremental sampler's kernels);
   * ROBUSTSBI_FUSED_INFERENCE=0 turns it off (the tfjs ops then run, as on other backends).
   */
  fusedInference(): FusedInference | null {
    const cfg = this.config as MafConfig;
    if ((this.config.embedding ?? 'identity') !== 'identity' || cfg.hidden.length !== 2)
      return null;
    if (!fusedKernelsRun(cfg, 'other')) return null;
    if (!onHostBackend() || process.env.ROBUSTSBI_FUSED_INFERENCE === '0') return null;
    // Made once per model (a kernel instance and its memory cost ~14 ms, an attack step ~6 ms);
    // each call reloads the weights and the z-score, which training may have changed since.
    if (!this.inference) {
      const k = new MafKernels();
      const mem = new FusedMafMemory(k, {
        ...this.fusedShape(),
        n: 0,
        maxBatch: FUSED_INFERENCE_ROWS,
        probeRows: FUSED_INFERENCE_ROWS,
        inputGradient: true,
        gradientEma: false,
        exactFim: true,
        cleanLayouts: true,
      });
      this.inference = new FusedMafInference(k, mem, cfg.logScaleMin, cfg.logScaleMax);
    }
    this.inference.reload(this.zscore, this.z.thetaLogScale);
    return this.inference;
  }

  override dispose(): void {
    this.inference = undefined;
    super.dispose();
  }

  /** The wasm training step (maf-fused.ts); it has no embedding net, so only for x as it is. */
  fusedTrainer(
    theta: Float32Array,
    x: Float32Array,
    n: number,
    maxBatch: number,
    plan?: FusedPlan,
  ): FusedTrainer | null {
    if ((this.config.embedding ?? 'identity') !== 'identity') return null;
    const cfg = this.config as MafConfig;
    if (!fusedKernelsRun(cfg, plan ? 'other' : 'train')) return null;
    // The incremental sampler's kernels are written for two hidden layers (RABI's [100, 100]).
    if (plan?.exactFim && cfg.hidden.length !== 2) return null;
    return new FusedMafTrainer({
      ...this.fusedShape(),
      thetaLogScale: this.z.thetaLogScale,
      xMean: [...this.zscore.xMean],
      xStd: [...this.zscore.xStd],
      ...(plan ? { plan } : {}),
      // Through the model's own tfjs ops, so the fused step sees exactly what logProb sees.
      normalize: (th, xs, rows) => {
        const [u, xz] = tidyData(() => [
          this.z
            .normalizeTheta(
              tf.tensor2d(th.subarray(0, rows * this.thetaDim), [rows, this.thetaDim]),
            )
            .dataSync(),
          this.embedX(tf.tensor2d(xs.subarray(0, rows * this.xDim), [rows, this.xDim])).dataSync(),
        ]);
        return { u: u as Float32Array, xz: xz as Float32Array };
      },
      theta,
      x,
      n,
      maxBatch,
    });
  }
}
