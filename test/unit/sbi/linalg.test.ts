import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cholesky,
  choleskySolve,
  forwardSubstitute,
  matVec,
  spdInverse,
} from '../../../sbi/tasks/linalg.js';

const A = [
  [4, 2, 0.6],
  [2, 5, -1],
  [0.6, -1, 3],
];

describe('Cholesky solves', () => {
  test('forwardSubstitute solves L z = v', () => {
    const l = cholesky(A);
    const v = [1, -2, 0.5];
    const z = forwardSubstitute(l, v);
    matVec(l, z).forEach((got, i) => assert.ok(Math.abs(got - v[i]!) < 1e-12, `${got} vs ${v[i]}`));
  });

  test('choleskySolve solves A x = v and spdInverse A is A^-1', () => {
    const l = cholesky(A);
    const v = [3, 0, -1];
    const x = choleskySolve(l, v);
    matVec(A, x).forEach((got, i) => assert.ok(Math.abs(got - v[i]!) < 1e-12, `${got} vs ${v[i]}`));
    const inv = spdInverse(A);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        const got = A[i]!.reduce((s, a, k) => s + a * inv[k]![j]!, 0);
        assert.ok(Math.abs(got - (i === j ? 1 : 0)) < 1e-12, `(A A^-1)[${i}][${j}] = ${got}`);
      }
  });
});
