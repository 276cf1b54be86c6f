// `robustsbi train --estimator maf_ensemble`: the command trains and saves RABI's MAF ensemble, with
// --members and --transforms passed through, and refuses --members for other estimators.
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
});
