// robustsbi's MAF in sbi's configuration (three tanh layers, nflows' scale, context layer and hidden
// degrees) against the MAF sbi 0.27's NPE() builds over nflows 0.14: the fixture's weights
// (test/fixtures/nflows-maf.json, written by bench/torch/nflows_maf_fixture.py) loaded into
// robustsbi's model, with the variable orders nflows' permutations imply, give nflows' log q row by
// row. That is the model the slcp comparison with sbi rests on (BENCHMARKS.md, fifteenth session).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { readFixture } from '../read-fixture.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { createRng } from '../../../sbi/rng.js';
import type { SerializedWeights } from '../../../sbi/types.js';

interface Layer {
  perm: number[];
  W0: number[][];
  b0: number[];
  Wc: number[][];
  bc: number[];
  Wh: number[][][];
  bh: number[][];
  Wf: number[][];
  bf: number[];
}

interface Fixture {
  thetaDim: number;
  xDim: number;
  hidden: number;
  transforms: number;
  thetaMean: number[];
  thetaStd: number[];
  xMean: number[];
  xStd: number[];
  layers: Layer[];
  theta: number[][];
  x: number[][];
  logq: number[];
}

const fixture = readFixture<Fixture>('nflows-maf.json');

/**
 * nflows' MADE l reads its input in position order; a RandomPermutation after it reorders the
 * positions for the next. robustsbi keeps the coordinates fixed and gives each MADE an order: the
 * coordinate at position j of MADE l, c_l[j], with c_1 the identity and c_{l+1}[j] = c_l[perm_l[j]].
 */
function ordersFromPermutations(perms: readonly number[][], dim: number): number[][] {
  const orders: number[][] = [];
  let c = Array.from({ length: dim }, (_, i) => i);
  for (const perm of perms) {
    orders.push([...c]);
    c = perm.map((p) => c[p]!);
  }
  return orders;
}

/** [rows][cols] in nflows' [out][in] layout, flattened as robustsbi's [in, out]. */
function transposed(m: number[][]): number[] {
  const out: number[] = [];
  for (let j = 0; j < m[0]!.length; j++) for (let i = 0; i < m.length; i++) out.push(m[i]![j]!);
  return out;
}

/** The fixture's weights under robustsbi's names and layout, for the given orders. */
function robustsbiWeights(f: Fixture, orders: number[][]): SerializedWeights[] {
  const D = f.thetaDim;
  const H = f.hidden;
  const ws: SerializedWeights[] = [];
  f.layers.forEach((L, l) => {
    const c = orders[l]!;
    // The first layer's theta weights: row = coordinate, where nflows' column = position.
    const thetaW = new Array<number>(D * H).fill(0);
    for (let j = 0; j < D; j++) for (let h = 0; h < H; h++) thetaW[c[j]! * H + h] = L.W0[h]![j]!;
    ws.push({ name: `t${l}.in.theta`, shape: [D, H], values: thetaW });
    ws.push({ name: `t${l}.in.ctx`, shape: [f.xDim, H], values: transposed(L.Wc) });
    ws.push({ name: `t${l}.in.ctxBias`, shape: [H], values: L.bc });
    ws.push({ name: `t${l}.in.bias`, shape: [H], values: L.b0 });
    L.Wh.forEach((W, k) => {
      ws.push({ name: `t${l}.h${k + 1}.weight`, shape: [H, H], values: transposed(W) });
      ws.push({ name: `t${l}.h${k + 1}.bias`, shape: [H], values: L.bh[k]! });
    });
    // nflows interleaves (unconstrained scale, shift) per position; robustsbi's columns are
    // parameter-major over coordinates: shifts first, then unconstrained scales.
    const outW = new Array<number>(H * 2 * D).fill(0);
    const outB = new Array<number>(2 * D).fill(0);
    for (let j = 0; j < D; j++) {
      for (const [param, row] of [
        [0, 2 * j + 1],
        [1, 2 * j],
      ] as const) {
        const col = param * D + c[j]!;
        for (let h = 0; h < H; h++) outW[h * 2 * D + col] = L.Wf[row]![h]!;
        outB[col] = L.bf[row]!;
      }
    }
    ws.push({ name: `t${l}.out.weight`, shape: [H, 2 * D], values: outW });
    ws.push({ name: `t${l}.out.bias`, shape: [2 * D], values: outB });
  });
  return ws;
}

function logQ(config: Record<string, unknown>, orders: number[][]): number[] {
  const f = fixture;
  const est = createEstimator('maf', {
    thetaDim: f.thetaDim,
    xDim: f.xDim,
    zscore: { thetaMean: f.thetaMean, thetaStd: f.thetaStd, xMean: f.xMean, xStd: f.xStd },
    rng: createRng(0),
    config: { ...config, orders },
  });
  // A variant without nflows' context layer has no context bias to take.
  const names = new Set(est.getWeights().map((w) => w.name));
  est.setWeights(robustsbiWeights(f, orders).filter((w) => names.has(w.name)));
  const out = tf.tidy(() =>
    Array.from(est.logProb(tf.tensor2d(f.theta), tf.tensor2d(f.x)).dataSync()),
  );
  est.dispose();
  return out;
}

const SBI_MADE = {
  hidden: [fixture.hidden, fixture.hidden, fixture.hidden],
  numTransforms: fixture.transforms,
  activation: 'tanh',
  affine: 'nflows',
  biasInit: 'torch',
  inputFanIn: 'separate',
  contextLayer: 'tanh',
  degrees: 'nflows',
};

/** The orders nflows' permutations imply for the fixture's flow. */
const ORDERS = ordersFromPermutations(
  fixture.layers.map((L) => L.perm),
  fixture.thetaDim,
);

/** The largest |log q - nflows' log q| over the fixture's rows. */
function moved(config: Record<string, unknown>, orders = ORDERS): number {
  return Math.max(...logQ(config, orders).map((v, i) => Math.abs(v - fixture.logq[i]!)));
}

before(async () => {
  await initBackend('cpu');
});

describe("robustsbi's MAF against sbi's (nflows) on the same weights", () => {
  test('the orders follow the permutations: identity first, then each permutation composed', () => {
    assert.deepEqual(
      ordersFromPermutations(
        [
          [2, 0, 1],
          [1, 2, 0],
          [0, 1, 2],
        ],
        3,
      ),
      [
        [0, 1, 2],
        [2, 0, 1],
        [0, 1, 2],
      ],
    );
  });

  test("log q equals nflows' at every row (float32 against float64)", () => {
    const lq = logQ(SBI_MADE, ORDERS);
    lq.forEach((v, i) =>
      assert.ok(
        Math.abs(v - fixture.logq[i]!) < 1e-4 * Math.max(1, Math.abs(fixture.logq[i]!)),
        `row ${i}: robustsbi ${v}, nflows ${fixture.logq[i]}`,
      ),
    );
  });

  test("each piece of sbi's MADE matters: without one of them log q moves", () => {
    // robustsbi's own context input (x added linearly), hidden degrees and affine map each change
    // the model, so the equality above is not one any MAF of these shapes would pass.
    assert.ok(moved({ ...SBI_MADE, contextLayer: 'linear' }) > 0.01);
    assert.ok(moved({ ...SBI_MADE, degrees: 'cycle' }) > 0.01);
    assert.ok(moved({ ...SBI_MADE, affine: 'robustsbi' }) > 0.01);
    // The orders are what nflows' permutations imply, not any others.
    const shifted = ORDERS.map((o, l) => (l === 1 ? [...o.slice(1), o[0]!] : o));
    assert.ok(moved(SBI_MADE) < 1e-3);
    assert.ok(moved(SBI_MADE, shifted) > 0.01);
  });
});
