// Small dense linear algebra on number[][] for the closed-form posteriors (dimensions ~10).

/** Lower-triangular L with L L^T = a; throws if a is not positive definite. */
export function cholesky(a: number[][]): number[][] {
  const n = a.length;
  const l = a.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i][j];
      for (let k = 0; k < j; k++) s -= l[i][k] * l[j][k];
      if (i === j) {
        if (!(s > 0)) throw new Error('cholesky: matrix is not positive definite');
        l[i][i] = Math.sqrt(s);
      } else {
        l[i][j] = s / l[j][j];
      }
    }
  }
  return l;
}

/** Inverse of a symmetric positive-definite matrix via its Cholesky factor. */
export function spdInverse(a: number[][]): number[][] {
  const n = a.length;
  const l = cholesky(a);
  const inv = a.map(() => new Array<number>(n).fill(0));
  const col = new Array<number>(n);
  for (let c = 0; c < n; c++) {
    // Solve L z = e_c, then L^T x = z.
    for (let i = 0; i < n; i++) {
      let s = i === c ? 1 : 0;
      for (let k = 0; k < i; k++) s -= l[i][k] * col[k];
      col[i] = s / l[i][i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = col[i];
      for (let k = i + 1; k < n; k++) s -= l[k][i] * col[k];
      col[i] = s / l[i][i];
    }
    for (let i = 0; i < n; i++) inv[i][c] = col[i];
  }
  // Symmetrize away rounding.
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const m = 0.5 * (inv[i][j] + inv[j][i]);
      inv[i][j] = m;
      inv[j][i] = m;
    }
  }
  return inv;
}

export function matVec(a: number[][], v: ArrayLike<number>): number[] {
  return a.map((row) => row.reduce((s, aij, j) => s + aij * v[j], 0));
}
