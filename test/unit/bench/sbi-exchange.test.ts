// The files the sbi parity bench hands to bench/torch/sbi_npe_reference.py and reads back: their
// byte order, their shapes, and the prior description the Python side rebuilds.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  decodeF32,
  encodeF32,
  priorSpec,
  readSbiOutputs,
  writeExchange,
  type ExchangeMeta,
} from '../../../bench/sbi-exchange.js';
import { BoxUniformPrior, DiagGaussianPrior } from '../../../sbi/tasks/priors.js';
import type { Prior } from '../../../sbi/types.js';

describe('sbi exchange files', () => {
  test('float32 matrices are little-endian and round-trip exactly', () => {
    assert.deepEqual([...encodeF32(new Float32Array([1]))], [0x00, 0x00, 0x80, 0x3f]);
    const a = new Float32Array([0, -1.5, 3.25e-8, 1e30, -0]);
    const back = decodeF32(encodeF32(a), a.length, 'a.f32');
    assert.deepEqual([...back], [...a]);
    assert.ok(Object.is(back[4], -0));
  });

  test('a file of the wrong length is refused, naming it', () => {
    assert.throws(
      () => decodeF32(encodeF32(new Float32Array(5)), 6, 'sbi-samples-2.f32'),
      /sbi-samples-2\.f32: 20 bytes, expected 6 float32 values/,
    );
  });

  test('priorSpec describes box and diagonal Gaussian priors and refuses others', () => {
    assert.deepEqual(priorSpec(new BoxUniformPrior([-1, -3], [1, 3])), {
      kind: 'box',
      low: [-1, -3],
      high: [1, 3],
    });
    assert.deepEqual(priorSpec(new DiagGaussianPrior([0, 1], [0.5, 2])), {
      kind: 'gaussian',
      mean: [0, 1],
      std: [0.5, 2],
    });
    const other: Prior = {
      dim: 1,
      support: { lower: [0], upper: [1] },
      sample: () => new Float32Array(1),
      logProb: () => new Float64Array(1),
    };
    assert.throws(() => priorSpec(other), /only box-uniform and diagonal Gaussian/);
  });

  test('writeExchange writes the inputs and readSbiOutputs reads the outputs, shapes checked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbi-exchange-test-'));
    try {
      const meta: ExchangeMeta = {
        thetaDim: 2,
        xDim: 3,
        n: 4,
        observations: 2,
        samples: 5,
        seed: 0,
        prior: { kind: 'box', low: [-1, -1], high: [1, 1] },
        logQAtReference: true,
      };
      const theta = Float32Array.from({ length: 8 }, (_, i) => i);
      const x = Float32Array.from({ length: 12 }, (_, i) => -i);
      const obs = Float32Array.from({ length: 6 }, (_, i) => i / 10);
      const refs = [new Float32Array(10).fill(1), new Float32Array(10).fill(2)];
      writeExchange(dir, meta, theta, x, obs, refs);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), meta);
      assert.deepEqual([...decodeF32(readFileSync(join(dir, 'x.f32')), 12, 'x')], [...x]);
      assert.deepEqual(
        [...decodeF32(readFileSync(join(dir, 'ref-2.f32')), 10, 'r')],
        [...refs[1]!],
      );
      assert.throws(
        () => writeExchange(dir, meta, theta.subarray(1), x, obs, refs),
        /theta: 7 values, not 4 x 2/,
      );
      assert.throws(
        () => writeExchange(dir, meta, theta, x, obs, refs.slice(1)),
        /references: 1 sets for 2 observations/,
      );

      // What the Python side writes back.
      const run = {
        sbiVersion: '0.27.0',
        torchVersion: 't',
        epochs: 7,
        bestValLoss: -1,
        trainCpuS: 2,
        trainWallS: 3,
        sampleCpuS: 1,
      };
      writeFileSync(join(dir, 'sbi-result.json'), JSON.stringify(run));
      for (const k of [1, 2]) {
        writeFileSync(join(dir, `sbi-samples-${k}.f32`), encodeF32(new Float32Array(10).fill(k)));
        writeFileSync(join(dir, `sbi-logq-${k}.f32`), encodeF32(new Float32Array(5).fill(-k)));
      }
      const out = readSbiOutputs(dir, meta);
      assert.deepEqual(out.run, run);
      assert.deepEqual([...out.samples[1]!], new Array(10).fill(2));
      assert.deepEqual([...out.logQ[0]!], new Array(5).fill(-1));
      writeFileSync(join(dir, 'sbi-samples-2.f32'), encodeF32(new Float32Array(9)));
      assert.throws(() => readSbiOutputs(dir, meta), /sbi-samples-2\.f32: 36 bytes/);
      assert.deepEqual(
        readSbiOutputs(dir, { ...meta, observations: 1, logQAtReference: false }).logQ,
        [null],
      );
      assert.equal(readSbiOutputs(dir, { ...meta, observations: 1 }).heldoutLogQ, null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('held-out rows travel with the inputs and their log q comes back, shapes checked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbi-exchange-test-'));
    try {
      const meta: ExchangeMeta = {
        thetaDim: 2,
        xDim: 1,
        n: 1,
        observations: 1,
        samples: 2,
        seed: 0,
        prior: { kind: 'gaussian', mean: [0, 0], std: [1, 1] },
        logQAtReference: false,
        heldout: 3,
      };
      const one = { theta: new Float32Array(2), x: new Float32Array(1), obs: new Float32Array(1) };
      const heldout = { theta: Float32Array.of(1, 2, 3, 4, 5, 6), x: Float32Array.of(7, 8, 9) };
      writeExchange(dir, meta, one.theta, one.x, one.obs, [], heldout);
      assert.deepEqual(
        [...decodeF32(readFileSync(join(dir, 'heldout-theta.f32')), 6, 'h')],
        [1, 2, 3, 4, 5, 6],
      );
      assert.deepEqual([...decodeF32(readFileSync(join(dir, 'heldout-x.f32')), 3, 'h')], [7, 8, 9]);
      assert.throws(
        () => writeExchange(dir, meta, one.theta, one.x, one.obs, []),
        /heldout: meta asks for 3 rows and none were given/,
      );
      assert.throws(
        () =>
          writeExchange(dir, meta, one.theta, one.x, one.obs, [], {
            ...heldout,
            x: heldout.x.subarray(1),
          }),
        /heldout x: 2 values, not 3 x 1/,
      );
      writeFileSync(join(dir, 'sbi-result.json'), '{}');
      writeFileSync(join(dir, 'sbi-samples-1.f32'), encodeF32(new Float32Array(4)));
      writeFileSync(join(dir, 'sbi-heldout-logq.f32'), encodeF32(Float32Array.of(-1, -2, -3)));
      assert.deepEqual([...readSbiOutputs(dir, meta).heldoutLogQ!], [-1, -2, -3]);
      writeFileSync(join(dir, 'sbi-heldout-logq.f32'), encodeF32(Float32Array.of(-1)));
      assert.throws(() => readSbiOutputs(dir, meta), /sbi-heldout-logq\.f32: 4 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
