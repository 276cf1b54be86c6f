// The monotone linear-rational spline (Dolatabadi, Erfani & Leckie 2020, "Invertible generative
// modeling using linear rational splines"), with pyro's knot conventions (its order="linear" spline,
// which RABI's "nsf" uses), written here from the paper's construction:
//
// - per row 4K - 1 unconstrained parameters: K widths, K heights, K - 1 interior derivatives, K
//   lambdas, in that order;
// - widths and heights: softmax, each bin at least minBinWidth/minBinHeight of the interval, knots
//   from -B to B (spline-knots.ts); interior derivatives softplus + minDerivative;
// - the boundary derivatives are 1 - minDerivative, not 1: pyro pads the derivatives with that value
//   after adding the minimum (its source says it copied this), so the slope jumps by minDerivative
//   where the identity tails begin. Kept, to be pyro's function;
// - lambdas sigmoid, squashed into (minLambda, 1 - minLambda) with minLambda = 0.025;
// - identity outside [-B, B] (log|det| 0 there).
//
// In a bin [x0, x0 + w] x [y0, y0 + h] with end slopes d0, d1 and split point lambda, the spline is
// two linear-rational pieces meeting at theta = lambda with weights wa = 1, wb = sqrt(d0 / d1) and
// wc = (lambda d0 + (1 - lambda) wb d1) / (h / w), which makes it C1 at both bin ends and at the
// split. Everything is computed relative to the bin's corner (y - y0), which keeps float32 precision
// when B is 30. Each piece is evaluated at theta clamped to its own side of lambda, so the unselected
// piece stays finite (its denominator positive) and a 0/1 mask mixes them (piecewise.ts).
import { tf } from '../backend.js';
import { clip, sigmoid, softplus } from '../ops.js';
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

/** pyro's min_lambda: the split point stays this far from either end of its bin. */
export const MIN_LAMBDA = 0.025;

/** A bin's quantities for each row, [N, 1] each; ycRel and hMinusYc relative to the bin's corner. */
interface LrBin {
  x0: tf.Tensor2D;
  y0: tf.Tensor2D;
  w: tf.Tensor2D;
  h: tf.Tensor2D;
  lambda: tf.Tensor2D;
  wb: tf.Tensor2D;
  wc: tf.Tensor2D;
  /** yc - y0 = lambda wb h / ((1 - lambda) + lambda wb): the spline's value at the split. */
  yc: tf.Tensor2D;
  /** y0 + h - yc = (1 - lambda) h / ((1 - lambda) + lambda wb), without the cancellation. */
  hMinusYc: tf.Tensor2D;
}

export class LinearRationalSpline implements RowSpline {
  readonly opts: SplineOptions;
  private readonly cum: tf.Tensor2D;

  constructor(opts: SplineOptions) {
    validateSplineOptions(opts);
    if (!(opts.minDerivative < 1)) {
      throw new Error(
        `minDerivative must be < 1 for the linear-rational spline, got ${opts.minDerivative}`,
      );
    }
    this.opts = opts;
    this.cum = cumulativeMatrix(opts.bins);
  }

  /** Parameters per dimension: K widths, K heights, K - 1 interior derivatives, K lambdas. */
  get paramsPerDim(): number {
    return 4 * this.opts.bins - 1;
  }

  /** The bin of each row (found among the x knots, or the y knots for the inverse). */
  private bin(v: tf.Tensor2D, raw: tf.Tensor2D, along: 'x' | 'y'): LrBin {
    const { bins: K, tailBound: B, minBinWidth, minBinHeight, minDerivative } = this.opts;
    const N = raw.shape[0];
    const w = binSizes(tf.slice(raw, [0, 0], [N, K]), minBinWidth, B, this.cum);
    const h = binSizes(tf.slice(raw, [0, K], [N, K]), minBinHeight, B, this.cum);
    const inner = tf.add(softplus(tf.slice(raw, [0, 2 * K], [N, K - 1])), minDerivative);
    const edge = tf.fill([N, 1], 1 - minDerivative);
    const d = leftRight(tf.concat([edge, inner, edge], 1) as tf.Tensor2D);
    const lambdas = tf.add(
      tf.mul(sigmoid(tf.slice(raw, [0, 3 * K - 1], [N, K])), 1 - 2 * MIN_LAMBDA),
      MIN_LAMBDA,
    ) as tf.Tensor2D;
    const oneHot = binOneHot(v, along === 'x' ? w.knots : h.knots);
    const pick = (t: tf.Tensor2D): tf.Tensor2D => pickBin(oneHot, t);
    const bw = pick(w.sizes);
    const bh = pick(h.sizes);
    const d0 = pick(d.lo);
    const d1 = pick(d.hi);
    const lambda = pick(lambdas);
    const wb = tf.sqrt(tf.div(d0, d1));
    // wc = (lambda d0 + (1 - lambda) wb d1) / s with s = h / w.
    const wc = tf.div(
      tf.mul(tf.add(tf.mul(lambda, d0), tf.mul(tf.sub(1, lambda), tf.mul(wb, d1))), bw),
      bh,
    );
    const split = tf.add(tf.sub(1, lambda), tf.mul(lambda, wb));
    return {
      x0: pick(leftRight(w.knots).lo),
      y0: pick(leftRight(h.knots).lo),
      w: bw,
      h: bh,
      lambda,
      wb,
      wc,
      yc: tf.div(tf.mul(tf.mul(lambda, wb), bh), split) as tf.Tensor2D,
      hMinusYc: tf.div(tf.mul(tf.sub(1, lambda), bh), split) as tf.Tensor2D,
    } as LrBin;
  }

  forward(u: tf.Tensor2D, raw: tf.Tensor2D): { y: tf.Tensor2D; logDet: tf.Tensor2D } {
    const B = this.opts.tailBound;
    const inside = geMask(B, tf.abs(u));
    // The spline branch sees a clipped input, so the unselected branch stays finite.
    const uc = clip(u, -B, B);
    const b = this.bin(uc, raw, 'x');
    const theta = clip(tf.div(tf.sub(uc, b.x0), b.w), 0, 1);
    const left = geMask(b.lambda, theta); // theta <= lambda, as pyro
    const tl = select(left, theta, b.lambda); // min(theta, lambda)
    const tr = select(left, b.lambda, theta); // max(theta, lambda)
    // Left piece: y - y0 = wc yc t / ((lambda - t) + wc t).
    const denL = tf.add(tf.sub(b.lambda, tl), tf.mul(b.wc, tl));
    const yL = tf.div(tf.mul(tf.mul(b.wc, b.yc), tl), denL);
    // Right piece: y - y0 = (wc yc (1 - t) + wb h (t - lambda)) / (wc (1 - t) + wb (t - lambda)).
    const oneMinus = tf.sub(1, tr);
    const past = tf.sub(tr, b.lambda);
    const denR = tf.add(tf.mul(b.wc, oneMinus), tf.mul(b.wb, past));
    const yR = tf.div(
      tf.add(tf.mul(tf.mul(b.wc, b.yc), oneMinus), tf.mul(tf.mul(b.wb, b.h), past)),
      denR,
    );
    // dy/dx: wc lambda yc / (w denL^2) on the left, wb wc (1 - lambda)(h - yc) / (w denR^2) on the right.
    const logNumL = tf.log(tf.div(tf.mul(tf.mul(b.wc, b.lambda), b.yc), b.w));
    const logNumR = tf.log(
      tf.div(tf.mul(tf.mul(tf.mul(b.wb, b.wc), tf.sub(1, b.lambda)), b.hMinusYc), b.w),
    );
    const logDetL = tf.sub(logNumL, tf.mul(tf.log(denL), 2));
    const logDetR = tf.sub(logNumR, tf.mul(tf.log(denR), 2));
    const y = tf.add(b.y0, select(left, yL, yR)) as tf.Tensor2D;
    const logDet = select(left, logDetL, logDetR);
    return {
      y: select(inside, y, u) as tf.Tensor2D,
      logDet: tf.mul(inside, logDet) as tf.Tensor2D,
    };
  }

  /** y [N, 1] -> u: each piece is a Moebius map, inverted in closed form. */
  inverse(y: tf.Tensor2D, raw: tf.Tensor2D): tf.Tensor2D {
    const B = this.opts.tailBound;
    const inside = geMask(B, tf.abs(y));
    const yClip = clip(y, -B, B);
    const b = this.bin(yClip, raw, 'y');
    const dy = clip(tf.sub(yClip, b.y0), 0, Number.MAX_VALUE);
    const left = geMask(b.yc, dy); // y <= yc, as pyro
    const vl = select(left, dy, b.yc); // min(dy, yc)
    const vr = select(left, b.yc, dy); // max(dy, yc)
    // Left: t = lambda v / (wc (yc - v) + v).
    const tL = tf.div(tf.mul(b.lambda, vl), tf.add(tf.mul(b.wc, tf.sub(b.yc, vl)), vl));
    // Right: t = (wc (v - yc) + lambda wb (h - v)) / (wc (v - yc) + wb (h - v)).
    const above = tf.mul(b.wc, tf.sub(vr, b.yc));
    const below = tf.mul(b.wb, clip(tf.sub(b.h, vr), 0, Number.MAX_VALUE));
    const tR = tf.div(tf.add(above, tf.mul(b.lambda, below)), tf.add(above, below));
    const u = tf.add(b.x0, tf.mul(select(left, tL, tR), b.w));
    return select(inside, u, y) as tf.Tensor2D;
  }

  dispose(): void {
    this.cum.dispose();
  }
}
