// The files the parity bench (bench/sbi-parity.ts) hands to sbi's side
// (bench/torch/sbi_npe_reference.py) and reads back: little-endian float32 matrices, row-major,
// and a meta.json saying their shapes and the task's prior. The Python script's docstring lists
// the same layout.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BoxUniformPrior, DiagGaussianPrior } from '../sbi/tasks/priors.js';
import type { Prior } from '../sbi/types.js';

export type PriorSpec =
  | { kind: 'box'; low: number[]; high: number[] }
  | { kind: 'gaussian'; mean: number[]; std: number[] };

/** The prior as the Python side rebuilds it (a BoxUniform or a diagonal MultivariateNormal). */
export function priorSpec(prior: Prior): PriorSpec {
  if (prior instanceof BoxUniformPrior)
    return { kind: 'box', low: [...prior.support.lower], high: [...prior.support.upper] };
  if (prior instanceof DiagGaussianPrior)
    return { kind: 'gaussian', mean: [...prior.mean], std: [...prior.std] };
  throw new Error('prior: only box-uniform and diagonal Gaussian priors can be handed to sbi');
}

/** Little-endian float32 bytes of `a`, whatever the host's byte order. */
export function encodeF32(a: Float32Array): Buffer {
  const b = Buffer.alloc(a.length * 4);
  for (let i = 0; i < a.length; i++) b.writeFloatLE(a[i]!, i * 4);
  return b;
}

/** The float32 values of little-endian bytes; `length` values exactly, or an error naming `what`. */
export function decodeF32(b: Uint8Array, length: number, what: string): Float32Array {
  if (b.byteLength !== length * 4)
    throw new Error(`${what}: ${b.byteLength} bytes, expected ${length} float32 values`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

export interface ExchangeMeta {
  thetaDim: number;
  xDim: number;
  n: number;
  observations: number;
  samples: number;
  seed: number;
  prior: PriorSpec;
  logQAtReference: boolean;
  /** Rows in heldout-theta.f32 / heldout-x.f32, scored by log q(theta | x); 0 or absent: none. */
  heldout?: number;
}

/**
 * Writes one cell's inputs for sbi: training rows, observations, for KL reference samples and, when
 * meta.heldout is set, the held-out rows to score.
 */
export function writeExchange(
  dir: string,
  meta: ExchangeMeta,
  theta: Float32Array,
  x: Float32Array,
  observations: Float32Array,
  references: readonly Float32Array[],
  heldout?: { theta: Float32Array; x: Float32Array },
): void {
  const check = (what: string, a: Float32Array, rows: number, cols: number): void => {
    if (a.length !== rows * cols)
      throw new Error(`${what}: ${a.length} values, not ${rows} x ${cols}`);
  };
  check('theta', theta, meta.n, meta.thetaDim);
  check('x', x, meta.n, meta.xDim);
  check('observations', observations, meta.observations, meta.xDim);
  const h = meta.heldout ?? 0;
  if (h > 0) {
    if (!heldout) throw new Error(`heldout: meta asks for ${h} rows and none were given`);
    check('heldout theta', heldout.theta, h, meta.thetaDim);
    check('heldout x', heldout.x, h, meta.xDim);
  }
  if (meta.logQAtReference && references.length !== meta.observations)
    throw new Error(`references: ${references.length} sets for ${meta.observations} observations`);
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
  writeFileSync(join(dir, 'theta.f32'), encodeF32(theta));
  writeFileSync(join(dir, 'x.f32'), encodeF32(x));
  writeFileSync(join(dir, 'obs.f32'), encodeF32(observations));
  if (h > 0) {
    writeFileSync(join(dir, 'heldout-theta.f32'), encodeF32(heldout!.theta));
    writeFileSync(join(dir, 'heldout-x.f32'), encodeF32(heldout!.x));
  }
  if (meta.logQAtReference)
    references.forEach((r, i) => {
      check(`reference ${i + 1}`, r, meta.samples, meta.thetaDim);
      writeFileSync(join(dir, `ref-${i + 1}.f32`), encodeF32(r));
    });
}

export interface SbiRun {
  sbiVersion: string;
  torchVersion: string;
  epochs: number;
  bestValLoss: number;
  trainCpuS: number;
  trainWallS: number;
  sampleCpuS: number;
  /** Per observation, the flow's mass inside the prior's support (absent from older runs). */
  acceptance?: number[];
}

/**
 * sbi's record of the run, per observation k = 1..K its samples and (if asked) log q, and log q of
 * the held-out rows (null without them).
 */
export function readSbiOutputs(
  dir: string,
  meta: ExchangeMeta,
): {
  run: SbiRun;
  samples: Float32Array[];
  logQ: (Float32Array | null)[];
  heldoutLogQ: Float32Array | null;
} {
  const run = JSON.parse(readFileSync(join(dir, 'sbi-result.json'), 'utf8')) as SbiRun;
  const samples: Float32Array[] = [];
  const logQ: (Float32Array | null)[] = [];
  for (let k = 1; k <= meta.observations; k++) {
    const f = `sbi-samples-${k}.f32`;
    samples.push(decodeF32(readFileSync(join(dir, f)), meta.samples * meta.thetaDim, f));
    const g = `sbi-logq-${k}.f32`;
    logQ.push(meta.logQAtReference ? decodeF32(readFileSync(join(dir, g)), meta.samples, g) : null);
  }
  const h = meta.heldout ?? 0;
  const hf = 'sbi-heldout-logq.f32';
  const heldoutLogQ = h > 0 ? decodeF32(readFileSync(join(dir, hf)), h, hf) : null;
  return { run, samples, logQ, heldoutLogQ };
}
