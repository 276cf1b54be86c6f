// The training step of an affine MAF (RABI's estimator) as one pass of hand-written WebAssembly
// kernels (sbi/wasm/maf-step.as.ts): gather the batch, forward through every MADE and affine
// transform, backward, clip and Adam over one flat parameter buffer (maf-fused-layout.ts); a
// defense with a fused form (FusedPlan, next to its tfjs form in sbi/defenses/) runs inside the
// step through the FusedPass this trainer lends it. It computes what trainNPE's tfjs step computes
// (same masks, same formulas, float32; Adam with float64 intermediates as the host Adam), at a
// fraction of the dispatch cost: tfjs issues ~400 kernels per step at ~15 us each. Weights and Adam
// moments move between the tf.Variables and the module's memory only when trainNPE needs them
// (load / store); snapshots and checkpoints stay in tfjs.
import type { tf } from '../backend.js';
import type {
  AdamHostState,
  FusedPass,
  FusedPlan,
  FusedRows,
  FusedStepContext,
  FusedTrainer,
} from '../types.js';
import { MafKernels } from '../wasm/maf-kernels.js';
import { LOG_2PI } from './base.js';
import { FusedMafFim } from './maf-fused-fim.js';
import { MafPasses } from './maf-fused-passes.js';
import { FusedMafMemory, pad, type FusedMafShape } from './maf-fused-layout.js';

export interface FusedMafSpec extends Omit<
  FusedMafShape,
  'n' | 'probeRows' | 'inputGradient' | 'gradientEma' | 'exactFim'
> {
  /** sum log thetaStd: the density's constant from z-scoring theta. */
  thetaLogScale: number;
  /** Raw rows -> z-scored theta [n, thetaDim] and conditioner input [n, ctxDim], as the model does. */
  normalize(theta: Float32Array, x: Float32Array, n: number): { u: Float32Array; xz: Float32Array };
  /** The z-score of x (defenses perturb raw x). */
  xMean: number[];
  xStd: number[];
  /** A defense to run in the step, if any. */
  plan?: FusedPlan;
  /** Raw training rows, [n, thetaDim] and [n, xDim]. */
  theta: Float32Array;
  x: Float32Array;
  n: number;
}

interface AdamHyperparameters {
  clipNorm: number;
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export class FusedMafTrainer implements FusedTrainer, FusedPass {
  private readonly k: MafKernels;
  private readonly mem: FusedMafMemory;
  private readonly nData: number;
  private readonly normalize: FusedMafSpec['normalize'];
  private readonly constant: number;
  private readonly plan: FusedPlan | undefined;
  /** Steps folded into the plan's gradient EMA. */
  private emaT = 0;
  private readonly passes: MafPasses;
  /** The exact FIM regularizer's passes, where the plan asks for them. */
  private readonly fim: FusedMafFim | null;
  readonly thetaDim: number;
  readonly xDim: number;
  readonly xMean: readonly number[];
  readonly xStd: readonly number[];
  readonly trainX: Float32Array;

  constructor(spec: FusedMafSpec) {
    this.k = new MafKernels();
    this.plan = spec.plan;
    this.mem = new FusedMafMemory(this.k, {
      ...spec,
      probeRows: spec.plan?.probeRows?.(spec.maxBatch) ?? 0,
      inputGradient: spec.plan?.usesInputGradient === true || spec.plan?.exactFim === true,
      gradientEma: spec.plan?.ema !== undefined,
      exactFim: spec.plan?.exactFim === true,
    });
    this.passes = new MafPasses(this.k, this.mem, spec.logScaleMin, spec.logScaleMax);
    this.fim = this.mem.fim
      ? new FusedMafFim(this.k, this.mem, spec.logScaleMin, spec.logScaleMax)
      : null;
    this.thetaDim = spec.thetaDim;
    this.xDim = spec.ctxDim;
    this.xMean = [...spec.xMean];
    this.xStd = [...spec.xStd];
    this.trainX = spec.x;
    this.nData = spec.n;
    this.normalize = spec.normalize;
    this.constant = 0.5 * spec.thetaDim * LOG_2PI + spec.thetaLogScale;
    // The training data, once.
    const { u, xz } = spec.normalize(spec.theta, spec.x, spec.n);
    this.mem.putRows(this.mem.f32(), u, xz, spec.n, this.mem.dataU, this.mem.dataX);
  }

  /** Weights, Adam moments and the plan's gradient EMA into the flat buffers. */
  load(adam: AdamHostState, vars: tf.Variable[]): void {
    const ema = this.plan?.ema?.exportHost();
    if (ema) this.emaT = ema.t;
    this.mem.load(adam, vars, ema?.moments);
  }

  /** The trained weights back into the variables, the moments into the Adam state and the EMA. */
  store(adam: AdamHostState, vars: tf.Variable[]): void {
    this.mem.store(adam, vars);
    const ema = this.plan?.ema;
    if (ema && this.emaT > 0) ema.importHost(this.emaT, this.mem.emaMoments(vars));
  }

  /** The batch's mean NLL and its masked gradients in mem.grads, with their squared norm. */
  private lossAndGrads(
    rows: ArrayLike<number>,
    ctx: FusedStepContext | undefined,
  ): { loss: number; sqNorm: number } {
    const { k, mem } = this;
    const n = rows.length;
    if (n < 1 || n > mem.Bmax) throw new RangeError(`FusedMafTrainer: batch of ${n} rows.`);
    const idx = new Int32Array(k.memory.buffer, mem.idx, n);
    for (let r = 0; r < n; r++) {
      const i = rows[r]!;
      if (!(i >= 0 && i < this.nData))
        throw new RangeError(`FusedMafTrainer: row ${i} out of range.`);
      idx[r] = i;
    }
    const gather = { idx: mem.idx, count: n };
    k.gatherRows({
      ...gather,
      src: mem.dataU,
      lds: mem.Dn,
      cols: mem.D,
      dst: mem.batchU,
      ldd: mem.Dn,
    });
    k.gatherRows({
      ...gather,
      src: mem.dataX,
      lds: mem.Cp,
      cols: mem.C,
      dst: mem.batchX,
      ldd: mem.Cp,
    });
    if (this.plan?.prepareBatch) {
      if (!ctx) throw new Error('FusedMafTrainer: the defense needs a random stream.');
      this.plan.prepareBatch(this, rows, ctx);
    }
    this.passes.forward(n, mem.batchU, mem.batchX);
    let lossSum = 0;
    for (const v of this.passes.rowNLL(n)) lossSum += v;
    new Float32Array(k.memory.buffer, mem.coef, n).fill(1 / n);
    const sqNorm = this.passes.backward(n, mem.batchU, mem.batchX, { gradBase: mem.grads });
    return { loss: lossSum / n + this.constant, sqNorm };
  }

  // FusedPass: what a defense's fused form uses.

  private rows(u: number, x: number): FusedRows {
    const f32 = this.mem.f32();
    const { Dn, Cp, Bmax } = this.mem;
    return {
      u: f32.subarray(u / 4, u / 4 + Bmax * Dn),
      x: f32.subarray(x / 4, x / 4 + Bmax * Cp),
      ldU: Dn,
      ldX: Cp,
    };
  }

  batch(): FusedRows {
    return this.rows(this.mem.batchU, this.mem.batchX);
  }

  probes(): FusedRows {
    return this.rows(this.mem.regU, this.mem.regX);
  }

  inputGradient(n: number): Float32Array {
    const mem = this.mem;
    new Float32Array(this.k.memory.buffer, mem.coef, n).fill(1);
    this.passes.forward(n, mem.batchU, mem.batchX);
    this.passes.backward(n, mem.batchU, mem.batchX, { dx: mem.dX });
    return new Float32Array(this.k.memory.buffer, mem.dX, pad(n, 4) * mem.Cp);
  }

  probeNLL(count: number): Float64Array {
    this.passes.forward(count, this.mem.regU, this.mem.regX);
    return this.passes.rowNLL(count);
  }

  addProbeGradientEma(coef: Float32Array): number {
    const { k, mem } = this;
    const count = coef.length;
    new Float32Array(k.memory.buffer, mem.coef, count).set(coef);
    this.passes.backward(count, mem.regU, mem.regX, { gradBase: mem.grads2 });
    return this.foldGradientEma();
  }

  addFimTraceGradientEma(
    count: number,
    mcSamples: number,
    beta: number,
    noise: Float32Array,
  ): number {
    const { k, mem } = this;
    const fim = this.fim;
    if (!fim) throw new Error('FusedMafTrainer: the plan did not ask for the exact FIM passes.');
    const { D, C, Dn, Cp } = mem;
    const R = count * mcSamples;
    if (noise.length !== R * D)
      throw new RangeError(`FusedMafTrainer: ${noise.length} noise values for ${R} rows of ${D}.`);
    // Row m * count + b: sample m of batch row b (as squaredScores tiles x).
    const f32 = mem.f32();
    const base = mem.layouts[mem.layouts.length - 1]!.z / 4;
    const batchX = mem.batchX / 4;
    for (let r = 0; r < R; r++) {
      f32.set(noise.subarray(r * D, (r + 1) * D), base + r * Dn);
      const b = r % count;
      f32.copyWithin(mem.regX / 4 + r * Cp, batchX + b * Cp, batchX + (b + 1) * Cp);
    }
    fim.sample(R);
    fim.scoreBackward(R);
    // |t_raw|^2 per row (t_raw = d nll / dx = t_z / xStd), its mean over the samples per x, and
    // RABI's drop of non-finite traces.
    const t = new Float32Array(k.memory.buffer, mem.dX, R * Cp);
    const trace = new Float64Array(count);
    for (let r = 0; r < R; r++) {
      let sq = 0;
      for (let j = 0; j < C; j++) sq += (t[r * Cp + j]! / this.xStd[j]!) ** 2;
      trace[r % count] += sq / mcSamples;
    }
    let kept = 0;
    for (const v of trace) if (Number.isFinite(v)) kept++;
    const w = beta / (Math.max(kept, 1) * mcSamples);
    const xdot = fim.xdotRows(R);
    for (let r = 0; r < R; r++) {
      if (!Number.isFinite(trace[r % count]!)) {
        fim.clearRow(r);
        continue;
      }
      // grad_phi |t_raw|^2 = grad_phi (2 t_raw . t_raw), the first factor frozen: in x_z units the
      // direction 2 t_z / xStd^2.
      for (let j = 0; j < C; j++) xdot[r * Cp + j] = (2 * w * t[r * Cp + j]!) / this.xStd[j]! ** 2;
    }
    fim.tangent(R);
    fim.secondOrder(R, count, mem.grads2);
    k.maskAndNormSq(mem.grads2, mem.mask, mem.total);
    return this.foldGradientEma();
  }

  /** mem.grads2 into the plan's EMA; the bias-corrected EMA added to the step's gradient. */
  private foldGradientEma(): number {
    const { k, mem } = this;
    const ema = this.plan?.ema;
    if (!ema) throw new Error('FusedMafTrainer: the plan keeps no gradient EMA.');
    const keepOld = 1 - ema.decay;
    this.emaT += 1;
    k.emaUpdate(mem.ema, mem.grads2, mem.total, ema.decay, keepOld);
    return k.addDividedNormSq(mem.grads, mem.ema, mem.total, 1 - keepOld ** this.emaT);
  }

  /** One Adam step on the batch rows (indices into the training data); returns the batch NLL. */
  step(
    rows: ArrayLike<number>,
    adam: AdamHostState,
    hp: AdamHyperparameters,
    ctx?: FusedStepContext,
  ): number {
    const nll = this.lossAndGrads(rows, ctx);
    let sqNorm = nll.sqNorm;
    if (this.plan?.addGradients) {
      if (!ctx) throw new Error('FusedMafTrainer: the regularizer needs a random stream.');
      sqNorm = this.plan.addGradients(this, rows.length, ctx) ?? sqNorm;
    }
    const norm = Math.sqrt(sqNorm);
    // As torch's clip_grad_norm_ and adam.ts' Adam.applyClipped.
    const coef = Number.isFinite(hp.clipNorm) ? Math.min(hp.clipNorm / (norm + 1e-6), 1) : 1;
    adam.step += 1;
    const stepSize = hp.learningRate / (1 - hp.beta1 ** adam.step);
    const sqrtBc2 = Math.sqrt(1 - hp.beta2 ** adam.step);
    const { params: p, grads: g, m, v, total: n } = this.mem;
    const { beta1, beta2, epsilon } = hp;
    this.k.adam({ p, g, m, v, n, coef, beta1, beta2, stepSize, sqrtBc2, epsilon });
    return nll.loss;
  }

  /** Mean -log q over raw rows with the weights last loaded or stored (validation after an epoch). */
  meanNLL(theta: Float32Array, x: Float32Array, n: number): number {
    const mem = this.mem;
    const { u, xz } = this.normalize(theta, x, n);
    const { D, C, Bmax } = mem;
    let total = 0;
    for (let start = 0; start < n; start += Bmax) {
      const size = Math.min(Bmax, n - start);
      const uc = u.subarray(start * D, (start + size) * D);
      const xc = xz.subarray(start * C, (start + size) * C);
      mem.putRows(mem.f32(), uc, xc, size, mem.batchU, mem.batchX);
      this.passes.forward(size, mem.batchU, mem.batchX);
      for (const v of this.passes.rowNLL(size)) total += v;
    }
    return total / n + this.constant;
  }

  /**
   * Loss and gradients (per variable, in the variables' own shapes; masked entries 0) for tests;
   * with ctx, the plan's regularizer gradient (after its EMA) is added as a step would add it.
   */
  gradients(
    rows: ArrayLike<number>,
    vars: tf.Variable[],
    ctx?: FusedStepContext,
  ): { loss: number; grads: Float32Array[] } {
    const { loss } = this.lossAndGrads(rows, ctx);
    if (ctx) this.plan?.addGradients?.(this, rows.length, ctx);
    const mem = this.mem;
    const f32 = mem.f32();
    const grads = vars.map((v) => new Float32Array(v.size));
    for (const s of mem.slots) {
      mem.gather(f32, mem.grads, s, grads[vars.indexOf(s.variable)]!, false);
    }
    return { loss, grads };
  }

  dispose(): void {
    // The instance and its memory go with the last reference; nothing else is held.
  }
}
