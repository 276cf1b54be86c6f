// The wasm Identity / same-dtype Cast that share buffers (sbi/wasm-kernels.ts): values, lifetimes
// under dispose and Variable.assign, memory accounting, and gradients through saved tensors.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { exp } from '../../../sbi/ops.js';

before(async () => {
  await initBackend('wasm');
});

describe('wasm Identity and Cast share buffers safely', () => {
  test('the installed kernels alias: a clone adds no data buffer, a float32 cast neither', () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const buffers = (): number => tf.memory().numDataBuffers;
    const before = buffers();
    const c = tf.clone(x);
    const k = tf.cast(x, 'float32');
    assert.equal(buffers(), before, 'clone/cast allocated a new buffer');
    assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3, 4]);
    assert.deepEqual(Array.from(k.dataSync()), [1, 2, 3, 4]);
    // Disposing the original leaves the aliases readable; the buffer goes with the last one.
    x.dispose();
    assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3, 4]);
    c.dispose();
    assert.deepEqual(Array.from(k.dataSync()), [1, 2, 3, 4]);
    assert.equal(buffers(), before);
    k.dispose();
    assert.equal(buffers(), before - 1);
  });

  test('a cast to another dtype and string tensors still copy', () => {
    const x = tf.tensor1d([1.7, -2.2]);
    const i = tf.cast(x, 'int32');
    assert.equal(i.dtype, 'int32');
    assert.deepEqual(Array.from(i.dataSync()), [1, -2]);
    const s = tf.tensor1d(['a', 'b'], 'string');
    const sc = tf.clone(s);
    s.dispose();
    assert.deepEqual(sc.arraySync(), ['a', 'b']);
    tf.dispose([x, i, sc]);
  });

  test('assigning a Variable does not change a clone taken before', () => {
    const v = tf.variable(tf.tensor1d([5, 6]));
    const c = tf.clone(v);
    v.assign(tf.tensor1d([7, 8]));
    assert.deepEqual(Array.from(c.dataSync()), [5, 6]);
    assert.deepEqual(Array.from(v.dataSync()), [7, 8]);
    tf.dispose([v, c]);
  });

  test('gradients through saved tensors are right and nothing leaks', () => {
    const n0 = tf.memory().numTensors;
    const b0 = tf.memory().numDataBuffers;
    const x = tf.tensor1d([0.5, -1, 2]);
    // d/dx sum(exp(x) * x) = exp(x) (1 + x); second derivative exp(x) (2 + x).
    const f = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(exp(t), t));
    const g = tf.grad(f)(x);
    const h = tf.grad((t: tf.Tensor) => tf.grad(f)(t))(x);
    const xs = [0.5, -1, 2];
    Array.from(g.dataSync()).forEach((v, i) =>
      assert.ok(Math.abs(v - Math.exp(xs[i]!) * (1 + xs[i]!)) < 1e-5, `grad ${i}`),
    );
    Array.from(h.dataSync()).forEach((v, i) =>
      assert.ok(Math.abs(v - Math.exp(xs[i]!) * (2 + xs[i]!)) < 1e-4, `second ${i}`),
    );
    tf.dispose([x, g, h]);
    assert.equal(tf.memory().numTensors, n0);
    assert.equal(tf.memory().numDataBuffers, b0);
  });
});
