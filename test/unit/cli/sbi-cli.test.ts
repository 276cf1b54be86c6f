// The standalone science commands end to end (simulate -> train -> sample -> logprob), run in process
// through their command modules, plus bad inputs through the real entry point (exit code, one line).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../../cli/errors.js';
import { command as logprob } from '../../../cli/commands/logprob.js';
import { command as sample } from '../../../cli/commands/sample.js';
import { command as simulate } from '../../../cli/commands/simulate.js';
import { command as train } from '../../../cli/commands/train.js';
import { initBackend, tf } from '../../../sbi/backend.js';
import { loadModel } from '../../../sbi/model-file.js';
import { loadSimulations } from '../../../sbi/simulation-file.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'robustsbi-cli-'));
const p = (name: string): string => join(dir, name);
const X = JSON.stringify([0.1, -0.2, 0.3, 0.0, 0.5, -1.0, 0.2, 0.1, -0.4, 0.9]);

before(async () => {
  process.env.ROBUSTSBI_BACKEND = 'cpu';
  await initBackend('cpu');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs a command in process, capturing console.log. (process.stdout itself is left alone: the test
 * runner reports through it, so commands that print results are run with --out here and through the
 * entry point below.)
 */
async function runCaptured(
  cmd: { run(argv: string[]): Promise<number> },
  argv: string[],
): Promise<{ code: number; stdout: string }> {
  const chunks: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void chunks.push(`${a.join(' ')}\n`);
  try {
    const code = await cmd.run(argv);
    return { code, stdout: chunks.join('') };
  } finally {
    console.log = log;
  }
}

function cli(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  // From source (tsx) the entry is cli/main.ts; compiled (npm test runs dist/) it is dist/cli/main.js.
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = join(root, 'cli', fromSource ? 'main.ts' : 'main.js');
  return spawnSync(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), entry, ...argv], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ROBUSTSBI_BACKEND: 'cpu' },
    timeout: 60_000,
  });
}

describe('simulate -> train -> sample -> logprob on gaussian_linear', () => {
  test('each step writes a valid file and the numbers are consistent', async () => {
    const sim = await runCaptured(simulate, [
      '--task',
      'gaussian_linear',
      '--n',
      '300',
      '--seed',
      '3',
      '--out',
      p('sims.json'),
    ]);
    assert.equal(sim.code, 0);
    const sims = loadSimulations(p('sims.json'));
    assert.equal(sims.task, 'gaussian_linear');
    assert.equal(sims.n + sims.dropped, 300);
    assert.equal(sims.theta.length, sims.n * 10);

    const tr = await runCaptured(train, [
      '--sims',
      p('sims.json'),
      '--estimator',
      'maf',
      '--hidden',
      '16',
      '--transforms',
      '2',
      '--max-epochs',
      '3',
      '--batch-size',
      '64',
      '--seed',
      '3',
      '--out',
      p('model.json'),
    ]);
    assert.equal(tr.code, 0);
    assert.match(tr.stdout, /3 epochs/);
    const model = loadModel(p('model.json'));
    assert.equal(model.task, 'gaussian_linear');
    assert.equal(model.estimator.kind, 'maf');
    assert.deepEqual(model.estimator.config.hidden, [16]);
    assert.equal(model.summary.epochs, 3);
    assert.equal(model.summary.nTrain + model.summary.nVal, 300);
    assert.equal(model.seed, 3);
    assert.equal(model.training.maxEpochs, 3);
    assert.equal(model.training.clipNorm, 5);
    assert.match(model.code.version, /^\d+\.\d+\.\d+/);
    model.estimator.dispose();

    const s1 = await runCaptured(sample, [
      '--model',
      p('model.json'),
      '--x',
      X,
      '--n',
      '25',
      '--seed',
      '1',
      '--out',
      p('samples.csv'),
    ]);
    assert.equal(s1.code, 0);
    const csv = readFileSync(p('samples.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 26);
    assert.equal(csv[0]!.split(',').length, 10);
    assert.ok(csv.slice(1).every((row) => row.split(',').every((v) => Number.isFinite(Number(v)))));
    // Same seed, same samples.
    await runCaptured(sample, [
      '--model',
      p('model.json'),
      '--x',
      X,
      '--n',
      '25',
      '--seed',
      '1',
      '--out',
      p('samples2.csv'),
    ]);
    assert.equal(readFileSync(p('samples2.csv'), 'utf8'), readFileSync(p('samples.csv'), 'utf8'));

    await runCaptured(logprob, [
      '--model',
      p('model.json'),
      '--x',
      X,
      '--theta',
      p('samples.csv'),
      '--out',
      p('lp.txt'),
    ]);
    const values = readFileSync(p('lp.txt'), 'utf8').trim().split('\n').map(Number);
    assert.equal(values.length, 25);
    assert.ok(values.every(Number.isFinite));
    // The values are the model's own log q at those samples.
    const m = loadModel(p('model.json'));
    const rows = csv.slice(1).map((r) => r.split(',').map(Number));
    const direct = tf.tidy(() =>
      m.estimator
        .logProb(
          tf.tensor2d(rows),
          tf.tile(tf.tensor2d([JSON.parse(X) as number[]]), [rows.length, 1]) as tf.Tensor2D,
        )
        .arraySync(),
    );
    direct.forEach((d, i) =>
      assert.ok(
        Math.abs(d - values[i]!) <= 1e-5 * Math.max(1, Math.abs(d)),
        `${d} vs ${values[i]}`,
      ),
    );
    m.estimator.dispose();
  });

  test('train without --sims simulates the same data as simulate with the same seed', async () => {
    await runCaptured(train, [
      '--task',
      'gaussian_linear',
      '--n',
      '300',
      '--estimator',
      'gaussian',
      '--hidden',
      '8',
      '--max-epochs',
      '2',
      '--seed',
      '3',
      '--out',
      p('direct.json'),
    ]);
    await runCaptured(train, [
      '--sims',
      p('sims.json'),
      '--estimator',
      'gaussian',
      '--hidden',
      '8',
      '--max-epochs',
      '2',
      '--seed',
      '3',
      '--out',
      p('viasims.json'),
    ]);
    const a = loadModel(p('direct.json'));
    const b = loadModel(p('viasims.json'));
    assert.deepEqual(a.estimator.getWeights(), b.estimator.getWeights());
    a.estimator.dispose();
    b.estimator.dispose();
  });
});

describe('sample and logprob restricted to the prior support (two_moons, box [-1, 1]^2)', () => {
  // A diagonal Gaussian trained for two epochs puts about 5% of its mass outside the box here.
  const XM = JSON.stringify([0.1, -0.3]);
  const inBox = (row: number[]): boolean => row.every((v) => v >= -1 && v <= 1);
  const readRows = (file: string): number[][] =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((r) => r.split(',').map(Number));

  before(async () => {
    const argv = '--task two_moons --n 300 --estimator gaussian --hidden 8 --max-epochs 2 --seed 5';
    const tr = await runCaptured(train, [...argv.split(' '), '--out', p('tm.json')]);
    assert.equal(tr.code, 0);
  });

  test('sample redraws what falls outside the support; --leakage keep does not', async () => {
    await runCaptured(sample, [
      '--model',
      p('tm.json'),
      '--x',
      XM,
      '--n',
      '2000',
      '--out',
      p('tm-r.csv'),
    ]);
    const args = ['--model', p('tm.json'), '--x', XM, '--n', '2000', '--leakage', 'keep'];
    await runCaptured(sample, [...args, '--out', p('tm-k.csv')]);
    const rejected = readRows(p('tm-r.csv'));
    const kept = readRows(p('tm-k.csv'));
    assert.equal(rejected.length, 2000);
    assert.equal(kept.length, 2000);
    assert.ok(rejected.every(inBox));
    const outside = kept.filter((r) => !inBox(r)).length;
    assert.ok(outside > 50, `${outside} of 2000 unrestricted draws outside the box (about 5%)`);
    // The rejection sampler's rows are the unrestricted sampler's inside the box, in order.
    assert.deepEqual(rejected.slice(0, 500), kept.filter(inBox).slice(0, 500));
  });

  test('a model of a task robustsbi does not know is sampled only with --leakage keep', async () => {
    const doc = JSON.parse(readFileSync(p('tm.json'), 'utf8')) as { task: string };
    writeFileSync(p('tm-unknown.json'), JSON.stringify({ ...doc, task: 'moons_of_mars' }));
    const argv = ['--model', p('tm-unknown.json'), '--x', XM];
    for (const cmd of [sample, logprob]) {
      const extra = cmd === logprob ? ['--theta', p('tm-k.csv')] : ['--n', '10'];
      await assert.rejects(
        cmd.run([...argv, ...extra, '--out', p('o-unknown.csv')]),
        (e: unknown) =>
          e instanceof UserError &&
          /is of the task "moons_of_mars", which robustsbi does not know, so the support of its prior is unknown; use --leakage keep/.test(
            e.message,
          ),
      );
    }
    assert.ok(!existsSync(p('o-unknown.csv')));
    await runCaptured(sample, [...argv, '--n', '10', '--leakage', 'keep', '--out', p('tm-u.csv')]);
    assert.equal(readRows(p('tm-u.csv')).length, 10);
  });

  test('logprob is the density of those draws: -Infinity outside, integrating to 1 over the box', async () => {
    // Midpoints of a 100 x 100 grid over the box, then two points outside it.
    const h = 0.02;
    const rows = ['a,b'];
    for (let i = 0; i < 100; i++)
      for (let j = 0; j < 100; j++) rows.push(`${-1 + (i + 0.5) * h},${-1 + (j + 0.5) * h}`);
    rows.push('1.5,0', '0,-1.01');
    writeFileSync(p('grid.csv'), `${rows.join('\n')}\n`);
    const base = ['--model', p('tm.json'), '--x', XM, '--theta', p('grid.csv')];
    await runCaptured(logprob, [...base, '--out', p('lp-r.txt')]);
    await runCaptured(logprob, [...base, '--leakage', 'keep', '--out', p('lp-k.txt')]);
    const read = (f: string): number[] => readFileSync(f, 'utf8').trim().split('\n').map(Number);
    const restricted = read(p('lp-r.txt'));
    const plain = read(p('lp-k.txt'));
    assert.equal(restricted.length, 10_002);
    assert.deepEqual(restricted.slice(10_000), [-Infinity, -Infinity]);
    assert.ok(plain.slice(10_000).every(Number.isFinite));
    // Inside, the two differ by one constant, -log m, m the mass inside the box.
    const logM = plain[0]! - restricted[0]!;
    assert.ok(logM < -0.05, `log m = ${logM}`);
    for (let i = 0; i < 10_000; i++)
      assert.ok(Math.abs(plain[i]! - restricted[i]! - logM) < 1e-4, `row ${i}`);
    let integral = 0;
    for (let i = 0; i < 10_000; i++) integral += Math.exp(restricted[i]!) * h * h;
    // m comes from 10,000 draws: its relative standard error is sqrt((1 - m) / (10,000 m)).
    const m = Math.exp(logM);
    const relSe = Math.sqrt((1 - m) / (10_000 * m));
    assert.ok(Math.abs(integral - 1) < 5 * relSe + 2e-3, `integral ${integral}, m ${m}`);
  });
});

describe('results on stdout through the entry point', () => {
  test('sample and logprob print to stdout without --out', () => {
    const s = cli(['sample', '--model', p('model.json'), '--x', X, '--n', '25', '--seed', '1']);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(s.stdout, readFileSync(p('samples.csv'), 'utf8'));
    const l = cli(['logprob', '--model', p('model.json'), '--x', X, '--theta', p('samples.csv')]);
    assert.equal(l.status, 0, l.stderr);
    assert.equal(l.stdout, readFileSync(p('lp.txt'), 'utf8'));
  });
});

describe('user mistakes: one sentence, non-zero exit, nothing written', () => {
  test('in process: each mistake is a UserError naming the problem', async () => {
    writeFileSync(p('garbage.json'), 'not json at all');
    const cases: [typeof train, string[], RegExp][] = [
      [
        simulate,
        ['--task', 'gaussian_lineaar', '--n', '10', '--out', p('o1.json')],
        /Unknown task "gaussian_lineaar"/,
      ],
      [
        simulate,
        ['--task', 'gaussian_linear', '--n', '1e', '--out', p('o2.json')],
        /--n must be an integer/,
      ],
      [
        simulate,
        ['--task', 'gaussian_linear', '--n', '10', '--out', join(dir, 'no', 'such', 'o.json')],
        /does not exist/,
      ],
      [
        train,
        ['--task', 'gaussian_linear', '--estimator', 'realnvp', '--n', '10', '--out', p('o3.json')],
        /Unknown estimator "realnvp"/,
      ],
      [
        train,
        ['--task', 'gaussian_linear', '--n', '100', '--lr', 'fast', '--out', p('o4.json')],
        /--lr must be a positive number/,
      ],
      [
        train,
        ['--task', 'gaussian_linear', '--n', '100', '--bins', '4', '--out', p('o5.json')],
        /--bins applies to nsf only/,
      ],
      [
        train,
        ['--sims', p('garbage.json'), '--out', p('o6.json')],
        /simulation file .*garbage\.json is not valid JSON/,
      ],
      [
        train,
        ['--task', 'gaussian_linear', '--n', '10', '--epochs', '3', '--out', p('o7.json')],
        /Unknown option "--epochs" for "robustsbi train"/,
      ],
      [
        sample,
        ['--model', p('model.json'), '--x', '[1,2,3]', '--out', p('o8.csv')],
        /--x has 3 values, but the model expects 10/,
      ],
      [
        sample,
        ['--model', p('model.json'), '--x', '[1,2,', '--out', p('o9.csv')],
        /--x must be a JSON list/,
      ],
      [
        sample,
        ['--model', p('garbage.json'), '--x', X, '--out', p('o10.csv')],
        /model file .*garbage\.json is not valid JSON/,
      ],
      [
        logprob,
        ['--model', p('model.json'), '--x', X, '--theta', p('garbage.json')],
        /theta file .* has 1 columns/,
      ],
      [
        sample,
        ['--model', p('model.json'), '--x', X, '--leakage', 'drop', '--out', p('o11.csv')],
        /--leakage must be reject or keep \(got "drop"\)/,
      ],
    ];
    for (const [cmd, argv, pattern] of cases) {
      await assert.rejects(
        cmd.run(argv),
        (e: unknown) =>
          e instanceof UserError &&
          pattern.test(e.message) &&
          !e.message.includes('\n') &&
          e.message.endsWith('.'),
        argv.join(' '),
      );
    }
    const written = readdirSync(dir).filter((f) => /^o\d+\./.test(f) || f.endsWith('.tmp'));
    assert.deepEqual(written, []);
  });

  test('through the robustsbi entry point: exit code 2 and a single stderr line', () => {
    const cases: [string[], RegExp][] = [
      [['train', '--task', 'nope', '--n', '10', '--out', p('e1.json')], /Unknown task "nope"/],
      [
        ['sample', '--model', p('model.json'), '--x', '[1]', '--out', p('e2.csv')],
        /--x has 1 values, but the model expects 10/,
      ],
      [
        ['logprob', '--model', p('model.json'), '--x', X, '--theta', p('nothing.csv')],
        /theta file .*nothing\.csv does not exist/,
      ],
    ];
    for (const [argv, pattern] of cases) {
      const r = cli(argv);
      assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^robustsbi: .+\.$/);
      assert.match(lines[0]!, pattern);
      assert.equal(r.stdout, '');
    }
    assert.ok(!existsSync(p('e1.json')) && !existsSync(p('e2.csv')));
  });
});
