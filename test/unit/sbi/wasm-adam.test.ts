import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MafKernels } from '../../../sbi/wasm/maf-kernels.js';
import { createRng } from '../../../sbi/rng.js';

describe("the fused kernels' Adam", () => {
  test('is torch.optim.Adam at float64 with float32 storage, to the bit, over 4k + 3 floats', () => {
    // The kernel works four floats at a time in float64 pairs with a scalar tail; the reference is
    // npe.ts' host update, written out. Float32 storage hides most float64 rounding, but a lane out
    // of place or a float32 intermediate shows in the bits at once.
    const n = 1027;
    const k = new MafKernels();
    const base = Math.ceil(k.heapBase() / 16) * 16;
    const stride = 4 * Math.ceil(n / 4) * 4;
    const [p, g, m, v] = [0, 1, 2, 3].map((i) => base + i * stride);
    const need = base + 4 * stride - k.memory.buffer.byteLength;
    if (need > 0) k.memory.grow(Math.ceil(need / 65536));
    const rng = createRng(5);
    const ref = { p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
    rng.fillNormal(ref.p);
    const f = new Float32Array(k.memory.buffer);
    f.set(ref.p, p! / 4);
    const [b1, b2, lr, eps, coef] = [0.9, 0.999, 5e-4, 1e-8, 0.37];
    for (let t = 1; t <= 30; t++) {
      const grad = new Float32Array(n);
      rng.fillNormal(grad);
      // Gradients over many decades, some exactly zero (masked weights).
      grad.forEach((x, i) => (grad[i] = i % 7 === 0 ? 0 : x * Math.exp(-12 * ((i * 0.618) % 1))));
      f.set(grad, g! / 4);
      const stepSize = lr / (1 - b1 ** t);
      const sqrtBc2 = Math.sqrt(1 - b2 ** t);
      k.adam({
        p: p!,
        g: g!,
        m: m!,
        v: v!,
        n,
        coef,
        beta1: b1,
        beta2: b2,
        stepSize,
        sqrtBc2,
        epsilon: eps,
      });
      for (let i = 0; i < n; i++) {
        const gi = grad[i]! * coef;
        const mi = b1 * ref.m[i]! + (1 - b1) * gi;
        const vi = b2 * ref.v[i]! + (1 - b2) * gi * gi;
        ref.m[i] = mi;
        ref.v[i] = vi;
        ref.p[i] = ref.p[i]! - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
      }
    }
    for (const [name, at] of [
      ['p', p!],
      ['m', m!],
      ['v', v!],
    ] as const) {
      const got = new Uint32Array(k.memory.buffer, at, n);
      const want = new Uint32Array(ref[name].buffer);
      const first = got.findIndex((x, i) => x !== want[i]);
      assert.equal(first, -1, `${name}[${first}] differs`);
    }
  });
});
