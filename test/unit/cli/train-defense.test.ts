// `robustsbi train --defense D --beta B --train-eps E`: the defense trains and is recorded in the model
// file's training options (with the defaults it filled in); misplaced options are one-sentence errors.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../../cli/errors.js';
import { command as train } from '../../../cli/commands/train.js';
import { initBackend } from '../../../sbi/backend.js';
import { loadModel } from '../../../sbi/model-file.js';

const dir = mkdtempSync(join(tmpdir(), 'robustsbi-defense-'));
const p = (name: string): string => join(dir, name);
const BASE = [
  '--task',
  'gaussian_linear',
  '--n',
  '120',
  '--max-epochs',
  '1',
  '--batch-size',
  '64',
  '--hidden',
  '8',
];

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

describe('train --defense', () => {
  test('fim with --beta, noise with its default budget: recorded in the model file', async () => {
    assert.equal(
      await quiet([...BASE, '--defense', 'fim', '--beta', '0.01', '--out', p('fim.json')]),
      0,
    );
    const fim = loadModel(p('fim.json'));
    assert.equal(fim.training.defense, 'fim');
    assert.equal(fim.training.beta, 0.01);
    assert.equal(fim.training.trainEps, undefined);
    fim.estimator.dispose();

    assert.equal(await quiet([...BASE, '--defense', 'noise', '--out', p('noise.json')]), 0);
    const noise = loadModel(p('noise.json'));
    assert.equal(noise.training.defense, 'noise');
    assert.equal(noise.training.trainEps, 1);
    noise.estimator.dispose();

    assert.equal(await quiet([...BASE, '--out', p('none.json')]), 0);
    const none = loadModel(p('none.json'));
    assert.equal(none.training.defense, 'none');
    none.estimator.dispose();
  });

  test('mistakes are one UserError sentence and write nothing', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--defense', 'fisher'],
        /Unknown defense "fisher"; use one of none, fim, fim-fast, trades, adversarial, noise/,
      ],
      [
        ['--defense', 'noise', '--beta', '1'],
        /--beta applies to fim, fim-fast, fim-exact, fim-eigenvalue and trades, not to --defense noise/,
      ],
      [
        ['--defense', 'fim', '--train-eps', '1'],
        /--train-eps applies to trades, adversarial and noise/,
      ],
      [['--beta', '0.1'], /not to --defense none/],
      [['--defense', 'fim', '--beta=-1'], /--beta must be a number >= 0/],
      [['--defense', 'trades', '--train-eps', '0'], /--train-eps must be a positive number/],
    ];
    for (const [extra, message] of cases) {
      const out = p('bad.json');
      await assert.rejects(
        quiet([...BASE, ...extra, '--out', out]),
        (e: unknown) => e instanceof UserError && message.test(e.message),
      );
      assert.ok(!existsSync(out));
    }
  });
});
