// The exact FIM-trace regularizer of fim-trace.ts (RABI's estimator) as passes of the fused MAF
// kernels, computing to float rounding what tfjs' double backprop through the sampler computes, for
// the same draws, at about the floor in multiply-adds (../shared/research/fast-fim.md):
//   A  sample: invert each transform incrementally (madeInvert), one masked forward pass per MADE,
//      which leaves the density pass at the sample in place;
//   B  the score t = d nll / d x_z at fixed theta (a plain backward pass), its adjoints kept;
//   C  the tangent of that pass in the direction xdot = 2 w_r t / xStd^2 (w_r: the row's weight in
//      beta * mean_b mean_m |t_raw|^2), so that G = xdot . t has grad_phi G = the regularizer's;
//   D  the adjoint of G's primal values, through the sampler: per MADE one back-substitution
//      (madeBackSubst) that also carries the density's second-order adjoint;
//   E  the weight gradient: for every layer, (primal input)^T (D's adjoint) + (tangent input)^T (B's).
// Everything is written for nll = -log q: its adjoints are the score's up to sign, and G's
// gradient is the same. Rows are the probe rows, sample-major: row m * count + b belongs to x_b.
import type { MafKernels, MadeTiles } from '../wasm/maf-kernels.js';
import { pad, type FimBuffers, type FusedMafMemory } from './maf-fused-layout.js';
import { MafPasses } from './maf-fused-passes.js';

export class FusedMafFim {
  private readonly fim: FimBuffers;
  private readonly passes: MafPasses;

  constructor(
    private readonly k: MafKernels,
    private readonly mem: FusedMafMemory,
    private readonly sMin: number,
    private readonly sMax: number,
  ) {
    if (!mem.fim) throw new Error('FusedMafFim: the memory holds no exact-FIM buffers.');
    this.fim = mem.fim;
    this.passes = new MafPasses(k, mem, sMin, sMax);
  }

  private get L(): number {
    return this.mem.layouts.length;
  }

  /** The input rows of transform t: the sample (regU) for the first, else the previous output. */
  private input(t: number): number {
    return t > 0 ? this.mem.layouts[t - 1]!.z : this.mem.regU;
  }

  /**
   * Pass A: theta rows (z-scored, into regU) from base noise rows (in the last transform's z) and
   * the conditioner rows in regX; every transform's buffers then hold the density pass at theta.
   */
  sample(n: number): void {
    const { k, mem } = this;
    const H0 = mem.Hp[0]!;
    for (let t = this.L - 1; t >= 0; t--) {
      const lay = mem.layouts[t]!;
      k.gemm({
        a: mem.regX,
        rowStrideA: mem.Cp,
        colStrideA: 1,
        b: mem.p(lay.ctxW),
        ldb: H0,
        c: lay.h[0]!,
        ldc: H0,
        M: pad(n, 4),
        K: mem.C,
        N: H0,
        bias: mem.p(lay.inBias),
      });
      k.madeInvert(this.tile(t), {
        z: lay.z,
        y: this.input(t),
        e: lay.e,
        h1: lay.h[0]!,
        h2: lay.h[1]!,
        out: lay.out,
        logDet: mem.logDet,
        accumulate: t < this.L - 1,
        n,
      });
    }
  }

  private tile(t: number): MadeTiles {
    return this.mem.tiles[t]!;
  }

  /**
   * Pass B: the adjoints of sum_r nll_r at the rows pass A left, kept per MADE, and t = d nll / d x_z
   * into mem.dX ([n, Cp]).
   */
  scoreBackward(n: number): void {
    const { k, mem } = this;
    new Float32Array(k.memory.buffer, mem.coef, pad(n, 4)).fill(1);
    this.passes.backward(n, mem.regU, mem.regX, { dx: mem.dX, adjoints: this.fim.mades });
  }

  /** The tangent direction's rows, [n, Cp], for the caller to fill after scoreBackward. */
  xdotRows(n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, this.fim.xdot, pad(n, 4) * this.mem.Cp);
  }

  /**
   * Makes row r add nothing to passes C to E (a dropped x): its adjoints, tangent direction and
   * primal activations are zeroed and exp(-l) set to 1, so no 0 * Infinity can reach the sums.
   */
  clearRow(r: number): void {
    const mem = this.mem;
    const f32 = mem.f32();
    const zero = (at: number, ld: number): void => {
      f32.fill(0, at / 4 + r * ld, at / 4 + (r + 1) * ld);
    };
    const { Dn, Cp, Op, Hp } = mem;
    zero(this.fim.xdot, Cp);
    zero(mem.regX, Cp);
    zero(mem.regU, Dn);
    mem.layouts.forEach((lay, t) => {
      const f = this.fim.mades[t]!;
      for (const [at, ld] of [
        [f.vbar, Dn],
        [f.obar, Op],
        [f.a2bar, Hp[1]!],
        [f.a1bar, Hp[0]!],
        [lay.h[0]!, Hp[0]!],
        [lay.h[1]!, Hp[1]!],
        [lay.out, Op],
        [lay.z, Dn],
      ] as const)
        zero(at, ld);
      f32.fill(1, lay.e / 4 + r * Dn, lay.e / 4 + (r + 1) * Dn);
    });
  }

  /** Pass C: the tangents of every transform in the direction xdot (theta held fixed). */
  tangent(n: number): void {
    const { k, mem } = this;
    const { D, Dn, Cp, Op, H, Hp } = mem;
    const Bp = pad(n, 4);
    const [H0, H1] = [Hp[0]!, Hp[1]!];
    mem.layouts.forEach((lay, t) => {
      const f = this.fim.mades[t]!;
      if (t > 0)
        k.gemm({
          a: f.ydot,
          rowStrideA: Dn,
          colStrideA: 1,
          b: mem.p(lay.thetaW),
          ldb: H0,
          c: f.h1dot,
          ldc: H0,
          M: Bp,
          K: D,
          N: H0,
        });
      k.gemm({
        a: this.fim.xdot,
        rowStrideA: Cp,
        colStrideA: 1,
        b: mem.p(lay.ctxW),
        ldb: H0,
        c: f.h1dot,
        ldc: H0,
        M: Bp,
        K: mem.C,
        N: H0,
        accumulate: t > 0,
      });
      k.reluBackward(f.h1dot, lay.h[0]!, Bp * H0);
      k.gemm({
        a: f.h1dot,
        rowStrideA: H0,
        colStrideA: 1,
        b: mem.p(lay.hiddenW[0]!),
        ldb: H1,
        c: f.h2dot,
        ldc: H1,
        M: Bp,
        K: H[0]!,
        N: H1,
        kTo: mem.tables[0]!.fwdKTo,
      });
      k.reluBackward(f.h2dot, lay.h[1]!, Bp * H1);
      k.gemm({
        a: f.h2dot,
        rowStrideA: H1,
        colStrideA: 1,
        b: mem.p(lay.outW),
        ldb: Op,
        c: this.fim.odot,
        ldc: Op,
        M: Bp,
        K: H[1]!,
        N: Op,
      });
      const next = t + 1 < this.L ? this.fim.mades[t + 1]!.ydot : this.fim.vdot;
      k.affineTangent({
        ydot: t > 0 ? f.ydot : 0,
        odot: this.fim.odot,
        out: lay.out,
        e: lay.e,
        v: lay.z,
        ldot: f.ldot,
        p: f.p,
        vdot: next,
        n,
        D,
        ldD: Dn,
        ldO: Op,
        sMin: this.sMin,
        sMax: this.sMax,
        pyro: mem.pyro,
        passGrad: mem.passGrad,
      });
    });
  }

  /**
   * Passes D and E: grad_phi of sum_r G_r through the sampler, written (not added) at gradBase in
   * the parameters' layout, unmasked. n = M count rows, sample-major over the batch's first count
   * rows (their conditioner input in batchX).
   */
  secondOrder(n: number, count: number, gradBase: number): void {
    const { k, mem } = this;
    const { Dn, Cp, Op, Hp } = mem;
    const fim = this.fim;
    const Bp = pad(n, 4);
    const [H0, H1] = [Hp[0]!, Hp[1]!];
    const g = (s: (typeof mem.slots)[number]): number => gradBase + s.offset;
    const size = Bp * Dn;
    new Float32Array(k.memory.buffer, fim.lam, size).fill(0);
    mem.layouts.forEach((lay, t) => {
      const f = fim.mades[t]!;
      // G's direct dependence on the primal values of this transform's tangent map: robustsbi's
      // vdot = p - v ldot with p = (ydot - mudot) e; pyro's vdot = p + (v - mu) ldot + mudot with
      // p = ydot e. So on l: -/+ vbar p, on mu (pyro): -vbar ldot, on the output v (the next
      // transform's input): -/+ vbar ldot.
      const sign = mem.pyro ? 1 : -1;
      if (t > 0) {
        // lam = w_{t-1} + sign vbar_{t-1} ldot_{t-1}: the previous transform's input adjoint through
        // the sampler, plus G's direct dependence on its output (this transform's input).
        const prev = fim.mades[t - 1]!;
        k.mulScaled(prev.vbar, prev.ldot, sign, fim.lam, size);
        k.axpby(fim.w, 1, fim.lam, 1, fim.lam, size);
      }
      k.mulScaled(f.vbar, f.p, sign, fim.rcot, size);
      if (mem.pyro) k.mulScaled(f.vbar, f.ldot, -1, fim.mcot, size);
      k.madeBackSubst(this.tile(t), {
        lam: fim.lam,
        rcot: fim.rcot,
        v: lay.z,
        e: lay.e,
        h1: lay.h[0]!,
        h2: lay.h[1]!,
        out: lay.out,
        w: fim.w,
        chat: fim.chat,
        a2hat: fim.a2hat,
        a1hat: fim.a1hat,
        n,
        ...(mem.pyro ? { mcot: fim.mcot } : {}),
      });
      // (primal input)^T (total adjoint) + (tangent input)^T (first-order adjoint), layer by layer.
      const outer = (
        pairs: [input: number, ld: number, adjoint: number][],
        M: number,
        N: number,
        c: number,
        jFrom?: number,
      ): void =>
        pairs.forEach(([a, ld, b], i) =>
          k.gemm({
            a,
            rowStrideA: 1,
            colStrideA: ld,
            b,
            ldb: N,
            c,
            ldc: N,
            M,
            K: n,
            N,
            accumulate: i > 0,
            ...(jFrom !== undefined ? { jFrom } : {}),
          }),
        );
      outer(
        [
          [lay.h[1]!, H1, fim.chat],
          [f.h2dot, H1, f.obar],
        ],
        H1,
        Op,
        g(lay.outW),
      );
      k.colSum(fim.chat, Op, n, Op, g(lay.outB));
      outer(
        [
          [lay.h[0]!, H0, fim.a2hat],
          [f.h1dot, H0, f.a2bar],
        ],
        H0,
        H1,
        g(lay.hiddenW[0]!),
        mem.tables[0]!.gradJFrom,
      );
      k.colSum(fim.a2hat, H1, n, H1, g(lay.hiddenB[0]!));
      // Rows past D and C are padding, masked to 0: a multiple of 4 covers the rest.
      outer(
        t > 0
          ? [
              [this.input(t), Dn, fim.a1hat],
              [f.ydot, Dn, f.a1bar],
            ]
          : [[this.input(t), Dn, fim.a1hat]],
        pad(mem.D, 4),
        H0,
        g(lay.thetaW),
      );
      k.colSum(fim.a1hat, H0, n, H0, g(lay.inBias));
      // The M sample rows of an x share it: sum their adjoints first (into a2hat, spent by now),
      // then one product over the x rows.
      const perSample = count * H0;
      const samples = n / count;
      for (let m = 1; m < samples; m++)
        k.axpby(
          m > 1 ? fim.a2hat : fim.a1hat,
          1,
          fim.a1hat + 4 * m * perSample,
          1,
          fim.a2hat,
          perSample,
        );
      const xRows = samples > 1 ? fim.a2hat : fim.a1hat;
      k.gemm({
        a: mem.batchX,
        rowStrideA: 1,
        colStrideA: Cp,
        b: xRows,
        ldb: H0,
        c: g(lay.ctxW),
        ldc: H0,
        M: pad(mem.C, 4),
        K: count,
        N: H0,
      });
      k.gemm({
        a: fim.xdot,
        rowStrideA: 1,
        colStrideA: Cp,
        b: f.a1bar,
        ldb: H0,
        c: g(lay.ctxW),
        ldc: H0,
        M: pad(mem.C, 4),
        K: n,
        N: H0,
        accumulate: true,
      });
    });
  }
}
