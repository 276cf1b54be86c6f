// Sampling, density and attack gradients of an affine MAF on the fused kernels, for evaluation:
// the incremental sampler (one masked forward pass per transform instead of D tfjs passes), the
// density pass, and the attacks' input gradients. The rkl objective differentiates through the
// sampler with the back-substitution of the exact FIM regularizer (maf-fused-fim.ts), in base
// coordinates: for O = mean_m [log q(theta_m | x~) - log q(theta_m | x)], theta_m = T^-1(z_m; x~),
//   log q(theta_m | x~) = -|z_m|^2 / 2 - sum_k sum_i l_k,i - const   (z_m fixed)
// so the adjoint enters at theta as the clean density's gradient and at every log-scale as -1/M,
// and d O / d x~ = sum_k W_ctx,k^T a1hat_k. Rows are handled in chunks of the memory's capacity.
import type { FusedInference, RandomStream, ZScore } from '../types.js';
import type { MafKernels } from '../wasm/maf-kernels.js';
import { LOG_2PI } from './base.js';
import { FusedMafFim } from './maf-fused-fim.js';
import { pad, type FusedMafMemory } from './maf-fused-layout.js';
import { MafPasses } from './maf-fused-passes.js';

const f32 = Math.fround;

export class FusedMafInference implements FusedInference {
  private readonly passes: MafPasses;
  private readonly fim: FusedMafFim;
  private constant = 0;
  private thetaMean = new Float32Array(0);
  private thetaStd = new Float32Array(0);
  private xMean = new Float32Array(0);
  private xStd = new Float32Array(0);
  /** The kernels' memory as floats (it never grows after the layout is made). */
  private readonly buf: Float32Array;

  constructor(
    private readonly k: MafKernels,
    private readonly mem: FusedMafMemory,
    sMin: number,
    sMax: number,
  ) {
    this.passes = new MafPasses(k, mem, sMin, sMax);
    this.fim = new FusedMafFim(k, mem, sMin, sMax);
    this.buf = mem.f32();
  }

  /** The model's current weights and z-score (call before use: the model may have trained since). */
  reload(zscore: ZScore, thetaLogScale: number): void {
    this.constant = 0.5 * this.mem.D * LOG_2PI + thetaLogScale;
    this.thetaMean = Float32Array.from(zscore.thetaMean);
    this.thetaStd = Float32Array.from(zscore.thetaStd);
    this.xMean = Float32Array.from(zscore.xMean);
    this.xStd = Float32Array.from(zscore.xStd);
    this.mem.loadWeights();
  }

  /** Rows the memory holds at once. */
  private get capacity(): number {
    return this.mem.Bmax;
  }

  /** Raw x row `from` into padded row `to` of the buffer at `at`, z-scored as ZScoreTensors does. */
  private putX(x: Float32Array, from: number, at: number, to: number): void {
    const { C, Cp } = this.mem;
    const buf = this.buf;
    const o = at / 4 + to * Cp;
    for (let j = 0; j < C; j++)
      buf[o + j] = f32(f32(x[from * C + j]! - this.xMean[j]!) / this.xStd[j]!);
  }

  private putTheta(theta: Float32Array, from: number, at: number, to: number): void {
    const { D, Dn } = this.mem;
    const buf = this.buf;
    const o = at / 4 + to * Dn;
    for (let i = 0; i < D; i++)
      buf[o + i] = f32(f32(theta[from * D + i]! - this.thetaMean[i]!) / this.thetaStd[i]!);
  }

  sample(x: Float32Array, B: number, n: number, rng: RandomStream): Float32Array {
    const { D, Dn } = this.mem;
    const noise = new Float32Array(n * B * D);
    rng.fillNormal(noise);
    const out = new Float32Array(n * B * D);
    for (let start = 0; start < n * B; start += this.capacity) {
      const count = Math.min(this.capacity, n * B - start);
      this.putNoise(noise, (r) => start + r, count);
      for (let r = 0; r < count; r++) this.putX(x, (start + r) % B, this.mem.regX, r);
      this.fim.sample(count);
      const buf = this.buf;
      const u = this.mem.regU / 4;
      for (let r = 0; r < count; r++)
        for (let i = 0; i < D; i++)
          out[(start + r) * D + i] = f32(
            f32(buf[u + r * Dn + i]! * this.thetaStd[i]!) + this.thetaMean[i]!,
          );
    }
    return out;
  }

  logProb(theta: Float32Array, x: Float32Array, rows: number): Float64Array {
    const mem = this.mem;
    const out = new Float64Array(rows);
    for (let start = 0; start < rows; start += this.capacity) {
      const count = Math.min(this.capacity, rows - start);
      for (let r = 0; r < count; r++) {
        this.putTheta(theta, start + r, mem.batchU, r);
        this.putX(x, start + r, mem.batchX, r);
      }
      this.passes.forward(count, mem.batchU, mem.batchX);
      const nll = this.passes.rowNLL(count);
      for (let r = 0; r < count; r++) out[start + r] = -nll[r]! - this.constant;
    }
    return out;
  }

  objectiveGradient(
    objective: 'rkl' | 'fkl' | 'nll',
    xAdv: Float32Array,
    xClean: Float32Array,
    theta: Float32Array | null,
    B: number,
    rng: RandomStream,
    mcSamples: number,
  ): Float32Array {
    const { D, C, Cp } = this.mem;
    const M = objective === 'nll' ? 1 : mcSamples;
    // rkl draws from the attacked q, fkl from the clean one: [M * B, D] normals, as rsample / sample.
    let noise: Float32Array | null = null;
    if (objective !== 'nll') {
      noise = new Float32Array(M * B * D);
      rng.fillNormal(noise);
    } else if (!theta) throw new Error('The nll objective needs the true theta of each x.');
    const grad = new Float32Array(B * C);
    const per = Math.max(1, Math.floor(this.capacity / M));
    for (let b0 = 0; b0 < B; b0 += per) {
      const nb = Math.min(per, B - b0);
      const R = nb * M;
      // Chunk row m * nb + j is the call's row m * B + b0 + j.
      const callRow = (r: number): number => Math.floor(r / nb) * B + b0 + (r % nb);
      if (objective === 'nll') this.nllGradient(xAdv, theta!, b0, nb);
      else if (objective === 'fkl') this.fklGradient(xAdv, xClean, noise!, callRow, b0, nb, M);
      else this.rklGradient(xAdv, xClean, noise!, callRow, b0, nb, M);
      // mem.dX rows are d O / d x_z per chunk row: sum the samples of each x, to raw units.
      const dX = new Float32Array(this.k.memory.buffer, this.mem.dX, pad(R, 4) * Cp);
      for (let r = 0; r < R; r++) {
        const b = b0 + (r % nb);
        for (let j = 0; j < C; j++) grad[b * C + j] += dX[r * Cp + j]! / this.xStd[j]!;
      }
    }
    return grad;
  }

  /** d nll(theta_b, x~_b) / d x_z for rows b0 .. b0 + nb into mem.dX. */
  private nllGradient(xAdv: Float32Array, theta: Float32Array, b0: number, nb: number): void {
    const mem = this.mem;
    for (let j = 0; j < nb; j++) {
      this.putTheta(theta, b0 + j, mem.batchU, j);
      this.putX(xAdv, b0 + j, mem.batchX, j);
    }
    new Float32Array(this.k.memory.buffer, mem.coef, pad(nb, 4)).fill(1);
    this.passes.forward(nb, mem.batchU, mem.batchX);
    this.passes.backward(nb, mem.batchU, mem.batchX, { dx: mem.dX });
  }

  /** fkl: samples of the clean q, then (1 / M) d nll(theta_m, x~) / d x_z into mem.dX. */
  private fklGradient(
    xAdv: Float32Array,
    xClean: Float32Array,
    noise: Float32Array,
    callRow: (r: number) => number,
    b0: number,
    nb: number,
    M: number,
  ): void {
    const mem = this.mem;
    const R = nb * M;
    this.putNoise(noise, callRow, R);
    for (let r = 0; r < R; r++) this.putX(xClean, b0 + (r % nb), mem.regX, r);
    this.fim.sample(R);
    for (let r = 0; r < R; r++) this.putX(xAdv, b0 + (r % nb), mem.regX, r);
    new Float32Array(this.k.memory.buffer, mem.coef, pad(R, 4)).fill(1 / M);
    this.passes.forward(R, mem.regU, mem.regX);
    this.passes.backward(R, mem.regU, mem.regX, { dx: mem.dX });
  }

  /** Base noise rows into the last transform's output: row r is the noise's row noiseRow(r). */
  private putNoise(noise: Float32Array, noiseRow: (r: number) => number, R: number): void {
    const { D, Dn } = this.mem;
    const buf = this.buf;
    const base = this.mem.layouts[this.mem.layouts.length - 1]!.z / 4;
    for (let r = 0; r < R; r++) {
      const c = noiseRow(r);
      buf.set(noise.subarray(c * D, (c + 1) * D), base + r * Dn);
    }
  }

  /** rkl through the sampler at x~ (see the head of this file) into mem.dX. */
  private rklGradient(
    xAdv: Float32Array,
    xClean: Float32Array,
    noise: Float32Array,
    callRow: (r: number) => number,
    b0: number,
    nb: number,
    M: number,
  ): void {
    const { k, mem } = this;
    const fimBuf = mem.fim!;
    const R = nb * M;
    const Bp = pad(R, 4);
    this.putNoise(noise, callRow, R);
    for (let r = 0; r < R; r++) {
      this.putX(xAdv, b0 + (r % nb), mem.regX, r);
      this.putX(xClean, b0 + (r % nb), mem.batchX, r);
    }
    this.fim.sample(R);
    // The clean density's gradient at the samples, (1 / M) d nll(theta_m, x) / d theta: lam_0. Its
    // pass runs in buffers of its own, so the attacked pass that sampling left stays in place.
    new Float32Array(k.memory.buffer, mem.coef, Bp).fill(1 / M);
    const clean = mem.cleanLayouts!;
    this.passes.forward(R, mem.regU, mem.batchX, clean);
    this.passes.backward(R, mem.regU, mem.batchX, { du0: fimBuf.lam, layouts: clean });
    // d O / d l direct: -(1 / M) d nll(theta, x~) / d l, nll holding +l (robustsbi) or -l (pyro).
    new Float32Array(k.memory.buffer, fimBuf.rcot, Bp * mem.Dn).fill((mem.pyro ? 1 : -1) / M);
    let [lam, w] = [fimBuf.lam, fimBuf.w];
    mem.layouts.forEach((lay, t) => {
      k.madeBackSubst(mem.tiles[t]!, {
        lam,
        rcot: fimBuf.rcot,
        v: lay.z,
        e: lay.e,
        h1: lay.h[0]!,
        h2: lay.h[1]!,
        out: lay.out,
        w,
        chat: fimBuf.chat,
        a2hat: fimBuf.a2hat,
        a1hat: fimBuf.a1hat,
        n: R,
      });
      this.passes.addContextGradient(lay, fimBuf.a1hat, R, mem.dX, t > 0);
      // The input adjoint of this transform is the next one's lam.
      [lam, w] = [w, lam];
    });
  }

  dispose(): void {
    // The kernels' memory goes with the last reference.
  }
}
