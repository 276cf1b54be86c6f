// Neural spline flow: T autoregressive spline transforms of theta, each conditioned by its own MADE,
// base N(0, I). Two splines (config `spline`):
//
// - 'rational-quadratic' (robustsbi's own, and what configs without `spline` get): Durkan et al.
//   2019 with nflows' conventions, on [-B, B] with B = tailBound (default 5), in z-scored units
//   under the robustsbi preset; identity (slope 1) tails outside. K = 12 bins as RABI; min bin
//   width, height and derivative 1e-3 as nflows.
// - 'linear-rational' (linear-rational-spline.ts): pyro's order="linear" spline, which RABI's "nsf"
//   uses; the rabi preset sets it with bound 30 on raw theta (presets.ts).
//
// Both run in the density direction theta -> z (the spline's forward), parameterized by a MADE of
// the input: that is nflows' direction and also RABI's (pyro's SplineAutoregressive(...).inv, whose
// inverse, used for the density, is SplineAutoregressive's forward). Orders per transform are drawn
// from the seed, as in maf.ts.
//
// Twice differentiable: the bin is found with comparisons and a one-hot mask (no gather), so gradients
// flow only through the selected bin's values; the inverse is analytic (rational-quadratic: the root of
// a quadratic; linear-rational: a Moebius map inverted). Clipping and
// the tail/interior choice use ops.clip and piecewise.ts (tf.clipByValue and tf.where break at second order).
import { tf } from '../backend.js';
import { clip, softplus } from '../ops.js';
import type { RandomStream, ZScore } from '../types.js';
import { AutoregressiveFlow, type ElementwiseBijection } from './autoregressive.js';
import { LinearRationalSpline } from './linear-rational-spline.js';
import { geMask, select } from './piecewise.js';
import {
  binOneHot,
  binSizes,
  cumulativeMatrix,
  leftRight,
  pickBin,
  type RowSpline,
  type SplineOptions,
  validateSplineOptions,
} from './spline-knots.js';

export type { SplineOptions } from './spline-knots.js';

/** The elementwise spline: robustsbi's rational-quadratic, or pyro's linear-rational (RABI's). */
export const SPLINE_KINDS = ['rational-quadratic', 'linear-rational'] as const;
export type SplineKind = (typeof SPLINE_KINDS)[number];

export interface NsfConfig {
  hidden: number[];
  numTransforms: number;
  orders: number[][];
  bins: number;
  tailBound: number;
  minBinWidth: number;
  minBinHeight: number;
  minDerivative: number;
  /** Absent (configs and model files from before it existed): 'rational-quadratic'. */
  spline?: SplineKind;
  [key: string]: unknown;
}

export const NSF_DEFAULTS = {
  hidden: [100, 100],
  numTransforms: 3,
  bins: 12,
  tailBound: 5,
  minBinWidth: 1e-3,
  minBinHeight: 1e-3,
  minDerivative: 1e-3,
};

/** The spline of each row: knots, bin sizes and knot derivatives (boundary derivatives are 1). */
interface Knots {
  xs: tf.Tensor2D; // [N, K + 1], from -B to B
  ys: tf.Tensor2D;
  widths: tf.Tensor2D; // [N, K]
  heights: tf.Tensor2D;
  derivs: tf.Tensor2D; // [N, K + 1]
}

/** The spline's quantities in the bin of each row, [N, 1] each. */
interface Bin {
  x0: tf.Tensor2D;
  y0: tf.Tensor2D;
  w: tf.Tensor2D;
  h: tf.Tensor2D;
  d0: tf.Tensor2D;
  d1: tf.Tensor2D;
}

export class RationalQuadraticSpline implements RowSpline {
  readonly opts: SplineOptions;
  private readonly cum: tf.Tensor2D;

  constructor(opts: SplineOptions) {
    validateSplineOptions(opts);
    this.opts = opts;
    this.cum = cumulativeMatrix(opts.bins);
  }

  /** Parameters per dimension: K widths, K heights, K - 1 interior derivatives. */
  get paramsPerDim(): number {
    return 3 * this.opts.bins - 1;
  }

  private knots(raw: tf.Tensor2D): Knots {
    const { bins: K, tailBound: B, minBinWidth, minBinHeight, minDerivative } = this.opts;
    const N = raw.shape[0];
    const w = binSizes(tf.slice(raw, [0, 0], [N, K]), minBinWidth, B, this.cum);
    const h = binSizes(tf.slice(raw, [0, K], [N, K]), minBinHeight, B, this.cum);
    const inner = tf.add(
      softplus(tf.slice(raw, [0, 2 * K], [N, K - 1])),
      minDerivative,
    ) as tf.Tensor2D;
    const one = tf.ones([N, 1]) as tf.Tensor2D;
    return {
      xs: w.knots,
      ys: h.knots,
      widths: w.sizes,
      heights: h.sizes,
      derivs: tf.concat([one, inner, one], 1) as tf.Tensor2D,
    };
  }

  private select(oneHot: tf.Tensor2D, k: Knots): Bin {
    const pick = (t: tf.Tensor2D): tf.Tensor2D => pickBin(oneHot, t);
    const d = leftRight(k.derivs);
    return {
      x0: pick(leftRight(k.xs).lo),
      y0: pick(leftRight(k.ys).lo),
      w: pick(k.widths),
      h: pick(k.heights),
      d0: pick(d.lo),
      d1: pick(d.hi),
    };
  }

  /** u [N, 1] -> (y, log dy/du) [N, 1]; raw [N, 3K - 1] unconstrained parameters. */
  forward(u: tf.Tensor2D, raw: tf.Tensor2D): { y: tf.Tensor2D; logDet: tf.Tensor2D } {
    const B = this.opts.tailBound;
    const inside = geMask(B, tf.abs(u));
    // The spline branch sees a clipped input, so the unselected branch stays finite.
    const uc = clip(u, -B, B);
    const k = this.knots(raw);
    const b = this.select(binOneHot(uc, k.xs), k);
    const xi = clip(tf.div(tf.sub(uc, b.x0), b.w), 0, 1);
    const s = tf.div(b.h, b.w);
    const om = tf.mul(xi, tf.sub(1, xi)); // xi (1 - xi)
    const xi2 = tf.square(xi);
    const den = tf.add(s, tf.mul(tf.sub(tf.add(b.d1, b.d0), tf.mul(s, 2)), om));
    const num = tf.mul(b.h, tf.add(tf.mul(s, xi2), tf.mul(b.d0, om)));
    const y = tf.add(b.y0, tf.div(num, den));
    const dnum = tf.mul(
      tf.square(s),
      tf.add(
        tf.add(tf.mul(b.d1, xi2), tf.mul(tf.mul(s, 2), om)),
        tf.mul(b.d0, tf.square(tf.sub(1, xi))),
      ),
    );
    const logDet = tf.sub(tf.log(dnum), tf.mul(tf.log(den), 2));
    return {
      y: select(inside, y, u) as tf.Tensor2D,
      logDet: tf.mul(inside, logDet) as tf.Tensor2D,
    };
  }

  /** y [N, 1] -> u, the analytic inverse (root of the bin's quadratic). */
  inverse(y: tf.Tensor2D, raw: tf.Tensor2D): tf.Tensor2D {
    const B = this.opts.tailBound;
    const inside = geMask(B, tf.abs(y));
    const yc = clip(y, -B, B);
    const k = this.knots(raw);
    const b = this.select(binOneHot(yc, k.ys), k);
    const dy = tf.sub(yc, b.y0);
    const s = tf.div(b.h, b.w);
    const c2 = tf.sub(tf.add(b.d1, b.d0), tf.mul(s, 2)); // d0 + d1 - 2s
    const qa = tf.add(tf.mul(b.h, tf.sub(s, b.d0)), tf.mul(dy, c2));
    const qb = tf.sub(tf.mul(b.h, b.d0), tf.mul(dy, c2));
    const qc = tf.mul(tf.neg(s), dy);
    // The discriminant is positive for a monotone spline; relu only guards float round-off.
    const disc = tf.relu(tf.sub(tf.square(qb), tf.mul(tf.mul(qa, qc), 4)));
    const xi = tf.div(tf.mul(qc, 2), tf.sub(tf.neg(qb), tf.sqrt(disc)));
    const u = tf.add(tf.mul(xi, b.w), b.x0);
    return select(inside, u, y) as tf.Tensor2D;
  }

  dispose(): void {
    this.cum.dispose();
  }
}

/** params (dimMajor, [B, D * P]): the P (3K - 1 or 4K - 1) spline parameters of dimension i are columns i*P..i*P+P-1. */
export class SplineBijection implements ElementwiseBijection {
  readonly layout = 'dimMajor' as const;
  readonly spline: RowSpline;

  constructor(opts: SplineOptions, kind: SplineKind = 'rational-quadratic') {
    this.spline =
      kind === 'linear-rational'
        ? new LinearRationalSpline(opts)
        : new RationalQuadraticSpline(opts);
  }

  get paramsPerDim(): number {
    return this.spline.paramsPerDim;
  }

  forward(u: tf.Tensor2D, params: tf.Tensor2D): { z: tf.Tensor2D; logDet: tf.Tensor1D } {
    const [B, D] = u.shape;
    const r = this.spline.forward(
      tf.reshape(u, [B * D, 1]) as tf.Tensor2D,
      tf.reshape(params, [B * D, this.paramsPerDim]) as tf.Tensor2D,
    );
    return {
      z: tf.reshape(r.y, [B, D]) as tf.Tensor2D,
      logDet: tf.sum(tf.reshape(r.logDet, [B, D]), 1) as tf.Tensor1D,
    };
  }

  inverse(z: tf.Tensor2D, params: tf.Tensor2D): tf.Tensor2D {
    const [B, D] = z.shape;
    const u = this.spline.inverse(
      tf.reshape(z, [B * D, 1]) as tf.Tensor2D,
      tf.reshape(params, [B * D, this.paramsPerDim]) as tf.Tensor2D,
    );
    return tf.reshape(u, [B, D]) as tf.Tensor2D;
  }

  dispose(): void {
    this.spline.dispose();
  }
}

export class Nsf extends AutoregressiveFlow {
  readonly kind = 'nsf' as const;

  constructor(
    thetaDim: number,
    xDim: number,
    config: NsfConfig,
    zscore: ZScore,
    rng: RandomStream,
  ) {
    super(
      thetaDim,
      xDim,
      config,
      zscore,
      rng,
      new SplineBijection(
        {
          bins: config.bins,
          tailBound: config.tailBound,
          minBinWidth: config.minBinWidth,
          minBinHeight: config.minBinHeight,
          minDerivative: config.minDerivative,
        },
        config.spline ?? 'rational-quadratic',
      ),
    );
  }
}
