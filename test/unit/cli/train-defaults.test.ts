// What `robustsbi train` resolves to when its options leave the settings unset: robustsbi's
// accurate recipe (sbi's NPE defaults on robustsbi's MAF, trained by the fused step) by default,
// RABI's architecture and schedule under --preset rabi (the sweeps' defaults, which
// test/unit/sweeps/spec.test.ts keeps equal to DEFAULT_NPE_HYPERPARAMETERS, are not these).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command as train } from '../../../cli/commands/train.js';
import { UserError } from '../../../cli/errors.js';
import { initBackend } from '../../../sbi/backend.js';
import { MAF_DEFAULTS } from '../../../sbi/estimators/maf.js';
import { loadModel } from '../../../sbi/model-file.js';
import { XTransformedEstimator } from '../../../sbi/x-transform.js';
import { DEFAULT_NPE_HYPERPARAMETERS } from '../../../sbi/npe-hyperparameters.js';
import {
  DEFAULT_TRAIN_ESTIMATOR,
  SBI_MADE,
  CLOSED_FORM_MAX_XDIM,
  SMALL_BUDGET,
  TRAIN_HYPERPARAMETERS,
  candidateEstimator,
  closedFormFits,
  trainCandidates,
  trainDefaults,
} from '../../../sbi/train-defaults.js';

const dir = mkdtempSync(join(tmpdir(), 'robustsbi-train-defaults-'));
before(async () => {
  process.env.ROBUSTSBI_BACKEND = 'cpu';
  await initBackend('cpu');
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function captured(argv: string[]): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    assert.equal(await train.run(argv), 0);
    return lines.join('\n');
  } finally {
    console.log = log;
  }
}

describe('trainDefaults', () => {
  test("robustsbi: a MAF of 5 transforms of tanh MADEs of [50, 50] on sbi NPE's schedule, annealed", () => {
    assert.equal(DEFAULT_TRAIN_ESTIMATOR, 'maf');
    const d = trainDefaults('robustsbi', 'maf');
    assert.deepEqual(d.architecture, { hidden: [50, 50], numTransforms: 5, activation: 'tanh' });
    assert.deepEqual(d.hyperparameters, {
      ...DEFAULT_NPE_HYPERPARAMETERS,
      learningRate: 5e-4,
      batchSize: 200,
      clipNorm: 5,
      patience: 20,
      stopRule: 'sbi',
      maxEpochs: 2000,
      anneals: 2,
      annealPatience: 10,
    });
  });

  test('other estimators keep their own architecture but take the schedule', () => {
    const d = trainDefaults('robustsbi', 'nsf');
    assert.deepEqual(d.architecture, {});
    assert.deepEqual(d.hyperparameters, { ...TRAIN_HYPERPARAMETERS });
  });

  test('rabi: the paper schedule and architecture, as the sweeps use', () => {
    const d = trainDefaults('rabi', 'maf');
    assert.deepEqual(d.architecture, {});
    assert.deepEqual(d.hyperparameters, { ...DEFAULT_NPE_HYPERPARAMETERS });
  });

  test("candidates: the default MAF first, then three tanh layers with nflows' scale and init", () => {
    assert.deepEqual(trainCandidates('robustsbi', 'maf'), [
      { hidden: [50, 50], numTransforms: 5, activation: 'tanh' },
      {
        hidden: [50, 50, 50],
        numTransforms: 5,
        activation: 'tanh',
        affine: 'nflows',
        biasInit: 'torch',
        inputFanIn: 'separate',
      },
    ]);
    assert.deepEqual(trainCandidates('robustsbi', 'nsf'), [{}]);
    assert.deepEqual(trainCandidates('rabi', 'maf'), [{}]);
    (trainCandidates('robustsbi', 'maf')[1]!.hidden as number[]).push(7);
    assert.deepEqual(trainCandidates('robustsbi', 'maf')[1]!.hidden, [50, 50, 50]);
  });

  test("below 10,000 simulations: two-layer MADEs with nflows' init, with and without its context layer, and the linear-Gaussian fit", () => {
    const n2 = {
      hidden: [50, 50],
      numTransforms: 5,
      activation: 'tanh',
      affine: 'nflows',
      biasInit: 'torch',
      inputFanIn: 'separate',
    };
    const small = [n2, { ...n2, contextLayer: 'tanh' }, { estimator: 'linear_gaussian' }];
    assert.equal(SMALL_BUDGET, 10_000);
    assert.deepEqual(trainCandidates('robustsbi', 'maf', { n: 9999 }), small);
    assert.deepEqual(
      trainCandidates('robustsbi', 'maf', { n: 10_000 }),
      trainCandidates('robustsbi', 'maf'),
    );
    // An ensemble's members are MAFs: no closed-form candidate.
    assert.deepEqual(
      trainCandidates('robustsbi', 'maf', { n: 300, closedForm: false }),
      small.slice(0, 2),
    );
    assert.deepEqual(trainCandidates('robustsbi', 'nsf', { n: 300 }), [{}]);
    assert.deepEqual(trainCandidates('rabi', 'maf', { n: 300 }), [{}]);
    assert.deepEqual(candidateEstimator(small[2]!, 'maf'), {
      estimator: 'linear_gaussian',
      architecture: {},
    });
    assert.deepEqual(candidateEstimator(n2, 'maf'), { estimator: 'maf', architecture: n2 });
    (trainCandidates('robustsbi', 'maf', { n: 300 })[0]!.hidden as number[]).push(7);
    assert.deepEqual(trainCandidates('robustsbi', 'maf', { n: 300 })[0]!.hidden, [50, 50]);
  });

  test('the closed form competes only on x it reads directly, not too wide, with rows to fit', () => {
    assert.equal(closedFormFits({ name: 'gaussian_linear', xDim: 10 }, 1000), true);
    // An embedding net (vae, hodgkin_huxley, spatial_sir, pyloric) would need training.
    assert.equal(closedFormFits({ name: 'vae', xDim: 10 }, 1000), false);
    assert.equal(
      closedFormFits({ name: 'gaussian_linear', xDim: CLOSED_FORM_MAX_XDIM }, 5000),
      true,
    );
    assert.equal(
      closedFormFits({ name: 'gaussian_linear', xDim: CLOSED_FORM_MAX_XDIM + 1 }, 5000),
      false,
    );
    // 11 coefficients per theta dimension for 10-dimensional x: more than twice that many rows.
    assert.equal(closedFormFits({ name: 'gaussian_linear', xDim: 10 }, 22), false);
    assert.equal(closedFormFits({ name: 'gaussian_linear', xDim: 10 }, 23), true);
  });

  test("sbiMade: sbi's MADE exactly as a third MAF candidate, under robustsbi's preset only", () => {
    const sbiMade = {
      ...trainCandidates('robustsbi', 'maf')[1]!,
      contextLayer: 'tanh',
      degrees: 'nflows',
    };
    assert.deepEqual(SBI_MADE, sbiMade);
    assert.deepEqual(trainCandidates('robustsbi', 'maf', { sbiMade: true }), [
      ...trainCandidates('robustsbi', 'maf'),
      sbiMade,
    ]);
    assert.deepEqual(trainCandidates('robustsbi', 'nsf', { sbiMade: true }), [{}]);
    assert.deepEqual(trainCandidates('rabi', 'maf', { sbiMade: true }), [{}]);
    (trainCandidates('robustsbi', 'maf', { sbiMade: true })[2]!.hidden as number[]).push(7);
    assert.deepEqual(
      trainCandidates('robustsbi', 'maf', { sbiMade: true })[2]!.hidden,
      [50, 50, 50],
    );
  });

  test('a caller cannot change the defaults through what it was given', () => {
    const d = trainDefaults('robustsbi', 'maf');
    (d.architecture.hidden as number[]).push(7);
    d.hyperparameters.batchSize = 1;
    assert.deepEqual(trainDefaults('robustsbi', 'maf').architecture.hidden, [50, 50]);
    assert.equal(trainDefaults('robustsbi', 'maf').hyperparameters.batchSize, 200);
  });
});

describe('robustsbi train with no options', () => {
  // --max-epochs only keeps a test short; every other setting is the command's default. 10,000
  // simulations: the budget from which the default MAF's candidates are [50, 50] and three layers.
  const shortTwoMoons = ['--task', 'two_moons', '--n', '10000', '--max-epochs', '2'];

  test('a bad --activation, or one for an estimator without a MADE, is one sentence', async () => {
    const base = ['--task', 'two_moons', '--n', '300', '--out', join(dir, 'a.json')];
    await assert.rejects(
      () => train.run([...base, '--activation', 'gelu']),
      (e: Error) =>
        e instanceof UserError && /--activation must be relu or tanh, got "gelu"/.test(e.message),
    );
    await assert.rejects(
      () => train.run([...base, '--estimator', 'gaussian', '--activation', 'tanh']),
      (e: Error) =>
        e instanceof UserError && /--activation applies to maf, nsf and/.test(e.message),
    );
  });

  test('a bad --stop-rule, --anneals, --anneal-factor or --anneal-patience is one sentence naming the option', async () => {
    const out = join(dir, 'x.json');
    const base = ['--task', 'two_moons', '--n', '300', '--out', out];
    const cases: [string[], RegExp][] = [
      [['--stop-rule', 'x'], /--stop-rule must be rabi or sbi, got "x"/],
      [['--anneals', '1.5'], /--anneals must be an integer >= 0, got "1.5"/],
      [['--anneal-factor', '1.5'], /--anneal-factor must be a number between 0 and 1, got "1.5"/],
      [['--anneal-patience', '1.5'], /--anneal-patience must be an integer >= 0, got "1.5"/],
    ];
    for (const [args, message] of cases)
      await assert.rejects(
        () => train.run([...base, ...args]),
        (e: Error) => e instanceof UserError && message.test(e.message),
      );
    assert.ok(!existsSync(out));
  });

  // lr 0.05, patience 0 before and after the anneal: every run stops within a few epochs and
  // anneals once.
  const annealOnce = [
    ...['--task', 'two_moons', '--n', '10000', '--lr', '0.05'],
    ...['--patience', '0', '--min-epochs', '0', '--anneals', '1', '--max-epochs', '60'],
    ...['--anneal-patience', '0'],
  ];

  test('--anneals goes on from the best state at a cut rate and is recorded', async () => {
    const out = join(dir, 'annealed.json');
    const stdout = await captured([
      ...annealOnce,
      ...['--hidden', '8', '--anneal-factor', '0.2', '--out', out],
    ]);
    assert.match(stdout, /epochs \((early-stopping|max-epochs) after 1 anneal\)/);
    const m = loadModel(out);
    try {
      assert.equal(m.training.anneals, 1);
      assert.equal(m.training.annealFactor, 0.2);
      assert.equal(m.training.annealPatience, 0);
    } finally {
      m.estimator.dispose();
    }
  });

  test('only the kept candidate anneals, and ends as its training alone with the anneals', async () => {
    // Seed 5 keeps [50, 50], which an option can pin, so the pinned run is the one-candidate reference.
    const chosenFile = join(dir, 'chosen-annealed.json');
    const pinnedFile = join(dir, 'pinned-annealed.json');
    const chosen = await captured([...annealOnce, '--seed', '5', '--out', chosenFile]);
    const pinned = await captured([
      ...annealOnce,
      ...['--seed', '5', '--hidden', '50,50', '--out', pinnedFile],
    ]);
    assert.match(chosen, /train: chose \[50, 50\] by validation NLL/, 'seed 5 keeps [50, 50]');
    assert.match(chosen, /epochs \(early-stopping after 1 anneal\)/);
    // The choice is printed on the scores before the anneals: above the kept run's final best.
    const before = Number(/by validation NLL \[50, 50\] (\S+),/.exec(chosen)![1]);
    const after = Number(/best validation NLL (\S+) at epoch/.exec(chosen)![1]);
    assert.ok(after < before, `annealed ${after} against ${before} at the choice`);
    const a = loadModel(chosenFile);
    const b = loadModel(pinnedFile);
    try {
      assert.equal(a.summary.anneals, 1);
      assert.deepEqual(a.summary.epochs, b.summary.epochs);
      assert.equal(a.summary.bestValLoss, b.summary.bestValLoss);
      assert.deepEqual(a.estimator.config, b.estimator.config);
      assert.deepEqual(a.estimator.getWeights(), b.estimator.getWeights());
    } finally {
      a.estimator.dispose();
      b.estimator.dispose();
    }
    assert.match(pinned, /epochs \(early-stopping after 1 anneal\)/);
  });

  test('trains and records the robustsbi recipe, on the fused MAF step', async () => {
    const out = join(dir, 'default.json');
    const stdout = await captured([...shortTwoMoons, '--out', out]);
    assert.match(stdout, /maf on two_moons .*\(fused wasm step\)/);
    // Both candidates trained on the same split; the file holds the one with the lower loss.
    const chose =
      /train: chose (.+?) by validation NLL \[50, 50\] (\S+), \[50, 50, 50\] with nflows' scale and nflows' initialization (\S+)$/m.exec(
        stdout,
      );
    assert.ok(chose, stdout);
    const [two, three] = [Number(chose[2]), Number(chose[3])];
    const deeper = three < two;
    assert.equal(
      chose[1],
      deeper ? "[50, 50, 50] with nflows' scale and nflows' initialization" : '[50, 50]',
    );
    const m = loadModel(out);
    try {
      assert.equal(m.estimator.kind, 'maf');
      assert.deepEqual(m.estimator.config.hidden, deeper ? [50, 50, 50] : [50, 50]);
      assert.equal(m.estimator.config.affine, deeper ? 'nflows' : undefined);
      assert.equal(m.estimator.config.biasInit, deeper ? 'torch' : undefined);
      assert.equal(m.estimator.config.inputFanIn, deeper ? 'separate' : undefined);
      assert.equal(m.estimator.config.numTransforms, 5);
      assert.equal(m.estimator.config.activation, 'tanh');
      assert.equal(m.training.preset, 'robustsbi');
      assert.equal(m.training.batchSize, 200);
      assert.equal(m.training.learningRate, 5e-4);
      assert.equal(m.training.patience, 20);
      assert.equal(m.training.stopRule, 'sbi');
      assert.equal(m.training.clipNorm, 5);
      assert.equal(m.training.maxEpochs, 2);
      assert.equal(m.training.minEpochs, 5);
      assert.equal(m.training.valSize, 512);
      assert.equal(m.training.anneals, 2);
      assert.equal(m.training.annealPatience, 10);
    } finally {
      m.estimator.dispose();
    }
  });

  test('below 10,000 simulations the linear-Gaussian fit competes, and is kept where its NLL is lowest', async () => {
    // gaussian_linear's posterior is linear-Gaussian: the closed form wins on 900 training rows.
    const out = join(dir, 'linear-gaussian.json');
    const stdout = await captured([
      ...['--task', 'gaussian_linear', '--n', '1000', '--max-epochs', '5', '--out', out],
    ]);
    const line = /^train: chose (.+?) by validation NLL (.+)$/m.exec(stdout);
    assert.ok(line, stdout);
    assert.equal(line[1], 'the linear-Gaussian fit');
    const scores = [...line[2]!.matchAll(/ (-?\d+\.\d{4})(?:, |$)/g)].map((m) => Number(m[1]));
    assert.equal(scores.length, 3);
    assert.ok(line[2]!.endsWith(`the linear-Gaussian fit ${scores[2]!.toFixed(4)}`));
    assert.ok(scores[2]! < Math.min(scores[0]!, scores[1]!), line[2]);
    assert.match(
      stdout,
      /train: linear_gaussian on gaussian_linear \(900 train \/ 100 validation.*: 0 epochs \(closed-form\)/,
    );
    const m = loadModel(out);
    try {
      assert.equal(m.estimator.kind, 'linear_gaussian');
      assert.equal(m.training.estimator, 'linear_gaussian');
      assert.equal(m.summary.epochs, 0);
      assert.ok(Math.abs(m.summary.bestValLoss - scores[2]!) < 1e-4);
    } finally {
      m.estimator.dispose();
    }
  });

  test('an embedded task below 10,000 simulations trains its MAF candidates without the closed form', async () => {
    const stdout = await captured([
      ...['--task', 'vae', '--n', '300', '--max-epochs', '1', '--out', join(dir, 'vae.json')],
    ]);
    const line = /^train: chose (.+?) by validation NLL (.+)$/m.exec(stdout);
    assert.ok(line, stdout);
    assert.doesNotMatch(line[2]!, /linear-Gaussian/);
    assert.match(stdout, /train: maf on vae/);
  });

  test('--anneals 0 records neither anneals nor their patience', async () => {
    const out = join(dir, 'no-anneals.json');
    await captured([...shortTwoMoons, '--hidden', '8', '--anneals', '0', '--out', out]);
    const m = loadModel(out);
    try {
      assert.equal(m.training.anneals, undefined);
      assert.equal(m.training.annealPatience, undefined);
    } finally {
      m.estimator.dispose();
    }
  });

  test('an architecture option pins the MAF: one training, no choice', async () => {
    const out = join(dir, 'pinned.json');
    const stdout = await captured([...shortTwoMoons, '--hidden', '50,50', '--out', out]);
    assert.doesNotMatch(stdout, /chose/);
    const m = loadModel(out);
    try {
      assert.deepEqual(m.estimator.config.hidden, [50, 50]);
      assert.equal(m.estimator.config.activation, 'tanh');
      assert.equal(m.estimator.config.affine, undefined);
    } finally {
      m.estimator.dispose();
    }
  });

  test("--sbi-made trains sbi's MADE as a third candidate on the same split", async () => {
    const out = join(dir, 'sbi-made.json');
    const stdout = await captured([...shortTwoMoons, '--sbi-made', '--out', out]);
    const sbiMade =
      "[50, 50, 50] with nflows' scale and nflows' context layer and nflows' degrees and nflows' initialization";
    const line = /^train: chose (.+?) by validation NLL (.+)$/m.exec(stdout);
    assert.ok(line, stdout);
    const scores = [...line[2]!.matchAll(/(\[[^\]]+\][^,]*?) (-?[\d.]+)(?:, |$)/g)].map(
      (m) => [m[1]!, Number(m[2])] as const,
    );
    assert.deepEqual(
      scores.map(([name]) => name),
      ['[50, 50]', "[50, 50, 50] with nflows' scale and nflows' initialization", sbiMade],
    );
    // The file holds the candidate with the lowest validation NLL.
    const kept = scores.reduce((a, b) => (b[1] < a[1] ? b : a));
    assert.equal(line[1], kept[0]);
    const m = loadModel(out);
    try {
      assert.equal(m.estimator.config.contextLayer, kept[0] === sbiMade ? 'tanh' : undefined);
      assert.equal(m.estimator.config.degrees, kept[0] === sbiMade ? 'nflows' : undefined);
    } finally {
      m.estimator.dispose();
    }
  });

  test('--sbi-made is refused where there is no choice to add it to, in one sentence', async () => {
    const base = ['--task', 'two_moons', '--n', '300', '--sbi-made', '--out', join(dir, 'z.json')];
    const refused = (argv: string[], message: RegExp) =>
      assert.rejects(
        train.run([...base, ...argv]),
        (e: unknown) => e instanceof UserError && message.test(e.message),
      );
    await refused(['--estimator', 'nsf'], /--sbi-made applies to maf only, not to nsf/);
    await refused(['--preset', 'rabi'], /--preset rabi trains RABI's one/);
    await refused(['--hidden', '50,50'], /pin one architecture/);
    await refused(['--defense', 'noise'], /pin one architecture/);
    assert.equal(existsSync(join(dir, 'z.json')), false);
  });

  test('--preset rabi trains with RABI architecture and schedule', async () => {
    const out = join(dir, 'rabi.json');
    await captured([
      '--task',
      'two_moons',
      '--n',
      '300',
      '--preset',
      'rabi',
      '--max-epochs',
      '2',
      '--out',
      out,
    ]);
    const m = loadModel(out);
    try {
      assert.deepEqual(m.estimator.config.hidden, MAF_DEFAULTS.hidden);
      assert.equal(m.estimator.config.numTransforms, MAF_DEFAULTS.numTransforms);
      assert.equal(m.estimator.config.activation ?? 'relu', 'relu');
      assert.equal(m.training.batchSize, DEFAULT_NPE_HYPERPARAMETERS.batchSize);
      assert.equal(m.training.learningRate, DEFAULT_NPE_HYPERPARAMETERS.learningRate);
      assert.equal(m.training.patience, DEFAULT_NPE_HYPERPARAMETERS.patience);
      assert.equal(m.training.clipNorm, DEFAULT_NPE_HYPERPARAMETERS.clipNorm);
      assert.equal(m.training.stopRule, undefined);
    } finally {
      m.estimator.dispose();
    }
  });

  test('log-normal x is logged where the probe prefers it, and the file takes raw x', async () => {
    const out = join(dir, 'sir-log.json');
    const stdout = await captured([
      '--task',
      'sir',
      '--n',
      '300',
      '--max-epochs',
      '2',
      '--out',
      out,
    ]);
    const probe =
      /train: x -> log x on every dimension: log x gains (\S+) nats of a linear-Gaussian probe's validation NLL, over the 0\.400 it needs \(x (\S+), log x (\S+)\)/.exec(
        stdout,
      );
    assert.ok(probe, stdout);
    assert.ok(Number(probe[1]) > 0.4);
    assert.ok(Math.abs(Number(probe[2]) - Number(probe[3]) - Number(probe[1])) < 2e-3);
    const m = loadModel(out);
    try {
      assert.ok(m.estimator instanceof XTransformedEstimator);
      const kinds = (m.estimator.config.xTransform as { kinds: string[] }).kinds;
      assert.equal(kinds.length, m.estimator.xDim);
      assert.ok(kinds.every((k) => k === 'log'));
    } finally {
      m.estimator.dispose();
    }
    const kept = join(dir, 'sir-none.json');
    const plain = await captured([
      '--task',
      'sir',
      '--n',
      '300',
      '--max-epochs',
      '2',
      '--hidden',
      '8',
      '--x-transform',
      'none',
      '--out',
      kept,
    ]);
    assert.doesNotMatch(plain, /log x/);
    const k = loadModel(kept);
    try {
      assert.equal(k.estimator.config.xTransform, undefined);
    } finally {
      k.estimator.dispose();
    }
  });

  test('--x-transform: a bad mode, log with nothing positive, or with a defense is one sentence', async () => {
    const base = ['--n', '300', '--max-epochs', '2', '--out', join(dir, 'never.json')];
    await assert.rejects(
      train.run(['--task', 'sir', '--x-transform', 'sqrt', ...base]),
      (e: unknown) =>
        e instanceof UserError && /must be auto, log or none, got "sqrt"/.test(e.message),
    );
    await assert.rejects(
      train.run(['--task', 'sir', '--x-transform', 'log', '--defense', 'noise', ...base]),
      (e: unknown) =>
        e instanceof UserError && /does not combine with --defense noise/.test(e.message),
    );
    await assert.rejects(
      train.run(['--task', 'gaussian_linear', '--x-transform', 'log', ...base]),
      (e: unknown) =>
        e instanceof UserError && /positive in every training row, and none is/.test(e.message),
    );
    assert.ok(!existsSync(join(dir, 'never.json')));
  });

  test('explicit options still win over the defaults', async () => {
    const out = join(dir, 'explicit.json');
    await captured([
      '--task',
      'two_moons',
      '--n',
      '300',
      '--hidden',
      '16',
      '--transforms',
      '2',
      '--batch-size',
      '64',
      '--lr',
      '0.002',
      '--clip',
      'inf',
      '--stop-rule',
      'rabi',
      '--activation',
      'relu',
      '--max-epochs',
      '2',
      '--out',
      out,
    ]);
    const m = loadModel(out);
    try {
      assert.deepEqual(m.estimator.config.hidden, [16]);
      // ReLU, the MADE's own default, is recorded as absent.
      assert.equal(m.estimator.config.activation, undefined);
      assert.equal(m.estimator.config.numTransforms, 2);
      assert.equal(m.training.batchSize, 64);
      assert.equal(m.training.learningRate, 0.002);
      assert.equal(m.training.clipNorm, Infinity);
      assert.equal(m.training.patience, 20);
      // RABI's counter is the library's default, recorded as unset (as a sweep's model file).
      assert.equal(m.training.stopRule, undefined);
    } finally {
      m.estimator.dispose();
    }
  });
});
