import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { countTrials, expandSweep } from '../../../sweeps/expand.js';
import {
  ARCHITECTURE_KEYS,
  ATTACK_NAMES,
  DEFENSE_NAMES,
  EMBEDDINGS,
  ESTIMATOR_KINDS,
  OBJECTIVES,
  TASK_NAMES,
} from '../../../sweeps/names.js';
import {
  DEFENSE_GRIDS,
  MAX_EVALUATIONS,
  MAX_SPEC_BYTES,
  MAX_TRIALS,
} from '../../../sweeps/schema.js';
import { parseSweepSpec, SpecError, validateSweepSpec } from '../../../sweeps/validate.js';
import { ATTACKS, DISCREPANCIES } from '../../../sbi/attacks/index.js';
import {
  DEFENSE_NAMES as SBI_DEFENSES,
  DEFENSE_TAKES,
  defenseDefaults,
} from '../../../sbi/defenses/index.js';
import {
  defaultEstimatorConfig,
  EMBEDDINGS as SBI_EMBEDDINGS,
  ESTIMATOR_KINDS as SBI_KINDS,
} from '../../../sbi/estimators/index.js';
import {
  DEFAULT_NPE_HYPERPARAMETERS,
  STOP_RULES as SBI_STOP_RULES,
} from '../../../sbi/npe-hyperparameters.js';
import { PRESETS as SBI_PRESETS, PRESET_SETTINGS } from '../../../sbi/presets.js';
import { PRESETS, RABI_VALIDATION_ROWS, STOP_RULES } from '../../../sweeps/names.js';
import { simulationIdOf, trainingRows } from '../../../sweeps/expand.js';
import { getTask, TASK_NAMES as SBI_TASKS } from '../../../sbi/tasks/index.js';
import { DIAGNOSTIC_METRICS } from '../../../sbi/diagnostics.js';
import { METRICS, REFERENCE_POSTERIOR_TASKS } from '../../../sweeps/names.js';
import { baseSpec, exampleSpecs, root } from './fixtures.js';

/** Asserts that `fn` throws a SpecError whose path is `path` and whose message matches `re`. */
function rejects(fn: () => unknown, path: string, re?: RegExp): SpecError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SpecError, `expected a SpecError, got ${String(caught)}`);
  assert.equal(caught.path, path, caught.message);
  assert.ok(caught.message.startsWith(`${path}: `), caught.message);
  assert.ok(!caught.message.includes('\n'), 'one line');
  if (re) assert.match(caught.message, re);
  return caught;
}

const withSpec = (patch: Record<string, unknown>): Record<string, unknown> => ({
  ...baseSpec(),
  ...patch,
});

describe('names agree with sbi/', () => {
  test('tasks, estimators and attacks', () => {
    assert.deepEqual([...TASK_NAMES], [...SBI_TASKS]);
    // Every kind but the closed-form linear-Gaussian one, which takes no defense to sweep.
    assert.deepEqual(
      [...ESTIMATOR_KINDS],
      SBI_KINDS.filter((k) => k !== 'linear_gaussian'),
    );
    assert.deepEqual([...ATTACK_NAMES], [...ATTACKS]);
    assert.deepEqual([...OBJECTIVES], [...DISCREPANCIES]);
  });

  test('metrics and the tasks with a reference posterior', () => {
    assert.deepEqual([...METRICS], [...DIAGNOSTIC_METRICS]);
    assert.deepEqual(
      [...REFERENCE_POSTERIOR_TASKS],
      SBI_TASKS.filter((t) => getTask(t).referencePosterior !== undefined),
    );
  });

  test('architecture keys are sbi default keys plus the embedding choice', () => {
    for (const kind of ESTIMATOR_KINDS)
      assert.deepEqual(
        [...ARCHITECTURE_KEYS[kind]].sort(),
        [...Object.keys(defaultEstimatorConfig(kind)), 'embedding'].sort(),
        kind,
      );
    assert.deepEqual([...EMBEDDINGS], [...SBI_EMBEDDINGS]);
  });

  test('defense names, the grids each takes and their defaults agree with sbi/defenses', () => {
    assert.deepEqual([...DEFENSE_NAMES], [...SBI_DEFENSES]);
    for (const name of DEFENSE_NAMES) {
      assert.equal(DEFENSE_GRIDS[name].betas !== 'forbidden', DEFENSE_TAKES[name].beta, name);
      assert.equal(
        DEFENSE_GRIDS[name].trainEps !== 'forbidden',
        DEFENSE_TAKES[name].trainEps,
        name,
      );
      // A default grid here is the single value sbi fills in.
      const sbi = defenseDefaults(name);
      const g = DEFENSE_GRIDS[name];
      if (Array.isArray(g.betas)) assert.deepEqual(g.betas, [sbi.beta], name);
      if (Array.isArray(g.trainEps)) assert.deepEqual(g.trainEps, [sbi.trainEps], name);
    }
  });

  test("the rabi preset: sbi's presets, validation rows beside the budget, its own simulations", () => {
    assert.deepEqual([...PRESETS], [...SBI_PRESETS]);
    assert.equal(RABI_VALIDATION_ROWS, PRESET_SETTINGS.rabi.extraValidationRows);
    const plain = validateSweepSpec(withSpec({ budgets: [1000] }));
    const rabi = validateSweepSpec(withSpec({ budgets: [1000], training: { preset: 'rabi' } }));
    assert.equal(trainingRows(1000, plain.training), 1000);
    assert.equal(trainingRows(1000, rabi.training), 1512);
    assert.equal(trainingRows(1000, { ...rabi.training, valSize: 100 }), 1100);
    const [p] = expandSweep(plain);
    const [r] = expandSweep(rabi);
    // Without a preset the IDs are those of specs written before presets existed.
    assert.equal(p!.simulationId, simulationIdOf(p!.task, 1000, p!.seed));
    assert.notEqual(r!.simulationId, p!.simulationId);
    assert.notEqual(r!.trialId, p!.trialId);
    // Under rabi valSize may reach the budget: its rows are extra.
    validateSweepSpec(withSpec({ budgets: [500], training: { preset: 'rabi', valSize: 512 } }));
    rejects(
      () => validateSweepSpec(withSpec({ training: { preset: 'paper' } })),
      'spec/training/preset',
    );
  });

  test("sbi's stop rule and anneals: sbi's names, written-out defaults name the same trials", () => {
    assert.deepEqual([...STOP_RULES], [...SBI_STOP_RULES]);
    const idsOf = (training: Record<string, unknown>): string[] =>
      expandSweep(validateSweepSpec(withSpec({ training }))).map((t) => t.trialId);
    const plain = idsOf({});
    assert.deepEqual(idsOf({ stopRule: 'rabi', anneals: 0, dropLast: false }), plain);
    assert.notDeepEqual(idsOf({ dropLast: true }), plain);
    const annealed = validateSweepSpec(
      withSpec({ training: { stopRule: 'sbi', anneals: 2, annealFactor: 0.2 } }),
    ).training;
    assert.equal(annealed.stopRule, 'sbi');
    assert.equal(annealed.anneals, 2);
    assert.equal(annealed.annealFactor, 0.2);
    assert.notDeepEqual(idsOf({ anneals: 2 }), plain);
    rejects(
      () => validateSweepSpec(withSpec({ training: { stopRule: 'keras' } })),
      'spec/training/stopRule',
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { anneals: -1 } })),
      'spec/training/anneals',
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { anneals: 1, annealFactor: 1 } })),
      'spec/training/annealFactor',
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { anneals: 0, annealFactor: 0.5 } })),
      'spec/training/annealFactor',
      /has no effect without training\/anneals of at least 1/,
    );
    assert.equal(
      validateSweepSpec(withSpec({ training: { anneals: 2, annealPatience: 5 } })).training
        .annealPatience,
      5,
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { annealPatience: 10 } })),
      'spec/training/annealPatience',
      /has no effect without training\/anneals of at least 1/,
    );
    // An anneal patience equal to patience is its absent meaning: the same trials, with patience
    // written out or at its default (10); without anneals it stays an error (just above: 10 is
    // the default patience).
    const annealedIds = idsOf({ anneals: 2, patience: 15 });
    assert.deepEqual(idsOf({ anneals: 2, patience: 15, annealPatience: 15 }), annealedIds);
    assert.deepEqual(idsOf({ anneals: 2, annealPatience: 10 }), idsOf({ anneals: 2 }));
    assert.notDeepEqual(idsOf({ anneals: 2, patience: 15, annealPatience: 10 }), annealedIds);
  });

  test('training defaults are sbi/npe.ts defaults', () => {
    const t = validateSweepSpec(withSpec({ training: {} })).training;
    const d = DEFAULT_NPE_HYPERPARAMETERS;
    assert.deepEqual(t, {
      maxEpochs: d.maxEpochs,
      minEpochs: d.minEpochs,
      batchSize: d.batchSize,
      learningRate: d.learningRate,
      patience: d.patience,
      clipNorm: d.clipNorm,
      maxNanResets: d.maxNanResets,
    });
  });
});

describe('example specs', () => {
  const specs = exampleSpecs();

  test('demo and the paper specs for every task that has RABI grids exist', () => {
    for (const f of [
      'demo.json',
      'paper-gaussian_linear.json',
      'paper-lotka_volterra.json',
      'paper-sir.json',
    ])
      assert.ok(specs.has(f), f);
  });

  for (const [file, text] of specs) {
    test(`${file} validates and expands to the product of its grids`, () => {
      const spec = parseSweepSpec(text);
      const raw = JSON.parse(text) as {
        tasks: unknown[];
        estimators: unknown[];
        // A search may leave its grid out (sweeps/demo-search.json).
        defenses?: { betas?: unknown[]; trainEps?: unknown[]; name: string }[];
        seeds: unknown[];
        budgets: unknown[];
      };
      // Grid points written out by hand: trades and noise get their default grids when absent.
      const points = (raw.defenses ?? []).reduce((s, d) => {
        const betas = d.betas?.length ?? 1;
        const eps = d.trainEps?.length ?? 1;
        return s + betas * eps;
      }, 0);
      const expected =
        raw.tasks.length * raw.estimators.length * points * raw.seeds.length * raw.budgets.length;
      assert.equal(countTrials(spec), expected);
      const trials = expandSweep(spec);
      assert.equal(trials.length, expected);
      assert.equal(new Set(trials.map((t) => t.trialId)).size, expected, 'distinct trial IDs');
      assert.ok(spec.evaluation.eps.includes(spec.evaluation.tradeoffEps));
    });
  }

  test('demo is small: 4 trials of 2000 simulations and 20 epochs on the cpu queue', () => {
    const spec = parseSweepSpec(specs.get('demo.json')!);
    const trials = expandSweep(spec);
    assert.equal(trials.length, 4);
    assert.deepEqual(
      trials.map((t) => [t.defense.name, t.defense.beta]),
      [
        ['none', undefined],
        ['fim', 0.001],
        ['fim', 0.01],
        ['fim', 0.1],
      ],
    );
    for (const t of trials) {
      assert.equal(t.task, 'gaussian_linear');
      assert.equal(t.budget, 2000);
      assert.equal(t.training.maxEpochs, 20);
      assert.ok(t.evaluation.nTest <= 200);
      assert.deepEqual(t.queues, { simulate: 'cpu', train: 'cpu', evaluate: 'cpu' });
    }
  });

  test("paper specs carry RABI's grids", () => {
    for (const task of ['gaussian_linear', 'lotka_volterra', 'sir']) {
      const spec = parseSweepSpec(specs.get(`paper-${task}.json`)!);
      assert.deepEqual(spec.tasks, [task]);
      assert.deepEqual(spec.budgets, [1000, 10000, 100000]);
      assert.deepEqual(
        spec.estimators.map((e) => e.kind),
        ['maf', 'nsf'],
      );
      const fim = spec.defenses.find((d) => d.name === 'fim');
      assert.deepEqual(fim?.betas, [1e-4, 1e-3, 1e-2, 1e-1]);
      for (const name of ['adversarial', 'trades'] as const)
        assert.deepEqual(spec.defenses.find((d) => d.name === name)?.trainEps, [0.1, 0.5, 1]);
      assert.deepEqual(spec.defenses.find((d) => d.name === 'trades')?.betas, [0.1]);
      assert.deepEqual(spec.defenses.find((d) => d.name === 'noise')?.trainEps, [1]);
      assert.deepEqual(spec.evaluation.eps, [0.1, 0.2, 0.3, 0.5, 1, 2]);
      assert.equal(spec.evaluation.nTest, 10000);
      assert.equal(spec.evaluation.evalSamples, 256);
      assert.equal(spec.evaluation.tradeoffEps, 2);
      assert.equal(countTrials(spec), 2 * 12 * 3);
    }
  });

  test("the appendix spec: none and the three FIM estimators at RABI's betas, VAE, diagonal Gaussian", () => {
    const spec = parseSweepSpec(specs.get('appendix-fim-estimators.json')!);
    assert.deepEqual(spec.tasks, ['vae']);
    assert.deepEqual(
      spec.estimators.map((e) => e.kind),
      ['gaussian'],
    );
    assert.deepEqual(
      spec.defenses.map((d) => d.name),
      ['none', 'fim', 'fim-exact', 'fim-eigenvalue'],
    );
    for (const d of spec.defenses.slice(1)) assert.deepEqual(d.betas, [1e-4, 1e-3, 1e-2, 1e-1]);
    assert.equal(spec.training.preset, 'rabi');
    assert.equal(spec.evaluation.tradeoffEps, 2);
    assert.deepEqual(spec.evaluation.attacks, ['l2pgd']);
    assert.deepEqual(spec.evaluation.objectives, ['rkl']);
    assert.equal(countTrials(spec), 13);
  });

  test("the full-size appendix spec is the reduced one at RABI's size, over three seeds", () => {
    const reduced = parseSweepSpec(specs.get('appendix-fim-estimators.json')!);
    const full = parseSweepSpec(specs.get('appendix-fim-estimators-full.json')!);
    // The same comparison: task, estimator, defenses and betas, preset, attack and objective.
    for (const key of ['tasks', 'estimators', 'defenses'] as const)
      assert.deepEqual(full[key], reduced[key], key);
    assert.equal(full.training.preset, reduced.training.preset);
    assert.deepEqual(full.evaluation.attacks, reduced.evaluation.attacks);
    assert.deepEqual(full.evaluation.objectives, reduced.evaluation.objectives);
    assert.equal(full.evaluation.tradeoffEps, reduced.evaluation.tradeoffEps);
    // RABI's size (research/paper.md 2.3; paper-vae.json's schedule and evaluation).
    const vae = parseSweepSpec(specs.get('paper-vae.json')!);
    assert.deepEqual(full.budgets, [100000]);
    assert.deepEqual(full.training, vae.training);
    for (const key of ['eps', 'nTest', 'mcSamples', 'evalSamples', 'coverageSamples'] as const)
      assert.deepEqual(full.evaluation[key], vae.evaluation[key], key);
    assert.deepEqual(full.seeds, [0, 1, 2]);
    assert.equal(countTrials(full), 39);
  });
});

describe('validation fills defaults and normalizes', () => {
  test('defaults: evaluation, routing, concurrency, failFast, defense grids', () => {
    const spec = validateSweepSpec({
      name: 'd',
      tasks: ['sir'],
      estimators: ['mdn'],
      defenses: [{ name: 'trades', trainEps: [0.5] }, { name: 'noise' }],
      seeds: [3],
      budgets: [500],
    });
    assert.deepEqual(spec.evaluation.attacks, ['l2pgd', 'noise']);
    assert.deepEqual(spec.evaluation.objectives, ['rkl']);
    assert.deepEqual(spec.evaluation.eps, [0.1, 0.2, 0.3, 0.5, 1, 2]);
    assert.equal(spec.evaluation.nTest, 10000);
    assert.equal(spec.evaluation.tradeoffEps, 2);
    assert.deepEqual(spec.routing, { train: 'cpu', evaluate: 'cpu' });
    assert.equal(spec.concurrency, 4);
    assert.equal(spec.pack, 1);
    assert.equal(spec.failFast, false);
    assert.deepEqual(spec.defenses[0]!.betas, [0.1]);
    assert.deepEqual(spec.defenses[1]!.trainEps, [1]);
    assert.deepEqual(spec.estimators, [{ kind: 'mdn', architecture: {} }]);
  });

  test('clipNorm null turns clipping off', () => {
    assert.equal(
      validateSweepSpec(withSpec({ training: { clipNorm: null } })).training.clipNorm,
      null,
    );
  });

  test('a byte-order mark and CRLF line ends are accepted', () => {
    const demo = exampleSpecs().get('demo.json')!;
    const spec = parseSweepSpec(`\ufeff${demo.replace(/\n/g, '\r\n')}`);
    assert.deepEqual(spec, parseSweepSpec(demo));
    rejects(
      () => parseSweepSpec('{\r\n  "name": "x",\r\n  "tasks": [,]\r\n}'),
      'spec/tasks/0',
      /line 3, column 13: unexpected ','/,
    );
  });

  test('the argument is not modified', () => {
    const input = baseSpec();
    const before = JSON.stringify(input);
    validateSweepSpec(input);
    assert.equal(JSON.stringify(input), before);
  });

  test('a per-estimator queue overrides routing.train', () => {
    const spec = validateSweepSpec(
      withSpec({ estimators: ['maf', { kind: 'nsf', queue: 'gpu' }], routing: { train: 'cpu' } }),
    );
    const queues = new Set(expandSweep(spec).map((t) => `${t.estimator.kind}:${t.queues.train}`));
    assert.deepEqual([...queues].sort(), ['maf:cpu', 'nsf:gpu']);
  });
});

describe('bad-spec corpus (issue 9): each rejected with the JSON path', () => {
  const text = (o: unknown): string => JSON.stringify(o, null, 2);

  test('malformed JSON, with line and column', () => {
    rejects(
      () => parseSweepSpec('{\n  "name": "x",\n  "tasks": ["sir",]\n}'),
      'spec/tasks',
      /line 3, column 19: trailing comma/,
    );
    rejects(
      () => parseSweepSpec('{"name": "x", "seeds": [0'),
      'spec/seeds',
      /line 1, column 26: expected ',' or '\]'/,
    );
    rejects(
      () => parseSweepSpec("{'name': 'x'}"),
      'spec',
      /line 1, column 2: expected a property name in double quotes/,
    );
    rejects(
      () => parseSweepSpec('{"name": "x" "tasks": []}'),
      'spec',
      /line 1, column 14: expected ',' or '}'/,
    );
    rejects(() => parseSweepSpec('{\n // note\n "name": "x"}'), 'spec', /line 2, column 2/);
    rejects(() => parseSweepSpec('{"seeds": [NaN]}'), 'spec/seeds/0', /malformed JSON/);
    rejects(() => parseSweepSpec('{"budgets": [1e400]}'), 'spec/budgets/0', /too large/);
    rejects(() => parseSweepSpec('{"name": "a\tb"}'), 'spec/name', /control character/);
    rejects(() => parseSweepSpec('{} {}'), 'spec', /after the end of the JSON value/);
    rejects(() => parseSweepSpec(''), 'spec', /empty/);
    rejects(() => parseSweepSpec('[]'), 'spec', /must be an object/);
    rejects(() => parseSweepSpec('"sir"'), 'spec', /must be an object/);
  });

  test('duplicate keys and deep nesting', () => {
    rejects(() => parseSweepSpec('{"name": "a", "name": "b"}'), 'spec/name', /appears twice/);
    rejects(
      () => parseSweepSpec(`{"name": ${'['.repeat(5000)}${']'.repeat(5000)}}`),
      'spec/name/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0',
      /nested deeper/,
    );
  });

  test('wrong types', () => {
    rejects(
      () => validateSweepSpec(withSpec({ tasks: 'gaussian_linear' })),
      'spec/tasks',
      /must be a list \(got "gaussian_linear"\)/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ seeds: ['0'] })),
      'spec/seeds/0',
      /must be an integer/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ seeds: [0.5] })),
      'spec/seeds/0',
      /must be an integer/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { maxEpochs: '20' } })),
      'spec/training/maxEpochs',
      /must be an integer/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ failFast: 'yes' })),
      'spec/failFast',
      /must be true or false/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ estimators: [5] })),
      'spec/estimators/0',
      /must be a string or an object/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { eps: {} } })),
      'spec/evaluation/eps',
      /must be a list/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ name: undefined })),
      'spec',
      /missing required property "name"/,
    );
    rejects(() => validateSweepSpec(null), 'spec', /must be an object/);
    const sparse: number[] = [];
    sparse[0] = 0;
    sparse[2] = 2;
    rejects(() => validateSweepSpec(withSpec({ seeds: sparse })), 'spec/seeds/1', /got undefined/);
    rejects(() => validateSweepSpec(withSpec({ seeds: [0n] })), 'spec/seeds/0', /not a bigint/);
    rejects(() => validateSweepSpec(withSpec({ name: '' })), 'spec/name', /must not be empty/);
    rejects(
      () => validateSweepSpec(withSpec({ description: 'x'.repeat(10_001) })),
      'spec/description',
      /at most 10000 characters long \(got 10001\)/,
    );
    rejects(() => validateSweepSpec(withSpec({ seeds: [NaN] })), 'spec/seeds/0', /finite/);
    rejects(() => validateSweepSpec(withSpec({ when: new Date(0) })), 'spec/when', /plain JSON/);
  });

  test('unknown names, with the known ones listed', () => {
    rejects(
      () => validateSweepSpec(withSpec({ tasks: ['gaussian-linear'] })),
      'spec/tasks/0',
      /unknown task "gaussian-linear"; known: gaussian_linear, lotka_volterra, sir, two_moons, slcp/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ estimators: ['realnvp'] })),
      'spec/estimators/0',
      /unknown estimator "realnvp"; known: maf, nsf, gaussian, mdn/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ estimators: [{ kind: 'flow' }] })),
      'spec/estimators/0/kind',
      /unknown estimator "flow"/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'dropout' }] })),
      'spec/defenses/0/name',
      /unknown defense "dropout"; known: none, fim, fim-fast, trades, adversarial, noise/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { attacks: ['fgsm'] } })),
      'spec/evaluation/attacks/0',
      /unknown attack "fgsm"; known: l2pgd, linfpgd, noise, nll, fim-eigen/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { objectives: ['js'] } })),
      'spec/evaluation/objectives/0',
      /unknown objective "js"; known: rkl, fkl/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ routing: { train: 'tpu' } })),
      'spec/routing/train',
      /unknown queue "tpu"; known: cpu, gpu/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ epochs: 3 })),
      'spec',
      /unknown property "epochs"; allowed: name, /,
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { lr: 0.1 } })),
      'spec/training',
      /unknown property "lr"; allowed: maxEpochs/,
    );
    rejects(
      () =>
        validateSweepSpec(withSpec({ estimators: [{ kind: 'maf', architecture: { bins: 4 } }] })),
      'spec/estimators/0/architecture',
      /unknown property "bins"; allowed: hidden, numTransforms/,
    );
  });

  test('grids that do not fit their defense', () => {
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'fim' }] })),
      'spec/defenses/0',
      /defense "fim" needs property "betas"/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'adversarial' }] })),
      'spec/defenses/0',
      /defense "adversarial" needs property "trainEps"/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'none', betas: [1] }] })),
      'spec/defenses/0/betas',
      /not allowed for defense "none"/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'fim', betas: [1], trainEps: [1] }] })),
      'spec/defenses/0/trainEps',
      /not allowed for defense "fim"/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'noise', mcSamples: 3 }] })),
      'spec/defenses/0/mcSamples',
      /not allowed for defense "noise"/,
    );
    // fim-fast draws one theta per row from the batch itself, so createDefense refuses mcSamples.
    rejects(
      () =>
        validateSweepSpec(withSpec({ defenses: [{ name: 'fim-fast', betas: [1], mcSamples: 5 }] })),
      'spec/defenses/0/mcSamples',
      /not allowed for defense "fim-fast"/,
    );
    // RABI's grad_clamp_val belongs to the FIM trace regularizer only.
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'noise', gradClamp: 5 }] })),
      'spec/defenses/0/gradClamp',
      /not allowed for defense "noise"/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'fim', betas: [1], gradClamp: 0 }] })),
      'spec/defenses/0/gradClamp',
      /must be > 0/,
    );
  });

  test('negative, empty and enormous grids', () => {
    rejects(
      () =>
        validateSweepSpec(withSpec({ defenses: [{ name: 'none' }, { name: 'fim', betas: [-1] }] })),
      'spec/defenses/1/betas/0',
      /must be >= 0 \(got -1\)/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ defenses: [{ name: 'adversarial', trainEps: [0] }] })),
      'spec/defenses/0/trainEps/0',
      /must be > 0/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ budgets: [-100] })),
      'spec/budgets/0',
      /must be >= 10/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ budgets: [1e12] })),
      'spec/budgets/0',
      /must be <= 10000000/,
    );
    rejects(() => validateSweepSpec(withSpec({ seeds: [-1] })), 'spec/seeds/0', /must be >= 0/);
    rejects(
      () => validateSweepSpec(withSpec({ seeds: [] })),
      'spec/seeds',
      /must list at least 1 item \(got a list of 0\)/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { nTest: 0 } })),
      'spec/evaluation/nTest',
      /must be >= 1/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { eps: [-0.5] } })),
      'spec/evaluation/eps/0',
      /must be > 0/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ seeds: Array.from({ length: 5000 }, (_, i) => i) })),
      'spec/seeds',
      /must list at most 1000 items \(got a list of 5000\)/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({
            defenses: [{ name: 'fim', betas: Array.from({ length: 1001 }, (_, i) => i) }],
          }),
        ),
      'spec/defenses/0/betas',
      /at most 1000 items/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ seeds: [1, 2, 1] })),
      'spec/seeds',
      /items 2 and 0 are equal/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ concurrency: 0 })),
      'spec/concurrency',
      /must be >= 1/,
    );
    rejects(() => validateSweepSpec(withSpec({ pack: 0 })), 'spec/pack', /must be >= 1/);
    rejects(
      () => validateSweepSpec(withSpec({ concurrency: 8, pack: 10 })),
      'spec/pack',
      /must be at most concurrency \(8\), since a pack's trials are in flight together \(got 10\)/,
    );
  });

  test('a grid whose product exceeds the trial cap, each axis within its own limit', () => {
    const grid = {
      seeds: Array.from({ length: 1000 }, (_, i) => i),
      budgets: Array.from({ length: 100 }, (_, i) => 1000 + i),
      defenses: [{ name: 'fim', betas: [0.1] }],
      estimators: ['maf'],
    };
    rejects(
      () => validateSweepSpec(withSpec({ ...grid, tasks: ['sir', 'slcp'] })),
      'spec',
      new RegExp(`expands to 200000 trials .*; at most ${MAX_TRIALS} are allowed`),
    );
    // Exactly at the cap is allowed.
    assert.equal(countTrials(validateSweepSpec(withSpec({ ...grid, tasks: ['sir'] }))), MAX_TRIALS);
  });

  test('a sweep asking for too many evaluation records', () => {
    // 30,000 trials (within the trial cap) x 5 attacks x 2 objectives x 20 eps = 6,000,000 records.
    const eps = Array.from({ length: 20 }, (_, i) => (i + 1) / 10);
    rejects(
      () =>
        validateSweepSpec(
          withSpec({
            tasks: ['sir'],
            estimators: ['maf'],
            defenses: [{ name: 'none' }],
            seeds: Array.from({ length: 1000 }, (_, i) => i),
            budgets: Array.from({ length: 30 }, (_, i) => 1000 + i),
            evaluation: { attacks: [...ATTACK_NAMES], objectives: ['rkl', 'fkl'], eps },
          }),
        ),
      'spec/evaluation',
      new RegExp(`asks for 6000000 evaluations .*; at most ${MAX_EVALUATIONS} are allowed`),
    );
  });

  test('cross-field rules', () => {
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { eps: [0.5, 1] } })),
      'spec/evaluation/tradeoffEps',
      /must be one of evaluation\/eps \(0\.5, 1\) \(got 2\)/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({ evaluation: { attacks: ['noise'], tradeoffAttack: 'l2pgd' } }),
        ),
      'spec/evaluation/tradeoffAttack',
      /must be one of evaluation\/attacks \(noise\) \(got l2pgd\)/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({ evaluation: { objectives: ['fkl'], tradeoffObjective: 'rkl' } }),
        ),
      'spec/evaluation/tradeoffObjective',
      /must be one of evaluation\/objectives \(fkl\) \(got rkl\)/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { eps: [1, 2], examples: { eps: 0.5 } } })),
      'spec/evaluation/examples/eps',
      /must be one of evaluation\/eps \(1, 2\) \(got 0\.5\)/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({ evaluation: { attacks: ['noise'], examples: { eps: 2, attack: 'l2pgd' } } }),
        ),
      'spec/evaluation/examples/attack',
      /must be one of evaluation\/attacks \(noise\) \(got l2pgd\)/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { examples: { eps: 2, samples: 3 } } })),
      'spec/evaluation/examples/samples',
      /10/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({
            tasks: ['gaussian_linear', 'hodgkin_huxley'],
            evaluation: { metrics: ['sbc', 'c2st'] },
          }),
        ),
      'spec/evaluation/metrics/1',
      /c2st needs a reference posterior, which task hodgkin_huxley has none/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({ evaluation: { metrics: ['sbc'], sbc: { samples: 9, bins: 11 } } }),
        ),
      'spec/evaluation/sbc/bins',
      /must be at most samples \+ 1 \(10\)/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ evaluation: { c2st: { samples: 100 } } })),
      'spec/evaluation/c2st',
      /does not list "c2st"/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { minEpochs: 30, maxEpochs: 20 } })),
      'spec/training/minEpochs',
      /must be <= maxEpochs/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ training: { valSize: 1000 } })),
      'spec/training/valSize',
      /smaller than the smallest budget \(1000\)/,
    );
    rejects(
      () => validateSweepSpec(withSpec({ estimators: ['maf', { kind: 'maf', queue: 'gpu' }] })),
      'spec/estimators/1',
      /repeats estimator 0/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({
            defenses: [
              { name: 'fim', betas: [0.1, 0.2] },
              { name: 'fim', betas: [0.3, 0.2] },
            ],
          }),
        ),
      'spec/defenses/1',
      /repeats a grid point of defense 0/,
    );
  });

  test('a 10 MB spec is refused by its size, before any parsing', () => {
    const tenMb = `{"name": "${'x'.repeat(10 * 1024 * 1024)}"`; // also malformed: no closing brace
    rejects(
      () => parseSweepSpec(tenMb),
      'spec',
      new RegExp(`larger than ${MAX_SPEC_BYTES} bytes; nothing was parsed`),
    );
    // Multi-byte text is measured in UTF-8 bytes.
    const wide = `{"name": "${'€'.repeat(400_000)}"}`;
    assert.ok(wide.length < MAX_SPEC_BYTES);
    rejects(() => parseSweepSpec(wide), 'spec', /is 1200012 bytes, larger than 1000000/);
  });

  test('__proto__, constructor and prototype keys, anywhere and however spelled', () => {
    const spec = baseSpec();
    rejects(
      () => parseSweepSpec(`{"__proto__": {"polluted": true}, ${text(spec).slice(1)}`),
      'spec/__proto__',
      /refused key at line 1, column 2: the key "__proto__" is not allowed/,
    );
    rejects(
      () =>
        parseSweepSpec(
          text(
            withSpec({ training: JSON.parse('{"constructor": {"prototype": {"polluted": 1}}}') }),
          ),
        ),
      'spec/training/constructor',
      /refused key/,
    );
    rejects(
      () => parseSweepSpec(text(withSpec({ defenses: [{ name: 'none', prototype: 1 }] }))),
      'spec/defenses/0/prototype',
      /refused key/,
    );
    rejects(
      () => parseSweepSpec('{"name": "x", "evaluation": {"\\u005f_proto__": 1}}'),
      'spec/evaluation/__proto__',
      /refused key/,
    );
    // Objects built by JSON.parse own a "__proto__" key; validateSweepSpec refuses them too.
    rejects(
      () =>
        validateSweepSpec(JSON.parse(`{"__proto__": {"polluted": true}, ${text(spec).slice(1)}`)),
      'spec/__proto__',
      /not allowed/,
    );
    rejects(
      () =>
        validateSweepSpec(
          withSpec({ estimators: [JSON.parse('{"kind": "maf", "constructor": 1}')] }),
        ),
      'spec/estimators/0/constructor',
      /not allowed/,
    );
    // An object whose prototype was swapped by a literal __proto__ is not plain data.
    rejects(
      () => validateSweepSpec({ ...baseSpec(), training: { __proto__: { maxEpochs: 3 } } }),
      'spec/training',
      /plain JSON/,
    );
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('an estimator may choose its embedding net; an unknown one is rejected with its path', () => {
    const spec = withSpec({ estimators: [{ kind: 'maf', architecture: { embedding: 'mlp' } }] });
    assert.doesNotThrow(() => validateSweepSpec(spec));
    rejects(
      () =>
        validateSweepSpec(
          withSpec({ estimators: [{ kind: 'nsf', architecture: { embedding: 'cnn' } }] }),
        ),
      'spec/estimators/0/architecture/embedding',
    );
  });

  test('a valid spec with one unknown task name is rejected', () => {
    // The same text without the bad name passes, so the rejection is the name's doing.
    const good = readFileSync(join(root, 'sweeps', 'demo.json'), 'utf8');
    assert.doesNotThrow(() => parseSweepSpec(good));
    rejects(
      () => parseSweepSpec(good.replace('"gaussian_linear"', '"gaussian_linear", "bernoulli_glm"')),
      'spec/tasks/1',
      /unknown task "bernoulli_glm"/,
    );
  });
});
