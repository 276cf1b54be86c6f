// RABI's pyloric embedding net (research/pyloric.md section 4.1): x is neuron-major, one series per
// neuron; each series goes through its own sbi-style CNNEmbedding (Conv1d k=5 stride 1 zero-pad 1 ->
// ReLU -> MaxPool1d(3), three times, flatten channel-major, Linear -> ReLU -> Linear -> ReLU), the
// outputs are concatenated and an MLP (ReLU between layers, linear output) maps them to the context.
// Every op is differentiable at any order (conv1d-ops.ts: convolutions whose adjoints are
// convolutions, max pooling through a saved mask) and runs on the backend's conv kernel.
import { tf } from '../backend.js';
import { linear } from '../ops.js';
import { conv1dLayer, maxPool1dLayer } from './conv1d-ops.js';
import type { RandomStream } from '../types.js';
import { Mlp } from './mlp.js';
import { torchLinearUniform, type ParamStore } from './params.js';

export interface PyloricCnnOptions {
  /** Number of series x holds, neuron-major (pyloric: 3 neurons). */
  series: number;
  /** Output channels of each conv layer (sbi CNNEmbedding out_channels_per_layer). */
  channels: readonly number[];
  kernel: number;
  padding: number;
  pool: number;
  /** Hidden widths of each CNN's linear head (sbi num_linear_layers=2, num_linear_units=50). */
  linearUnits: readonly number[];
  /** Each CNN's output width (RABI cnn_output_dim). */
  cnnOutput: number;
  /** The MLP after the concatenation: widths after the input (RABI: 200, 100, 100). */
  mlp: readonly number[];
}

/** RABI's pyloric architecture (research/pyloric.md section 4.1). */
export const PYLORIC_CNN_DEFAULTS: PyloricCnnOptions = {
  series: 3,
  channels: [6, 9, 12],
  kernel: 5,
  padding: 1,
  pool: 3,
  linearUnits: [50],
  cnnOutput: 100,
  mlp: [200, 100, 100],
};

/** Length after a stride-1 conv: L + 2 pad - (k - 1). */
export function convLength(length: number, kernel: number, padding: number): number {
  return length + 2 * padding - kernel + 1;
}

/** Length after max pooling with stride = kernel, no padding, floor mode. */
export function poolLength(length: number, pool: number): number {
  return Math.floor(length / pool);
}

/**
 * Stride-1 1-D convolution of h [B, L, Cin] (length-major, channels last) with w [k * Cin, Cout]
 * (row j * Cin + c holds PyTorch's weight[:, c, j]) and bias [Cout], zero padding `padding`, then
 * ReLU when asked.
 */
export function conv1d(
  h: tf.Tensor3D,
  w: tf.Tensor2D,
  bias: tf.Tensor1D,
  kernel: number,
  padding: number,
  activation: 'relu' | 'linear' = 'relu',
): tf.Tensor3D {
  const [, length, cin] = h.shape;
  if (convLength(length, kernel, padding) < 1)
    throw new Error(`conv1d: length ${length} too short for kernel ${kernel}`);
  const filter = tf.reshape(w, [kernel, cin, w.shape[1]]) as tf.Tensor3D;
  return conv1dLayer(h, filter, bias, padding, activation);
}

/** MaxPool1d(pool), stride = pool, floor mode, over the length axis of h [B, L, C]. */
export function maxPool1d(h: tf.Tensor3D, pool: number): tf.Tensor3D {
  return maxPool1dLayer(h, pool);
}

/** One series' CNNEmbedding. */
class SeriesCnn {
  private readonly convW: tf.Variable[] = [];
  private readonly convB: tf.Variable[] = [];
  private readonly fcW: tf.Variable[] = [];
  private readonly fcB: tf.Variable[] = [];
  readonly flatLength: number;
  readonly flatChannels: number;

  constructor(
    store: ParamStore,
    prefix: string,
    length: number,
    private readonly o: PyloricCnnOptions,
    rng: RandomStream,
  ) {
    let cin = 1;
    let l = length;
    o.channels.forEach((cout, i) => {
      const fanIn = cin * o.kernel;
      this.convW.push(
        store.add(
          `${prefix}.conv${i + 1}.weight`,
          [fanIn, cout],
          torchLinearUniform(rng, fanIn, fanIn * cout),
        ),
      );
      this.convB.push(
        store.add(`${prefix}.conv${i + 1}.bias`, [cout], torchLinearUniform(rng, fanIn, cout)),
      );
      l = poolLength(convLength(l, o.kernel, o.padding), o.pool);
      if (l < 1)
        throw new Error(`pyloric-cnn: series of length ${length} too short for the conv stack`);
      cin = cout;
    });
    this.flatLength = l;
    this.flatChannels = cin;
    // Linear head (sbi FCEmbedding): flat -> linearUnits... -> cnnOutput, a ReLU after every layer,
    // the last included. Biases start at 0, as in Mlp.
    const sizes = [l * cin, ...o.linearUnits, o.cnnOutput];
    for (let k = 1; k < sizes.length; k++) {
      const fanIn = sizes[k - 1]!;
      const fanOut = sizes[k]!;
      this.fcW.push(
        store.add(
          `${prefix}.fc${k}.weight`,
          [fanIn, fanOut],
          torchLinearUniform(rng, fanIn, fanIn * fanOut),
        ),
      );
      this.fcB.push(store.add(`${prefix}.fc${k}.bias`, [fanOut]));
    }
  }

  /** series [B, L] -> [B, cnnOutput] (>= 0). */
  forward(series: tf.Tensor2D): tf.Tensor2D {
    const [b, length] = series.shape;
    let h = tf.reshape(series, [b, length, 1]) as tf.Tensor3D;
    for (let i = 0; i < this.convW.length; i++) {
      h = conv1d(
        h,
        this.convW[i] as tf.Tensor2D,
        this.convB[i] as tf.Tensor1D,
        this.o.kernel,
        this.o.padding,
      );
      h = maxPool1d(h, this.o.pool);
    }
    // Flatten channel-major (c * L + l), as PyTorch's view of [B, C, L].
    const flat = tf.reshape(tf.transpose(h, [0, 2, 1]), [b, this.flatChannels * this.flatLength]);
    let out = flat as tf.Tensor2D;
    for (let k = 0; k < this.fcW.length; k++)
      out = linear(out, this.fcW[k] as tf.Tensor2D, this.fcB[k] as tf.Tensor1D, 'relu');
    return out;
  }
}

export class PyloricCnn {
  private readonly cnns: SeriesCnn[] = [];
  private readonly mlp: Mlp;
  readonly seriesLength: number;
  readonly outputDim: number;

  constructor(
    store: ParamStore,
    prefix: string,
    xDim: number,
    rng: RandomStream,
    o: PyloricCnnOptions = PYLORIC_CNN_DEFAULTS,
  ) {
    if (xDim % o.series !== 0)
      throw new Error(`pyloric-cnn: x has ${xDim} values, not ${o.series} series of equal length`);
    this.seriesLength = xDim / o.series;
    for (let s = 0; s < o.series; s++)
      this.cnns.push(new SeriesCnn(store, `${prefix}.cnn${s}`, this.seriesLength, o, rng));
    this.mlp = new Mlp(store, `${prefix}.mlp`, [o.series * o.cnnOutput, ...o.mlp], rng);
    this.outputDim = o.mlp[o.mlp.length - 1]!;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    const b = x.shape[0];
    const outs = this.cnns.map((cnn, s) =>
      cnn.forward(tf.slice(x, [0, s * this.seriesLength], [b, this.seriesLength])),
    );
    return this.mlp.forward(tf.concat(outs, 1) as tf.Tensor2D);
  }
}
