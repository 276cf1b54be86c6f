// Attack budgets relative to the data scale, and the box adversarial x are clipped to (RABI's
// run_rob_eval: eps_relative_to_std and clip_min_max_automatic).

/** The box every attacked x is clipped to: the global min and max over all test xs and dimensions. */
export interface ClipBox {
  min: number;
  max: number;
}

/**
 * mean_n std_d(x_n): the standard deviation of each x across its data dimensions, averaged over the
 * n rows (torch `xs.std(1).mean()`, so the std is Bessel-corrected, divisor d - 1). With one data
 * dimension that std is undefined (torch gives NaN); we then use the std of all n values instead and
 * say so here because RABI has no answer for it.
 */
export function meanPerSampleStd(xs: Float32Array | Float64Array, n: number, d: number): number {
  if (n <= 0 || d <= 0 || xs.length !== n * d) {
    throw new Error(`meanPerSampleStd: expected ${n} x ${d} values, got ${xs.length}.`);
  }
  if (d === 1) return sampleStd(xs, 0, n);
  let total = 0;
  for (let i = 0; i < n; i++) total += sampleStd(xs, i * d, d);
  return total / n;
}

function sampleStd(a: Float32Array | Float64Array, start: number, len: number): number {
  let mean = 0;
  for (let j = 0; j < len; j++) mean += a[start + j]!;
  mean /= len;
  let ss = 0;
  for (let j = 0; j < len; j++) {
    const r = a[start + j]! - mean;
    ss += r * r;
  }
  return Math.sqrt(ss / Math.max(len - 1, 1));
}

/** eps_abs = eps * scale, where scale is meanPerSampleStd of the test xs. */
export function absoluteEps(epsRelative: number, scale: number): number {
  return epsRelative * scale;
}

export function clipBoxOf(xs: Float32Array | Float64Array): ClipBox {
  let min = Infinity;
  let max = -Infinity;
  for (const v of xs) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(min <= max)) throw new Error('clipBoxOf: no finite values.');
  return { min, max };
}

/**
 * PGD step size for "eps_iter: auto" in RABI: min(eps_abs / steps * 20, eps_abs), i.e. eps_abs / 10
 * for the 200-step L2 attack and eps_abs / 6 for the 120-step Linf attack.
 */
export function autoStepSize(epsAbs: number, steps: number): number {
  return Math.min((epsAbs / steps) * 20, epsAbs);
}
