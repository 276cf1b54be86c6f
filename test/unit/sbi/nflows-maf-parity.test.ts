// robustsbi's MAF in sbi's configuration (three tanh layers, nflows' scale, context layer and hidden
// degrees) against the MAF sbi 0.27's NPE() builds over nflows 0.14: the fixture's weights
// (test/fixtures/nflows-maf.json, written by bench/torch/nflows_maf_fixture.py) loaded into
// robustsbi's model, with the variable orders nflows' permutations imply, give nflows' log q row by
// row. That is the model the slcp comparison with sbi rests on (BENCHMARKS.md, fifteenth session).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { readFixture } from '../read-fixture.js';
import {
  nflowsWeights,
  ordersFromPermutations,
  sbiMadeConfig,
  type NflowsMaf,
} from '../../../bench/nflows-weights.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import { createRng } from '../../../sbi/rng.js';

interface Fixture extends NflowsMaf {
  transforms: number;
  thetaMean: number[];
  thetaStd: number[];
  xMean: number[];
  xStd: number[];
  theta: number[][];
  x: number[][];
  logq: number[];
}

const fixture = readFixture<Fixture>('nflows-maf.json');

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
  est.setWeights(nflowsWeights(f, orders).filter((w) => names.has(w.name)));
  const out = tf.tidy(() =>
    Array.from(est.logProb(tf.tensor2d(f.theta), tf.tensor2d(f.x)).dataSync()),
  );
  est.dispose();
  return out;
}

const SBI_MADE = sbiMadeConfig(fixture.hidden, fixture.transforms);

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
