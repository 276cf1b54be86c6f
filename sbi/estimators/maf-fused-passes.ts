// The density passes of the fused MAF kernels over rows of a FusedMafMemory: the forward pass
// (theta -> z through every MADE and affine transform) and its backward pass, for the training step
// (maf-fused.ts), the exact FIM regularizer (maf-fused-fim.ts) and inference (maf-fused-inference.ts).
import type { GemmArgs, MafKernels } from '../wasm/maf-kernels.js';
import {
  pad,
  type FimMadeBuffers,
  type FusedMafMemory,
  type MadeLayout,
} from './maf-fused-layout.js';

export class MafPasses {
  constructor(
    private readonly k: MafKernels,
    private readonly mem: FusedMafMemory,
    private readonly sMin: number,
    private readonly sMax: number,
  ) {}

  /** The flow's forward pass over rows [0, n) of uIn / xIn (n <= Bmax): z, e, logDet. */
  forward(n: number, uIn: number, xIn: number, layouts: MadeLayout[] = this.mem.layouts): void {
    const { k, mem } = this;
    const { D, C, Dn, Cp, Op, H, Hp } = mem;
    const L = H.length;
    const Bp = pad(n, 4);
    let u = uIn;
    layouts.forEach((t, ti) => {
      const [H0, h0] = [Hp[0]!, t.h[0]!];
      // The first layer's bias and activation go with its last product: x's, or with nflows'
      // context layer (h0 = act(u W_theta + b + tanh(x W_ctx + ctxBias))) theta's.
      const last = { bias: mem.p(t.inBias), accumulate: true, relu: !mem.tanh };
      const thetaProduct = (o: Partial<GemmArgs>): void =>
        k.gemm({
          a: u,
          rowStrideA: Dn,
          colStrideA: 1,
          b: mem.p(t.thetaW),
          ldb: H0,
          c: h0,
          ...o,
          ldc: H0,
          M: Bp,
          K: D,
          N: H0,
        });
      const xProduct = (c: number, o: Partial<GemmArgs>): void =>
        k.gemm({
          a: xIn,
          rowStrideA: Cp,
          colStrideA: 1,
          b: mem.p(t.ctxW),
          ldb: H0,
          c,
          ...o,
          ldc: H0,
          M: Bp,
          K: C,
          N: H0,
        });
      if (t.ctxBias) {
        xProduct(t.ctxH, { bias: mem.p(t.ctxBias) });
        k.tanh(t.ctxH, Bp * H0);
        k.axpby(t.ctxH, 1, t.ctxH, 0, h0, Bp * H0);
        thetaProduct(last);
      } else {
        thetaProduct({});
        xProduct(h0, last);
      }
      if (mem.tanh) k.tanh(h0, Bp * H0);
      for (let l = 1; l < L; l++) {
        const [prev, cur] = [Hp[l - 1]!, Hp[l]!];
        k.gemm({
          a: t.h[l - 1]!,
          rowStrideA: prev,
          colStrideA: 1,
          b: mem.p(t.hiddenW[l - 1]!),
          ldb: cur,
          c: t.h[l]!,
          ldc: cur,
          M: Bp,
          K: H[l - 1]!,
          N: cur,
          bias: mem.p(t.hiddenB[l - 1]!),
          relu: !mem.tanh,
          kTo: mem.tables[l - 1]!.fwdKTo,
        });
        if (mem.tanh) k.tanh(t.h[l]!, Bp * cur);
      }
      const HL = Hp[L - 1]!;
      k.gemm({
        a: t.h[L - 1]!,
        rowStrideA: HL,
        colStrideA: 1,
        b: mem.p(t.outW),
        ldb: Op,
        c: t.out,
        ldc: Op,
        M: Bp,
        K: H[L - 1]!,
        N: Op,
        bias: mem.p(t.outB),
      });
      k.affineForward({
        u,
        ldu: Dn,
        out: t.out,
        ldo: Op,
        z: t.z,
        e: t.e,
        n,
        D,
        sMin: this.sMin,
        sMax: this.sMax,
        pyro: mem.pyro,
        nflows: mem.nflows,
        passGrad: mem.passGrad,
        logDet: mem.logDet,
        accumulate: ti > 0,
      });
      u = t.z;
    });
  }

  /** The hidden units' backward from their outputs h: ReLU's mask or tanh's 1 - h^2. */
  private activationBackward(d: number, h: number, n: number): void {
    if (this.mem.tanh) this.k.tanhBackward(d, h, n);
    else this.k.reluBackward(d, h, n);
  }

  /** rowNLL of the last forward pass's n rows: 0.5 |z|^2 - logDet, float64. */
  rowNLL(n: number, layouts: MadeLayout[] = this.mem.layouts): Float64Array {
    const mem = this.mem;
    const last = layouts[layouts.length - 1]!;
    this.k.rowNLL(last.z, mem.Dn, mem.logDet, n, mem.D, mem.rowOut);
    return new Float64Array(this.k.memory.buffer, mem.rowOut, n);
  }

  /**
   * Backward of the last forward pass (inputs uIn / xIn, n rows) for the loss sum_r coef_r nll_r
   * (coef: n floats at mem.coef): weight gradients written at o.gradBase and masked, returning
   * their squared norm; without gradBase no weight gradient is formed (0 is returned). o.dx
   * receives the gradient with respect to the conditioner input ([n, Cp]) and o.du0 the one with
   * respect to the flow's input (z-scored theta, [n, Dn]). With o.adjoints (two hidden layers),
   * every transform's adjoints are written to its own buffers and kept (the exact FIM's pass B)
   * instead of the shared scratch.
   */
  backward(
    n: number,
    uIn: number,
    xIn: number,
    o: {
      gradBase?: number;
      dx?: number;
      du0?: number;
      layouts?: MadeLayout[];
      adjoints?: FimMadeBuffers[];
    } = {},
  ): number {
    const { k, mem } = this;
    const { D, Dn, Cp, Op, H, Hp } = mem;
    const { gradBase = 0, dx = 0, du0 = 0, layouts = mem.layouts, adjoints } = o;
    const L = H.length;
    const Bp = pad(n, 4);
    const weights = gradBase !== 0;
    const g = (s: (typeof mem.slots)[number]): number => gradBase + s.offset;
    const last = layouts[layouts.length - 1]!;
    // dz is dL/d(this transform's output), du the gradient of its input: with kept adjoints each
    // transform's own vbar, else two scratch buffers that swap.
    let dz = adjoints ? adjoints[layouts.length - 1]!.vbar : mem.dz;
    let du = mem.du;
    k.seedDz({ z: last.z, ldz: Dn, coef: mem.coef, n, nPad: Bp, D, dz });
    for (let ti = layouts.length - 1; ti >= 0; ti--) {
      const t = layouts[ti]!;
      const kept = adjoints?.[ti];
      if (adjoints && ti > 0) du = adjoints[ti - 1]!.vbar;
      const dOut = kept ? kept.obar : mem.dOut;
      const dH = kept ? [kept.a1bar, kept.a2bar] : mem.dH;
      const u = ti > 0 ? layouts[ti - 1]!.z : uIn;
      k.affineBackward({
        ldu: Dn,
        out: t.out,
        ldo: Op,
        z: t.z,
        e: t.e,
        dz,
        du: ti > 0 ? du : du0,
        dOut,
        n,
        nPad: Bp,
        D,
        sMin: this.sMin,
        sMax: this.sMax,
        pyro: mem.pyro,
        nflows: mem.nflows,
        passGrad: mem.passGrad,
        coef: mem.coef,
      });
      const HL = Hp[L - 1]!;
      const hl = t.h[L - 1]!;
      if (weights) {
        k.gemm({
          a: hl,
          rowStrideA: 1,
          colStrideA: HL,
          b: dOut,
          ldb: Op,
          c: g(t.outW),
          ldc: Op,
          M: HL,
          K: n,
          N: Op,
        });
        k.colSum(dOut, Op, n, Op, g(t.outB));
      }
      k.transpose(mem.p(t.outW), Op, HL, Op, mem.wT, HL);
      k.gemm({
        a: dOut,
        rowStrideA: Op,
        colStrideA: 1,
        b: mem.wT,
        ldb: HL,
        c: dH[L - 1]!,
        ldc: HL,
        M: Bp,
        K: 2 * D,
        N: HL,
      });
      this.activationBackward(dH[L - 1]!, hl, Bp * HL);
      for (let l = L - 1; l >= 1; l--) {
        const w = t.hiddenW[l - 1]!;
        const tb = mem.tables[l - 1]!;
        const [prev, cur] = [Hp[l - 1]!, Hp[l]!];
        const dA = dH[l]!;
        if (weights) {
          k.gemm({
            a: t.h[l - 1]!,
            rowStrideA: 1,
            colStrideA: prev,
            b: dA,
            ldb: cur,
            c: g(w),
            ldc: cur,
            M: prev,
            K: n,
            N: cur,
            jFrom: tb.gradJFrom,
          });
          k.colSum(dA, cur, n, cur, g(t.hiddenB[l - 1]!));
        }
        k.transpose(mem.p(w), cur, prev, cur, mem.wT, prev);
        const dPrev = dH[l - 1]!;
        k.gemm({
          a: dA,
          rowStrideA: cur,
          colStrideA: 1,
          b: mem.wT,
          ldb: prev,
          c: dPrev,
          ldc: prev,
          M: Bp,
          K: H[l]!,
          N: prev,
          kFrom: tb.bwdKFrom,
        });
        this.activationBackward(dPrev, t.h[l - 1]!, Bp * prev);
      }
      const H0 = Hp[0]!;
      // The context weights' adjoint: the first layer's, through the context layer's tanh if any.
      const dC = t.ctxBias ? mem.dCtx : dH[0]!;
      if (t.ctxBias) {
        k.axpby(dH[0]!, 1, dH[0]!, 0, dC, Bp * H0);
        k.tanhBackward(dC, t.ctxH, Bp * H0);
      }
      const dA = dH[0]!;
      if (weights) {
        k.gemm({
          a: u,
          rowStrideA: 1,
          colStrideA: Dn,
          b: dA,
          ldb: H0,
          c: g(t.thetaW),
          ldc: H0,
          // Rows past D (C below) are padding, masked to 0: a multiple of 4 covers the rest.
          M: pad(D, 4),
          K: n,
          N: H0,
        });
        k.gemm({
          a: xIn,
          rowStrideA: 1,
          colStrideA: Cp,
          b: dC,
          ldb: H0,
          c: g(t.ctxW),
          ldc: H0,
          M: pad(mem.C, 4),
          K: n,
          N: H0,
        });
        k.colSum(dA, H0, n, H0, g(t.inBias));
        if (t.ctxBias) k.colSum(dC, H0, n, H0, g(t.ctxBias));
      }
      // dx (+)= dC W_ctx^T: every transform sees the same x; the last one processed writes first.
      if (dx) this.addContextGradient(t, dC, n, dx, ti !== layouts.length - 1);
      if (ti > 0 || du0) {
        // du = dz e (written above) + dA W_theta^T: the gradient with respect to this transform's input.
        k.transpose(mem.p(t.thetaW), H0, Dn, H0, mem.wT, Dn);
        k.gemm({
          a: dA,
          rowStrideA: H0,
          colStrideA: 1,
          b: mem.wT,
          ldb: Dn,
          c: ti > 0 ? du : du0,
          ldc: Dn,
          M: Bp,
          K: H[0]!,
          N: Dn,
          accumulate: true,
        });
        [dz, du] = [du, dz];
      }
    }
    return weights ? k.maskAndNormSq(gradBase, mem.mask, mem.total) : 0;
  }

  /** dx (+)= a1 W_ctx^T for transform t: the conditioner input's gradient from first-layer adjoints a1. */
  addContextGradient(t: MadeLayout, a1: number, n: number, dx: number, accumulate: boolean): void {
    const { k, mem } = this;
    const H0 = mem.Hp[0]!;
    k.transpose(mem.p(t.ctxW), H0, mem.Cp, H0, mem.wT, mem.Cp);
    k.gemm({
      a: a1,
      rowStrideA: H0,
      colStrideA: 1,
      b: mem.wT,
      ldb: mem.Cp,
      c: dx,
      ldc: mem.Cp,
      M: pad(n, 4),
      K: mem.H[0]!,
      N: mem.Cp,
      accumulate,
    });
  }
}
