import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend, tf, tidyData } from '../../../sbi/backend.js';

before(async () => {
  await initBackend('cpu');
});

test('tidyData hands back what its body read out and disposes the tensors the body made', () => {
  const before = tf.memory().numTensors;
  const values = tidyData(() => tf.mul(tf.tensor1d([1, 2, 3]), 2).dataSync() as Float32Array);
  assert.deepEqual(Array.from(values), [2, 4, 6]);
  assert.equal(tf.memory().numTensors, before);
  // Several results, and a body that throws leaves nothing behind either.
  const [a, b] = tidyData(() => [tf.scalar(5).dataSync()[0], tf.ones([2]).dataSync().length]);
  assert.deepEqual([a, b], [5, 2]);
  assert.throws(
    () =>
      tidyData(() => {
        tf.zeros([4]);
        throw new Error('body failed');
      }),
    /body failed/,
  );
  assert.equal(tf.memory().numTensors, before);
});
