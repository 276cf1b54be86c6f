import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initBackend, tf } from '../../../sbi/backend.js';
import { createEstimator } from '../../../sbi/estimators/index.js';
import {
  type SavedModel,
  loadModel,
  modelFromJson,
  modelToJson,
  saveModel,
} from '../../../sbi/model-file.js';
import { createRng } from '../../../sbi/rng.js';
import {
  decodeSimulations,
  encodeSimulations,
  loadSimulations,
  saveSimulations,
} from '../../../sbi/simulation-file.js';
import type { DensityEstimator, EstimatorKind } from '../../../sbi/types.js';

const dir = mkdtempSync(join(tmpdir(), 'robustsbi-model-file-'));
before(async () => {
  await initBackend('cpu');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const zscore = { thetaMean: [0.5, -1], thetaStd: [2, 0.5], xMean: [1, 2, 3], xStd: [0.3, 1, 4] };

function saved(estimator: DensityEstimator): SavedModel {
  return {
    estimator,
    task: 'toy',
    paramNames: ['a', 'b'],
    seed: 42,
    n: 1000,
    training: { learningRate: 1e-3, clipNorm: Infinity },
    summary: {
      epochs: 7,
      bestEpoch: 5,
      bestValLoss: 1.25,
      stoppedBy: 'early-stopping',
      dropped: 3,
      nTrain: 897,
      nVal: 100,
    },
    code: { version: '0.1.0', commit: 'abc123' },
    backend: 'cpu',
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

/** A small estimator of the 2-parameter, 3-observation toy model. */
function estimator(kind: EstimatorKind, hidden: number, seed: number): DensityEstimator {
  return createEstimator(kind, {
    thetaDim: 2,
    xDim: 3,
    zscore,
    config: { hidden: [hidden] },
    rng: createRng(seed),
  });
}

function logProbs(m: DensityEstimator): Float32Array {
  return tf.tidy(() => {
    const rng = createRng(9);
    const theta = rng.normalTensor([16, 2]) as tf.Tensor2D;
    const x = rng.normalTensor([16, 3]) as tf.Tensor2D;
    return m.logProb(theta, x).dataSync() as Float32Array;
  });
}

/** The error message is one sentence that names the file. */
function oneSentenceAbout(path: string, pattern: RegExp) {
  return (e: unknown): boolean => {
    const msg = (e as Error).message;
    assert.ok(msg.includes(path), `message names the file: ${msg}`);
    assert.ok(!msg.includes('\n') && msg.endsWith('.'), `one sentence: ${msg}`);
    assert.match(msg, pattern);
    return true;
  };
}

describe('model file', () => {
  for (const kind of ['maf', 'nsf', 'gaussian', 'mdn', 'maf_ensemble'] as EstimatorKind[]) {
    test(`${kind}: a saved and loaded model has identical log-probabilities and metadata`, () => {
      const m = estimator(kind, 8, 3);
      const path = join(dir, `${kind}.json`);
      saveModel(path, saved(m));
      const back = loadModel(path);
      assert.deepEqual(Array.from(logProbs(back.estimator)), Array.from(logProbs(m)));
      assert.equal(back.estimator.kind, kind);
      assert.deepEqual(back.estimator.zscore, zscore);
      assert.deepEqual({ ...back, estimator: null }, { ...saved(m), estimator: null });
      const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      assert.equal(doc.format, 'robustsbi-model');
      assert.equal(doc.version, 1);
      m.dispose();
      back.estimator.dispose();
    });
  }

  test('modelFromJson rebuilds from text alone (an artifact), and names the text in its errors', () => {
    const m = estimator('maf', 8, 4);
    const back = modelFromJson(modelToJson(saved(m)), 'model artifact models/m');
    assert.deepEqual(Array.from(logProbs(back.estimator)), Array.from(logProbs(m)));
    assert.equal(back.training.clipNorm, Infinity);
    assert.deepEqual({ ...back, estimator: null }, { ...saved(m), estimator: null });
    assert.throws(
      () => modelFromJson('{', 'model artifact models/x'),
      oneSentenceAbout('model artifact models/x', /not valid JSON/),
    );
    assert.throws(
      () => modelFromJson('{}', 'model artifact models/x'),
      oneSentenceAbout('model artifact models/x', /not a robustsbi model/),
    );
    m.dispose();
    back.estimator.dispose();
  });

  test('writes atomically: no temporary file is left and an existing file is replaced whole', () => {
    const m = estimator('gaussian', 4, 1);
    const path = join(dir, 'atomic.json');
    writeFileSync(path, 'old contents');
    saveModel(path, saved(m));
    assert.equal(readFileSync(path, 'utf8'), modelToJson(saved(m)));
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
    m.dispose();
  });

  test('malformed or foreign files are refused in one sentence naming the file and the problem', () => {
    const m = estimator('gaussian', 4, 1);
    type W = { name: string; shape: number[]; data: string };
    const good = JSON.parse(modelToJson(saved(m))) as {
      estimator: { weights: W[]; zscore: Record<string, number[]> } & Record<string, unknown>;
    } & Record<string, unknown>;
    m.dispose();
    const cases: [string, string | object, RegExp][] = [
      ['not-json.json', '{"format": "robustsbi-model", ', /not valid JSON/],
      ['array.json', [1, 2], /JSON object/],
      [
        'foreign.json',
        { ...good, format: 'something-else' },
        /"something-else" file, not a robustsbi model/,
      ],
      ['no-format.json', { hello: 1 }, /not a robustsbi model/],
      ['future.json', { ...good, version: 2 }, /version 2/],
      [
        'kind.json',
        { ...good, estimator: { ...good.estimator, kind: 'realnvp' } },
        /unknown estimator kind "realnvp"/,
      ],
      [
        'zscore.json',
        {
          ...good,
          estimator: { ...good.estimator, zscore: { ...good.estimator.zscore, xStd: [1] } },
        },
        /zscore\.xStd/,
      ],
      [
        'truncated.json',
        {
          ...good,
          estimator: {
            ...good.estimator,
            weights: good.estimator.weights.map((w, i) =>
              i === 0 ? { ...w, data: w.data.slice(0, 16) } : w,
            ),
          },
        },
        /weight .* holds \d+ values where \d+ were expected/,
      ],
      [
        'shape.json',
        { ...good, estimator: { ...good.estimator, weights: good.estimator.weights.slice(1) } },
        /does not describe a valid gaussian estimator/,
      ],
      ['names.json', { ...good, paramNames: ['a'] }, /paramNames/],
    ];
    for (const [name, content, pattern] of cases) {
      const path = join(dir, name);
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      assert.throws(() => loadModel(path), oneSentenceAbout(path, pattern), name);
    }
    const missing = join(dir, 'missing.json');
    assert.throws(() => loadModel(missing), oneSentenceAbout(missing, /does not exist/));
  });
});

describe('simulation file', () => {
  test('round trip keeps every value bit for bit, NaN-free, with its metadata', () => {
    const theta = Float32Array.from([0.1, -2, 3.5, 1e-8, 7, 8]);
    const x = Float32Array.from([1 / 3, 2, Math.PI]);
    const path = join(dir, 'sims.json');
    const rec = {
      task: 'toy',
      seed: 5,
      n: 3,
      dropped: 2,
      thetaDim: 2,
      xDim: 1,
      paramNames: ['a', 'b'],
      theta,
      x,
      code: { version: '0.1.0' },
      createdAt: 'now',
    };
    saveSimulations(path, rec);
    assert.deepEqual(loadSimulations(path), rec);
  });

  test('a bad simulation file is refused in one sentence', () => {
    const path = join(dir, 'bad-sims.json');
    const good = {
      format: 'robustsbi-simulations',
      version: 1,
      task: 'toy',
      seed: 1,
      n: 2,
      dropped: 0,
      thetaDim: 1,
      xDim: 1,
      paramNames: ['a'],
      theta: 'AACAPwAAAEA=',
      x: 'AACAPw==',
    };
    writeFileSync(path, JSON.stringify(good));
    assert.throws(
      () => loadSimulations(path),
      oneSentenceAbout(path, /"x" data that holds 1 values where 2 were expected/),
    );
    writeFileSync(path, JSON.stringify({ ...good, format: 'robustsbi-model' }));
    assert.throws(() => loadSimulations(path), oneSentenceAbout(path, /not robustsbi simulations/));
    writeFileSync(path, JSON.stringify({ ...good, n: -1 }));
    assert.throws(() => loadSimulations(path), oneSentenceAbout(path, /invalid "n"/));
  });
});

describe('simulation bytes (the artifact encoding)', () => {
  test('round-trip theta and x bit for bit, including non-finite values', () => {
    const theta = new Float32Array([1.5, -2, 3.25, Math.PI, 0, -0]);
    const x = new Float32Array([NaN, Infinity, 1e-30, -1e30, 7, 8, 9, 10, 11]);
    const d = {
      task: 'gaussian_linear',
      seed: 3,
      n: 3,
      dropped: 2,
      thetaDim: 2,
      xDim: 3,
      theta,
      x,
    };
    const back = decodeSimulations(encodeSimulations(d), 'artifact sims/x');
    assert.deepEqual(
      { ...back, theta: [...back.theta], x: [...back.x] },
      {
        ...d,
        theta: [...theta],
        x: [...x],
      },
    );
    assert.ok(Object.is(back.theta[5], -0));
  });

  test('refuse mismatched sizes and truncated or foreign bytes', () => {
    const d = {
      task: 't',
      seed: 0,
      n: 2,
      dropped: 0,
      thetaDim: 1,
      xDim: 1,
      theta: new Float32Array(2),
      x: new Float32Array(2),
    };
    assert.throws(() => encodeSimulations({ ...d, x: new Float32Array(3) }), RangeError);
    const bytes = encodeSimulations(d);
    assert.throws(
      () => decodeSimulations(bytes.subarray(0, bytes.length - 4), 'artifact a'),
      /does not hold the rows/,
    );
    assert.throws(
      () => decodeSimulations(new TextEncoder().encode('\u0002\u0000\u0000\u0000{}'), 'artifact b'),
      /artifact b/,
    );
  });

  test('read bytes in the layout stored artifacts have, and write that layout', () => {
    // An artifact as the sweep wrote it before this codec moved to sbi/: header, padding, rows.
    const header =
      '{"format":"robustsbi-dataset/1","task":"sir","seed":7,"n":2,"dropped":1,"thetaDim":1,"xDim":2}';
    const padded = Math.ceil(header.length / 4) * 4;
    const old = new Uint8Array(4 + padded + 4 * 6);
    const view = new DataView(old.buffer);
    view.setUint32(0, padded, true);
    old.fill(0x20, 4, 4 + padded);
    old.set(new TextEncoder().encode(header), 4);
    [0.5, -1, 1, 2, 3, 4].forEach((v, i) => view.setFloat32(4 + padded + 4 * i, v, true));
    const back = decodeSimulations(old, 'artifact sims/old');
    assert.deepEqual(
      { ...back, theta: [...back.theta], x: [...back.x] },
      {
        task: 'sir',
        seed: 7,
        n: 2,
        dropped: 1,
        thetaDim: 1,
        xDim: 2,
        theta: [0.5, -1],
        x: [1, 2, 3, 4],
      },
    );
    assert.deepEqual(encodeSimulations(back), old);
  });
});
