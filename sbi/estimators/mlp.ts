// A plain ReLU MLP from z-scored x to a head's raw outputs (the Gaussian and mixture estimators).
import { tf } from '../backend.js';
import { linear } from '../ops.js';
import type { RandomStream } from '../types.js';
import { torchLinearUniform, type ParamStore } from './params.js';

export class Mlp {
  private readonly weights: tf.Variable[] = [];
  private readonly biases: tf.Variable[] = [];

  /** sizes: [input, ...hidden, output]; ReLU after every layer but the last. */
  constructor(store: ParamStore, prefix: string, sizes: number[], rng: RandomStream) {
    if (sizes.length < 2) throw new Error('MLP needs an input and an output size');
    for (let l = 1; l < sizes.length; l++) {
      const fanIn = sizes[l - 1]!;
      const fanOut = sizes[l]!;
      const init = torchLinearUniform(rng, fanIn, fanIn * fanOut);
      this.weights.push(store.add(`${prefix}.l${l}.weight`, [fanIn, fanOut], init));
      this.biases.push(store.add(`${prefix}.l${l}.bias`, [fanOut]));
    }
  }

  forward(input: tf.Tensor2D): tf.Tensor2D {
    let h = input;
    const L = this.weights.length;
    for (let l = 0; l < L; l++) {
      // Fused matMul + bias (+ ReLU): ops.linear, exact at second order and fast to differentiate on wasm.
      h = linear(
        h,
        this.weights[l] as tf.Tensor2D,
        this.biases[l] as tf.Tensor1D,
        l < L - 1 ? 'relu' : 'linear',
      );
    }
    return h;
  }
}
