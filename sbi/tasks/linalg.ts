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

/** z with L z = v, for lower-triangular L. */
export function forwardSubstitute(l: number[][], v: ArrayLike<number>): number[] {
  const n = l.length;
  const z = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = v[i];
    for (let k = 0; k < i; k++) s -= l[i][k] * z[k];
    z[i] = s / l[i][i];
  }
  return z;
}

/** x with L L^T x = v, given the Cholesky factor L. */
export function choleskySolve(l: number[][], v: ArrayLike<number>): number[] {
  const x = forwardSubstitute(l, v);
  for (let i = l.length - 1; i >= 0; i--) {
    let s = x[i];
    for (let k = i + 1; k < l.length; k++) s -= l[k][i] * x[k];
    x[i] = s / l[i][i];
  }
  return x;
}

/** Inverse of a symmetric positive-definite matrix via its Cholesky factor. */
export function spdInverse(a: number[][]): number[][] {
  const n = a.length;
  const l = cholesky(a);
  const inv = a.map(() => new Array<number>(n).fill(0));
  for (let c = 0; c < n; c++) {
    const col = choleskySolve(
      l,
      a.map((_, i) => (i === c ? 1 : 0)),
    );
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

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: eigenvalues in descending
 * order and the matching unit eigenvectors as the columns of `vectors`.
 */
export function symmetricEigen(a: number[][]): { values: number[]; vectors: number[][] } {
  const n = a.length;
  const m = a.map((row) => [...row]);
  const v = a.map((_, i) => a.map((__, j): number => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p][q] * m[p][q];
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (m[p][q] === 0) continue;
        // The rotation that zeroes m[p][q] (Golub and Van Loan, symmetric Schur).
        const theta = (m[q][q] - m[p][p]) / (2 * m[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k][p];
          const mkq = m[k][q];
          m[k][p] = c * mkp - s * mkq;
          m[k][q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p][k];
          const mqk = m[q][k];
          m[p][k] = c * mpk - s * mqk;
          m[q][k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = m.map((_, i) => i).sort((i, j) => m[j][j] - m[i][i]);
  return {
    values: order.map((i) => m[i][i]),
    vectors: v.map((row) => order.map((i) => row[i])),
  };
}
