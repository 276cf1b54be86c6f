// `robustsbi train --estimator maf_ensemble`: the command trains and saves RABI's MAF ensemble, with
// --members and --transforms passed through, and refuses --members for other estimators.
// `--ensemble K`: the kept MAF is member 0 of a mixture of K trained apart, saved as a maf_ensemble
// with the member weights fitted to the validation rows, or uniform with --mixture uniform.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command as train } from '../../../cli/commands/train.js';
import { UserError } from '../../../cli/errors.js';
import { initBackend } from '../../../sbi/backend.js';
import { loadModel } from '../../../sbi/model-file.js';

const dir = mkdtempSync(join(tmpdir(), 'robustsbi-train-ensemble-'));
before(async () => {
  process.env.ROBUSTSBI_BACKEND = 'cpu';
  await initBackend('cpu');
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function quiet(argv: string[]): Promise<number> {
  const log = console.log;
  console.log = () => {};
  try {
    return await train.run(argv);
  } finally {
    console.log = log;
  }
}

describe('train --estimator maf_ensemble', () => {
  test('trains and saves an ensemble of --members MAFs', async () => {
    const out = join(dir, 'ens.json');
    const code = await quiet([
      '--task',
      'gaussian_linear',
      '--n',
      '200',
      '--estimator',
      'maf_ensemble',
      '--members',
      '3',
      '--transforms',
      '1',
      '--hidden',
      '8',
      '--max-epochs',
      '2',
      '--out',
      out,
    ]);
    assert.equal(code, 0);
    const m = loadModel(out);
    assert.equal(m.estimator.kind, 'maf_ensemble');
    assert.equal(m.estimator.config.members, 3);
    assert.equal((m.estimator.config.orders as unknown[]).length, 3);
    assert.ok(m.estimator.getWeights().some((w) => w.name.startsWith('m2.')));
    m.estimator.dispose();
  });

  test('--members applies to maf_ensemble only', async () => {
    await assert.rejects(
      quiet([
        '--task',
        'gaussian_linear',
        '--n',
        '200',
        '--members',
        '3',
        '--out',
        join(dir, 'x.json'),
      ]),
      (e: unknown) =>
        e instanceof UserError &&
        /--members applies to maf_ensemble only, not to maf/.test(e.message),
    );
  });

  test('--ensemble K keeps the plain run as member 0 of a mixture of K trained apart', async () => {
    // 10,000 simulations, where the plain run's candidates are MAFs only: below it the plain run
    // may keep the closed-form linear-Gaussian fit, which an ensemble's members cannot be.
    const args = ['--task', 'gaussian_linear', '--n', '10000', '--max-epochs', '3', '--seed', '2'];
    const plainOut = join(dir, 'plain.json');
    const mixOut = join(dir, 'mix.json');
    assert.equal(await quiet([...args, '--out', plainOut]), 0);
    assert.equal(await quiet([...args, '--ensemble', '3', '--out', mixOut]), 0);
    const plain = loadModel(plainOut);
    const mix = loadModel(mixOut);
    assert.equal(mix.estimator.kind, 'maf_ensemble');
    assert.equal(mix.estimator.config.members, 3);
    assert.equal(mix.training.ensemble, 3);
    assert.equal(mix.summary.members?.length, 3);
    assert.equal(mix.summary.members?.[0]?.bestValLoss, plain.summary.bestValLoss);
    assert.deepEqual(mix.estimator.zscore, plain.estimator.zscore);
    const values = (m: typeof plain, prefix: string): number[][] =>
      m.estimator
        .getWeights()
        .filter((w) => w.name.startsWith(prefix))
        .map((w) => w.values);
    const plainWeights = plain.estimator.getWeights().map((w) => w.values);
    assert.deepEqual(values(mix, 'm0.'), plainWeights);
    assert.notDeepEqual(values(mix, 'm1.'), plainWeights);
    assert.notDeepEqual(values(mix, 'm2.'), values(mix, 'm1.'));
    // Fitted weights by default, recorded in the estimator and beside each member.
    const weights = mix.estimator.config.mixture as number[];
    assert.equal(mix.training.mixture, 'fitted');
    assert.equal(weights.length, 3);
    assert.ok(Math.abs(weights.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    assert.deepEqual(
      mix.summary.members?.map((m) => m.weight),
      weights,
    );
    // --mixture uniform: the same members, no weights.
    const uniformOut = join(dir, 'uniform.json');
    assert.equal(
      await quiet([...args, '--ensemble', '3', '--mixture', 'uniform', '--out', uniformOut]),
      0,
    );
    const uniform = loadModel(uniformOut);
    assert.equal(uniform.estimator.config.mixture, undefined);
    assert.equal(uniform.training.mixture, 'uniform');
    assert.deepEqual(
      uniform.summary.members?.map((m) => m.weight),
      [1 / 3, 1 / 3, 1 / 3],
    );
    assert.deepEqual(
      uniform.estimator.getWeights().map((w) => w.values),
      mix.estimator.getWeights().map((w) => w.values),
    );
    plain.estimator.dispose();
    mix.estimator.dispose();
    uniform.estimator.dispose();
  });

  test('--ensemble takes a positive integer, for maf only', async () => {
    const base = ['--task', 'gaussian_linear', '--n', '200', '--out', join(dir, 'y.json')];
    await assert.rejects(
      quiet([...base, '--ensemble', '0']),
      (e: unknown) =>
        e instanceof UserError && /--ensemble must be an integer >= 1/.test(e.message),
    );
    await assert.rejects(
      quiet([...base, '--estimator', 'nsf', '--ensemble', '2']),
      (e: unknown) =>
        e instanceof UserError && /--ensemble applies to maf only, not to nsf/.test(e.message),
    );
    await assert.rejects(
      quiet([...base, '--mixture', 'uniform']),
      (e: unknown) =>
        e instanceof UserError && /--mixture applies to an ensemble of 2 or more/.test(e.message),
    );
    await assert.rejects(
      quiet([...base, '--ensemble', '2', '--mixture', 'stacked']),
      (e: unknown) =>
        e instanceof UserError &&
        /--mixture must be fitted or uniform, got "stacked"/.test(e.message),
    );
  });
});
