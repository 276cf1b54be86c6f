// `robustsbi evaluate` end to end on a small trained model, run in process, plus its bad inputs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command as evaluate } from '../../../cli/commands/evaluate.js';
import { command as train } from '../../../cli/commands/train.js';
import { UserError } from '../../../cli/errors.js';
import { initBackend } from '../../../sbi/backend.js';

const dir = mkdtempSync(join(tmpdir(), 'robustsbi-evaluate-'));
const p = (name: string): string => join(dir, name);

before(async () => {
  process.env.ROBUSTSBI_BACKEND = 'cpu';
  await initBackend('cpu');
  const quiet = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    const code = await train.run([
      '--task',
      'gaussian_linear',
      '--n',
      '300',
      '--estimator',
      'gaussian',
      '--hidden',
      '16',
      '--max-epochs',
      '3',
      '--seed',
      '1',
      '--out',
      p('model.json'),
    ]);
    assert.equal(code, 0);
  } finally {
    process.stdout.write = quiet;
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Rec {
  attack: string;
  objective: string;
  eps: number;
  epsAbs: number;
  epsScale: number;
  nTest: number;
  task: string;
  kl: Record<string, number>;
  coverageAbsArea: number;
  cleanCoverageAbsArea: number;
  coverage: number[];
  cleanCoverage: number[];
  groundTruth?: { c2st: number; klQP: number; klPQ: number; samples: number };
  nll: { clean: number; attacked: number };
  nllAttacked: Record<string, number>;
  seconds: number;
}

describe('robustsbi evaluate', () => {
  test('one record per (attack, objective, eps) with KL summaries, coverage and NLL', async () => {
    const args = [
      '--model',
      p('model.json'),
      '--attack',
      'l2pgd,noise',
      '--objective',
      'rkl,fkl',
      '--eps',
      '0.5,2',
      '--n-test',
      '24',
      '--seed',
      '4',
      '--steps',
      '20',
      '--eval-samples',
      '64',
      '--coverage-samples',
      '200',
      '--out',
      p('results.json'),
    ];
    assert.equal(await evaluate.run(args), 0);
    const recs = JSON.parse(readFileSync(p('results.json'), 'utf8')) as Rec[];
    assert.equal(recs.length, 8);
    const scale = recs[0]!.epsScale;
    assert.ok(scale > 0);
    for (const r of recs) {
      assert.equal(r.task, 'gaussian_linear');
      assert.equal(r.nTest, 24);
      assert.ok(Math.abs(r.epsAbs - r.eps * scale) < 1e-9);
      for (const k of [
        'mean',
        'median',
        'std',
        'min',
        'max',
        'q0_5',
        'q15',
        'q50',
        'q85',
        'q99_5',
      ]) {
        assert.equal(typeof r.kl[k], 'number', `kl.${k}`);
      }
      assert.ok(
        r.kl.min! <= r.kl.q15! &&
          r.kl.q15! <= r.kl.median! &&
          r.kl.median! <= r.kl.q85! &&
          r.kl.q85! <= r.kl.max!,
      );
      assert.equal(r.coverage.length, 100);
      assert.equal(r.cleanCoverage.length, 100);
      assert.ok(r.coverageAbsArea >= 0 && r.coverageAbsArea <= 0.5);
      assert.equal(r.cleanCoverageAbsArea, recs[0]!.cleanCoverageAbsArea);
      assert.ok(Number.isFinite(r.nll.clean) && Number.isFinite(r.nll.attacked));
      assert.ok(Math.abs(r.nllAttacked.mean! - r.nll.attacked) <= 1e-9 * Math.abs(r.nll.attacked));
      assert.equal(typeof r.nllAttacked.q85, 'number');
      // gaussian_linear: against the analytic posterior, the same in every record.
      assert.deepEqual(r.groundTruth, recs[0]!.groundTruth);
      assert.ok(r.groundTruth!.c2st >= 0.5 && r.groundTruth!.c2st <= 1);
      assert.ok(Number.isFinite(r.groundTruth!.klQP) && Number.isFinite(r.groundTruth!.klPQ));
    }
    const find = (a: string, o: string, e: number) =>
      recs.find((r) => r.attack === a && r.objective === o && r.eps === e)!;
    for (const o of ['rkl', 'fkl']) {
      // the attack beats noise of the same size, and a larger budget does more harm
      assert.ok(
        find('l2pgd', o, 2).kl.mean! > find('noise', o, 2).kl.mean!,
        `${o}: PGD below noise`,
      );
      assert.ok(
        find('l2pgd', o, 2).kl.mean! > find('l2pgd', o, 0.5).kl.mean!,
        `${o}: eps 2 below eps 0.5`,
      );
    }
    // same seed, same numbers
    assert.equal(await evaluate.run([...args.slice(0, -1), p('again.json')]), 0);
    const noTime = (rs: Rec[]) => rs.map(({ seconds: _s, ...r }) => r);
    assert.deepEqual(
      noTime(JSON.parse(readFileSync(p('again.json'), 'utf8')) as Rec[]),
      noTime(recs),
    );
  });

  test('a model that reads log x is attacked in x as simulated, and says what that costs', async () => {
    // console.log, not stdout: muting stdout here would swallow the test runner's own report.
    const say = console.log;
    console.log = () => undefined;
    try {
      const code = await train.run([
        '--task',
        'sir',
        '--n',
        '300',
        '--estimator',
        'gaussian',
        '--hidden',
        '16',
        '--max-epochs',
        '2',
        '--x-transform',
        'log',
        '--out',
        p('log.json'),
      ]);
      assert.equal(code, 0);
    } finally {
      console.log = say;
    }
    const lines: string[] = [];
    const log = console.error;
    console.error = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      const args = ['--model', p('log.json'), '--attack', 'l2pgd', '--eps', '0.5'];
      const more = ['--n-test', '4', '--steps', '3', '--eval-samples', '8'];
      const out = ['--coverage-samples', '20', '--out', p('log-eval.json')];
      assert.equal(await evaluate.run([...args, ...more, ...out]), 0);
    } finally {
      console.error = log;
    }
    assert.ok(
      lines.some((l) => /this model reads log x/.test(l)),
      lines.join('\n'),
    );
    const [rec] = JSON.parse(readFileSync(p('log-eval.json'), 'utf8')) as Rec[];
    assert.ok(Number.isFinite(rec!.kl.mean!), `${rec!.kl.mean}`);
  });

  test('bad input is one UserError sentence and writes nothing', async () => {
    const base = ['--model', p('model.json'), '--out', p('bad.json')];
    const cases: [string[], RegExp][] = [
      [[...base, '--attack', 'cw'], /--attack "cw" is not one of/],
      [[...base, '--attack', 'l2pgd', '--objective', 'kl'], /--objective "kl" is not one of/],
      [[...base, '--attack', 'l2pgd', '--eps', '0.1,x'], /--eps must be/],
      [[...base, '--attack', 'l2pgd', '--n-test', '0'], /--n-test must be an integer >= 1/],
      [
        ['--model', p('missing.json'), '--attack', 'noise', '--out', p('bad.json')],
        /does not exist/,
      ],
      [[...base], /needs --attack/],
    ];
    for (const [argv, re] of cases) {
      await assert.rejects(
        evaluate.run(argv),
        (e: unknown) => e instanceof UserError && re.test(e.message),
      );
    }
    writeFileSync(p('junk.json'), '{"format": "other"}');
    await assert.rejects(
      evaluate.run(['--model', p('junk.json'), '--attack', 'noise', '--out', p('bad.json')]),
      (e: unknown) => e instanceof UserError,
    );
    assert.equal(existsSync(p('bad.json')), false);
  });
});
